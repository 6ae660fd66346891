// RestApi: Elasticsearch's REST layer for the endpoints Clout serves, over
// an InfluencerStore, independent of any transport.
//
// The contract is ../shared/spec/rest-service.md. A RestRequest is one
// HTTP request as the transport read it (method, raw target, headers, body
// as sent); RestApi::Handle answers it with the status, headers and body
// Elasticsearch 8 would send: routing (400 "no handler found", 405 with
// `Allow`), percent-decoded paths, the body via `source` and
// `source_content_type`, unrecognized parameters with "did you mean",
// `pretty`, `human`, `filter_path`, `error_trace`, `format`, media types and
// compatible-with, `X-elastic-product`, `X-Opaque-Id`, and gzip both ways.
// The HTTP transport (http_server.h) only moves bytes.
//
//   clout::InfluencerStore store;
//   clout::RestApi api(&store, {});
//   clout::RestRequest request;
//   request.method = "GET";
//   request.target = "/_ml/anomaly_detectors/it_ops/results/influencers?size=5";
//   clout::RestResponse response = api.Handle(request);
#ifndef CLOUT_SERVER_REST_API_H_
#define CLOUT_SERVER_REST_API_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "engine/store.h"
#include "server/security.h"

namespace clout {

struct HttpHeader {
  std::string name;
  std::string value;
};

struct RestRequest {
  std::string method;  // "GET", "POST", ... as sent
  std::string target;  // the request target: path and query, undecoded
  std::vector<HttpHeader> headers;
  std::string body;  // as sent (still gzip-compressed if it was)
  // The bytes were protected by TLS or never left the machine (a loopback
  // peer). With security on, credentials on a request that is not are
  // refused (401): they crossed the network in clear.
  bool confidential = true;

  // The first value of header `name` (case-insensitive), or nullptr.
  const std::string* Header(absl::string_view name) const;
};

// Which endpoint answered: for metrics and the access log.
enum class Endpoint {
  kNone,  // no route: 400 or 405, or a request refused before routing
  kInfo,
  kGetInfluencers,
  kBulk,
  kSecurity,
  kMetrics,
  kSnapshot,
};

// The name of `endpoint` in metrics ("info", "get_influencers", ...).
absl::string_view EndpointName(Endpoint endpoint);

struct RestResponse {
  int status = 200;
  std::vector<HttpHeader> headers;  // Content-Type and the rest
  std::string body;  // for HEAD, what GET would send (the transport drops it)
  Endpoint endpoint = Endpoint::kNone;
  // The transport closes the connection after this response (a 413).
  bool close = false;
  // Documents in a _bulk request, for metrics.
  size_t bulk_items = 0;
  // The authenticated user (security on), for the access log.
  std::string user;
};

struct RestApiOptions {
  // Elasticsearch's http.max_content_length: a larger body (after gzip
  // decompression) is refused with 413 and the connection closed.
  size_t max_content_length = size_t{100} << 20;
  // Node identity for `GET /`.
  std::string node_name = "clout";
  std::string cluster_name = "clout";
  std::string cluster_uuid;  // empty: made up once, at random
  // Answers `GET /_clout/metrics` (Prometheus' text format); unset: 400 as
  // an unknown path.
  std::function<std::string()> metrics;
  // Answers `POST /_clout/snapshot` (a data directory's snapshot, taken
  // now) with the JSON body to send, or an error in Elasticsearch's
  // shape; unset: 400 as an unknown path. Needs the `manage` cluster
  // privilege. Runs on a writer thread (MayBlock).
  std::function<absl::StatusOr<std::string>()> snapshot;
  // Security (security.h): when set, every routed request authenticates
  // (401 without valid credentials) and is authorized (403), and the
  // /_security endpoints work. Must outlive the RestApi. Unset: security
  // is off, and /_security answers as Elasticsearch without security.
  Security* security = nullptr;
};

// The Elasticsearch version `GET /` reports, an 8.x that the official
// clients accept.
inline constexpr absl::string_view kReportedEsVersion = "8.15.0";

class RestApi {
 public:
  // `store` must outlive the RestApi.
  RestApi(InfluencerStore* store, RestApiOptions options);

  // Answers `request`. Never fails: every failure is an error response in
  // Elasticsearch's shape. A `_bulk` request blocks until its batch is
  // applied (InfluencerStore::Apply); every other request answers from the
  // current store version without blocking. Thread-safe.
  RestResponse Handle(const RestRequest& request) const;

  // True if `target` (with `method`) is a request that writes, and so may
  // block: a `_bulk` (its path percent-decoded as routing decodes it). Pure.
  static bool IsWrite(absl::string_view method, absl::string_view target);

  // True if Handle may block on `request`: a write, or a password check
  // that is not cached (bcrypt takes ~50 ms). A transport runs those off its
  // I/O threads. Thread-safe.
  bool MayBlock(const RestRequest& request) const;

 private:
  InfluencerStore* store_;
  RestApiOptions options_;
};

// Percent-decodes one path segment as Elasticsearch's
// RestUtils.decodeComponent does (no '+' rule): invalid UTF-8 after
// decoding becomes U+FFFD, as Java's decoder makes it. Errors (400
// illegal_argument_exception) for a '%' without two hex digits, in
// Elasticsearch's words. Pure.
absl::StatusOr<std::string> DecodePathSegment(absl::string_view segment);

}  // namespace clout

#endif  // CLOUT_SERVER_REST_API_H_
