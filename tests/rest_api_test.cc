// The REST layer without a transport: routing, parameters, media types,
// response shaping (filter_path, pretty), gzip. The end-to-end test
// (serve_e2e_test.py) covers the same through a real socket and client.
#include "server/rest_api.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "engine/loader.h"
#include "engine/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/gzip.h"
#include "server/json_filter.h"

namespace clout {
namespace {

using ::testing::HasSubstr;

std::string Reshape(absl::string_view json, absl::string_view filter,
                    bool pretty = false) {
  absl::StatusOr<std::string> out =
      ReshapeJson(json, FilterPath::Parse(filter), pretty);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : "";
}

TEST(FilterPathTest, IncludesExcludesAndWildcards) {
  const std::string doc =
      R"({"count":2,"influencers":[{"a":1.11612E-4,"b":"x","c":{"d":true}},{"a":80.0,"b":"y","c":{"d":false}}]})";
  EXPECT_EQ(Reshape(doc, ""), doc);
  EXPECT_EQ(Reshape(doc, "count"), R"({"count":2})");
  EXPECT_EQ(Reshape(doc, "influencers.a"),
            R"({"influencers":[{"a":1.11612E-4},{"a":80.0}]})");
  EXPECT_EQ(Reshape(doc, "influencers.c.d,count"),
            R"({"count":2,"influencers":[{"c":{"d":true}},{"c":{"d":false}}]})");
  EXPECT_EQ(Reshape(doc, "**.d"),
            R"({"influencers":[{"c":{"d":true}},{"c":{"d":false}}]})");
  EXPECT_EQ(Reshape(doc, "influencers.*"), R"({"influencers":[{"a":1.11612E-4,"b":"x","c":{"d":true}},{"a":80.0,"b":"y","c":{"d":false}}]})");
  EXPECT_EQ(Reshape(doc, "co*"), R"({"count":2})");
  EXPECT_EQ(Reshape(doc, "-influencers"), R"({"count":2})");
  EXPECT_EQ(Reshape(doc, "-influencers.c,-influencers.b"),
            R"({"count":2,"influencers":[{"a":1.11612E-4},{"a":80.0}]})");
  // An exclusion wins over an inclusion.
  EXPECT_EQ(Reshape(doc, "influencers.a,-**.a"), R"({})");
  EXPECT_EQ(Reshape(doc, "nothing"), R"({})");
  // A path through a scalar selects nothing.
  EXPECT_EQ(Reshape(doc, "count.x"), R"({})");
  // An empty container is kept when included whole.
  EXPECT_EQ(Reshape(R"({"a":[],"b":{}})", "a,b"), R"({"a":[],"b":{}})");
}

TEST(FilterPathTest, PrettyIsElasticsearchsLayout) {
  EXPECT_EQ(Reshape(R"({"a":[1,{"b":"c"}],"e":[],"f":{}})", "", true),
            "{\n  \"a\" : [\n    1,\n    {\n      \"b\" : \"c\"\n    }\n  ],\n"
            "  \"e\" : [ ],\n  \"f\" : { }\n}\n");
  // Escaped keys and strings survive as written.
  EXPECT_EQ(Reshape(R"({"a\"b":"x\\y\u0001"})", ""),
            R"({"a\"b":"x\\y\u0001"})");
  EXPECT_EQ(Reshape(R"({"a\"b":"x\\y\u0001"})", "a\"b"),
            R"({"a\"b":"x\\y\u0001"})");
}

TEST(FilterPathTest, InvalidJsonIsAnError) {
  EXPECT_FALSE(ReshapeJson("{\"a\":", FilterPath::Parse("a"), false).ok());
}

TEST(GzipTest, RoundTripMembersTruncationAndBombs) {
  const std::string text(100000, 'x');
  const std::string packed = GzipCompress(text);
  EXPECT_LT(packed.size(), text.size() / 10);
  EXPECT_EQ(*GzipDecompress(packed, 1 << 20), text);
  // Two members, as `cat a.gz b.gz` makes.
  EXPECT_EQ(*GzipDecompress(packed + GzipCompress("yz"), 1 << 20), text + "yz");
  absl::StatusOr<std::string> cut =
      GzipDecompress(packed.substr(0, packed.size() / 2), 1 << 20);
  ASSERT_FALSE(cut.ok());
  EXPECT_THAT(cut.status().message(), HasSubstr("compressed offset"));
  absl::StatusOr<std::string> bomb = GzipDecompress(packed, 1000);
  ASSERT_FALSE(bomb.ok());
  EXPECT_EQ(bomb.status().code(), absl::StatusCode::kOutOfRange);  // 413
  EXPECT_FALSE(GzipDecompress("not gzip", 1 << 20).ok());
  // The loader's decoder, in the server's words.
  EXPECT_EQ(cut.status().message(),
            absl::StrCat("request body is not valid gzip: it ends early at "
                         "compressed offset ", packed.size() / 2));
  absl::StatusOr<std::string> trailing = GzipDecompress(packed + "junk", 1 << 20);
  ASSERT_FALSE(trailing.ok());
  // zlib has read the junk's first two bytes (not gzip's magic) when it
  // gives up.
  EXPECT_EQ(std::string(trailing.status().message()),
            absl::StrCat("request body is not valid gzip: data that is not a "
                         "gzip member after 1 member at compressed offset ",
                         packed.size() + 2));
  EXPECT_EQ(*GzipDecompress(GzipCompress(""), 10), "");
  EXPECT_TRUE(GzipDecompress(packed, text.size()).ok());  // exactly the limit
  EXPECT_FALSE(GzipDecompress(packed, text.size() - 1).ok());
}

TEST(DecodePathSegmentTest, AsElasticsearch) {
  EXPECT_EQ(*DecodePathSegment("a%2Fb%20c+d"), "a/b c+d");
  EXPECT_EQ(*DecodePathSegment("%FF"), "\xEF\xBF\xBD");
  EXPECT_THAT(DecodePathSegment("ab%").status().message(),
              HasSubstr("partial escape sequence at end of string: ab%"));
  EXPECT_THAT(DecodePathSegment("a%zzb").status().message(),
              HasSubstr("invalid escape sequence `%zz' at index 1 of: a%zzb"));
}

class RestApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(LoadFile(store_, "data/it_ops_new_kpi.ndjson").ok());
  }

  RestResponse Call(std::string method, std::string target,
                    std::string body = "",
                    std::vector<HttpHeader> headers = {}) {
    RestRequest request;
    request.method = std::move(method);
    request.target = std::move(target);
    request.body = std::move(body);
    request.headers = std::move(headers);
    return api_.Handle(request);
  }
  static std::string HeaderOf(const RestResponse& r, absl::string_view name) {
    for (const HttpHeader& h : r.headers) {
      if (absl::EqualsIgnoreCase(h.name, name)) return h.value;
    }
    return "";
  }

  InfluencerStore store_;
  RestApi api_{&store_, RestApiOptions{}};
  const std::string gi_ = "/_ml/anomaly_detectors/it_ops_new_kpi/results/influencers";
  const std::vector<HttpHeader> json_ = {{"Content-Type", "application/json"}};
};

TEST_F(RestApiTest, RoutesAndMethods) {
  RestResponse r = Call("GET", "/nope/x?y=1");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, R"({"error":"no handler found for uri [/nope/x?y=1] and method [GET]"})");
  EXPECT_EQ(HeaderOf(r, "X-elastic-product"), "Elasticsearch");
  r = Call("PUT", gi_);
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(HeaderOf(r, "Allow"), "GET,POST");
  EXPECT_EQ(r.body, absl::StrCat(R"({"error":"Incorrect HTTP method for uri [)", gi_,
                                 R"(] and method [PUT], allowed: [GET, POST]","status":405})"));
  r = Call("OPTIONS", "/_bulk");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(HeaderOf(r, "Allow"), "POST,PUT");
  r = Call("GET", "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(absl::StartsWith(r.body, "{\n  \"name\" : \"clout\""));
  EXPECT_EQ(Call("GET", "/?pretty=false").body.find('\n'), std::string::npos);
  EXPECT_EQ(Call("GET", "/_security/_authenticate").status, 500);
  EXPECT_EQ(Call("GET", "/_clout/metrics").status, 400);  // no metrics given
  EXPECT_TRUE(RestApi::IsWrite("POST", "/_bulk?refresh"));
  EXPECT_TRUE(RestApi::IsWrite("PUT", "/.ml-anomalies-shared/_bulk"));
  EXPECT_FALSE(RestApi::IsWrite("GET", "/_bulk"));
  EXPECT_FALSE(RestApi::IsWrite("POST", gi_));
}

TEST_F(RestApiTest, BodyAndParameterModes) {
  RestResponse params = Call("GET", gi_ + "?size=2&sort=timestamp");
  RestResponse body = Call("POST", gi_, R"({"size":2})", json_);
  EXPECT_EQ(body.status, 400);  // size is not a body key
  body = Call("POST", gi_, R"({"page":{"size":2},"sort":"timestamp"})", json_);
  EXPECT_EQ(params.status, 200);
  EXPECT_EQ(params.body, body.body);
  // The body's start counts; the query string's is read and ignored.
  RestResponse ignored =
      Call("POST", gi_ + "?start=2030-01-01",
           R"({"page":{"size":2},"sort":"timestamp"})", json_);
  EXPECT_EQ(ignored.body, body.body);
  RestResponse mixed = Call("POST", gi_ + "?size=2", "{}", json_);
  EXPECT_EQ(mixed.status, 400);
  EXPECT_THAT(mixed.body, HasSubstr("contains unrecognized parameter: [size]\"}"));
  RestResponse source = Call(
      "GET", gi_ + "?source=%7B%22page%22%3A%7B%22size%22%3A2%7D%2C%22sort%22%3A%22timestamp%22%7D"
                   "&source_content_type=application%2Fjson");
  EXPECT_EQ(source.body, body.body);
  // The _xpack path names itself in errors, and warns.
  RestResponse xpack = Call(
      "GET", "/_xpack/ml/anomaly_detectors/it_ops_new_kpi/results/influencers?sise=1");
  EXPECT_THAT(xpack.body, HasSubstr("request [/_xpack/ml/anomaly_detectors/"));
  EXPECT_THAT(HeaderOf(xpack, "Warning"), HasSubstr("is deprecated!"));
}

TEST_F(RestApiTest, MediaTypes) {
  EXPECT_EQ(Call("POST", gi_, "{}", {{"Content-Type", "text/plain"}}).status, 406);
  EXPECT_EQ(Call("POST", gi_, "{}").body,
            R"({"error":"Content-Type header is missing","status":406})");
  EXPECT_EQ(Call("POST", gi_, "{}", {{"Content-Type", "application/x-ndjson"}}).status, 406);
  EXPECT_EQ(Call("POST", gi_, "{}",
                 {{"Content-Type", "application/json;charset=utf-8"}}).status, 200);
  const std::string vnd7 = "application/vnd.elasticsearch+json;compatible-with=7";
  const std::string vnd8 = "application/vnd.elasticsearch+json; compatible-with=8";
  RestResponse ok = Call("POST", gi_, "{}", {{"Content-Type", vnd8}, {"Accept", vnd8}});
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(HeaderOf(ok, "Content-Type"),
            "application/vnd.elasticsearch+json;compatible-with=8");
  RestResponse mismatch = Call("POST", gi_, "{}", {{"Content-Type", vnd8}, {"Accept", vnd7}});
  EXPECT_EQ(mismatch.status, 400);
  EXPECT_THAT(mismatch.body, HasSubstr("media_type_header_exception"));
  EXPECT_EQ(Call("POST", gi_, "{}", {{"Content-Type", vnd8}}).status, 400);
  RestResponse nine = Call("GET", gi_, "", {{"Accept", "application/vnd.elasticsearch+json;compatible-with=9"}});
  EXPECT_EQ(nine.status, 400);
  EXPECT_THAT(nine.body, HasSubstr("but found 9."));
  // A list in Accept is ignored.
  EXPECT_EQ(Call("GET", gi_, "", {{"Accept", vnd8 + ", text/plain"}}).status, 200);
}

TEST_F(RestApiTest, GzipPrettyOpaqueIdAndErrors) {
  RestResponse plain = Call("GET", gi_ + "?size=3");
  RestResponse zipped = Call("POST", gi_, GzipCompress(R"({"page":{"size":3}})"),
                             {{"Content-Type", "application/json"},
                              {"Content-Encoding", "gzip"},
                              {"Accept-Encoding", "gzip, deflate"},
                              {"X-Opaque-Id", "id-1"}});
  EXPECT_EQ(HeaderOf(zipped, "Content-Encoding"), "gzip");
  EXPECT_EQ(HeaderOf(zipped, "X-Opaque-Id"), "id-1");
  EXPECT_EQ(*GzipDecompress(zipped.body, 1 << 20), plain.body);
  RestResponse pretty = Call("GET", gi_ + "?size=1&pretty");
  EXPECT_TRUE(absl::EndsWith(pretty.body, "}\n"));
  EXPECT_THAT(pretty.body, HasSubstr("\"count\" : 28"));
  RestResponse bad_pretty = Call("GET", "/?pretty=yes");
  EXPECT_EQ(bad_pretty.status, 400);
  EXPECT_THAT(bad_pretty.body, HasSubstr("Failed to parse value [yes]"));
  RestResponse missing = Call("GET", "/_ml/anomaly_detectors/nope/results/influencers?pretty&filter_path=count");
  EXPECT_EQ(missing.status, 404);
  EXPECT_THAT(missing.body, HasSubstr("\"status\" : 404"));  // errors are not filtered
  EXPECT_EQ(Call("GET", "/?format=yaml").status, 406);
  EXPECT_EQ(Call("GET", "/?format=json").status, 200);
  EXPECT_EQ(Call("GET", "/?bogus=1").status, 400);
}

TEST_F(RestApiTest, Bulk) {
  const std::vector<HttpHeader> ndjson = {{"Content-Type", "application/x-ndjson"}};
  const std::string doc =
      R"({"job_id":"j2","result_type":"influencer","influencer_field_name":"f","influencer_field_value":"v","influencer_score":5.0,"initial_influencer_score":5.0,"probability":0.1,"bucket_span":60,"is_interim":false,"timestamp":60000})";
  RestResponse r = Call("POST", "/.ml-anomalies-shared/_bulk?refresh=wait_for",
                        "{\"index\":{}}\n" + doc + "\n", ndjson);
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr(R"("result":"created")"));
  EXPECT_EQ(r.bulk_items, 1u);
  EXPECT_THAT(Call("GET", "/_ml/anomaly_detectors/j2/results/influencers").body,
              HasSubstr("\"count\":1"));
  // An unknown parameter refuses the request before anything is applied.
  r = Call("POST", "/_bulk?refreshh", "{\"delete\":{\"_index\":\".ml-anomalies-shared\",\"_id\":\"x\"}}\n", ndjson);
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("did you mean [refresh]?"));
  EXPECT_EQ(Call("POST", "/_bulk?refresh=sometimes", "\n", ndjson).status, 400);
  EXPECT_EQ(Call("POST", "/_bulk", "", ndjson).status, 400);
  EXPECT_EQ(Call("POST", "/_bulk", "{\"index\":{}}\n" + doc + "\n",
                 {{"Content-Type", "application/json"}}).status, 400);  // no index
}

TEST(RestApiSecurityTest, CredentialsInClearFromAnotherMachineAreRefused) {
  const std::string dir = ::testing::TempDir() + "/realm";
  ASSERT_EQ(system(("mkdir -p " + dir).c_str()), 0);
  {
    // bcrypt of "secret" at cost 4.
    FILE* users = fopen((dir + "/users").c_str(), "w");
    fputs("u:$2b$04$C7tc2Kb6JsFvuK8U7Y3lZe4HnCfcEu7gLoT0dJ5TdN1rG5gyCO9n2\n", users);
    fclose(users);
  }
  absl::StatusOr<std::unique_ptr<Security>> security = Security::Open(dir);
  ASSERT_TRUE(security.ok()) << security.status();
  InfluencerStore store;
  RestApiOptions options;
  options.security = security->get();
  RestApi api(&store, options);
  RestRequest request;
  request.method = "GET";
  request.target = "/";
  request.headers = {{"Authorization", "Basic dTpzZWNyZXQ="}};
  request.confidential = false;
  RestResponse response = api.Handle(request);
  EXPECT_EQ(response.status, 401);
  EXPECT_THAT(response.body, HasSubstr("plain HTTP from another machine"));
  request.headers.clear();
  EXPECT_THAT(api.Handle(request).body,
              HasSubstr("missing authentication credentials"));
}

}  // namespace
}  // namespace clout
