// libFuzzer target: the REST layer (clout::RestApi::Handle) — routing,
// percent-decoding, query parameters, media types, gzip bodies, filter_path
// and pretty — over a fresh copy of the fixed store (fixed_store.h), so that
// `_bulk` inputs may write.
//
// Input: the request line "METHOD TARGET", then header lines "Name: value",
// an empty line, then the body (all of the rest). A body starting with
// "GZ" is sent gzip-compressed with Content-Encoding: gzip (the rest of it).
//
// Invariants checked:
//   - Handle never crashes and answers a status among those the spec names;
//   - every JSON response body (not HEAD, not gzip) is valid JSON, and a
//     2xx/4xx/5xx one is an object;
//   - every response but 401/403 carries X-elastic-product;
//   - the same request answers the same bytes a second time when it does
//     not write (a query never changes the store).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "fuzz/fixed_store.h"
#include "fuzz/fuzz_util.h"
#include "server/gzip.h"
#include "server/rest_api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  clout::RestRequest request;
  const size_t line_end = input.find('\n');
  absl::string_view line = input.substr(0, line_end);
  const size_t space = line.find(' ');
  request.method = std::string(line.substr(0, space));
  request.target = space == absl::string_view::npos
                       ? "/"
                       : std::string(line.substr(space + 1));
  absl::string_view rest =
      line_end == absl::string_view::npos ? "" : input.substr(line_end + 1);
  while (!rest.empty()) {
    const size_t end = rest.find('\n');
    absl::string_view header = rest.substr(0, end);
    rest = end == absl::string_view::npos ? "" : rest.substr(end + 1);
    if (header.empty()) break;
    const size_t colon = header.find(':');
    if (colon == absl::string_view::npos) continue;
    request.headers.push_back(
        {std::string(header.substr(0, colon)),
         std::string(absl::StripLeadingAsciiWhitespace(header.substr(colon + 1)))});
  }
  if (absl::ConsumePrefix(&rest, "GZ")) {
    request.body = clout::GzipCompress(rest);
    request.headers.push_back({"Content-Encoding", "gzip"});
  } else {
    request.body = std::string(rest);
  }

  // Reads share one store; a write gets a fresh copy of it, so that every
  // input meets the same data.
  const bool writes = clout::RestApi::IsWrite(request.method, request.target);
  std::unique_ptr<clout::InfluencerStore> fresh;
  static clout::InfluencerStore* shared = nullptr;
  auto make_store = [] {
    clout::StoreOptions store_options;
    store_options.now_millis = [] { return clout_fuzz::kNowMillis; };
    auto store = std::make_unique<clout::InfluencerStore>(store_options);
    for (const char* dump : {clout_fuzz::kItOpsDump, clout_fuzz::kWebDump}) {
      CLOUT_FUZZ_CHECK(clout::LoadString(*store, dump).ok(), "fixture load");
    }
    return store;
  };
  if (writes) {
    fresh = make_store();
  } else if (shared == nullptr) {
    shared = make_store().release();  // reachable until exit
  }
  clout::InfluencerStore& store = writes ? *fresh : *shared;
  clout::RestApiOptions options;
  options.max_content_length = 1 << 16;
  options.cluster_uuid = "fuzz";
  options.metrics = [] { return std::string("m 1\n"); };
  clout::RestApi api(&store, options);

  const clout::RestResponse response = api.Handle(request);
  static const std::vector<int> kStatuses = {200, 400, 404, 405, 406,
                                             409, 413, 429, 500};
  CLOUT_FUZZ_CHECK(std::find(kStatuses.begin(), kStatuses.end(),
                             response.status) != kStatuses.end(),
                   "unexpected status ", response.status);
  bool product = false, gzip = false, json = false;
  for (const clout::HttpHeader& h : response.headers) {
    product |= h.name == "X-elastic-product" && h.value == "Elasticsearch";
    gzip |= h.name == "Content-Encoding";
    json |= h.name == "Content-Type" && absl::StrContains(h.value, "json");
  }
  CLOUT_FUZZ_CHECK(product, "no X-elastic-product on ", response.status);
  if (json && !gzip && !response.body.empty()) {
    clout_fuzz::CheckValidJson(response.body, "response");
    CLOUT_FUZZ_CHECK(response.body[0] == '{', "response is not an object: ",
                     response.body);
  }
  if (!writes) {
    const clout::RestResponse again = api.Handle(request);
    CLOUT_FUZZ_CHECK(again.status == response.status &&
                         (again.body == response.body ||
                          response.endpoint == clout::Endpoint::kMetrics),
                     "a read answered differently the second time");
  }
  return 0;
}
