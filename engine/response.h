// The response writer: a page or an error as Elasticsearch's JSON bytes.
//
// Spec section 5 (key order, the `<field_name>: <value>` key, number
// formats) and section 6 (the error envelope). Pure and thread-safe.
#ifndef CLOUT_ENGINE_RESPONSE_H_
#define CLOUT_ENGINE_RESPONSE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "engine/executor.h"
#include "engine/request.h"

namespace clout {

// Appends `page` as `{"count":N,"influencers":[...]}` to `*out`. Compact by
// default; with options.pretty, indented as Elasticsearch's `?pretty`
// (two spaces, `"key" : value`, empty array as `[ ]`). With options.human
// each influencer also gets `timestamp_string` before `timestamp`.
void AppendInfluencersJson(const InfluencersPage& page,
                           const OutputOptions& options, std::string* out);

// Returns AppendInfluencersJson's text.
std::string InfluencersJson(const InfluencersPage& page,
                            const OutputOptions& options = OutputOptions());

// Appends one influencer object (as inside the response's array, compact) to
// `*out`; `human` adds timestamp_string.
void AppendInfluencerJson(const Influencer& influencer, bool human,
                          std::string* out);

// Returns the error envelope of spec section 6 for a non-OK `status`:
// {"error":{"root_cause":[{"type":T,"reason":R}],"type":T,"reason":R},"status":S}
// Compact unless `pretty`.
std::string ErrorJson(const absl::Status& status, bool pretty = false);

// True if `field_name` gets the extra `<field_name>: <value>` key: the part
// of the name before its first '.' is not a reserved results field name.
bool WritesFieldValueKey(absl::string_view field_name);

}  // namespace clout

#endif  // CLOUT_ENGINE_RESPONSE_H_
