// libFuzzer target: the body-mode request parser (clout::ParseBodyRequest),
// then the parsed request on a small fixed store (fixed_store.h).
//
// Input: the request body, as is.
//
// Invariants checked:
//   - a body one byte over max_body_bytes is a 413; one at the limit parses
//     as with the default limit;
//   - the path's job id only overrides the body's job_id: parsing with and
//     without one succeeds or fails alike, and yields the same request;
//   - a body that parses is valid UTF-8; every error envelope is valid JSON;
//   - RequestToJson of the request is valid JSON that parses back to the
//     same request;
//   - the request answers the same through InfluencerStore, ExecuteQuery and
//     ReferenceExecuteQuery, and every response is valid JSON.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/error.h"
#include "engine/request.h"
#include "fuzz/fixed_store.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using clout::InfluencersRequest;
  using clout::ParseBodyRequest;
  using clout::RequestToJson;
  const absl::string_view body(reinterpret_cast<const char*>(data), size);
  const bool utf8 = clout_fuzz::IsValidUtf8(body);

  absl::StatusOr<InfluencersRequest> with_path =
      ParseBodyRequest(clout_fuzz::kItOpsJob, body);
  absl::StatusOr<InfluencersRequest> without_path = ParseBodyRequest("", body);
  // The body size limit: a body of exactly the limit is parsed as usual, one
  // byte over is a 413.
  if (size > 0) {
    absl::StatusOr<InfluencersRequest> over =
        ParseBodyRequest(clout_fuzz::kItOpsJob, body, size - 1);
    CLOUT_FUZZ_CHECK(!over.ok() && clout::HttpStatusOf(over.status()) == 413,
                     "body over max_body_bytes: ", over.status().ToString());
    clout_fuzz::CheckErrorJson(over.status(), true);
  }
  absl::StatusOr<InfluencersRequest> at_limit =
      ParseBodyRequest(clout_fuzz::kItOpsJob, body, size);
  CLOUT_FUZZ_CHECK(
      at_limit.ok() == with_path.ok() &&
          (at_limit.ok() ? RequestToJson(*at_limit) == RequestToJson(*with_path)
                         : at_limit.status() == with_path.status()),
      "a body at max_body_bytes parsed differently");
  CLOUT_FUZZ_CHECK(with_path.ok() == without_path.ok(),
                   "with path: ", with_path.status().ToString(),
                   " without: ", without_path.status().ToString());
  if (!with_path.ok()) {
    CLOUT_FUZZ_CHECK(with_path.status() == without_path.status(),
                     "errors differ: ", with_path.status().ToString(), " vs ",
                     without_path.status().ToString());
    clout_fuzz::CheckErrorJson(with_path.status(), utf8);
    return 0;
  }
  CLOUT_FUZZ_CHECK(utf8, "a body with invalid UTF-8 was accepted");
  CLOUT_FUZZ_CHECK(with_path->job_id == clout_fuzz::kItOpsJob,
                   "path job id not applied: ", with_path->job_id);
  InfluencersRequest same = *with_path;
  same.job_id = without_path->job_id;
  const std::string canonical = RequestToJson(*without_path);
  CLOUT_FUZZ_CHECK(RequestToJson(same) == canonical,
                   "the path job id changed more than job_id");

  // The canonical form is a body that means the same request.
  clout_fuzz::CheckValidJson(canonical, "RequestToJson");
  absl::StatusOr<InfluencersRequest> again = ParseBodyRequest("", canonical);
  CLOUT_FUZZ_CHECK(again.ok(),
                   "RequestToJson output rejected: ", again.status().ToString(),
                   "\n", canonical);
  CLOUT_FUZZ_CHECK(RequestToJson(*again) == canonical,
                   "round trip changed the request:\n", canonical, "\n",
                   RequestToJson(*again));

  clout_fuzz::RunOnFixedStore(*with_path, true);
  if (without_path->job_id != clout_fuzz::kItOpsJob) {
    clout_fuzz::RunQuery(clout_fuzz::FixedStore(), *without_path, true);
  }
  return 0;
}
