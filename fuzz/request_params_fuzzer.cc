// libFuzzer target: the parameter-mode request parser
// (clout::ParseParamRequest) and the query-string splitter
// (clout::SplitQueryString), then the parsed request on a small fixed store
// (fixed_store.h).
//
// Input: parameters, one per line, "name=value" ("name" alone is a bare
// parameter with an empty value). The whole input is also split as a query
// string ("a=1&b=2", '+' and %XX decoded) and parsed as a second request.
//
// Invariants checked:
//   - SplitQueryString round-trips: percent-encoding every byte of its
//     parameters and splitting again gives the same parameters;
//   - a parsed request names the path's job; when its strings are valid
//     UTF-8, RequestToJson of it is valid JSON that parses back (body mode)
//     to the same request, and every error envelope is valid JSON;
//   - the request answers the same through InfluencerStore, ExecuteQuery and
//     ReferenceExecuteQuery, and every response is valid JSON.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "engine/request.h"
#include "fuzz/fixed_store.h"
#include "fuzz/fuzz_util.h"

namespace {

using clout::RequestParam;

std::string PercentEncode(absl::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    out.push_back('%');
    out.push_back(kHex[u >> 4]);
    out.push_back(kHex[u & 15]);
  }
  return out;
}

void CheckParams(const std::vector<RequestParam>& params) {
  bool utf8 = true;
  for (const auto& [name, value] : params) {
    utf8 =
        utf8 && clout_fuzz::IsValidUtf8(name) && clout_fuzz::IsValidUtf8(value);
  }
  clout::OutputOptions output;
  absl::StatusOr<clout::InfluencersRequest> request =
      clout::ParseParamRequest(clout_fuzz::kItOpsJob, params, &output);
  // The same without output options: the same answer.
  absl::StatusOr<clout::InfluencersRequest> no_output =
      clout::ParseParamRequest(clout_fuzz::kItOpsJob, params, nullptr);
  CLOUT_FUZZ_CHECK(request.ok() == no_output.ok(),
                   "output options changed the outcome");
  if (!request.ok()) {
    CLOUT_FUZZ_CHECK(request.status() == no_output.status(), "errors differ");
    clout_fuzz::CheckErrorJson(request.status(), utf8);
    return;
  }
  CLOUT_FUZZ_CHECK(request->job_id == clout_fuzz::kItOpsJob, "job id ",
                   request->job_id);
  CLOUT_FUZZ_CHECK(request->from >= 0 && request->size >= 0 &&
                       request->from <= INT32_MAX && request->size <= INT32_MAX,
                   "from ", request->from, " size ", request->size);
  const std::string canonical = clout::RequestToJson(*request);
  CLOUT_FUZZ_CHECK(canonical == clout::RequestToJson(*no_output),
                   "output options changed the request");
  if (utf8) {
    clout_fuzz::CheckValidJson(canonical, "RequestToJson");
    absl::StatusOr<clout::InfluencersRequest> body =
        clout::ParseBodyRequest("", canonical);
    CLOUT_FUZZ_CHECK(body.ok(), "RequestToJson output rejected: ",
                     body.status().ToString(), "\n", canonical);
    CLOUT_FUZZ_CHECK(clout::RequestToJson(*body) == canonical,
                     "body round trip changed the request:\n", canonical, "\n",
                     clout::RequestToJson(*body));
  }
  clout_fuzz::RunOnFixedStore(*request, utf8);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);

  // Lines of name=value.
  std::vector<RequestParam> params;
  if (!input.empty()) {
    for (absl::string_view line : absl::StrSplit(input, '\n')) {
      const size_t eq = line.find('=');
      if (eq == absl::string_view::npos) {
        params.emplace_back(std::string(line), "");
      } else {
        params.emplace_back(std::string(line.substr(0, eq)),
                            std::string(line.substr(eq + 1)));
      }
    }
  }
  CheckParams(params);

  // The input as a query string.
  const std::vector<RequestParam> split = clout::SplitQueryString(input);
  std::string encoded;
  for (const auto& [name, value] : split) {
    if (!encoded.empty()) encoded.push_back('&');
    encoded += PercentEncode(name);
    encoded.push_back('=');
    encoded += PercentEncode(value);
  }
  const std::vector<RequestParam> resplit = clout::SplitQueryString(encoded);
  CLOUT_FUZZ_CHECK(resplit == split,
                   "SplitQueryString round trip: ", split.size(),
                   " params became ", resplit.size());
  CheckParams(split);
  return 0;
}
