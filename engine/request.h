// InfluencersRequest: a Get Influencers request, and its two parsers.
//
// Spec section 1. A request is given either as a JSON body (body mode) or as
// flat string parameters (parameter mode), never mixed. Both parsers check
// keys, types and ranges and return the request or an error in
// Elasticsearch's shape (error.h). Dates are kept as text here and resolved
// when the query runs, because "now" is read then and because Elasticsearch
// reports an unknown job (404) before a bad date (400).
//
// All functions are pure and thread-safe.
#ifndef CLOUT_ENGINE_REQUEST_H_
#define CLOUT_ENGINE_REQUEST_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clout {

// The default limit on a request body's size, in bytes.
inline constexpr size_t kDefaultMaxBodyBytes = size_t{100} << 20;

struct InfluencersRequest {
  std::string job_id;
  // Keep timestamp >= start (inclusive) and < end (exclusive). Text in any
  // form ParseDateParam (dates.h) accepts; unset means unbounded.
  std::optional<std::string> start;
  std::optional<std::string> end;
  // Set when `start` (`end`) was a JSON number in a body: epoch
  // milliseconds, never a year or date math ("end":2017 is 2017 ms; the
  // string "2017" is the year). The text is then an integer (a number with
  // an exponent or a fraction is floored to one) or, if it was out of
  // range, the number as given, which fails when the query runs.
  bool start_is_number = false;
  bool end_is_number = false;
  // Drop results whose is_interim is true.
  bool exclude_interim = false;
  // Keep influencer_score >= this; applied only when > 0.
  double influencer_score = 0.0;
  // The field to sort on: see spec section 3.
  std::string sort = "influencer_score";
  bool desc = true;
  int64_t from = 0;  // 0 <= from <= INT32_MAX
  int64_t size = 100;  // 0 <= size <= INT32_MAX
};

// Response options that ride along with a request.
struct OutputOptions {
  bool pretty = false;  // indent the JSON
  bool human = false;   // add timestamp_string to every influencer
};

// Parses a body-mode request. `path_job_id` is the job of the URL path and
// overrides any "job_id" in the body. The body must be one JSON object with
// only the keys job_id, start, end, exclude_interim, influencer_score, sort,
// desc and page ({"from":..,"size":..}). Errors (all 400):
//   - malformed JSON, a body that is not an object, a duplicate key, a value
//     of the wrong JSON type: x_content_parse_exception naming the key;
//   - an unknown key: x_content_parse_exception "unknown field [k]";
//   - a bad boolean, a non-integer or negative page.from/page.size:
//     illegal_argument_exception as in spec section 6;
//   - a number that does not parse: number_format_exception.
//   - a body longer than `max_body_bytes`: 413 content_too_long_exception
//     (Elasticsearch's http.max_content_length defaults to 100 MB).
absl::StatusOr<InfluencersRequest> ParseBodyRequest(
    absl::string_view path_job_id, absl::string_view body,
    size_t max_body_bytes = kDefaultMaxBodyBytes);

// A parameter of parameter mode: name and value ("" for a bare `?desc`).
using RequestParam = std::pair<std::string, std::string>;

// Parses a parameter-mode request: parameters start, end, exclude_interim,
// influencer_score, sort, desc, from, size, plus the output options pretty
// and human (stored into `*output` when it is not null, on success only:
// after an error *output is unchanged). A present but empty
// boolean means true; a parameter given twice takes its last value. Errors
// (all 400): a bad boolean, integer or number as in spec section 6, or an
// unknown parameter (illegal_argument_exception "request [<path>] contains
// unrecognized parameter: [p] -> did you mean [q]?", as
// UnrecognizedParametersReason words it, with the parameters of parameter
// mode, job_id, and the global ones pretty, human, error_trace,
// filter_path and format as candidates). With several, the first in Elasticsearch's
// order is returned: pretty, human, exclude_interim, from, size, a negative
// from, a negative size, influencer_score, desc, unknown parameters.
//
// `path` is the request's path as the unrecognized-parameter reason names
// it; empty means `/_ml/anomaly_detectors/<job_id>/results/influencers`.
absl::StatusOr<InfluencersRequest> ParseParamRequest(
    absl::string_view job_id, const std::vector<RequestParam>& params,
    OutputOptions* output = nullptr, absl::string_view path = {});

// Reads a boolean request parameter as Elasticsearch does: "" (a bare
// `?pretty`) and "true" are true, "false" is false; anything else is 400
// illegal_argument_exception "Failed to parse value [x] as only [true] or
// [false] are allowed." with *out unchanged. Pure.
absl::Status ParseBooleanParam(absl::string_view text, bool* out);

// Lucene's LevenshteinDistance similarity, which Elasticsearch uses to
// suggest parameter names: 1 - (edit distance / the longer length), over
// Unicode code points (invalid UTF-8 bytes count as one each); 1 for two
// empty strings, 0 when only one is empty. Pure.
float LevenshteinSimilarity(absl::string_view a, absl::string_view b);

// Elasticsearch's reason for unrecognized parameters of a request to
// `path` (decoded, without the query string):
//   request [<path>] contains unrecognized parameter: [x] -> did you mean [y]?
// With several unknown names (sorted, duplicates dropped) "parameters:
// [a], [b -> ...]"; several suggestions "did you mean any of [y, z]?"; none:
// no arrow part. Suggestions are the `candidates` (the parameters the
// request consumed and the global response parameters) whose similarity
// to the name is above 0.5, most similar first, then by name. Pure.
std::string UnrecognizedParametersReason(absl::string_view path,
                                         std::vector<std::string> unknown,
                                         const std::vector<std::string>& candidates);

// The names among `candidates` whose similarity to `unknown` is above
// 0.5, most similar first, then by name: the suggestions of Elasticsearch's
// "did you mean" for unknown parameters and unknown body fields. Pure.
std::vector<std::string> SimilarNames(absl::string_view unknown,
                                      const std::vector<std::string>& candidates);

// Parses "a=1&b=2&c" (no URL decoding beyond '+' and %XX) into parameters.
std::vector<RequestParam> SplitQueryString(absl::string_view query);

// The request as a canonical body-mode JSON object (every key written),
// e.g. for logs and for reproducing a failing request.
std::string RequestToJson(const InfluencersRequest& request);

}  // namespace clout

#endif  // CLOUT_ENGINE_REQUEST_H_
