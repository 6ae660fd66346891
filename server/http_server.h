// HttpServer: HTTP/1.1 over Boost.Beast, answering every request with a
// RestApi (rest_api.h).
//
// Threads: one io_context run by `threads` I/O threads; a connection's
// operations run on its own strand, one request at a time, so pipelined
// requests are answered in order. Queries are answered on the I/O threads
// (they take microseconds); requests that write (`_bulk`) are handed to a
// small pool of writer threads, because InfluencerStore::Apply blocks until
// its group commits, and their response is written back on the
// connection's strand.
//
// What the transport enforces (Elasticsearch's http.* settings where they
// exist): a request line over `max_initial_line_length` or headers over
// `max_header_size`: 400 and the connection closed; a body over
// `max_content_length` (by Content-Length, or as it arrives when chunked):
// 413 and the connection closed; `Expect: 100-continue` answered with
// `100 Continue` before the body is read; keep-alive unless the client or
// HTTP/1.0 says otherwise; malformed HTTP: 400 and closed. Timeouts: an
// idle connection is closed after `idle_timeout`; a request whose header
// does not arrive within `header_timeout` of its first byte, or whose body
// does not arrive within `body_timeout`, is dropped; a response the client
// does not read within `write_timeout` is dropped.
#ifndef CLOUT_SERVER_HTTP_SERVER_H_
#define CLOUT_SERVER_HTTP_SERVER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/rest_api.h"

namespace clout {

// What one answered request was, for the access log and metrics. Never
// holds the query string (it may carry secrets) or any header but
// X-Opaque-Id.
struct RequestRecord {
  std::string method;
  std::string path;  // the raw path, without the query string
  int status = 0;
  size_t bytes_out = 0;  // response body bytes as sent
  int64_t micros = 0;    // from the whole request read to the response sent
  Endpoint endpoint = Endpoint::kNone;
  std::string opaque_id;
  size_t bulk_items = 0;
  std::string user;  // authenticated user; empty without security
};

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  // Every address the host resolves to is bound, on one port.
  uint16_t port = 9200;  // 0: any free port (see HttpServer::port())
  // Refuse to start unless every address bound is a loopback address (as
  // without security).
  bool require_loopback = false;
  // HTTPS (OpenSSL, TLS 1.2 and later) with this PEM certificate chain and
  // private key; both empty: plain HTTP.
  std::string tls_cert_file;
  std::string tls_key_file;
  int threads = 0;       // I/O threads; 0: one per core
  // Threads for requests that may block (RestApi::MayBlock: `_bulk`, an
  // uncached password check). With a write-ahead log most of them wait
  // for a sync, and those waiting together share it: more threads, fewer
  // syncs per batch.
  int writer_threads = 2;
  size_t max_content_length = size_t{100} << 20;
  size_t max_initial_line_length = 4096;
  size_t max_header_size = 8192;
  std::chrono::milliseconds idle_timeout = std::chrono::minutes(5);
  std::chrono::milliseconds header_timeout = std::chrono::seconds(30);
  std::chrono::milliseconds body_timeout = std::chrono::minutes(2);
  std::chrono::milliseconds write_timeout = std::chrono::seconds(60);
  // How long Stop() lets requests in flight finish.
  std::chrono::milliseconds shutdown_grace = std::chrono::seconds(10);
  // Connections past this many are accepted and closed at once.
  size_t max_connections = 10000;
  // Called on an I/O or writer thread after each response is sent; must be
  // thread-safe.
  std::function<void(const RequestRecord&)> on_request;
};

class HttpServer {
 public:
  // Binds `options.host`:`options.port` and starts serving `api` (which
  // must outlive the server). Errors: the address does not resolve or
  // cannot be bound (in use, no permission), as 500 `exception` with the
  // system's words; nothing is left running.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const RestApi* api, HttpServerOptions options);

  // Stop(), then waits for it.
  ~HttpServer();

  // The port bound (the one picked when options.port was 0).
  uint16_t port() const;

  // Stops accepting connections, closes idle ones, lets requests in flight
  // finish and send their response (closing their connection after it),
  // for at most options.shutdown_grace, then stops every thread. Blocks
  // until all threads are joined. Thread-safe; later calls do nothing.
  void Stop();

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace clout

#endif  // CLOUT_SERVER_HTTP_SERVER_H_
