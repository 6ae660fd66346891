// HttpServer in process, with concurrent keep-alive clients reading while
// others write through _bulk; run under ThreadSanitizer by .ci/run. The
// protocol details are tested end to end in serve_e2e_test.py.
#include "server/http_server.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "engine/loader.h"
#include "engine/store.h"
#include "gtest/gtest.h"
#include "server/rest_api.h"

namespace clout {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

// One keep-alive connection.
class Client {
 public:
  explicit Client(uint16_t port) : stream_(ioc_) {
    net::ip::tcp::resolver resolver(ioc_);
    stream_.connect(resolver.resolve("127.0.0.1", std::to_string(port)));
  }
  http::response<http::string_body> Send(http::verb verb, std::string target,
                                         std::string body = "",
                                         std::string type = "") {
    http::request<http::string_body> request(verb, target, 11);
    request.set(http::field::host, "x");
    if (!type.empty()) request.set(http::field::content_type, type);
    request.body() = std::move(body);
    request.prepare_payload();
    http::write(stream_, request);
    http::response<http::string_body> response;
    http::read(stream_, buffer_, response);
    return response;
  }

 private:
  net::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

std::string Doc(const std::string& job, int i) {
  return absl::StrCat(
      R"({"job_id":")", job,
      R"(","result_type":"influencer","influencer_field_name":"f","influencer_field_value":"v)",
      i, R"(","influencer_score":)", i % 100,
      R"(.5,"initial_influencer_score":1.0,"probability":0.1,"bucket_span":60,"is_interim":false,"timestamp":)",
      60000 * (i % 50), "}");
}

TEST(HttpServerTest, ConcurrentQueriesAndBulkWrites) {
  InfluencerStore store;
  ASSERT_TRUE(LoadFile(store, "data/it_ops_new_kpi.ndjson").ok());
  RestApi api(&store, {});
  std::atomic<int> recorded{0};
  HttpServerOptions options;
  options.port = 0;
  options.threads = 2;
  options.on_request = [&](const RequestRecord&) { ++recorded; };
  absl::StatusOr<std::unique_ptr<HttpServer>> server =
      HttpServer::Start(&api, options);
  ASSERT_TRUE(server.ok()) << server.status();
  const uint16_t port = (*server)->port();

  constexpr int kReaders = 3, kQueries = 150, kWriters = 2, kBatches = 15,
                kDocs = 20;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kReaders; ++t) {
    threads.emplace_back([&, t] {
      Client client(port);
      for (int i = 0; i < kQueries; ++i) {
        auto r = client.Send(
            http::verb::get,
            absl::StrCat("/_ml/anomaly_detectors/it_ops_new_kpi/results/"
                         "influencers?size=",
                         1 + (i + t) % 5, "&filter_path=count"));
        if (r.result_int() != 200 || r.body() != R"({"count":28})") ++failures;
      }
    });
  }
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      Client client(port);
      for (int b = 0; b < kBatches; ++b) {
        std::string body;
        for (int d = 0; d < kDocs; ++d) {
          absl::StrAppend(&body, R"({"index":{"_index":".ml-anomalies-shared"}})",
                          "\n", Doc(absl::StrCat("w", w), b * kDocs + d), "\n");
        }
        auto r = client.Send(http::verb::post, "/_bulk", body,
                             "application/x-ndjson");
        if (r.result_int() != 200 ||
            !absl::StrContains(r.body(), R"("errors":false)")) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);

  Client client(port);
  for (int w = 0; w < kWriters; ++w) {
    auto r = client.Send(
        http::verb::get,
        absl::StrCat("/_ml/anomaly_detectors/w", w,
                     "/results/influencers?filter_path=count"));
    // 300 documents over 50 timestamps x distinct values: all distinct.
    EXPECT_EQ(r.body(), absl::StrCat(R"({"count":)", kBatches * kDocs, "}"));
  }
  // Stop with a connection still open and idle: it is closed, not waited
  // for.
  (*server)->Stop();
  EXPECT_EQ(recorded.load(), kReaders * kQueries + kWriters * kBatches + kWriters);
}

TEST(HttpServerTest, PortInUseIsAnError) {
  InfluencerStore store;
  RestApi api(&store, {});
  HttpServerOptions options;
  options.port = 0;
  auto first = HttpServer::Start(&api, options);
  ASSERT_TRUE(first.ok());
  options.port = (*first)->port();
  auto second = HttpServer::Start(&api, options);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::StrContains(second.status().message(), "cannot listen"));
}

}  // namespace
}  // namespace clout
