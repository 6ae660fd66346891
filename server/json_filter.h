// Elasticsearch's response parameters `filter_path` and `pretty`, applied to
// a response already written as compact JSON.
//
// Elasticsearch filters while it writes (Jackson's FilteringGeneratorDelegate);
// Clout's writers are fixed, so the server re-prints their output instead:
// numbers and strings are copied as written (`1.11612E-4` stays), only
// structure and whitespace change. Pure and thread-safe.
#ifndef CLOUT_SERVER_JSON_FILTER_H_
#define CLOUT_SERVER_JSON_FILTER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clout {

// A parsed `filter_path`: comma-separated expressions of dot-separated
// names, where `*` in a name matches any run of characters and a name `**`
// any number of levels; a leading `-` makes an expression an exclusion.
// Arrays are transparent: `influencers.timestamp` reaches the field of
// every element.
class FilterPath {
 public:
  // Parses `text` (the parameter's value). An empty value or one of empty
  // expressions only filters nothing. Never fails: every text is a filter.
  static FilterPath Parse(absl::string_view text);

  // True when the filter keeps everything (no expressions).
  bool empty() const { return includes_.empty() && excludes_.empty(); }

  struct Expr {
    std::vector<std::string> names;
  };
  const std::vector<Expr>& includes() const { return includes_; }
  const std::vector<Expr>& excludes() const { return excludes_; }

 private:
  std::vector<Expr> includes_;
  std::vector<Expr> excludes_;
};

// Wildcard match as Elasticsearch's Glob.globMatch: `*` matches any run of
// characters; with `question_mark`, `?` matches one (index patterns). Pure.
bool GlobMatch(absl::string_view pattern, absl::string_view text,
               bool question_mark);

// Rewrites the JSON document `json` keeping what `filter` selects (a field
// matched by an exclusion is dropped even when an inclusion matches it; with
// inclusions, a field is kept when an inclusion matches it or something
// below it; objects and arrays left empty by the filter are dropped, and a
// document with nothing left is `{}`), compact or, with `pretty`, in
// Elasticsearch's pretty layout followed by a newline. Returns an error
// only if `json` is not valid JSON; on error nothing is written.
absl::StatusOr<std::string> ReshapeJson(absl::string_view json,
                                        const FilterPath& filter, bool pretty);

}  // namespace clout

#endif  // CLOUT_SERVER_JSON_FILTER_H_
