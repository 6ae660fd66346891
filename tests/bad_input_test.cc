// The catalogue of bad input: each item has a defined outcome (accepted, or
// a clear error naming where and what), never a crash, a hang or a
// half-applied load. Loader and request limits a service can rely on.
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/error.h"
#include "engine/response.h"
#include "engine/loader.h"
#include "engine/request.h"
#include "engine/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "simdjson.h"

namespace clout {
namespace {

using ::testing::HasSubstr;

std::string Doc(absl::string_view value = "v", int64_t ts = 1454943600000,
                absl::string_view extra = "") {
  return absl::StrCat(
      R"({"job_id":"j","result_type":"influencer","influencer_field_name":"f",)"
      R"("influencer_field_value":")",
      value, R"(","timestamp":)", ts, extra, "}");
}

LoadOptions Named(bool lenient = false) {
  LoadOptions options;
  options.source_name = "dump";
  options.lenient = lenient;
  return options;
}

// Loads `text` strictly and expects an error of `type` whose message has
// every one of `parts`; the store must be unchanged.
void ExpectRejected(const std::string& text, const std::string& type,
                    std::vector<std::string> parts, int http = 400) {
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = LoadString(store, text, Named());
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(HttpStatusOf(report.status()), http) << report.status();
  EXPECT_EQ(ErrorTypeOf(report.status()), type) << report.status();
  for (const std::string& part : parts) {
    EXPECT_THAT(std::string(report.status().message()), HasSubstr(part));
  }
  EXPECT_EQ(store.Current()->generation, 0u);
  EXPECT_TRUE(store.Current()->jobs.empty());
}

TEST(BadInputTest, TruncatedFile) {
  std::string text = "[" + Doc("a") + "," + Doc("b");
  text.resize(text.size() - 10);
  ExpectRejected(text, "x_content_parse_exception", {"dump: at byte"});
}

TEST(BadInputTest, TruncatedLastLine) {
  std::string text = Doc("a") + "\n" + Doc("b");
  text.resize(text.size() - 5);
  ExpectRejected(text, "x_content_parse_exception", {"dump:2:", "malformed JSON"});
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = LoadString(store, text, Named(true));
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->rejected, 1u);
  EXPECT_EQ(report->influencers_added, 1u);
}

TEST(BadInputTest, InvalidUtf8InAString) {
  ExpectRejected(Doc("a") + "\n" + Doc("b\xff\xfe") + "\n",
                 "x_content_parse_exception", {"dump:2:", "UTF-8"});
}

TEST(BadInputTest, NanAndInfinityLiterals) {
  for (const char* literal : {"NaN", "Infinity", "-Infinity", "nan"}) {
    SCOPED_TRACE(literal);
    ExpectRejected(
        Doc("a", 1, absl::StrCat(R"(,"influencer_score":)", literal)) + "\n",
        "x_content_parse_exception", {"dump:1:", "malformed JSON"});
  }
}

TEST(BadInputTest, NumbersOutOfRange) {
  ExpectRejected(Doc("a", 1, R"(,"influencer_score":1e400)") + "\n",
                 "mapper_parsing_exception",
                 {"dump:1:", "field [influencer_score]", "out of range"});
  ExpectRejected(Doc("a", 1, R"(,"probability":-1e999)") + "\n",
                 "mapper_parsing_exception", {"field [probability]"});
  ExpectRejected(
      absl::StrCat(R"({"job_id":"j","result_type":"influencer",)"
                   R"("influencer_field_name":"f","influencer_field_value":"v",)"
                   R"("timestamp":9223372036854775807})"),
      "mapper_parsing_exception", {"field [timestamp]", "epoch milliseconds"});
  ExpectRejected(
      absl::StrCat(R"({"job_id":"j","result_type":"influencer",)"
                   R"("influencer_field_name":"f","influencer_field_value":"v",)"
                   R"("timestamp":"+275760-09-14T00:00:00Z"})"),
      "mapper_parsing_exception", {"field [timestamp]"});
  ExpectRejected(Doc("a", 1, R"(,"bucket_span":-600)") + "\n",
                 "mapper_parsing_exception",
                 {"field [bucket_span]", "non-negative integer"});
  ExpectRejected(Doc("a", 1, R"(,"bucket_span":600.5)") + "\n",
                 "mapper_parsing_exception", {"field [bucket_span]"});
}

TEST(BadInputTest, DuplicateKeys) {
  ExpectRejected(Doc("a", 1, R"(,"influencer_score":1,"influencer_score":2)"),
                 "mapper_parsing_exception",
                 {"field [influencer_score]", "more than once"});
}

TEST(BadInputTest, DeeplyNestedValues) {
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  // In a field the loader reads: a clear type error.
  ExpectRejected(Doc("a", 1, absl::StrCat(R"(,"influencer_score":)", deep)) + "\n",
                 "mapper_parsing_exception",
                 {"dump:1:", "field [influencer_score]", "found an array"});
  // In an ignored field: skipped unread, the document loads.
  InfluencerStore store;
  absl::StatusOr<LoadReport> report =
      LoadString(store, Doc("a", 1, absl::StrCat(R"(,"x":)", deep)) + "\n");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->influencers_added, 1u);
  // Unbalanced nesting is malformed (a first line that leaves brackets open
  // is read as one multi-line document, so the error names a byte offset).
  ExpectRejected(Doc("a", 1, absl::StrCat(R"(,"x":)", std::string(5000, '['))) +
                     "\n",
                 "x_content_parse_exception", {"dump: at byte 0", "malformed JSON"});
  ExpectRejected(Doc("a", 1) + "\n" +
                     Doc("a", 2, absl::StrCat(R"(,"x":)", std::string(5000, '['))) +
                     "\n",
                 "x_content_parse_exception", {"dump:2:", "malformed JSON"});
}

TEST(BadInputTest, HundredMegabyteDocumentIsAccepted) {
  std::string value(100u << 20, 'x');
  InfluencerStore store;
  absl::StatusOr<LoadReport> report =
      LoadString(store, Doc(value) + "\n" + Doc("small") + "\n");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->influencers_added, 2u);
  EXPECT_EQ(store.Current()->PlainJob("j")->field_value(0).size(), value.size());
}

TEST(BadInputTest, DocumentLongerThanTheLimit) {
  LoadOptions options = Named(true);  // even lenient mode stops
  options.max_document_bytes = 1 << 20;
  options.chunk_bytes = 1 << 16;
  std::string text = Doc("a") + "\n" + Doc(std::string(3 << 20, 'x')) + "\n";
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = LoadString(store, text, options);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(ErrorTypeOf(report.status()), "x_content_parse_exception");
  EXPECT_THAT(std::string(report.status().message()),
              HasSubstr("dump:2: document longer than max_document_bytes"));
  EXPECT_TRUE(store.Current()->jobs.empty());
}

// The limit holds for every line or element, not only one longer than the
// read buffer (a 5 KB line passed a 1000-byte limit in 16 MiB chunks).
TEST(BadInputTest, DocumentLongerThanTheLimitWithinOneChunk) {
  LoadOptions options = Named();
  options.max_document_bytes = 1000;
  const std::string line = Doc(std::string(5000, 'x'));
  InfluencerStore store;
  for (const std::string& text :
       {Doc("a") + "\n" + line + "\n", Doc("a") + "\n" + line,
        "[" + Doc("a") + "," + line + "]"}) {
    absl::StatusOr<LoadReport> report = LoadString(store, text, options);
    ASSERT_FALSE(report.ok()) << text.substr(0, 40);
    EXPECT_THAT(std::string(report.status().message()),
                HasSubstr("document longer than max_document_bytes (1000 bytes)"));
  }
  // At the limit: accepted.
  options.max_document_bytes = line.size();
  EXPECT_TRUE(LoadString(store, Doc("a") + "\n" + line + "\n", options).ok());
  EXPECT_TRUE(store.Current()->PlainJob("j") != nullptr);
}

// Fewer documents than the periodic check's 1024 still meet the budget,
// and so do the response formats, checked at the end.
TEST(BadInputTest, MemoryBudgetOfASmallLoad) {
  std::string lines;
  std::string response = R"({"count":1000,"influencers":[)";
  for (int i = 0; i < 1000; ++i) {
    const std::string doc = Doc(absl::StrCat(std::string(2000, 'v'), i), i);
    lines += doc + "\n";
    response += (i ? "," : "") + doc;
  }
  response += "]}";
  LoadOptions options = Named();
  options.memory_budget_bytes = 200 << 10;
  for (const std::string& text : {lines, response}) {
    InfluencerStore store;
    absl::StatusOr<LoadReport> report = LoadString(store, text, options);
    ASSERT_FALSE(report.ok());
    EXPECT_EQ(HttpStatusOf(report.status()), 429) << report.status();
    EXPECT_TRUE(store.Current()->jobs.empty());
  }
}

TEST(BadInputTest, MemoryBudget) {
  std::string text;
  for (int i = 0; i < 20000; ++i) text += Doc(absl::StrCat("v", i), i) + "\n";
  LoadOptions options = Named();
  options.chunk_bytes = 1 << 16;
  options.memory_budget_bytes = 256 << 10;
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = LoadString(store, text, options);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(HttpStatusOf(report.status()), 429);
  EXPECT_EQ(ErrorTypeOf(report.status()), "circuit_breaking_exception");
  EXPECT_THAT(std::string(report.status().message()),
              HasSubstr("larger than the limit of [262144] bytes"));
  EXPECT_TRUE(store.Current()->jobs.empty());
  // A budget that fits.
  options.memory_budget_bytes = 64 << 20;
  EXPECT_TRUE(LoadString(store, text, options).ok());
  // A single-document source counts whole.
  LoadOptions whole = Named();
  whole.memory_budget_bytes = 1 << 20;
  std::string array = "[" + Doc(std::string(2 << 20, 'y')) + "]";
  absl::StatusOr<LoadReport> too_big = LoadString(store, array, whole);
  EXPECT_EQ(HttpStatusOf(too_big.status()), 429);
}

TEST(BadInputTest, NonObjectDocuments) {
  ExpectRejected(Doc("a") + "\n[1,2]\n", "mapper_parsing_exception",
                 {"dump:2:", "not a JSON object"});
  ExpectRejected(Doc("a") + "\n\"text\"\n", "mapper_parsing_exception",
                 {"dump:2:"});
}

TEST(BadInputTest, BinaryGarbage) {
  std::string garbage;
  for (int i = 0; i < 4096; ++i) garbage.push_back(static_cast<char>(i * 37 + 11));
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = LoadString(store, garbage, Named());
  EXPECT_FALSE(report.ok());
  report = LoadString(store, garbage, Named(true));
  // Lenient: every line is rejected (or the whole source is), never loaded.
  if (report.ok()) {
    EXPECT_EQ(report->influencers_added, 0u);
    EXPECT_GT(report->rejected, 0u);
  }
  EXPECT_TRUE(store.Current()->jobs.empty());
}

TEST(BadInputTest, EmptyAndWhitespaceOnly) {
  for (const char* text : {"", "   \n\r\n\t\n", "\xEF\xBB\xBF"}) {
    InfluencerStore store;
    absl::StatusOr<LoadReport> report = LoadString(store, text, Named());
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->documents, 0u);
    EXPECT_EQ(report->format, DumpFormat::kUnknown);
  }
}

TEST(BadInputTest, MixedFormatsInOneFile) {
  // A search hit inside a file of plain documents is an error naming it...
  ExpectRejected(Doc("a") + "\n" + R"({"_index":"x","_id":"1","_source":)" +
                     Doc("b") + "}\n",
                 "mapper_parsing_exception", {"dump:2:", "a search hit"});
  // ...and so is a bulk action line.
  ExpectRejected(Doc("a") + "\n" + R"({"index":{"_index":"x"}})" + "\n" +
                     Doc("b") + "\n",
                 "mapper_parsing_exception", {"dump:2:", "bulk action"});
  // A plain document in a file of search hits lacks its _source.
  ExpectRejected(R"({"_index":"x","_id":"1","_source":)" + Doc("a") + "}\n" +
                     Doc("b") + "\n",
                 "mapper_parsing_exception", {"dump:2:", "_source"});
}

TEST(BadInputTest, MissingFileAndDirectory) {
  InfluencerStore store;
  absl::StatusOr<LoadReport> missing = LoadFile(store, "/no/such/dump.ndjson");
  EXPECT_EQ(HttpStatusOf(missing.status()), 500);
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("/no/such/dump.ndjson"));
  absl::StatusOr<LoadReport> directory = LoadFile(store, "/tmp");
  EXPECT_EQ(HttpStatusOf(directory.status()), 500);
  EXPECT_THAT(std::string(directory.status().message()), HasSubstr("directory"));
}

TEST(BadInputTest, ChunkSizeDoesNotChangeTheOutcome) {
  // Found by the loader fuzzer: the last line was parsed with stale bytes
  // after it, so its verdict depended on the chunk size.
  std::string text;
  while (text.size() < 9000) text += "\n{}}";
  LoadReport reports[2];
  size_t chunks[2] = {4096, size_t{16} << 20};
  for (int i = 0; i < 2; ++i) {
    LoadOptions options = Named(true);
    options.chunk_bytes = chunks[i];
    InfluencerStore store;
    absl::StatusOr<LoadReport> report = LoadString(store, text, options);
    ASSERT_TRUE(report.ok()) << report.status();
    reports[i] = *report;
  }
  EXPECT_EQ(reports[0].documents, reports[1].documents);
  EXPECT_EQ(reports[0].rejected, reports[1].rejected);
  EXPECT_EQ(reports[0].errors, reports[1].errors);
}

TEST(BadRequestTest, InvalidUtf8InAParameterStillGivesValidJson) {
  InfluencerStore store;
  ASSERT_TRUE(LoadString(store, Doc("a") + "\n").ok());
  absl::StatusOr<InfluencersRequest> request =
      ParseParamRequest("j", SplitQueryString("sort=%FF"));
  ASSERT_TRUE(request.ok());
  absl::StatusOr<InfluencersPage> page = store.GetInfluencers(*request);
  ASSERT_FALSE(page.ok());
  std::string json = ErrorJson(page.status());
  EXPECT_TRUE(simdjson::validate_utf8(json.data(), json.size())) << json;
  EXPECT_THAT(json, HasSubstr("No mapping found for [\xEF\xBF\xBD]"));
}

// The parsers bound from/size; a request built in code is checked too (a
// size of -1 threw std::length_error, a huge from overflowed from + size).
TEST(BadRequestTest, OutOfRangePagingBuiltInCodeIsRejected) {
  InfluencerStore store;
  ASSERT_TRUE(LoadString(store, Doc("a") + "\n").ok());
  struct Case {
    int64_t from, size;
    const char* reason;
  };
  for (Case c : {Case{0, -1, "Parameter [size] cannot be < 0"},
                 Case{-5, 10, "Parameter [from] cannot be < 0"},
                 Case{INT64_MAX, 10,
                      "Failed to parse int parameter [from] with value "
                      "[9223372036854775807]"},
                 Case{0, int64_t{1} << 31,
                      "Failed to parse int parameter [size] with value "
                      "[2147483648]"}}) {
    InfluencersRequest request;
    request.job_id = "j";
    request.from = c.from;
    request.size = c.size;
    absl::StatusOr<InfluencersPage> page = store.GetInfluencers(request);
    ASSERT_FALSE(page.ok()) << c.from << " " << c.size;
    EXPECT_EQ(HttpStatusOf(page.status()), 400);
    EXPECT_EQ(page.status().message(), c.reason);
  }
}

TEST(BadRequestTest, BodyLimit) {
  std::string body = absl::StrCat(R"({"sort":")", std::string(2000, 'x'), "\"}");
  absl::StatusOr<InfluencersRequest> r = ParseBodyRequest("j", body, 1024);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(HttpStatusOf(r.status()), 413);
  EXPECT_EQ(ErrorTypeOf(r.status()), "content_too_long_exception");
  EXPECT_EQ(r.status().message(),
            absl::StrCat("request body of [", body.size(),
                         "] bytes is larger than the limit of [1024] bytes"));
  // The default limit takes a 1 MB body.
  std::string big = absl::StrCat(R"({"sort":")", std::string(1 << 20, 'x'), "\"}");
  EXPECT_TRUE(ParseBodyRequest("j", big).ok());
}

TEST(BadRequestTest, HostileBodiesAreRejectedCleanly) {
  std::string deep(100000, '[');
  for (const std::string& body :
       {std::string("{\"page\":") + deep, std::string("\x00\x01\x02", 3),
        std::string("{\"sort\":\"\xff\"}"), std::string("{\"desc\":tru}"),
        std::string("{\"page\":{\"size\":1e999}}")}) {
    absl::StatusOr<InfluencersRequest> r = ParseBodyRequest("j", body);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(HttpStatusOf(r.status()), 400) << r.status();
  }
}

}  // namespace
}  // namespace clout
