#include "server/http_server.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/error.h"
#include "engine/response.h"

namespace clout {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

// What Stop() needs of a connection, plain or TLS.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Closes the connection if it is between requests. Any thread.
  virtual void CloseIfIdle() = 0;
};

}  // namespace

class HttpServer::Impl {
 public:
  Impl(const RestApi* api, HttpServerOptions options)
      : api_(api),
        options_(std::move(options)),
        writers_(static_cast<size_t>(std::max(1, options_.writer_threads))) {
    // One io_context per I/O thread, each run by its thread alone: a
    // connection lives on one thread, so its steps need no strand and wake
    // no other core (sharing one io_context between threads cost a third
    // of the throughput in cross-core wakeups).
    const int threads = std::max(1, options_.threads);
    for (int i = 0; i < threads; ++i) {
      contexts_.push_back(std::make_unique<net::io_context>(1));
      guards_.emplace_back(net::make_work_guard(*contexts_.back()));
    }
  }

  absl::Status Bind() {
    if (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty()) {
      if (absl::Status s = LoadTls(); !s.ok()) return s;
    }
    if (options_.host.empty()) {
      return EsError(500, "exception", "the host to listen on is empty");
    }
    beast::error_code ec;
    tcp::resolver resolver(*contexts_[0]);
    auto results = resolver.resolve(options_.host, std::to_string(options_.port),
                                    tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      return EsError(500, "exception",
                     absl::StrCat("cannot resolve host [", options_.host,
                                  "]: ", ec.message()));
    }
    // Every address the name has (localhost: 127.0.0.1 and ::1), on one
    // port: the first bound picks it when the port is 0.
    uint16_t port = options_.port;
    for (const auto& entry : results) {
      tcp::endpoint endpoint = entry.endpoint();
      if (options_.require_loopback && !endpoint.address().is_loopback()) {
        return EsError(500, "exception",
                       absl::StrCat("refusing to listen on [",
                                    endpoint.address().to_string(),
                                    "] (from host [", options_.host,
                                    "]): not a loopback address"));
      }
      endpoint.port(port);
      auto acceptor = std::make_unique<tcp::acceptor>(*contexts_[0]);
      acceptor->open(endpoint.protocol(), ec);
      if (!ec) acceptor->set_option(net::socket_base::reuse_address(true), ec);
      if (!ec && endpoint.protocol() == tcp::v6()) {
        acceptor->set_option(net::ip::v6_only(true), ec);
      }
      if (!ec) acceptor->bind(endpoint, ec);
      if (!ec) acceptor->listen(net::socket_base::max_listen_connections, ec);
      if (ec) {
        // An address family the machine lacks (no IPv6) is not fatal when
        // another address was bound.
        if (!acceptors_.empty() &&
            (ec == net::error::address_family_not_supported ||
             ec == boost::system::errc::address_not_available)) {
          continue;
        }
        return EsError(500, "exception",
                       absl::StrCat("cannot listen on ",
                                    endpoint.address().to_string(), ":", port,
                                    ": ", ec.message()));
      }
      const tcp::endpoint bound = acceptor->local_endpoint();
      if (options_.require_loopback && !bound.address().is_loopback()) {
        return EsError(500, "exception", "bound a non-loopback address");
      }
      port = bound.port();
      acceptors_.push_back(std::move(acceptor));
    }
    port_ = port;
    return absl::OkStatus();
  }

  absl::Status LoadTls() {
    if (options_.tls_cert_file.empty() || options_.tls_key_file.empty()) {
      return EsError(500, "exception",
                     "TLS needs both a certificate and a private key");
    }
    tls_.emplace(net::ssl::context::tls_server);
    beast::error_code ec;
    tls_->set_options(net::ssl::context::default_workarounds |
                          net::ssl::context::no_sslv2 |
                          net::ssl::context::no_sslv3 |
                          net::ssl::context::no_tlsv1 |
                          net::ssl::context::no_tlsv1_1 |
                          net::ssl::context::single_dh_use,
                      ec);
    if (!ec) tls_->use_certificate_chain_file(options_.tls_cert_file, ec);
    if (ec) {
      return EsError(500, "exception",
                     absl::StrCat("cannot load the TLS certificate [",
                                  options_.tls_cert_file, "]: ", ec.message()));
    }
    tls_->use_private_key_file(options_.tls_key_file, net::ssl::context::pem,
                               ec);
    if (ec) {
      return EsError(500, "exception",
                     absl::StrCat("cannot load the TLS private key [",
                                  options_.tls_key_file, "]: ", ec.message()));
    }
    return absl::OkStatus();
  }

  void Run() {
    for (auto& acceptor : acceptors_) Accept(acceptor.get());
    for (auto& context : contexts_) {
      threads_.emplace_back([ioc = context.get()] { ioc->run(); });
    }
  }

  void Stop() {
    std::call_once(stop_once_, [this] {
      stopping_ = true;
      for (auto& acceptor : acceptors_) {
        net::post(acceptor->get_executor(), [a = acceptor.get()] {
          beast::error_code ignored;
          a->close(ignored);
        });
      }
      CloseIdleSessions();
      // Requests in flight finish and close their connection; after the
      // grace period whatever is left is dropped.
      const auto deadline =
          std::chrono::steady_clock::now() + options_.shutdown_grace;
      while (SessionCount() > 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      guards_.clear();
      for (auto& context : contexts_) context->stop();
      for (std::thread& t : threads_) t.join();
      writers_.stop();  // queued writes whose answer can no longer go out
      writers_.join();
    });
  }

  uint16_t port() const { return port_; }
  const HttpServerOptions& options() const { return options_; }
  const RestApi* api() const { return api_; }
  net::thread_pool& writers() { return writers_; }
  bool stopping() const { return stopping_.load(); }

  // Sessions register themselves so that Stop() can close the idle ones.
  std::list<std::weak_ptr<SessionBase>>::iterator Register(
      std::weak_ptr<SessionBase> session) {
    std::lock_guard<std::mutex> lock(sessions_mu_);
    sessions_.push_front(std::move(session));
    return sessions_.begin();
  }
  void Unregister(std::list<std::weak_ptr<SessionBase>>::iterator it) {
    std::lock_guard<std::mutex> lock(sessions_mu_);
    sessions_.erase(it);
  }
  size_t SessionCount() {
    std::lock_guard<std::mutex> lock(sessions_mu_);
    return sessions_.size();
  }

 private:
  void Accept(tcp::acceptor* acceptor);
  void CloseIdleSessions();

  // First, so that they outlive the io_context, whose destruction may
  // destroy the last sessions (which unregister themselves).
  std::mutex sessions_mu_;
  std::list<std::weak_ptr<SessionBase>> sessions_;
  const RestApi* api_;
  HttpServerOptions options_;
  // Before the contexts: the TLS sessions they hold use it.
  std::optional<net::ssl::context> tls_;
  std::vector<std::unique_ptr<net::io_context>> contexts_;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards_;
  size_t next_context_ = 0;  // round robin, on the acceptors' thread
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors_;
  net::thread_pool writers_;
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::once_flag stop_once_;
};

namespace {

// One connection: reads a request, answers it, and again while the
// connection is kept alive. Every step runs on the connection's strand.
template <bool kTls>
class Session : public SessionBase,
                public std::enable_shared_from_this<Session<kTls>> {
 public:
  using Stream = std::conditional_t<kTls, beast::ssl_stream<beast::tcp_stream>,
                                    beast::tcp_stream>;

  Session(tcp::socket socket, HttpServer::Impl* server,
          net::ssl::context* tls)
      : stream_(MakeStream(std::move(socket), tls)), server_(server) {}

  ~Session() {
    if (registered_) server_->Unregister(self_in_registry_);
  }

  void Start() {
    if constexpr (!kTls) {
      beast::error_code ec;
      const tcp::endpoint peer = Lowest().socket().remote_endpoint(ec);
      confidential_ = !ec && peer.address().is_loopback();
    }
    self_in_registry_ = server_->Register(this->weak_from_this());
    registered_ = true;
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (kTls) {
        self->Lowest().expires_after(self->options().header_timeout);
        self->stream_.async_handshake(
            net::ssl::stream_base::server,
            [self](beast::error_code ec) {
              if (ec) return self->Lowest().close();
              self->ReadNext();
            });
      } else {
        self->ReadNext();
      }
    });
  }

  void CloseIfIdle() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] {
      const bool whole_request_buffered =
          self->state_ == State::kHeader &&
          absl::StrContains(
              absl::string_view(
                  static_cast<const char*>(self->buffer_.data().data()),
                  self->buffer_.size()),
              "\r\n\r\n");
      if (self->state_ == State::kIdle ||
          (self->state_ == State::kHeader && !whole_request_buffered)) {
        beast::error_code ignored;
        self->Lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
        self->Lowest().close();
      }
    });
  }

 private:
  enum class State { kIdle, kHeader, kBody, kHandling, kWriting };

  const HttpServerOptions& options() const { return server_->options(); }

  void ReadNext() {
    if (server_->stopping()) return Close();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(
        options().max_initial_line_length + options().max_header_size));
    parser_->body_limit(options().max_content_length);
    if (buffer_.size() > 0) return ReadHeader();
    // Wait for the first byte of the next request under the idle timeout;
    // the header then has header_timeout to arrive whole.
    state_ = State::kIdle;
    Lowest().expires_after(options().idle_timeout);
    stream_.async_read_some(
        buffer_.prepare(4096),
        [self = this->shared_from_this()](beast::error_code ec, size_t n) {
          if (ec) return self->Close();
          self->buffer_.commit(n);
          self->ReadHeader();
        });
  }

  void ReadHeader() {
    // Empty lines before a request are ignored (RFC 7230 section 3.5).
    while (buffer_.size() > 0) {
      const char c = *static_cast<const char*>(buffer_.data().data());
      if (c != '\r' && c != '\n') break;
      buffer_.consume(1);
    }
    if (buffer_.size() == 0) return ReadNext();
    state_ = State::kHeader;
    started_ = std::chrono::steady_clock::now();
    // The common case, a whole header already read: parse it here rather
    // than through another asynchronous operation.
    beast::error_code ec;
    const size_t used = parser_->put(buffer_.data(), ec);
    if (ec && ec != http::error::need_more) return OnReadError(ec);
    buffer_.consume(used);
    if (parser_->is_header_done()) return OnHeader({});
    Lowest().expires_after(options().header_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) {
          self->OnHeader(ec);
        });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    const auto& header = parser_->get();
    version_ = header.version();
    method_ = std::string(header.method_string());
    path_ = std::string(header.target().substr(0, header.target().find('?')));
    if (header.method_string().size() + header.target().size() + 10 >
        options().max_initial_line_length) {
      return Refuse(400, "illegal_argument_exception",
                    absl::StrCat("An HTTP line is larger than ",
                                 options().max_initial_line_length, " bytes."));
    }
    size_t header_bytes = 0;
    for (const auto& field : header) {
      header_bytes += field.name_string().size() + field.value().size() + 4;
    }
    if (header_bytes > options().max_header_size) {
      return Refuse(400, "illegal_argument_exception",
                    absl::StrCat("HTTP header is larger than ",
                                 options().max_header_size, " bytes."));
    }
    if (parser_->is_done()) return Dispatch();
    auto expect = header.find(http::field::expect);
    if (expect != header.end() && header.version() >= 11) {
      if (!absl::EqualsIgnoreCase(absl::string_view(expect->value().data(),
                                                    expect->value().size()),
                                  "100-continue")) {
        return Refuse(417, "illegal_argument_exception",
                      "only the expectation [100-continue] is supported");
      }
      // The client waits for this before it sends the body.
      auto cont = std::make_shared<http::response<http::empty_body>>(
          http::status::continue_, header.version());
      Lowest().expires_after(options().write_timeout);
      http::async_write(stream_, *cont,
                        [self = this->shared_from_this(), cont](beast::error_code ec,
                                                          size_t) {
                          if (ec) return self->Close();
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    state_ = State::kBody;
    Lowest().expires_after(options().body_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->OnReadError(ec);
                       self->Dispatch();
                     });
  }

  void OnReadError(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return Refuse(413, "content_too_long_exception",
                    absl::StrCat("request body is larger than "
                                 "http.max_content_length [",
                                 options().max_content_length, "] bytes"));
    }
    if (ec == http::error::header_limit) {
      return Refuse(400, "illegal_argument_exception",
                    absl::StrCat("HTTP header is larger than ",
                                 options().max_header_size, " bytes."));
    }
    if (ec == http::error::end_of_stream || ec == net::error::eof ||
        ec == beast::error::timeout || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset || ec == http::error::partial_message) {
      return Close();
    }
    // Anything else is malformed HTTP.
    Refuse(400, "illegal_argument_exception",
           absl::StrCat("invalid HTTP request: ", ec.message()));
  }

  // Answers an error found by the transport, then closes the connection:
  // what follows in the stream cannot be trusted.
  void Refuse(int status, absl::string_view type, absl::string_view reason) {
    RestResponse response;
    response.status = status;
    response.body = ErrorJson(EsError(status, type, reason));
    response.headers.push_back({"X-elastic-product", "Elasticsearch"});
    response.headers.push_back({"Content-Type", "application/json"});
    if (parser_.has_value() && parser_->is_header_done()) {
      auto id = parser_->get().find("X-Opaque-Id");
      if (id != parser_->get().end()) {
        response.headers.push_back({"X-Opaque-Id", std::string(id->value())});
      }
    }
    response.close = true;
    head_ = false;
    keep_alive_ = false;
    if (version_ != 10) version_ = 11;
    Write(std::move(response));
  }

  void Dispatch() {
    state_ = State::kHandling;
    http::request<http::string_body> message = parser_->release();
    parser_.reset();
    auto request = std::make_shared<RestRequest>();
    request->method = std::string(message.method_string());
    request->target = std::string(message.target());
    for (const auto& field : message) {
      request->headers.push_back({std::string(field.name_string()),
                                  std::string(field.value())});
    }
    request->body = std::move(message.body());
    request->confidential = confidential_;
    method_ = request->method;
    path_ = request->target.substr(0, request->target.find('?'));
    head_ = message.method() == http::verb::head;
    keep_alive_ = message.keep_alive();
    version_ = message.version();
    const RestApi* api = server_->api();
    if (api->MayBlock(*request)) {
      net::post(server_->writers(), [self = this->shared_from_this(), api, request] {
        RestResponse response = api->Handle(*request);
        net::post(self->stream_.get_executor(),
                  [self, response = std::move(response)]() mutable {
                    self->Write(std::move(response));
                  });
      });
      return;
    }
    Write(api->Handle(*request));
  }

  void Write(RestResponse response) {
    state_ = State::kWriting;
    record_.method = method_;
    record_.path = path_;
    record_.status = response.status;
    record_.endpoint = response.endpoint;
    record_.bulk_items = response.bulk_items;
    record_.user = response.user;
    record_.opaque_id.clear();
    for (const HttpHeader& h : response.headers) {
      if (absl::EqualsIgnoreCase(h.name, "X-Opaque-Id")) {
        record_.opaque_id = h.value;
      }
    }
    response_.emplace(static_cast<http::status>(response.status), version_);
    for (HttpHeader& h : response.headers) {
      response_->insert(h.name, h.value);
    }
    const bool keep_alive =
        keep_alive_ && !response.close && !server_->stopping();
    response_->keep_alive(keep_alive);
    close_after_write_ = !keep_alive;
    record_.bytes_out = head_ ? 0 : response.body.size();
    if (head_) {
      response_->content_length(response.body.size());
    } else {
      response_->body() = std::move(response.body);
      response_->prepare_payload();
    }
    Lowest().expires_after(options().write_timeout);
    // A HEAD response's header announces a length with no body after it.
    serializer_.emplace(*response_);
    if (head_) serializer_->split(true);
    auto on_written = [self = this->shared_from_this()](beast::error_code ec,
                                                  size_t) {
      self->OnWritten(ec);
    };
    if (head_) {
      http::async_write_header(stream_, *serializer_, std::move(on_written));
    } else {
      http::async_write(stream_, *serializer_, std::move(on_written));
    }
  }

  void OnWritten(beast::error_code ec) {
    record_.micros = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::steady_clock::now() - started_)
                         .count();
    if (options().on_request) options().on_request(record_);
    serializer_.reset();
    response_.reset();
    method_.clear();
    path_.clear();
    if (ec) return Close();
    if (close_after_write_) return LingeringClose();
    ReadNext();
  }

  void Close() {
    beast::error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    Lowest().close();
  }

  // After a response that ends the connection while the client may still be
  // sending (a 413, a malformed request): stop sending, then read and drop
  // what arrives for a while, so that the kernel does not answer the
  // client's bytes with a reset that destroys the response before it is
  // read.
  void LingeringClose() {
    beast::error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    linger_budget_ = 4 << 20;
    Lowest().expires_after(std::chrono::seconds(2));
    Drain();
  }
  void Drain() {
    buffer_.clear();
    stream_.async_read_some(
        buffer_.prepare(64 * 1024),
        [self = this->shared_from_this()](beast::error_code ec, size_t n) {
          if (ec || n >= self->linger_budget_) return self->Lowest().close();
          self->linger_budget_ -= n;
          self->Drain();
        });
  }

  static Stream MakeStream(tcp::socket socket, net::ssl::context* tls) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *tls);
    } else {
      (void)tls;
      return Stream(std::move(socket));
    }
  }
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  Stream stream_;
  HttpServer::Impl* server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  std::optional<http::response_serializer<http::string_body>> serializer_;
  State state_ = State::kIdle;
  std::chrono::steady_clock::time_point started_;
  std::string method_;
  std::string path_;
  bool head_ = false;
  bool keep_alive_ = true;
  unsigned version_ = 11;
  bool close_after_write_ = false;
  size_t linger_budget_ = 0;
  bool confidential_ = true;  // TLS, or a loopback peer
  RequestRecord record_;
  bool registered_ = false;
  std::list<std::weak_ptr<SessionBase>>::iterator self_in_registry_;
};

}  // namespace

void HttpServer::Impl::Accept(tcp::acceptor* acceptor) {
  net::io_context& context = *contexts_[next_context_++ % contexts_.size()];
  acceptor->async_accept(
      context,
      [this, acceptor](beast::error_code ec, tcp::socket socket) {
        if (stopping_) return;
        if (ec) {
          // Out of descriptors, say: wait a little rather than spin. The
          // timer runs on the acceptor's strand, as Stop's close does.
          auto timer =
              std::make_shared<net::steady_timer>(acceptor->get_executor());
          timer->expires_after(std::chrono::milliseconds(50));
          timer->async_wait([this, acceptor, timer](beast::error_code) {
            if (!stopping_) Accept(acceptor);
          });
          return;
        }
        if (SessionCount() >= options_.max_connections) {
          beast::error_code ignored;
          socket.close(ignored);
        } else {
          beast::error_code ignored;
          socket.set_option(tcp::no_delay(true), ignored);
          if (tls_.has_value()) {
            std::make_shared<Session<true>>(std::move(socket), this, &*tls_)
                ->Start();
          } else {
            std::make_shared<Session<false>>(std::move(socket), this, nullptr)
                ->Start();
          }
        }
        Accept(acceptor);
      });
}

void HttpServer::Impl::CloseIdleSessions() {
  std::vector<std::shared_ptr<SessionBase>> live;
  {
    std::lock_guard<std::mutex> lock(sessions_mu_);
    for (const auto& weak : sessions_) {
      if (auto session = weak.lock()) live.push_back(std::move(session));
    }
  }
  for (const auto& session : live) session->CloseIfIdle();
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const RestApi* api, HttpServerOptions options) {
  if (options.threads <= 0) {
    options.threads =
        std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  }
  auto impl = std::make_unique<Impl>(api, std::move(options));
  if (absl::Status s = impl->Bind(); !s.ok()) return s;
  impl->Run();
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

uint16_t HttpServer::port() const { return impl_->port(); }

void HttpServer::Stop() {
  if (impl_) impl_->Stop();
}

}  // namespace clout
