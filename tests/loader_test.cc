// Tests of the dump loader (engine/loader.h), observed through the store and
// the LoadReport.
#include "engine/loader.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/string_view.h"
#include "engine/error.h"
#include "engine/executor.h"
#include "tools/generator.h"
#include "engine/java_format.h"
#include "engine/request.h"
#include "engine/columns.h"
#include "engine/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

using ::clout::DumpFormat;
using ::clout::DumpFormatName;
using ::clout::InfluencerStore;
using ::clout::JobResults;
using ::clout::LoadOptions;
using ::clout::LoadReport;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

namespace {

// ---------------------------------------------------------------------------
// Helpers.

uint64_t Bits(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  return bits;
}

// One stored row, with the doubles as bit patterns so that == is bit-exact.
struct Row {
  std::string name;
  std::string value;
  int64_t timestamp = 0;
  uint64_t score = 0;
  uint64_t initial = 0;
  uint64_t probability = 0;
  int64_t bucket_span = 0;
  bool interim = false;

  bool operator==(const Row&) const = default;
};

double FromBits(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

void PrintTo(const Row& r, std::ostream* os) {
  std::string value = r.value.size() > 80
                          ? absl::StrCat(r.value.substr(0, 80), "...(",
                                         r.value.size(), " bytes)")
                          : r.value;
  *os << "{" << r.name << "=" << value << " ts=" << r.timestamp
      << " score=" << clout::JavaDoubleToString(FromBits(r.score))
      << " initial=" << clout::JavaDoubleToString(FromBits(r.initial))
      << " p=" << clout::JavaDoubleToString(FromBits(r.probability))
      << " span=" << r.bucket_span << " interim=" << r.interim << "}";
}

Row MakeRow(std::string name, std::string value, int64_t ts, double score,
            double initial, double probability, int64_t span, bool interim) {
  return Row{std::move(name), std::move(value), ts,   Bits(score),
             Bits(initial),   Bits(probability), span, interim};
}

std::vector<Row> RowsOf(const JobResults& job) {
  std::vector<Row> rows;
  const clout::InfluencerColumns& c = job.columns;
  // Every column has one entry per row.
  EXPECT_EQ(c.influencer_score.size(), c.size());
  EXPECT_EQ(c.initial_influencer_score.size(), c.size());
  EXPECT_EQ(c.probability.size(), c.size());
  EXPECT_EQ(c.bucket_span_code.size(), c.size());
  EXPECT_EQ(c.is_interim.size(), c.size());
  EXPECT_EQ(c.field_name_code.size(), c.size());
  EXPECT_EQ(c.field_value_code.size(), c.size());
  size_t interim = 0;
  for (size_t i = 0; i < job.size(); ++i) {
    rows.push_back(Row{std::string(job.field_name(i)),
                       std::string(job.field_value(i)), c.timestamp[i],
                       Bits(c.influencer_score[i]),
                       Bits(c.initial_influencer_score[i]),
                       Bits(c.probability[i]), job.bucket_span(i),
                       c.is_interim[i] != 0});
    interim += c.is_interim[i];
  }
  EXPECT_EQ(job.interim_rows, interim);
  return rows;
}

// The rows of `job_id` in the store's current snapshot; fails the test if the
// job is unknown.
std::vector<Row> RowsOf(const InfluencerStore& store,
                        const std::string& job_id) {
  std::shared_ptr<const clout::StoreVersion> snapshot = store.Current();
  std::shared_ptr<const JobResults> job = snapshot->PlainJob(job_id);
  if (job == nullptr) {
    ADD_FAILURE() << "job " << job_id << " is not known";
    return {};
  }
  return RowsOf(*job);
}

size_t RowCount(const InfluencerStore& store, const std::string& job_id) {
  std::shared_ptr<const JobResults> job = store.Current()->PlainJob(job_id);
  return job == nullptr ? 0 : job->size();
}

// A result document of an influencer, every field written.
std::string InfluencerDoc(absl::string_view job, absl::string_view name,
                          absl::string_view value, int64_t ts, double score,
                          double initial, double probability, int64_t span,
                          bool interim) {
  std::string out = "{\"job_id\":";
  clout::AppendJsonString(job, &out);
  out += ",\"result_type\":\"influencer\",\"influencer_field_name\":";
  clout::AppendJsonString(name, &out);
  out += ",\"influencer_field_value\":";
  clout::AppendJsonString(value, &out);
  out += ",";
  clout::AppendJsonString(name, &out);
  out += ":";
  clout::AppendJsonString(value, &out);
  absl::StrAppend(&out, ",\"influencer_score\":",
                  clout::JavaDoubleToString(score),
                  ",\"initial_influencer_score\":",
                  clout::JavaDoubleToString(initial),
                  ",\"probability\":", clout::JavaDoubleToString(probability),
                  ",\"bucket_span\":", span,
                  ",\"is_interim\":", interim ? "true" : "false",
                  ",\"timestamp\":", ts, "}");
  return out;
}

// A minimal valid influencer document of job "e" with `extra` fields
// (",\"k\":v") appended.
// A minimal influencer document of job "e" with the given value and time.
std::string MinimalDocAt(absl::string_view value, int64_t timestamp) {
  return absl::StrCat(
      R"({"job_id":"e","result_type":"influencer","influencer_field_name":"f",)"
      R"("influencer_field_value":")",
      value, R"(","timestamp":)", timestamp, "}");
}

std::string MinimalDoc(absl::string_view extra = "") {
  return absl::StrCat(
      R"({"job_id":"e","result_type":"influencer","influencer_field_name":"f",)"
      R"("influencer_field_value":"v","timestamp":1454943600000)",
      extra, "}");
}

std::string TempPath(absl::string_view name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string base = dir != nullptr ? dir : "/tmp";
  return absl::StrCat(base, "/", name);
}

std::string WriteTempFile(absl::string_view name, absl::string_view text) {
  std::string path = TempPath(name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  EXPECT_TRUE(out.good()) << path;
  return path;
}

LoadOptions Named(std::string name, bool lenient = false) {
  LoadOptions options;
  options.source_name = std::move(name);
  options.lenient = lenient;
  return options;
}

// The Elasticsearch view of a failed load.
void ExpectLoadError(const absl::StatusOr<LoadReport>& result, int http,
                     const std::string& type,
                     const std::vector<std::string>& substrings) {
  ASSERT_FALSE(result.ok()) << "load unexpectedly succeeded";
  const absl::Status& status = result.status();
  EXPECT_EQ(clout::HttpStatusOf(status), http) << status;
  clout::EsErrorInfo info = clout::EsErrorOf(status);
  EXPECT_EQ(info.http_status, http) << status;
  EXPECT_EQ(info.type, type) << status;
  EXPECT_EQ(info.reason, std::string(status.message()));
  for (const std::string& s : substrings) {
    EXPECT_THAT(std::string(status.message()), HasSubstr(s));
  }
}

// ---------------------------------------------------------------------------
// 1. Formats.

// Three influencer documents of job "fmt": all fields, escapes and non-ASCII
// text, keys in another order.
const char kDocA[] =
    R"({"job_id":"fmt","result_type":"influencer","influencer_field_name":"host",)"
    R"("influencer_field_value":"web-1","host":"web-1","influencer_score":94.1386,)"
    R"("initial_influencer_score":90.5,"probability":1.11612E-4,"bucket_span":600,)"
    R"("is_interim":false,"timestamp":1454943600000})";
const char kDocB[] =
    R"({"job_id":"fmt","result_type":"influencer","influencer_field_name":"user",)"
    R"("influencer_field_value":"caf\u00e9 \"q\" \\ \/","user":"x",)"
    R"("influencer_score":0.0512,"initial_influencer_score":0.0512,)"
    R"("probability":0.0133,"bucket_span":3600,"is_interim":true,)"
    R"("timestamp":1454940000000,"extra":{"nested":[1,{"a":null}]}})";
const char kDocC[] =
    R"({"timestamp":1454945400000,"bucket_span":600,"probability":0.5,)"
    R"("influencer_score":80.0,"initial_influencer_score":80.0,)"
    R"("influencer_field_value":"page_views","influencer_field_name":"kpi_indicator",)"
    R"("result_type":"influencer","job_id":"fmt","is_interim":false})";

std::vector<Row> ExpectedFormatRows() {
  return {
      MakeRow("host", "web-1", 1454943600000, 94.1386, 90.5, 1.11612E-4, 600,
              false),
      MakeRow("user", "caf\xC3\xA9 \"q\" \\ /", 1454940000000, 0.0512, 0.0512,
              0.0133, 3600, true),
      MakeRow("kpi_indicator", "page_views", 1454945400000, 80.0, 80.0, 0.5,
              600, false),
  };
}

std::string Hit(absl::string_view source, int id, bool trailing_fields) {
  return absl::StrCat(
      R"({"_index":".ml-anomalies-shared","_id":"fmt_influencer_)", id,
      R"(","_score":1.0,"_source":)", source,
      trailing_fields ? R"(,"sort":[1454943600000,"x"],"fields":{"a":[1]}})"
                      : "}");
}

struct FormatCase {
  std::string name;
  std::string text;
  DumpFormat format;
  std::map<std::string, uint64_t> skipped;
};

std::vector<FormatCase> FormatCases() {
  const std::string a = kDocA, b = kDocB, c = kDocC;
  std::vector<FormatCase> cases;
  cases.push_back({"ndjson", absl::StrCat(a, "\n", b, "\n", c, "\n"),
                   DumpFormat::kNdjson, {}});
  cases.push_back({"json_array", absl::StrCat("[", a, ",", b, ",", c, "]"),
                   DumpFormat::kJsonArray, {}});
  cases.push_back({"json_array_pretty",
                   absl::StrCat("[\n  ", a, ",\n  ", b, ",\n  ", c, "\n]\n"),
                   DumpFormat::kJsonArray, {}});
  cases.push_back(
      {"influencers_response",
       absl::StrCat(R"({"count":3,"influencers":[)", a, ",", b, ",", c, "]}"),
       DumpFormat::kInfluencersResponse, {}});
  cases.push_back({"influencers_response_pretty",
                   absl::StrCat("{\n  \"count\" : 3,\n  \"influencers\" : [\n",
                                a, ",\n", b, ",\n", c, "\n  ]\n}\n"),
                   DumpFormat::kInfluencersResponse, {}});
  std::string hits = absl::StrCat(Hit(a, 1, false), ",", Hit(b, 2, true), ",",
                                  Hit(c, 3, false));
  cases.push_back(
      {"search_response",
       absl::StrCat(
           R"({"took":1,"timed_out":false,"_shards":{"total":1,"successful":1,)"
           R"("skipped":0,"failed":0},"hits":{"total":{"value":3,"relation":"eq"},)"
           R"("max_score":1.0,"hits":[)",
           hits, "]}}"),
       DumpFormat::kSearchResponse, {}});
  cases.push_back(
      {"search_response_pretty",
       absl::StrCat("{\n  \"took\" : 1,\n  \"timed_out\" : false,\n"
                    "  \"hits\" : {\n    \"total\" : 3,\n    \"hits\" : [\n",
                    hits, "\n    ]\n  }\n}\n"),
       DumpFormat::kSearchResponse, {}});
  cases.push_back({"search_hits_ndjson",
                   absl::StrCat(Hit(a, 1, false), "\n", Hit(b, 2, true), "\n",
                                // _source first.
                                R"({"_source":)", c, R"(,"_id":"3"})", "\n"),
                   DumpFormat::kSearchHitsNdjson, {}});
  cases.push_back(
      {"bulk",
       absl::StrCat(R"({"index":{"_index":".ml-anomalies-shared","_id":"1"}})",
                    "\n", a, "\n",
                    R"({"delete":{"_index":".ml-anomalies-shared","_id":"0"}})",
                    "\n",
                    R"({"create":{"_index":".ml-anomalies-shared","_id":"2"}})",
                    "\n", b, "\n", R"({"index":{}})", "\n", c, "\n"),
       DumpFormat::kBulk,
       {{"(bulk delete)", 1}}});
  // Pretty-printed as jq prints: one key a line (commas between keys only;
  // none of the three documents has a comma inside a string).
  auto pretty = [](const std::string& doc) {
    std::string out = absl::StrReplaceAll(doc, {{",\"", ",\n  \""}});
    return absl::StrCat("{\n  ", out.substr(1, out.size() - 2), "\n}");
  };
  cases.push_back({"json_stream",
                   absl::StrCat(pretty(a), "\n", pretty(b), "\n", pretty(c),
                                "\n"),
                   DumpFormat::kJsonStream, {}});
  // Any whitespace, or none, between documents; one may fit on a line.
  cases.push_back({"json_stream_spacing",
                   absl::StrCat("\n\n", pretty(a), b, "  \t\r\n",
                                pretty(c)),
                   DumpFormat::kJsonStream, {}});
  auto entry = [](const std::string& doc, int id) {
    return absl::StrCat(
        R"({"type":"doc","value":{"index":".ml-anomalies-shared","id":")", id,
        R"(","source":)", doc, "}}");
  };
  const std::string mappings =
      R"({"type":"index","value":{"index":".ml-anomalies-shared",)"
      R"("mappings":{"properties":{"job_id":{"type":"keyword"}}}}})";
  cases.push_back({"es_archive_lines",
                   absl::StrCat(mappings, "\n\n", entry(a, 1), "\n\n",
                                entry(b, 2), "\n\n", entry(c, 3), "\n"),
                   DumpFormat::kEsArchive,
                   {{"(es_archive index)", 1}}});
  // As esArchiver writes data.json: two-space indents, a blank line between.
  auto indent = [](const std::string& entry_text) {
    return absl::StrCat(
        "{\n  \"type\": \"doc\",\n  \"value\": ",
        entry_text.substr(std::string(R"({"type":"doc","value":)").size(),
                          entry_text.size() -
                              std::string(R"({"type":"doc","value":)").size() - 1),
        "\n}");
  };
  cases.push_back({"es_archive_pretty",
                   absl::StrCat(indent(entry(a, 1)), "\n\n", indent(entry(b, 2)),
                                "\n\n", indent(entry(c, 3)), "\n"),
                   DumpFormat::kEsArchive, {}});
  return cases;
}

TEST(LoaderFormatTest, EveryFormatGivesTheSameRows) {
  for (const FormatCase& fc : FormatCases()) {
    SCOPED_TRACE(fc.name);
    for (bool from_file : {false, true}) {
      SCOPED_TRACE(from_file ? "LoadFile" : "LoadString");
      InfluencerStore store;
      absl::StatusOr<LoadReport> report;
      std::string path;
      if (from_file) {
        path = WriteTempFile(absl::StrCat("format_", fc.name), fc.text);
        LoadOptions options;
        options.chunk_bytes = 4096;
        report = clout::LoadFile(store, path, options);
      } else {
        report = clout::LoadString(store, fc.text);
      }
      ASSERT_TRUE(report.ok()) << report.status();
      EXPECT_EQ(report->format, fc.format)
          << DumpFormatName(report->format);
      EXPECT_EQ(report->source, from_file ? path : "<string>");
      EXPECT_EQ(report->bytes, fc.text.size());
      EXPECT_EQ(report->documents, 3u);
      EXPECT_EQ(report->influencers_added, 3u);
      EXPECT_EQ(report->rejected, 0u);
      EXPECT_TRUE(report->errors.empty());
      EXPECT_THAT(report->jobs, ElementsAre("fmt"));
      std::map<std::string, uint64_t> skipped(report->skipped.begin(),
                                              report->skipped.end());
      EXPECT_EQ(skipped, fc.skipped);
      EXPECT_EQ(RowsOf(store, "fmt"), ExpectedFormatRows());
      EXPECT_EQ(store.Current()->generation, 1u);
      EXPECT_TRUE(store.Current()->influencer_field_names.contains("user"));

      // The query sees them too.
      clout::InfluencersRequest request;
      request.job_id = "fmt";
      absl::StatusOr<clout::InfluencersPage> page =
          store.GetInfluencers(request);
      ASSERT_TRUE(page.ok()) << page.status();
      EXPECT_EQ(page->count, 3);
      ASSERT_EQ(page->influencers.size(), 3u);
      EXPECT_EQ(page->influencers[0].influencer_field_value, "web-1");
      EXPECT_EQ(page->influencers[0].job_id, "fmt");
    }
  }
}

TEST(LoaderFormatTest, FormatNames) {
  EXPECT_EQ(DumpFormatName(DumpFormat::kUnknown), "unknown");
  EXPECT_EQ(DumpFormatName(DumpFormat::kNdjson), "ndjson");
  EXPECT_EQ(DumpFormatName(DumpFormat::kJsonArray), "json_array");
  EXPECT_EQ(DumpFormatName(DumpFormat::kInfluencersResponse),
            "influencers_response");
  EXPECT_EQ(DumpFormatName(DumpFormat::kSearchResponse), "search_response");
  EXPECT_EQ(DumpFormatName(DumpFormat::kSearchHitsNdjson),
            "search_hits_ndjson");
  EXPECT_EQ(DumpFormatName(DumpFormat::kBulk), "bulk");
}

TEST(LoaderFormatTest, PrettyPrintedSingleDocument) {
  InfluencerStore store;
  std::string text = absl::StrReplaceAll(kDocA, {{",", ",\n  "}});
  text = absl::StrCat("{\n  ", text.substr(1, text.size() - 2), "\n}\n");
  absl::StatusOr<LoadReport> report = clout::LoadString(store, text);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->documents, 1u);
  EXPECT_THAT(RowsOf(store, "fmt"),
              ElementsAre(ExpectedFormatRows()[0]));
}

TEST(LoaderFormatTest, StreamErrorsNameTheLineOfTheDocument) {
  const std::string doc = MinimalDoc();
  const std::string pretty = absl::StrReplaceAll(doc, {{",", ",\n"}});
  const size_t lines = std::count(pretty.begin(), pretty.end(), '\n') + 1;
  const std::string bad = R"({"job_id":"e",
"result_type":"influencer"})";
  struct Case {
    std::string text;
    std::string error;
  };
  const Case cases[] = {
      {absl::StrCat(pretty, "\n", pretty, "\n\n", bad, "\n"),
       absl::StrCat("s.json:", 2 * lines + 2,
                    ": missing required field [influencer_field_name]")},
      {absl::StrCat(pretty, "\n", "xyz\n"),
       absl::StrCat("s.json:", lines + 1,
                    ": malformed JSON: expected the next JSON object of the "
                    "stream, found 'x'")},
      {absl::StrCat(pretty, "\n", pretty.substr(0, 30)),
       absl::StrCat("s.json: at byte ", pretty.size() + 1,
                    ": malformed JSON: the document is not closed at the end "
                    "of the input")},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    InfluencerStore store;
    absl::StatusOr<LoadReport> report = clout::LoadString(store, c.text, Named("s.json"));
    ASSERT_FALSE(report.ok());
    EXPECT_EQ(report.status().message(), c.error);
    EXPECT_EQ(store.Current()->generation, 0u);
  }
  // Lenient: the bad document is skipped, the others load.
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = clout::LoadString(
      store, absl::StrCat(pretty, "\n", bad, "\n", pretty, "\n"),
      Named("s.json", true));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->format, DumpFormat::kJsonStream);
  EXPECT_EQ(report->rejected, 1u);
  EXPECT_EQ(RowCount(store, "e"), 1u);
}

TEST(LoaderFormatTest, BadArchiveEntriesAreRejectedByLine) {
  const std::string doc = MinimalDoc();
  const std::string text = absl::StrCat(
      R"({"type":"doc","value":{"index":"i","id":"1","source":)", doc, "}}\n\n",
      R"({"type":"doc","value":{"index":"i","id":"2"}})", "\n\n",
      R"({"type":7,"value":{}})", "\n\n",
      R"({"type":"doc","value":{"source":)", doc, R"(,"source":)", doc, "}}\n");
  InfluencerStore store;
  absl::StatusOr<LoadReport> report =
      clout::LoadString(store, text, Named("data.json", true));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->format, DumpFormat::kEsArchive);
  EXPECT_EQ(report->rejected, 3u);
  EXPECT_THAT(report->errors,
              ElementsAre("data.json:3: esArchiver doc entry without "
                          "[value.source]",
                          "data.json:5: esArchiver entry: [type] is not a "
                          "string",
                          "data.json:7: esArchiver entry: duplicate field "
                          "[value.source]"));
  EXPECT_EQ(RowCount(store, "e"), 1u);
}

TEST(LoaderFormatTest, PrettyPrintedSingleSearchHit) {
  InfluencerStore store;
  std::string text = absl::StrCat(
      "{\n  \"_index\" : \"i\",\n  \"_source\" : ", kDocB,
      ",\n  \"sort\" : [1]\n}\n");
  absl::StatusOr<LoadReport> report = clout::LoadString(store, text);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->format, DumpFormat::kSearchHitsNdjson);
  EXPECT_THAT(RowsOf(store, "fmt"), ElementsAre(ExpectedFormatRows()[1]));
}

TEST(LoaderFormatTest, BulkUpdateIsAnErrorInStrictMode) {
  std::string text = absl::StrCat(
      R"({"index":{"_id":"1"}})", "\n", kDocA, "\n",
      R"({"update":{"_id":"1"}})", "\n", R"({"doc":{"influencer_score":1.0}})",
      "\n", R"({"index":{"_id":"3"}})", "\n", kDocC, "\n");
  InfluencerStore store;
  ExpectLoadError(clout::LoadString(store, text, Named("bulk.ndjson")), 400,
                  "mapper_parsing_exception", {"bulk.ndjson:3:", "update"});
  EXPECT_EQ(store.Current()->PlainJob("fmt"), nullptr);
  EXPECT_EQ(store.Current()->generation, 0u);

  // Lenient: the update (and its partial document) is rejected, the rest
  // loads.
  absl::StatusOr<LoadReport> report =
      clout::LoadString(store, text, Named("bulk.ndjson", true));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->format, DumpFormat::kBulk);
  EXPECT_EQ(report->rejected, 1u);
  ASSERT_EQ(report->errors.size(), 1u);
  EXPECT_THAT(report->errors[0], HasSubstr("bulk.ndjson:3:"));
  std::vector<Row> expected = ExpectedFormatRows();
  EXPECT_THAT(RowsOf(store, "fmt"), ElementsAre(expected[0], expected[2]));
}

TEST(LoaderFormatTest, BulkActionWithoutItsDocument) {
  std::string text =
      absl::StrCat(R"({"index":{"_id":"1"}})", "\n", kDocA, "\n",
                   R"({"index":{"_id":"2"}})", "\n");
  InfluencerStore store;
  ExpectLoadError(clout::LoadString(store, text, Named("b")), 400,
                  "mapper_parsing_exception", {"b:3:", "without its document"});
}

TEST(LoaderFormatTest, SampleDumpFile) {
  InfluencerStore store;
  absl::StatusOr<LoadReport> report =
      clout::LoadFile(store, "data/it_ops_new_kpi.ndjson");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->format, DumpFormat::kNdjson);
  EXPECT_EQ(report->source, "data/it_ops_new_kpi.ndjson");
  EXPECT_EQ(report->influencers_added, 28u);
  EXPECT_EQ(report->documents, 32u);
  EXPECT_THAT(report->skipped,
              ElementsAre(Pair("bucket", 1), Pair("bucket_influencer", 1),
                          Pair("model_size_stats", 1), Pair("record", 1)));
  EXPECT_THAT(report->jobs, ElementsAre("it_ops_new_kpi"));
  EXPECT_EQ(RowCount(store, "it_ops_new_kpi"), 28u);

  // The spec's example: the top influencer.
  clout::InfluencersRequest request;
  request.job_id = "it_ops_new_kpi";
  absl::StatusOr<clout::InfluencersPage> page = store.GetInfluencers(request);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->count, 28);
  ASSERT_FALSE(page->influencers.empty());
  const clout::Influencer& top = page->influencers[0];
  EXPECT_EQ(top.influencer_field_name, "kpi_indicator");
  EXPECT_EQ(top.influencer_field_value, "online_purchases");
  EXPECT_EQ(Bits(top.influencer_score), Bits(94.1386));
  EXPECT_EQ(Bits(top.probability), Bits(0.000111612));
  EXPECT_EQ(top.bucket_span, 600);
  EXPECT_FALSE(top.is_interim);
  EXPECT_EQ(top.timestamp, 1454943600000);
}

// ---------------------------------------------------------------------------
// 2. Other result types.

TEST(LoaderResultTypeTest, OtherTypesAreSkippedCountedAndTheirJobsKnown) {
  // A record (which has an "influencers" array) comes first.
  std::string text = absl::StrCat(
      R"({"job_id":"rec_job","result_type":"record","probability":0.01,)"
      R"("record_score":50.0,"influencers":[{"influencer_field_name":"host",)"
      R"("influencer_field_values":["web-1"]}],"timestamp":1454943600000,)"
      R"("bucket_span":600,"is_interim":false})", "\n",
      R"({"job_id":"bucket_job","result_type":"bucket","timestamp":1454943600000,)"
      R"("anomaly_score":94.1,"bucket_span":600,"bucket_influencers":[]})", "\n",
      kDocA, "\n",
      R"({"job_id":"bucket_job","result_type":"bucket_influencer","timestamp":1})",
      "\n",
      R"({"job_id":"bucket_job","result_type":"bucket","timestamp":2})", "\n",
      // A model snapshot: no result_type.
      R"({"job_id":"snap_job","snapshot_id":"1454943600","timestamp":1})", "\n",
      R"({"job_id":"plot_job","result_type":"model_plot","timestamp":1})", "\n",
      // Bad influencer fields do not matter for other result types.
      R"({"job_id":"fc_job","result_type":"forecast","influencer_score":"x",)"
      R"("bucket_span":-1})", "\n",
      // Neither a job nor a result type.
      R"({"hello":"world"})", "\n");
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = clout::LoadString(store, text);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->format, DumpFormat::kNdjson);
  EXPECT_EQ(report->documents, 9u);
  EXPECT_EQ(report->influencers_added, 1u);
  EXPECT_THAT(report->skipped,
              ElementsAre(Pair("(none)", 2), Pair("bucket", 2),
                          Pair("bucket_influencer", 1), Pair("forecast", 1),
                          Pair("model_plot", 1), Pair("record", 1)));
  EXPECT_THAT(report->jobs, ElementsAre("rec_job", "bucket_job", "fmt",
                                        "snap_job", "plot_job", "fc_job"));
  std::shared_ptr<const clout::StoreVersion> snapshot = store.Current();
  EXPECT_EQ(snapshot->jobs.size(), 6u);
  for (const char* job : {"rec_job", "bucket_job", "snap_job", "plot_job",
                          "fc_job"}) {
    SCOPED_TRACE(job);
    std::shared_ptr<const JobResults> results = snapshot->PlainJob(job);
    ASSERT_NE(results, nullptr);
    EXPECT_EQ(results->size(), 0u);
    // A known job without influencers answers count 0, not 404.
    clout::InfluencersRequest request;
    request.job_id = job;
    absl::StatusOr<clout::InfluencersPage> page =
        store.GetInfluencers(request);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_EQ(page->count, 0);
    EXPECT_TRUE(page->influencers.empty());
  }
  EXPECT_EQ(RowCount(store, "fmt"), 1u);

  // A later load of another type does not disturb a job's rows.
  ASSERT_TRUE(clout::LoadString(
                  store, R"({"job_id":"fmt","result_type":"bucket"})")
                  .ok());
  EXPECT_EQ(RowCount(store, "fmt"), 1u);
}

TEST(LoaderResultTypeTest, NullResultTypeCountsAsNone) {
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = clout::LoadString(
      store, R"([{"job_id":"n","result_type":null,"timestamp":1}])");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(report->skipped, ElementsAre(Pair("(none)", 1)));
  ASSERT_NE(store.Current()->PlainJob("n"), nullptr);
}

// ---------------------------------------------------------------------------
// 3. Field forms and defaults.

TEST(LoaderFieldTest, TimestampForms) {
  const std::pair<std::string, int64_t> cases[] = {
      {"1454943600000", 1454943600000},
      {"\"1454943600000\"", 1454943600000},
      {"\"2016-02-08T15:00:00Z\"", 1454943600000},
      {"\"2016-02-08T15:00:00.000+01:00\"", 1454940000000},
      {"\"2016-02-08T15:00:00.123Z\"", 1454943600123},
      {"\"2016-02-08T16:00:00Europe/Paris\"", 1454943600000},
      {"\"2016-02-08\"", 1454889600000},
      {"0", 0},
      {"-1000", -1000},
      {"\"-1000\"", -1000},
      // A number with a fraction or an exponent is truncated towards zero,
      // as Elasticsearch's parser reads a long.
      {"1000.0", 1000},
      {"1454943000000.5", 1454943000000},
      {"1.4549436E12", 1454943600000},
      {"-1000.5", -1000},
      // A numeric string is epoch ms, even with four digits or fewer (spec
      // section 8); its fraction is floored, as epoch_millis does.
      {"\"1000\"", 1000},
      {"\"2016\"", 2016},
      {"\"-1000.5\"", -1001},
  };
  std::string text;
  // Distinct values: equal timestamps would otherwise be one result.
  int n = 0;
  for (const auto& [json, millis] : cases) {
    absl::StrAppend(
        &text,
        R"({"job_id":"ts","result_type":"influencer","influencer_field_name":"f",)"
        R"("influencer_field_value":"v)",
        n++, R"(","timestamp":)", json, "}\n");
  }
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = clout::LoadString(store, text);
  ASSERT_TRUE(report.ok()) << report.status();
  std::vector<Row> rows = RowsOf(store, "ts");
  ASSERT_EQ(rows.size(), std::size(cases));
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].timestamp, cases[i].second) << cases[i].first;
  }
}

// A document without a double (or with null) stores it missing: shown as
// 0.0, sorted last (tests/golden/missing_doubles.test).
const double kMissing = clout::MissingDouble();

TEST(LoaderFieldTest, MissingAndNullOptionalFieldsTakeDefaults) {
  std::string text = absl::StrCat(
      MinimalDoc(), "\n",
      MinimalDoc(R"(,"influencer_score":null,"initial_influencer_score":null,)"
                 R"("probability":null,"bucket_span":null,"is_interim":null)"),
      "\n");
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = clout::LoadString(store, text);
  ASSERT_TRUE(report.ok()) << report.status();
  Row expected =
      MakeRow("f", "v", 1454943600000, kMissing, kMissing, kMissing, 0, false);
  // Both documents are the same result (same identity, same values): the
  // second supersedes the first.
  EXPECT_THAT(RowsOf(store, "e"), ElementsAre(expected));
  EXPECT_EQ(report->influencers_added, 1u);
  EXPECT_EQ(report->replaced, 1u);
  // The one canonical missing value, which no document can hold.
  EXPECT_EQ(RowsOf(store, "e")[0].score, Bits(kMissing));
  EXPECT_TRUE(std::isnan(kMissing));
}

TEST(LoaderFieldTest, MissingDoublesSurviveAnIdenticalReload) {
  // A reload of the same documents changes nothing: missing equals missing.
  const std::string text = absl::StrCat(MinimalDoc(R"(,"probability":0.5)"), "\n");
  InfluencerStore store;
  ASSERT_TRUE(clout::LoadString(store, text).ok());
  absl::StatusOr<LoadReport> again = clout::LoadString(store, text);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->unchanged, 1u);
  EXPECT_THAT(RowsOf(store, "e"),
              ElementsAre(MakeRow("f", "v", 1454943600000, kMissing, kMissing,
                                  0.5, 0, false)));
  // A value where there was none is a change.
  absl::StatusOr<LoadReport> scored = clout::LoadString(
      store, absl::StrCat(MinimalDoc(R"(,"probability":0.5,"influencer_score":0)"), "\n"));
  ASSERT_TRUE(scored.ok()) << scored.status();
  EXPECT_EQ(scored->replaced, 1u);
  EXPECT_EQ(RowsOf(store, "e")[0].score, 0u);
}

TEST(LoaderFieldTest, UnknownKeysAndEmptyStrings) {
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = clout::LoadString(
      store,
      R"({"x":[{"y":{"z":[1,2,3]}}],"job_id":"u","result_type":"influencer",)"
      R"("influencer_field_name":"","influencer_field_value":"",)"
      R"("timestamp":5,"is_interim":true,"bucket_span":0,"w\"q":1,"\u006aob":7})");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(RowsOf(store, "u"),
              ElementsAre(MakeRow("", "", 5, kMissing, kMissing, kMissing, 0,
                                  true)));
}

TEST(LoaderFieldTest, EscapedKeysAreRecognised) {
  // "\u006a" is "j": the key is job_id.
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = clout::LoadString(
      store,
      R"({"\u006aob_id":"esc","result_type":"influencer",)"
      R"("influencer_field_name":"f","influencer_field_value":"v",)"
      R"("influencer_sc\u006fre":7.5,"timestamp":1})");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(RowsOf(store, "esc"),
              ElementsAre(MakeRow("f", "v", 1, 7.5, kMissing, kMissing, 0,
                                  false)));
}

// ---------------------------------------------------------------------------
// 4. Tolerance.

TEST(LoaderToleranceTest, BomCrlfBlankLinesNoFinalNewline) {
  std::string text = absl::StrCat("\xEF\xBB\xBF", "\r\n  \n", kDocA,
                                  "\r\n\r\n   \r\n\t\n", kDocB, "\r\n \t \n",
                                  kDocC);
  for (size_t chunk : {size_t{4096}, size_t{16} << 20}) {
    InfluencerStore store;
    LoadOptions options = Named("tol.ndjson");
    options.chunk_bytes = chunk;
    absl::StatusOr<LoadReport> report =
        clout::LoadString(store, text, options);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->format, DumpFormat::kNdjson);
    EXPECT_EQ(report->documents, 3u);
    EXPECT_EQ(RowsOf(store, "fmt"), ExpectedFormatRows());
  }
  // Line numbers still count the BOM line and blank lines.
  InfluencerStore store;
  std::string bad = absl::StrCat(
      "\xEF\xBB\xBF", "\r\n  \n", kDocA, "\r\n\r\n",
      MinimalDoc(R"(,"is_interim":1)"), "\r\n");
  ExpectLoadError(clout::LoadString(store, bad, Named("tol.ndjson")), 400,
                  "mapper_parsing_exception",
                  {"tol.ndjson:5: field [is_interim]"});
}

TEST(LoaderToleranceTest, BomBeforeOtherFormats) {
  for (const FormatCase& fc : FormatCases()) {
    SCOPED_TRACE(fc.name);
    InfluencerStore store;
    absl::StatusOr<LoadReport> report = clout::LoadString(
        store, absl::StrCat("\xEF\xBB\xBF\r\n", fc.text));
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->format, fc.format);
    EXPECT_EQ(RowsOf(store, "fmt"), ExpectedFormatRows());
  }
}

TEST(LoaderToleranceTest, FiveMegabyteValueRoundTrips) {
  // 5 MB of varied text: ASCII, multi-byte UTF-8, quotes, backslashes and
  // control characters (which are escaped in the JSON).
  std::string value;
  value.reserve(5 << 20);
  std::mt19937_64 random(7);
  const char* pieces[] = {"a", "Z", "0", " ", "\"", "\\", "\n", "\t",
                          "\x01", "\xC3\xA9", "\xE2\x82\xAC",
                          "\xF0\x9F\x98\x80", "/", "{", "}", "[", ","};
  while (value.size() < (5u << 20)) {
    value += pieces[random() % std::size(pieces)];
  }
  std::string big =
      InfluencerDoc("big", "blob", value, 1454943600000, 1.5, 2.5, 0.25, 60,
                    false);
  ASSERT_GT(big.size(), 5u << 20);
  std::string small =
      InfluencerDoc("big", "host", "h", 1, 3.5, 4.5, 0.5, 60, true);
  std::string small2 =
      InfluencerDoc("big", "host", "h2", 1, 3.5, 4.5, 0.5, 60, true);
  std::string text = absl::StrCat(small, "\n", big, "\n", small2);
  std::vector<Row> expected = {
      MakeRow("host", "h", 1, 3.5, 4.5, 0.5, 60, true),
      MakeRow("blob", value, 1454943600000, 1.5, 2.5, 0.25, 60, false),
      MakeRow("host", "h2", 1, 3.5, 4.5, 0.5, 60, true)};
  std::string path = WriteTempFile("big.ndjson", text);
  for (size_t chunk : {size_t{4096}, size_t{16} << 20}) {
    SCOPED_TRACE(chunk);
    LoadOptions options;
    options.chunk_bytes = chunk;
    InfluencerStore from_string, from_file;
    absl::StatusOr<LoadReport> report =
        clout::LoadString(from_string, text, options);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->bytes, text.size());
    std::vector<Row> rows = RowsOf(from_string, "big");
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_TRUE(rows[1].value == value) << "the 5 MB value changed";
    EXPECT_EQ(rows, expected);
    report = clout::LoadFile(from_file, path, options);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(RowsOf(from_file, "big"), expected);
  }
  // The same document in a JSON array.
  InfluencerStore store;
  absl::StatusOr<LoadReport> report =
      clout::LoadString(store, absl::StrCat("[", small, ",", big, "]"));
  ASSERT_TRUE(report.ok()) << report.status();
  std::vector<Row> rows = RowsOf(store, "big");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_TRUE(rows[1].value == value);
}

// A dump of many lines of varied length (some longer than a 4096-byte chunk),
// with CRLF and blank lines mixed in.
std::string VariedDump(int lines, std::vector<Row>* expected) {
  std::mt19937_64 random(12345);
  std::string text;
  for (int i = 0; i < lines; ++i) {
    size_t length = random() % 8 == 0 ? 3000 + random() % 9000
                                      : random() % 300;
    std::string value(length, 'x');
    for (char& c : value) c = static_cast<char>('a' + random() % 26);
    absl::StrAppend(&value, "#", i);
    double score = static_cast<double>(random() % 10000) / 100.0;
    int64_t ts = 1454943600000 + static_cast<int64_t>(random() % 1000) * 600000;
    bool interim = random() % 5 == 0;
    std::string name = absl::StrCat("field", i % 7);
    absl::StrAppend(&text, InfluencerDoc("varied", name, value, ts, score,
                                         score / 2, 1.0 / (i + 1), 600,
                                         interim));
    expected->push_back(
        MakeRow(name, value, ts, score, score / 2, 1.0 / (i + 1), 600, interim));
    switch (random() % 6) {
      case 0: text += "\r\n"; break;
      case 1: text += "\n\n"; break;
      case 2: text += "\n   \n"; break;
      default: text += "\n"; break;
    }
  }
  return text;
}

TEST(LoaderToleranceTest, LinesStraddlingChunkBoundaries) {
  std::vector<Row> expected;
  std::string text = VariedDump(1500, &expected);
  ASSERT_GT(text.size(), 20u * 4096);
  std::string path = WriteTempFile("varied.ndjson", text);

  InfluencerStore reference;
  absl::StatusOr<LoadReport> reference_report =
      clout::LoadFile(reference, path);
  ASSERT_TRUE(reference_report.ok()) << reference_report.status();
  std::vector<Row> reference_rows = RowsOf(reference, "varied");
  ASSERT_EQ(reference_rows, expected);

  for (size_t chunk : {size_t{0}, size_t{1}, size_t{4096}, size_t{4097},
                       size_t{10000}}) {
    SCOPED_TRACE(chunk);
    LoadOptions options;
    options.chunk_bytes = chunk;  // below 4096 the loader uses 4096
    InfluencerStore from_file, from_string;
    absl::StatusOr<LoadReport> report =
        clout::LoadFile(from_file, path, options);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->bytes, text.size());
    EXPECT_EQ(report->documents, 1500u);
    EXPECT_EQ(report->influencers_added, 1500u);
    EXPECT_EQ(RowsOf(from_file, "varied"), reference_rows);
    report = clout::LoadString(from_string, text, options);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(RowsOf(from_string, "varied"), reference_rows);
  }

  // An error far into the file names the right line with a small chunk.
  std::string bad = absl::StrCat(text, "\n", MinimalDoc(R"(,"probability":"x")"),
                                 "\n");
  int64_t bad_line = std::count(text.begin(), text.end(), '\n') + 2;
  LoadOptions options = Named("varied.ndjson");
  options.chunk_bytes = 4096;
  InfluencerStore store;
  ExpectLoadError(clout::LoadString(store, bad, options), 400,
                  "mapper_parsing_exception",
                  {absl::StrCat("varied.ndjson:", bad_line,
                                ": field [probability]: expected a number, "
                                "found a string")});
}

// A copy of `text` that ends where an unreadable page begins: reading one
// byte past its end crashes.
class GuardedText {
 public:
  explicit GuardedText(absl::string_view text) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    size_ = (text.size() + page - 1) / page * page + page;
    void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(p, MAP_FAILED);
    base_ = static_cast<char*>(p);
    EXPECT_EQ(mprotect(base_ + size_ - page, page, PROT_NONE), 0);
    char* begin = base_ + size_ - page - text.size();
    std::memcpy(begin, text.data(), text.size());
    view_ = absl::string_view(begin, text.size());
  }
  ~GuardedText() { munmap(base_, size_); }
  GuardedText(const GuardedText&) = delete;
  GuardedText& operator=(const GuardedText&) = delete;
  absl::string_view view() const { return view_; }

 private:
  char* base_ = nullptr;
  size_t size_ = 0;
  absl::string_view view_;
};

// LoadString parses the string in place, except for its last bytes, which
// lack simdjson's padding and are copied: wherever that cut falls (inside
// the last line, at its end, in trailing blanks, in a malformed or an
// unterminated last line), the load equals one that copies everything
// (LoadFile, with a small and a large chunk).
TEST(LoaderToleranceTest, InPlaceParsingEqualsCopyingAtEveryCut) {
  const std::string body = MinimalDocAt("first", 1) + "\n" +
                           MinimalDocAt("second", 2) + "\r\n";
  const std::vector<std::string> lasts = {
      MinimalDocAt("last", 3),
      MinimalDocAt("last", 3) + "\n",
      MinimalDocAt("last", 3) + "\n  \n\t",
      MinimalDocAt("last", 3) + " {}",
      R"({"job_id":"e","result_type":"influencer","influencer_field_name":)",
      R"({"job_id":"e","result_type":"influencer","timestamp":tru)",
      R"({"job_id":"e","result_type":"influencer","timestamp":12)",
      "{}}",
      R"({"job_id":"e","result_type":"influencer","timestamp":tru)" "\n",
      R"({"job_id":"e","result_type":"influencer","timestamp":1e)" "\n",
      R"({"job_id":"e","result_type":"influencer","influencer_field_name":"f)"
      "\n",
  };
  for (const std::string& last : lasts) {
    for (size_t pad = 0; pad < 136; ++pad) {  // past simdjson's 64 bytes
      // `pad` more bytes in the last line's value move the cut through it.
      std::string text = body + MinimalDocAt(std::string(pad, 'p'), 4) +
                         "\n" + last;
      SCOPED_TRACE(absl::StrCat(last, " pad ", pad));
      std::string path = WriteTempFile("cut.ndjson", text);
      // Parsing must never read past the string's end.
      const GuardedText guarded(text);
      const absl::string_view view = guarded.view();
      for (bool lenient : {false, true}) {
        for (size_t chunk : {size_t{4096}, size_t{16} << 20}) {
          LoadOptions options = Named("cut.ndjson", lenient);
          options.chunk_bytes = chunk;
          InfluencerStore from_string, from_file;
          absl::StatusOr<LoadReport> a = LoadString(from_string, view, options);
          absl::StatusOr<LoadReport> b = LoadFile(from_file, path, options);
          ASSERT_EQ(a.ok(), b.ok()) << a.status() << " vs " << b.status();
          if (!a.ok()) {
            EXPECT_EQ(a.status(), b.status());
            continue;
          }
          EXPECT_EQ(a->bytes, text.size());
          EXPECT_EQ(a->bytes, b->bytes);
          EXPECT_EQ(a->documents, b->documents);
          EXPECT_EQ(a->rejected, b->rejected);
          EXPECT_EQ(a->errors, b->errors);
          EXPECT_EQ(RowsOf(from_string, "e"), RowsOf(from_file, "e"));
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------
// 5. Errors.

struct ErrorCase {
  std::string name;
  std::string line;  // placed on line 2 of an NDJSON dump
  std::string type;
  std::vector<std::string> substrings;
};

TEST(LoaderErrorTest, BadDocumentsOnAnNdjsonLine) {
  const std::string mapper = "mapper_parsing_exception";
  const std::string parse = "x_content_parse_exception";
  const std::string full = R"({"job_id":"e","result_type":"influencer",)"
                           R"("influencer_field_name":"f",)"
                           R"("influencer_field_value":"v",)";
  const std::vector<ErrorCase> cases = {
      {"malformed", R"({"job_id":"e","result_type":"influencer",)", parse,
       {"dump.ndjson:2: malformed JSON"}},
      {"malformed value", MinimalDoc(R"(,"influencer_score":tru)"), parse,
       {"dump.ndjson:2: malformed JSON"}},
      {"two values", MinimalDoc() + " {}", parse,
       {"dump.ndjson:2: malformed JSON: content after the document, at "
        "column ", ": {}"}},
      // simdjson calls these "ended early in an object": say what is there.
      {"junk after", MinimalDoc() + " x", parse,
       {"dump.ndjson:2: malformed JSON: content after the document, at "
        "column ", ": x"}},
      {"bracket after", MinimalDoc() + "]", parse,
       {"dump.ndjson:2: malformed JSON: content after the document, at "
        "column ", ": ]"}},
      {"NUL after", MinimalDoc() + std::string("\0", 1) + "\x01\xC3", parse,
       {"dump.ndjson:2: malformed JSON: content after the document, at "
        "column ", ": \\x00\\x01\\xc3"}},
      {"brace in a string", R"({"job_id":"}\"{"} 5)", parse,
       {"dump.ndjson:2: malformed JSON: content after the document, at "
        "column 19: 5"}},
      {"malformed false", MinimalDoc(R"(,"is_interim":fals)"), parse,
       {"dump.ndjson:2: malformed JSON"}},
      {"malformed null", MinimalDoc(R"(,"probability":nul)"), parse,
       {"dump.ndjson:2: malformed JSON"}},
      {"malformed null string", MinimalDoc(R"(,"is_interim":nulll)"),
       parse, {"dump.ndjson:2: malformed JSON"}},
      {"malformed number", MinimalDoc(R"(,"influencer_score":-)"), parse,
       {"dump.ndjson:2: malformed JSON"}},
      {"malformed number 2", MinimalDoc(R"(,"bucket_span":01)"), parse,
       {"dump.ndjson:2: malformed JSON"}},
      {"malformed number 3", full + R"("timestamp":1.2.3})", parse,
       {"dump.ndjson:2: malformed JSON"}},
      {"bad escape",
       R"({"job_id":"e","result_type":"influencer","influencer_field_name":"a\qb",)"
       R"("influencer_field_value":"v","timestamp":1})",
       parse, {"dump.ndjson:2: malformed JSON in field [influencer_field_name]: "}},
      {"bad number names its field", MinimalDoc(R"(,"probability":1.2.3)"),
       parse, {"dump.ndjson:2: malformed JSON in field [probability]: "}},
      {"bad UTF-8", MinimalDoc(",\"influencer_field_value\":\"\xC3\x28\""), parse,
       {"dump.ndjson:2: malformed JSON"}},
      {"array line", "[1,2,3]", mapper,
       {"dump.ndjson:2: ", "an array, not a JSON object"}},
      {"string line", "\"text\"", mapper,
       {"dump.ndjson:2: ", "a string, not a JSON object"}},
      {"score string", MinimalDoc(R"(,"influencer_score":"high")"), mapper,
       {"dump.ndjson:2: field [influencer_score]: expected a number, found a "
        "string"}},
      {"initial score bool",
       MinimalDoc(R"(,"initial_influencer_score":true)"), mapper,
       {"dump.ndjson:2: field [initial_influencer_score]: expected a number, "
        "found a boolean"}},
      {"probability array", MinimalDoc(R"(,"probability":[0.5])"), mapper,
       {"dump.ndjson:2: field [probability]: expected a number, found an "
        "array"}},
      {"timestamp bool", full + R"("timestamp":true})", mapper,
       {"dump.ndjson:2: field [timestamp]: expected a number or a string, "
        "found a boolean"}},
      {"timestamp object", full + R"("timestamp":{}})", mapper,
       {"dump.ndjson:2: field [timestamp]: ", "found an object"}},
      {"timestamp text", full + R"("timestamp":"yesterday"})", mapper,
       {"dump.ndjson:2: field [timestamp]: ", "yesterday",
        "neither epoch milliseconds nor an ISO 8601 date"}},
      {"timestamp bad date", full + R"("timestamp":"2016-02-30T00:00:00Z"})",
       mapper, {"dump.ndjson:2: field [timestamp]: ", "2016-02-30"}},
      {"is_interim string", MinimalDoc(R"(,"is_interim":"false")"), mapper,
       {"dump.ndjson:2: field [is_interim]: expected a boolean, found a "
        "string"}},
      {"is_interim number", MinimalDoc(R"(,"is_interim":0)"), mapper,
       {"dump.ndjson:2: field [is_interim]: expected a boolean, found a "
        "number"}},
      {"bucket_span string", MinimalDoc(R"(,"bucket_span":"600")"), mapper,
       {"dump.ndjson:2: field [bucket_span]: expected a number, found a "
        "string"}},
      {"job_id number",
       R"({"job_id":42,"result_type":"influencer","influencer_field_name":"f",)"
       R"("influencer_field_value":"v","timestamp":1})",
       mapper,
       {"dump.ndjson:2: field [job_id]: expected a string, found a number"}},
      {"field name number",
       R"({"job_id":"e","result_type":"influencer","influencer_field_name":1,)"
       R"("influencer_field_value":"v","timestamp":1})",
       mapper,
       {"dump.ndjson:2: field [influencer_field_name]: expected a string, "
        "found a number"}},
      {"field value object",
       R"({"job_id":"e","result_type":"influencer","influencer_field_name":"f",)"
       R"("influencer_field_value":{"a":1},"timestamp":1})",
       mapper,
       {"dump.ndjson:2: field [influencer_field_value]: expected a string, "
        "found an object"}},
      {"result_type number",
       R"({"job_id":"e","result_type":1})", mapper,
       {"dump.ndjson:2: field [result_type]: expected a string, found a "
        "number"}},
      {"missing job_id",
       R"({"result_type":"influencer","influencer_field_name":"f",)"
       R"("influencer_field_value":"v","timestamp":1})",
       mapper, {"dump.ndjson:2: missing required field [job_id]"}},
      {"null job_id",
       R"({"job_id":null,"result_type":"influencer","influencer_field_name":"f",)"
       R"("influencer_field_value":"v","timestamp":1})",
       mapper, {"dump.ndjson:2: missing required field [job_id]"}},
      {"missing field name",
       R"({"job_id":"e","result_type":"influencer",)"
       R"("influencer_field_value":"v","timestamp":1})",
       mapper,
       {"dump.ndjson:2: missing required field [influencer_field_name]"}},
      {"missing field value",
       R"({"job_id":"e","result_type":"influencer","influencer_field_name":"f",)"
       R"("timestamp":1})",
       mapper,
       {"dump.ndjson:2: missing required field [influencer_field_value]"}},
      {"null field value",
       R"({"job_id":"e","result_type":"influencer","influencer_field_name":"f",)"
       R"("influencer_field_value":null,"timestamp":1})",
       mapper,
       {"dump.ndjson:2: missing required field [influencer_field_value]"}},
      {"missing timestamp",
       R"({"job_id":"e","result_type":"influencer","influencer_field_name":"f",)"
       R"("influencer_field_value":"v"})",
       mapper, {"dump.ndjson:2: missing required field [timestamp]"}},
      {"null timestamp", full + R"("timestamp":null})", mapper,
       {"dump.ndjson:2: missing required field [timestamp]"}},
      {"score 1e400", MinimalDoc(R"(,"influencer_score":1e400)"), mapper,
       {"dump.ndjson:2: field [influencer_score]: number 1e400 is out of "
        "range for a double"}},
      {"probability -1e400", MinimalDoc(R"(,"probability":-1e400 )"), mapper,
       {"dump.ndjson:2: field [probability]: number -1e400 is out of range"}},
      {"timestamp 1e30", full + R"("timestamp":1e30})", mapper,
       {"dump.ndjson:2: field [timestamp]: number 1e30 is not epoch "
        "milliseconds"}},
      {"timestamp 2^64", full + R"("timestamp":99999999999999999999})", mapper,
       {"dump.ndjson:2: field [timestamp]: number 99999999999999999999 is "
        "not epoch milliseconds"}},
      {"timestamp beyond the date range",
       full + R"("timestamp":8640000000000001})", mapper,
       {"dump.ndjson:2: field [timestamp]: number 8640000000000001"}},
      {"timestamp string 2^64",
       full + R"("timestamp":"99999999999999999999"})", mapper,
       {"dump.ndjson:2: field [timestamp]: ", "99999999999999999999"}},
      {"timestamp fraction out of range",
       full + R"("timestamp":9007199254740993.5})", mapper,
       {"dump.ndjson:2: field [timestamp]: number 9007199254740993.5 is not "
        "epoch milliseconds"}},
      {"bucket_span 2^64", MinimalDoc(R"(,"bucket_span":99999999999999999999)"),
       mapper,
       {"dump.ndjson:2: field [bucket_span]: number 99999999999999999999 is "
        "not a non-negative integer"}},
      {"bucket_span negative", MinimalDoc(R"(,"bucket_span":-600)"), mapper,
       {"dump.ndjson:2: field [bucket_span]: number -600 is not a "
        "non-negative integer"}},
      {"bucket_span fraction", MinimalDoc(R"(,"bucket_span":600.5)"), mapper,
       {"dump.ndjson:2: field [bucket_span]: number 600.5 is not a "
        "non-negative integer"}},
      {"duplicate score",
       MinimalDoc(R"(,"influencer_score":1.0,"influencer_score":2.0)"), mapper,
       {"dump.ndjson:2: field [influencer_score]: appears more than once"}},
      {"duplicate timestamp", MinimalDoc(R"(,"timestamp":1)"), mapper,
       {"dump.ndjson:2: field [timestamp]: appears more than once"}},
      {"duplicate job_id", MinimalDoc(R"(,"job_id":"other")"), mapper,
       {"dump.ndjson:2: duplicate field [job_id]"}},
  };
  for (const ErrorCase& ec : cases) {
    SCOPED_TRACE(ec.name);
    std::string text =
        absl::StrCat(MinimalDoc(), "\n", ec.line, "\n",
                     MinimalDocAt("w", 1454943600000), "\n");
    InfluencerStore store;
    ExpectLoadError(clout::LoadString(store, text, Named("dump.ndjson")), 400,
                    ec.type, ec.substrings);
    EXPECT_EQ(store.Current()->generation, 0u);
    EXPECT_EQ(store.Current()->PlainJob("e"), nullptr);

    // Lenient: the bad line is skipped and reported, the others load.
    absl::StatusOr<LoadReport> report =
        clout::LoadString(store, text, Named("dump.ndjson", true));
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->rejected, 1u);
    ASSERT_EQ(report->errors.size(), 1u);
    for (const std::string& s : ec.substrings) {
      EXPECT_THAT(report->errors[0], HasSubstr(s));
    }
    EXPECT_EQ(RowCount(store, "e"), 2u);
  }
}

// `text`, an NDJSON dump of job "e" whose first line is malformed, fails
// naming line 1; lenient, line 1 is skipped and `rows` rows load.
void ExpectBadFirstLine(const std::string& text, size_t rows) {
  InfluencerStore store;
  ExpectLoadError(clout::LoadString(store, text, Named("dump.ndjson")), 400,
                  "x_content_parse_exception",
                  {"dump.ndjson:1: malformed JSON"});
  absl::StatusOr<LoadReport> report =
      clout::LoadString(store, text, Named("dump.ndjson", true));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->format, DumpFormat::kNdjson);
  EXPECT_EQ(report->rejected, 1u);
  EXPECT_EQ(RowCount(store, "e"), rows);
}

TEST(LoaderErrorTest, MalformedFirstLineNamesTheLine) {
  const std::string lines[] = {
      R"({"job_id": "e", oops})",
      R"({"job_id":"e","result_type":"influencer","influencer_field_name":"f)",
      R"({"job_id":"e"}})",
      // Left open, as a pretty-printed document's first line is: the next
      // line holding one object shows it is NDJSON cut short.
      R"({"job_id":"e","result_type":"influencer")",
      R"({"job_id":"e","x":[1,{"y":"}"},)",
      "{\r\n\r",
  };
  for (const std::string& line : lines) {
    SCOPED_TRACE(line);
    ExpectBadFirstLine(absl::StrCat(line, "\n", MinimalDoc(), "\n"), 1);
  }
}

// A first line left open and then lines no single document could hold (two
// objects without a comma between them) is NDJSON cut short.
TEST(LoaderErrorTest, FirstLineCutShortBeforeTwoObjectLines) {
  ExpectBadFirstLine(
      absl::StrCat(R"({"job_id":"e","result_type":"influencer")", "\n",
                   MinimalDocAt("a", 1000), "\n\n", MinimalDocAt("b", 2000),
                   "\n"),
      2);
}

// Valid documents that span lines with one element per line: the line after
// the first holds one whole object, yet the source is one document (what
// follows that line closes it), not NDJSON with a bad first line.
TEST(LoaderTest, DocumentWithOneElementPerLineIsReadWhole) {
  const std::string a = MinimalDocAt("a", 1000);
  const std::string b = MinimalDocAt("b", 2000);
  const std::string hit_a =
      absl::StrCat(R"({"_index":"i","_id":"1","_source":)", a, "}");
  const std::string hit_b =
      absl::StrCat(R"({"_index":"i","_id":"2","_source":)", b, "}");
  struct Case {
    std::string text;
    DumpFormat format;
    size_t rows;
  };
  const Case cases[] = {
      {absl::StrCat("{\"count\":1,\"influencers\":[\n", a, "\n]}\n"),
       DumpFormat::kInfluencersResponse, 1},
      {absl::StrCat("{\"count\":2,\"influencers\":[\n", a, ",\n", b, "\n]}"),
       DumpFormat::kInfluencersResponse, 2},
      {absl::StrCat("{\"count\":2,\"influencers\":[\n", a, "\n,", b, "\n]}\n"),
       DumpFormat::kInfluencersResponse, 2},
      {absl::StrCat("{\"count\":1,\"influencers\":[\r\n", a, "\r\n\r\n]}\r\n"),
       DumpFormat::kInfluencersResponse, 1},
      {absl::StrCat("{\"hits\":{\"hits\":[\n", hit_a, "\n]}}\n"),
       DumpFormat::kSearchResponse, 1},
      {absl::StrCat("{\"hits\":{\"hits\":[\n", hit_a, "\n,\n", hit_b, "\n]}}\n"),
       DumpFormat::kSearchResponse, 2},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    InfluencerStore store;
    absl::StatusOr<LoadReport> report =
        clout::LoadString(store, c.text, Named("doc.json"));
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->format, c.format);
    EXPECT_EQ(RowCount(store, "e"), c.rows);
  }
}

TEST(LoaderErrorTest, FormatComesFromTheFirstGoodLine) {
  std::string text = absl::StrCat("{oops}\n", Hit(kDocA, 1, true), "\n",
                                  Hit(kDocC, 3, false), "\n");
  InfluencerStore store;
  ExpectLoadError(clout::LoadString(store, text, Named("h")), 400,
                  "x_content_parse_exception", {"h:1: malformed JSON"});
  absl::StatusOr<LoadReport> report =
      clout::LoadString(store, text, Named("h", true));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->format, DumpFormat::kSearchHitsNdjson);
  EXPECT_EQ(report->rejected, 1u);
  // A hit with two _source members is refused, not read twice.
  text = absl::StrCat(Hit(kDocA, 1, false), "\n",
                      R"({"_index":"i","_source":)", kDocA, R"(,"_source":)",
                      kDocA, "}\n");
  ExpectLoadError(clout::LoadString(store, text, Named("hits")), 400,
                  "mapper_parsing_exception",
                  {"hits:2: duplicate field [_source]"});
  std::vector<Row> expected = ExpectedFormatRows();
  EXPECT_THAT(RowsOf(store, "fmt"), ElementsAre(expected[0], expected[2]));

  // Nothing but bad lines: NDJSON, all rejected.
  InfluencerStore empty;
  report = clout::LoadString(empty, "{oops}\n[1]\n", Named("h", true));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->format, DumpFormat::kNdjson);
  EXPECT_EQ(report->rejected, 2u);
}

TEST(LoaderErrorTest, SearchHitWithoutSource) {
  std::string text =
      absl::StrCat(Hit(kDocA, 1, false), "\n", R"({"_index":"i","_id":"2"})",
                   "\n");
  InfluencerStore store;
  ExpectLoadError(clout::LoadString(store, text, Named("hits")), 400,
                  "mapper_parsing_exception", {"hits:2: ", "_source"});

  // The same hit first: a bad hit of a hits file, not a document of an
  // unknown kind whose file then rejects every hit after it.
  text = absl::StrCat(R"({"_index":"i","_id":"2"})", "\n", Hit(kDocA, 1, false),
                      "\n");
  ExpectLoadError(clout::LoadString(store, text, Named("hits")), 400,
                  "mapper_parsing_exception",
                  {"hits:1: search hit without _source"});
  absl::StatusOr<LoadReport> report =
      clout::LoadString(store, text, Named("hits", true));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->format, DumpFormat::kSearchHitsNdjson);
  EXPECT_EQ(report->rejected, 1u);
  EXPECT_EQ(report->influencers_added, 1u);
}

TEST(LoaderErrorTest, FirstLineOfSeveralActionsIsABadActionLine) {
  // Was read as a document without result_type and skipped unseen.
  std::string text =
      absl::StrCat(R"({"index":{},"create":{}})", "\n", MinimalDoc(), "\n");
  InfluencerStore store;
  ExpectLoadError(clout::LoadString(store, text, Named("bulk")), 400,
                  "mapper_parsing_exception",
                  {"bulk:1: expected a bulk action line"});
}

TEST(LoaderErrorTest, SingleDocumentFormatsNameTheByteOffset) {
  std::string bad = MinimalDoc(R"(,"influencer_score":"high")");
  const std::string prefixes[] = {"[", R"({"count":2,"influencers":[)"};
  const std::string suffixes[] = {"]", "]}"};
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(prefixes[i]);
    std::string text =
        absl::StrCat(prefixes[i], MinimalDoc(), ",\n  ", bad, suffixes[i]);
    size_t offset = text.find(bad);
    InfluencerStore store;
    ExpectLoadError(
        clout::LoadString(store, text, Named("dump.json")), 400,
        "mapper_parsing_exception",
        {absl::StrCat("dump.json: at byte ", offset,
                      ": field [influencer_score]: expected a number, found a "
                      "string")});
    EXPECT_EQ(store.Current()->generation, 0u);
    // Lenient: skipped.
    absl::StatusOr<LoadReport> report =
        clout::LoadString(store, text, Named("dump.json", true));
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->rejected, 1u);
    ASSERT_EQ(report->errors.size(), 1u);
    EXPECT_THAT(report->errors[0],
                HasSubstr(absl::StrCat("dump.json: at byte ", offset)));
    EXPECT_EQ(RowCount(store, "e"), 1u);
  }
}

// Rows of more jobs than the loader keeps at hand (its 16 recent jobs, and
// the batch's 4), interleaved: each job gets its own rows in order, and
// LoadReport::jobs names each job once, in first-seen order.
TEST(LoaderFormatTest, ManyInterleavedJobs) {
  constexpr int kJobs = 40;
  std::vector<int> order;
  for (int j = 0; j < kJobs; ++j) order.push_back(j);
  order.push_back(2);
  order.push_back(0);
  std::string text;
  std::vector<std::string> expected_jobs;
  for (int round = 0; round < 3; ++round) {
    for (int j : order) {
      const std::string job = absl::StrCat("job", j);
      if (round == 0 && std::find(expected_jobs.begin(), expected_jobs.end(),
                                  job) == expected_jobs.end()) {
        expected_jobs.push_back(job);
      }
      absl::StrAppend(&text,
                      InfluencerDoc(job, "f", absl::StrCat("r", round, job),
                                    1000, 1.5, 1.5, 0.5, 60, false),
                      "\n");
    }
  }
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = LoadString(store, text);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->jobs, expected_jobs);
  EXPECT_EQ(report->documents, 3 * order.size());
  // Jobs 0 and 2 repeat a row per round: the later copy replaces it.
  EXPECT_EQ(report->replaced, 6u);
  for (int j = 0; j < kJobs; ++j) {
    std::vector<Row> rows = RowsOf(store, absl::StrCat("job", j));
    ASSERT_EQ(rows.size(), 3u) << j;
    for (int round = 0; round < 3; ++round) {
      EXPECT_EQ(rows[round], MakeRow("f", absl::StrCat("r", round, "job", j),
                                     1000, 1.5, 1.5, 0.5, 60, false));
    }
  }
}

// An empty job id is a job like any other (the loader's cache of recent
// jobs starts with empty entries, which must not pass for it).
TEST(LoaderFormatTest, EmptyJobIdIsAJob) {
  const std::string text = absl::StrCat(
      InfluencerDoc("", "f", "v", 1000, 1.5, 1.5, 0.5, 60, false), "\n",
      InfluencerDoc("a", "f", "v", 1000, 1.5, 1.5, 0.5, 60, false), "\n",
      InfluencerDoc("", "f", "w", 1000, 1.5, 1.5, 0.5, 60, false), "\n");
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = LoadString(store, text);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(report->jobs, ElementsAre("", "a"));
  EXPECT_EQ(RowCount(store, ""), 2u);
  EXPECT_EQ(RowCount(store, "a"), 1u);
}

// A JSON array is read element by element: elements straddle chunk
// boundaries, hold strings with brackets, commas and escaped quotes, and
// nested values in unknown fields; the rows equal those of the same
// documents as NDJSON, from a file in small chunks and from a string.
TEST(LoaderToleranceTest, ArraysStreamElementByElement) {
  std::vector<Row> expected;
  const std::string ndjson = VariedDump(400, &expected);
  std::vector<std::string> docs;
  for (absl::string_view line : absl::StrSplit(ndjson, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty()) docs.emplace_back(line);
  }
  ASSERT_EQ(docs.size(), 400u);
  // Unknown fields with nesting and tricky strings, before the last brace.
  const std::string extra =
      R"(,"x":{"a":[1,{"b":"]}\",["}]},"c":"{[,")";
  std::string array = "[\n";
  for (size_t i = 0; i < docs.size(); ++i) {
    std::string doc = docs[i];
    if (i % 3 == 0) doc.insert(doc.size() - 1, extra);
    absl::StrAppend(&array, i == 0 ? "  " : " ,\n\t", doc);
  }
  array += "\n]\n";
  std::string path = WriteTempFile("stream.json", array);
  for (size_t chunk : {size_t{4096}, size_t{5000}, size_t{16} << 20}) {
    SCOPED_TRACE(chunk);
    LoadOptions options;
    options.chunk_bytes = chunk;
    InfluencerStore from_file, from_string;
    absl::StatusOr<LoadReport> report = LoadFile(from_file, path, options);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->format, DumpFormat::kJsonArray);
    EXPECT_EQ(report->bytes, array.size());
    EXPECT_EQ(report->documents, 400u);
    EXPECT_EQ(RowsOf(from_file, "varied"), expected);
    report = LoadString(from_string, array, options);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(RowsOf(from_string, "varied"), expected);
  }
  for (const char* empty : {"[]", " [ \n ] \n"}) {
    InfluencerStore store;
    absl::StatusOr<LoadReport> report = LoadString(store, empty);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->format, DumpFormat::kJsonArray);
    EXPECT_EQ(report->documents, 0u);
  }
}

// An array larger than the memory budget loads, as only one element at a
// time is held; an element longer than max_document_bytes is named by its
// byte offset.
TEST(LoaderToleranceTest, ArraysNeedNotFitInMemory) {
  std::string array = "[";
  for (int i = 0; i < 20000; ++i) {
    absl::StrAppend(&array, i ? "," : "",
                    MinimalDocAt(absl::StrCat("value-", i), 1000 + i));
  }
  array += "]";
  ASSERT_GT(array.size(), size_t{2} << 20);
  std::string path = WriteTempFile("big_array.json", array);
  LoadOptions options;
  options.chunk_bytes = 1 << 16;
  // Less than the file alone: reading it whole would exceed it.
  options.memory_budget_bytes = array.size();
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = LoadFile(store, path, options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->influencers_added, 20000u);

  LoadOptions small = Named("big.json");
  small.chunk_bytes = 4096;
  small.max_document_bytes = 8192;
  std::string long_element = absl::StrCat(
      "[", MinimalDoc(), ",", MinimalDocAt(std::string(20000, 'z'), 5), "]");
  InfluencerStore rejected;
  ExpectLoadError(LoadString(rejected, long_element, small), 400,
                  "x_content_parse_exception",
                  {absl::StrCat("big.json: at byte ", MinimalDoc().size() + 2,
                                ": document longer than max_document_bytes")});
}

// The array's own syntax: each mistake named by its byte offset, fatal
// even when lenient.
TEST(LoaderErrorTest, ArrayFramingErrorsNameTheByteOffset) {
  const std::string doc = MinimalDoc();
  struct Case {
    std::string text;
    uint64_t offset;
    std::string problem;
  };
  const Case cases[] = {
      {absl::StrCat("[", doc, " ", doc, "]"), 1 + doc.size() + 1,
       "expected ',' or ']' after an array element"},
      {absl::StrCat("[", doc, ",]"), 1 + doc.size() + 1,
       "expected an array element"},
      {absl::StrCat("[", doc, ",,", doc, "]"), 1 + doc.size() + 1,
       "expected an array element"},
      {absl::StrCat("[,", doc, "]"), 1, "expected an array element"},
      {absl::StrCat("[", doc, "  "), 1 + doc.size() + 2,
       "the array is not closed at the end of the input"},
      // (an unfinished element is named by where it starts)
      {absl::StrCat("[", doc, ",", doc.substr(0, 20)), 1 + doc.size() + 1,
       "the array is not closed at the end of the input"},
      {absl::StrCat("[", doc, "] ", doc), 1 + doc.size() + 2,
       "content after the end of the document"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    for (bool lenient : {false, true}) {
      InfluencerStore store;
      ExpectLoadError(
          LoadString(store, c.text, Named("a.json", lenient)), 400,
          "x_content_parse_exception",
          {absl::StrCat("a.json: at byte ", c.offset, ": malformed JSON: ",
                        c.problem)});
      EXPECT_EQ(store.Current()->generation, 0u);
    }
  }
  // Elements that are not objects are rejected one by one (lenient: skipped,
  // and a malformed scalar is a syntax error).
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = LoadString(
      store, absl::StrCat("[1, \"s\", null, [], ", doc, "]"), Named("a", true));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->rejected, 4u);
  EXPECT_EQ(RowCount(store, "e"), 1u);
  ASSERT_FALSE(report->errors.empty());
  EXPECT_THAT(report->errors[0],
              HasSubstr("a: at byte 1: document is a number, not a JSON object"));
  ExpectLoadError(LoadString(store, absl::StrCat("[tru, ", doc, "]"), Named("a", true)),
                  400, "x_content_parse_exception",
                  {"a: at byte 1: malformed JSON"});
}

TEST(LoaderErrorTest, MalformedSingleDocumentFailsEvenWhenLenient) {
  const std::string texts[] = {
      absl::StrCat("[", MinimalDoc(), R"(,{"a":])"),
      absl::StrCat("[", MinimalDoc(), ","),
      absl::StrCat("[", MinimalDoc(), "] x"),
      absl::StrCat(R"({"count":1,"influencers":[)", MinimalDoc(), "]"),
      absl::StrCat("{\n  \"count\": 1,\n  \"influencers\": [", MinimalDoc(),
                   "]]\n}"),
  };
  for (const std::string& text : texts) {
    SCOPED_TRACE(text);
    for (bool lenient : {false, true}) {
      InfluencerStore store;
      ExpectLoadError(clout::LoadString(store, text, Named("d.json", lenient)),
                      400, "x_content_parse_exception",
                      {"d.json", "malformed JSON"});
      EXPECT_EQ(store.Current()->generation, 0u);
    }
  }
}

TEST(LoaderErrorTest, ResponseWithoutItsArray) {
  InfluencerStore store;
  ExpectLoadError(
      clout::LoadString(store, "{\n\"hits\": {\"total\": 0}\n}", Named("r")),
      400, "x_content_parse_exception", {"r", "hits.hits"});
}

TEST(LoaderErrorTest, MissingFileIsAnIoException) {
  InfluencerStore store;
  const std::string path = TempPath("no/such/dump.ndjson");
  ExpectLoadError(clout::LoadFile(store, path), 500, "io_exception", {path});
  clout::MutationBatch batch;
  ExpectLoadError(clout::ParseFileInto(path, {}, &batch), 500, "io_exception",
                  {path});
  EXPECT_EQ(store.Current()->generation, 0u);
}

TEST(LoaderErrorTest, DirectoryIsAnIoException) {
  InfluencerStore store;
  const std::string dir = TempPath("a_directory");
  mkdir(dir.c_str(), 0755);
  ExpectLoadError(clout::LoadFile(store, dir), 500, "io_exception", {dir});
  EXPECT_EQ(store.Current()->generation, 0u);
}

TEST(LoaderErrorTest, EmptyAndWhitespaceOnlySourcesLoadNothing) {
  const std::string texts[] = {"", "\n", " \r\n\t\n  ", "\xEF\xBB\xBF",
                               "\xEF\xBB\xBF\n\n"};
  for (const std::string& text : texts) {
    SCOPED_TRACE(absl::CEscape(text));
    for (bool from_file : {false, true}) {
      InfluencerStore store;
      absl::StatusOr<LoadReport> report =
          from_file ? clout::LoadFile(store, WriteTempFile("empty", text))
                    : clout::LoadString(store, text);
      ASSERT_TRUE(report.ok()) << report.status();
      EXPECT_EQ(report->format, DumpFormat::kUnknown);
      EXPECT_EQ(report->documents, 0u);
      EXPECT_EQ(report->influencers_added, 0u);
      EXPECT_EQ(report->bytes, text.size());
      EXPECT_TRUE(report->jobs.empty());
      EXPECT_TRUE(report->skipped.empty());
      EXPECT_TRUE(store.Current()->jobs.empty());
    }
  }
}

TEST(LoaderErrorTest, NonDocumentRoots) {
  for (const std::string text : {"42", "\"text\"", "null", "true"}) {
    SCOPED_TRACE(text);
    InfluencerStore store;
    absl::StatusOr<LoadReport> report =
        clout::LoadString(store, text, Named("d"));
    ASSERT_FALSE(report.ok());
    EXPECT_EQ(clout::HttpStatusOf(report.status()), 400);
    EXPECT_THAT(std::string(report.status().message()), HasSubstr("d"));
  }
}

// ---------------------------------------------------------------------------
// 6. Atomicity and lenient mode.

std::string NumberedDump(absl::string_view job, int lines, int bad_line) {
  std::string text;
  for (int i = 1; i <= lines; ++i) {
    if (i == bad_line) {
      absl::StrAppend(
          &text,
          R"({"job_id":")", job,
          R"(","result_type":"influencer","influencer_field_name":"f",)"
          R"("influencer_field_value":"v","timestamp":"not a date"})",
          "\n");
    } else if (i % 10 == 0) {
      // Other result types register jobs.
      absl::StrAppend(&text, R"({"job_id":")", job,
                      R"(_other","result_type":"bucket","timestamp":1})",
                      "\n");
    } else {
      absl::StrAppend(&text,
                      InfluencerDoc(job, "f", absl::StrCat("v", i), i, i, i,
                                    0.5, 60, false),
                      "\n");
    }
  }
  return text;
}

TEST(LoaderAtomicityTest, StrictFailureLeavesTheStoreUnchanged) {
  InfluencerStore store;
  ASSERT_TRUE(clout::LoadFile(store, "data/it_ops_new_kpi.ndjson").ok());
  std::shared_ptr<const clout::StoreVersion> before = store.Current();
  ASSERT_EQ(before->generation, 1u);

  std::string text = NumberedDump("atomic", 100, 50);
  std::string path = WriteTempFile("atomic.ndjson", text);
  ExpectLoadError(clout::LoadString(store, text, Named("atomic.ndjson")), 400,
                  "mapper_parsing_exception",
                  {"atomic.ndjson:50: field [timestamp]"});
  LoadOptions small_chunks;
  small_chunks.chunk_bytes = 4096;
  ExpectLoadError(clout::LoadFile(store, path, small_chunks), 400,
                  "mapper_parsing_exception",
                  {absl::StrCat(path, ":50: field [timestamp]")});

  std::shared_ptr<const clout::StoreVersion> after = store.Current();
  EXPECT_EQ(after.get(), before.get());
  EXPECT_EQ(after->generation, 1u);
  EXPECT_EQ(after->jobs.size(), 1u);
  EXPECT_EQ(after->PlainJob("atomic"), nullptr);
  EXPECT_EQ(after->PlainJob("atomic_other"), nullptr);
  EXPECT_EQ(RowCount(store, "it_ops_new_kpi"), 28u);
  clout::InfluencersRequest request;
  request.job_id = "atomic";
  absl::StatusOr<clout::InfluencersPage> page = store.GetInfluencers(request);
  EXPECT_EQ(clout::HttpStatusOf(page.status()), 404);

  // Store a second load on top, then fail again: still unchanged.
  ASSERT_TRUE(
      clout::LoadString(store, NumberedDump("atomic", 100, 0)).ok());
  before = store.Current();
  ASSERT_EQ(RowCount(store, "atomic"), 90u);
  ExpectLoadError(clout::LoadString(store, text), 400,
                  "mapper_parsing_exception", {"<string>:50:"});
  EXPECT_EQ(store.Current().get(), before.get());
  EXPECT_EQ(RowCount(store, "atomic"), 90u);
}

TEST(LoaderAtomicityTest, LenientSkipsAndCountsBadDocuments) {
  InfluencerStore store;
  std::string text = NumberedDump("lenient", 100, 50);
  absl::StatusOr<LoadReport> report =
      clout::LoadString(store, text, Named("l.ndjson", true));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->rejected, 1u);
  ASSERT_EQ(report->errors.size(), 1u);
  EXPECT_THAT(report->errors[0],
              HasSubstr("l.ndjson:50: field [timestamp]: \"not a date\""));
  // 100 lines: 9 buckets (line 50 is the bad one), 1 rejected.
  EXPECT_EQ(report->influencers_added, 90u);
  EXPECT_EQ(RowCount(store, "lenient"), 90u);
  EXPECT_EQ(report->documents, 100u);
  EXPECT_THAT(report->skipped, ElementsAre(Pair("bucket", 9)));
  ASSERT_NE(store.Current()->PlainJob("lenient_other"), nullptr);
  // Ingest order kept, line 50 missing.
  std::vector<Row> rows = RowsOf(store, "lenient");
  for (size_t i = 1; i < rows.size(); ++i) {
    EXPECT_LT(rows[i - 1].timestamp, rows[i].timestamp);
  }
}

// The reader hints the batch about a row before the document is fully
// read (PrefetchFieldValue); a document rejected after that must still
// leave nothing behind: neither a row nor its job.
TEST(LoaderAtomicityTest, LenientRejectedDocumentLeavesNoJobOrRow) {
  // A bad bucket_span comes after the field value, so it is found after the
  // hint: once for a job with no rows yet, once for a job with rows.
  auto bad = [](absl::string_view job) {
    return absl::StrCat(R"({"job_id":")", job,
                        R"(","result_type":"influencer",)"
                        R"("influencer_field_name":"f",)"
                        R"("influencer_field_value":"w","bucket_span":-1,)"
                        R"("timestamp":3000})");
  };
  const std::string text =
      absl::StrCat(MinimalDocAt("v", 1000), "\n", bad("ghost"), "\n",
                   bad("e"), "\n", MinimalDocAt("v", 4000), "\n");
  InfluencerStore store;
  absl::StatusOr<LoadReport> report =
      clout::LoadString(store, text, Named("ghost", true));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->rejected, 2u);
  EXPECT_EQ(report->influencers_added, 2u);
  EXPECT_EQ(store.Current()->PlainJob("ghost"), nullptr);
  std::vector<Row> rows = RowsOf(store, "e");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].timestamp, 1000);
  EXPECT_EQ(rows[1].timestamp, 4000);
}

TEST(LoaderAtomicityTest, LenientErrorListIsCapped) {
  std::string text;
  for (int i = 1; i <= 60; ++i) {
    // Distinct timestamps: each good line is a result of its own.
    text += i % 2 == 0 ? MinimalDocAt("v", i)
                       : MinimalDoc(R"(,"bucket_span":-1)");
    text += "\n";
  }
  for (size_t cap : {size_t{0}, size_t{5}, size_t{100}}) {
    SCOPED_TRACE(cap);
    InfluencerStore store;
    LoadOptions options = Named("cap", true);
    options.max_reported_errors = cap;
    absl::StatusOr<LoadReport> report =
        clout::LoadString(store, text, options);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->rejected, 30u);
    EXPECT_EQ(report->errors.size(), std::min<size_t>(cap, 30));
    for (size_t i = 0; i < report->errors.size(); ++i) {
      EXPECT_THAT(report->errors[i],
                  HasSubstr(absl::StrCat("cap:", 2 * i + 1,
                                         ": field [bucket_span]")));
    }
    EXPECT_EQ(report->influencers_added, 30u);
    EXPECT_EQ(RowCount(store, "e"), 30u);
  }
}

TEST(LoaderAtomicityTest, ParseFileIntoCombinesSources) {
  std::string first = WriteTempFile(
      "first.ndjson", absl::StrCat(kDocA, "\n",
                                   R"({"job_id":"x","result_type":"bucket"})",
                                   "\n"));
  std::string second =
      WriteTempFile("second.json", absl::StrCat("[", kDocB, ",", kDocC, "]"));
  clout::MutationBatch batch;
  absl::StatusOr<LoadReport> r1 = clout::ParseFileInto(first, {}, &batch);
  ASSERT_TRUE(r1.ok()) << r1.status();
  EXPECT_EQ(r1->source, first);
  EXPECT_EQ(r1->influencers_added, 1u);
  EXPECT_THAT(r1->jobs, ElementsAre("fmt", "x"));
  absl::StatusOr<LoadReport> r2 = clout::ParseFileInto(second, {}, &batch);
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(r2->format, DumpFormat::kJsonArray);
  // The report is about this source only.
  EXPECT_EQ(r2->influencers_added, 2u);
  EXPECT_THAT(r2->jobs, ElementsAre("fmt"));
  EXPECT_EQ(batch.influencers(), 3u);

  InfluencerStore store;
  EXPECT_EQ(store.Current()->PlainJob("fmt"), nullptr);  // not committed
  ASSERT_TRUE(store.Apply(std::move(batch)).ok());
  EXPECT_EQ(store.Current()->generation, 1u);
  EXPECT_EQ(RowsOf(store, "fmt"), ExpectedFormatRows());
  EXPECT_NE(store.Current()->PlainJob("x"), nullptr);
}

TEST(LoaderAtomicityTest, SuccessiveLoadsAppendInIngestOrder) {
  InfluencerStore store;
  ASSERT_TRUE(clout::LoadString(store, kDocA).ok());
  ASSERT_TRUE(clout::LoadString(store, absl::StrCat(kDocB, "\n", kDocC)).ok());
  EXPECT_EQ(store.Current()->generation, 2u);
  EXPECT_EQ(RowsOf(store, "fmt"), ExpectedFormatRows());
}

// ---------------------------------------------------------------------------
// 7. Doubles are stored bit-exact.

// Numbers of more than 19 digits, which Debian's simdjson 3.0 can misread
// ("0.95000000000000000000" as 0.0276...: its issue #2093), are read
// correctly rounded, as strtod reads them.
TEST(LoaderDoubleTest, LongDecimalsAreReadCorrectlyRounded) {
  std::vector<std::string> numbers = {
      "0.95000000000000000000", "0.99999999999999999999",
      "0.18446744073709551616", "-0.95000000000000000000",
      "12345678901234567890",   "1.2345678901234567890123e-5",
      "0.000000000000000000000012345"};
  std::mt19937_64 random(2093);
  for (int i = 0; i < 300; ++i) {
    const double v = static_cast<double>(random() >> 11) / (uint64_t{1} << 53);
    numbers.push_back(absl::StrFormat(i % 2 ? "%.22f" : "%.24e", v));
  }
  std::string text;
  for (size_t i = 0; i < numbers.size(); ++i) {
    absl::StrAppend(
        &text,
        R"({"job_id":"long","result_type":"influencer","influencer_field_name":"f",)"
        R"("influencer_field_value":"v)", i, R"(","timestamp":1,"influencer_score":)",
        numbers[i], R"(,"probability":)", numbers[i], "}\n");
  }
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = clout::LoadString(store, text);
  ASSERT_TRUE(report.ok()) << report.status();
  std::shared_ptr<const clout::StoreVersion> snapshot = store.Current();
  std::shared_ptr<const JobResults> job = snapshot->PlainJob("long");
  ASSERT_NE(job, nullptr);
  ASSERT_EQ(job->size(), numbers.size());
  for (size_t i = 0; i < numbers.size(); ++i) {
    const double expected = std::strtod(numbers[i].c_str(), nullptr);
    EXPECT_EQ(Bits(job->columns.influencer_score[i]), Bits(expected))
        << numbers[i];
    EXPECT_EQ(Bits(job->columns.probability[i]), Bits(expected)) << numbers[i];
  }
}

TEST(LoaderDoubleTest, DoublesRoundTripBitExactly) {
  std::vector<double> values = {
      0.0,
      -0.0,
      std::numeric_limits<double>::denorm_min(),  // 4.9E-324
      -std::numeric_limits<double>::denorm_min(),
      4.9E-324,
      1.0E-322,
      2.2250738585072009E-308,  // largest denormal
      std::numeric_limits<double>::min(),
      std::numeric_limits<double>::max(),  // 1.7976931348623157E308
      -std::numeric_limits<double>::max(),
      1.7976931348623157E308,
      94.1386,
      0.000111612,
      0.1 + 0.2,
      1e23,
      9007199254740993.0,
      1e7,
      9999999.999999998,
  };
  std::mt19937_64 random(20160208);
  while (values.size() < 3000) {
    double d = FromBits(random());
    if (std::isfinite(d)) values.push_back(d);
  }
  // Small denormals and values near 1 too.
  for (int i = 0; i < 200; ++i) {
    values.push_back(FromBits(random() % (uint64_t{1} << 52)));
    values.push_back(FromBits((uint64_t{0x3FF} << 52) |
                              (random() % (uint64_t{1} << 52))));
  }
  std::string text;
  for (size_t i = 0; i < values.size(); ++i) {
    double v = values[i];
    absl::StrAppend(
        &text,
        R"({"job_id":"dbl","result_type":"influencer","influencer_field_name":"f",)"
        R"("influencer_field_value":"v)", i,
        R"(","timestamp":1,"influencer_score":)", clout::JavaDoubleToString(v),
        R"(,"initial_influencer_score":)", absl::StrFormat("%.17g", v),
        R"(,"probability":)", absl::StrFormat("%.17G", -v), "}\n");
  }
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = clout::LoadString(store, text);
  ASSERT_TRUE(report.ok()) << report.status();
  std::shared_ptr<const clout::StoreVersion> snapshot = store.Current();
  std::shared_ptr<const JobResults> job = snapshot->PlainJob("dbl");
  ASSERT_NE(job, nullptr);
  ASSERT_EQ(job->size(), values.size());
  int failures = 0;
  for (size_t i = 0; i < values.size() && failures < 20; ++i) {
    double v = values[i];
    bool ok = Bits(job->columns.influencer_score[i]) == Bits(v) &&
              Bits(job->columns.initial_influencer_score[i]) == Bits(v) &&
              Bits(job->columns.probability[i]) == Bits(-v);
    if (!ok) {
      ++failures;
      ADD_FAILURE() << "value " << clout::JavaDoubleToString(v) << " / "
                    << absl::StrFormat("%.17g", v) << " loaded as "
                    << clout::JavaDoubleToString(
                           job->columns.influencer_score[i])
                    << ", "
                    << clout::JavaDoubleToString(
                           job->columns.initial_influencer_score[i])
                    << ", "
                    << clout::JavaDoubleToString(job->columns.probability[i]);
    }
  }
}

// ---------------------------------------------------------------------------
// 8. Loads concurrent with queries.

std::string HundredRows(int load) {
  std::string text;
  for (int i = 0; i < 100; ++i) {
    absl::StrAppend(&text,
                    InfluencerDoc("conc", "host", absl::StrCat("h", load, "_", i),
                                  1454943600000 + i, load + i / 100.0, 1.0,
                                  0.5, 600, false),
                    "\n");
  }
  return text;
}

TEST(LoaderConcurrencyTest, QueriesSeeWholeLoadsOnly) {
  InfluencerStore store;
  store.RegisterJob("conc");
  std::vector<std::string> dumps;
  for (int load = 0; load < 20; ++load) dumps.push_back(HundredRows(load));

  std::atomic<bool> done{false};
  auto reader = [&](std::vector<int64_t>* seen, std::string* failure) {
    clout::InfluencersRequest request;
    request.job_id = "conc";
    while (true) {
      bool last = done.load(std::memory_order_acquire);
      absl::StatusOr<clout::InfluencersPage> page =
          store.GetInfluencers(request);
      if (!page.ok()) {
        *failure = page.status().ToString();
        return;
      }
      if (page->influencers.size() !=
          static_cast<size_t>(std::min<int64_t>(page->count, 100))) {
        *failure = absl::StrCat("page of ", page->influencers.size(),
                                " for count ", page->count);
        return;
      }
      seen->push_back(page->count);
      if (last) return;
    }
  };
  std::vector<int64_t> seen1, seen2;
  std::string failure1, failure2;
  std::thread t1(reader, &seen1, &failure1);
  std::thread t2(reader, &seen2, &failure2);
  for (const std::string& dump : dumps) {
    absl::StatusOr<LoadReport> report = clout::LoadString(store, dump);
    EXPECT_TRUE(report.ok()) << report.status();
  }
  done.store(true, std::memory_order_release);
  t1.join();
  t2.join();
  EXPECT_EQ(failure1, "");
  EXPECT_EQ(failure2, "");
  for (const std::vector<int64_t>* seen : {&seen1, &seen2}) {
    ASSERT_FALSE(seen->empty());
    for (size_t i = 0; i < seen->size(); ++i) {
      EXPECT_EQ((*seen)[i] % 100, 0) << "partial load seen: " << (*seen)[i];
      if (i > 0) {
        EXPECT_GE((*seen)[i], (*seen)[i - 1]);
      }
    }
    EXPECT_EQ(seen->back(), 2000);
  }
  EXPECT_EQ(RowCount(store, "conc"), 2000u);
  EXPECT_EQ(store.Current()->generation, 21u);  // RegisterJob + 20 loads
}

TEST(LoaderConcurrencyTest, ConcurrentLoadsAllLand) {
  InfluencerStore store;
  std::vector<std::thread> loaders;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    loaders.emplace_back([&store, &failures, t] {
      for (int load = 0; load < 5; ++load) {
        if (!clout::LoadString(store, HundredRows(t * 5 + load)).ok()) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& t : loaders) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(RowCount(store, "conc"), 2000u);
  EXPECT_EQ(store.Current()->generation, 20u);
  // Each load's rows are contiguous and in order.
  std::vector<Row> rows = RowsOf(store, "conc");
  for (size_t i = 0; i < rows.size(); i += 100) {
    std::string prefix = rows[i].value.substr(0, rows[i].value.find('_') + 1);
    for (size_t j = 0; j < 100; ++j) {
      EXPECT_EQ(rows[i + j].value, absl::StrCat(prefix, j));
    }
  }
}

}  // namespace

namespace clout {
namespace {

// ---------------------------------------------------------------------------
// Parallel loads (LoadOptions::threads) must equal one-thread loads exactly.

// Every job's rows, in ingest order, and the report's counts.
struct LoadOutcome {
  std::map<std::string, std::vector<Row>> rows;
  std::string report;
  std::string error;
  int threads = 0;  // parsing threads the load used
};

LoadOutcome LoadWithThreads(absl::string_view text, int threads,
                            bool lenient = false, bool from_file = false) {
  InfluencerStore store;
  LoadOptions options;
  options.threads = threads;
  options.lenient = lenient;
  options.source_name = "dump.ndjson";
  absl::StatusOr<LoadReport> report;
  if (from_file) {
    report = LoadFile(store, WriteTempFile("parallel.ndjson", text), options);
  } else {
    report = LoadString(store, text, options);
  }
  LoadOutcome outcome;
  if (!report.ok()) {
    outcome.error = std::string(report.status().message());
    return outcome;
  }
  const std::shared_ptr<const StoreVersion> current = store.Current();
  for (const auto& [id, job] : current->jobs) {
    outcome.rows[id] = RowsOf(*MaterializeJob(job));
  }
  std::string skipped;
  for (const auto& [type, count] : report->skipped) {
    absl::StrAppend(&skipped, type, "=", count, " ");
  }
  outcome.threads = report->threads;
  outcome.report = absl::StrCat(
      DumpFormatName(report->format), " bytes=", report->bytes,
      " docs=", report->documents, " added=", report->influencers_added,
      " replaced=", report->replaced, " rejected=", report->rejected,
      " skipped=", skipped, " jobs=", absl::StrJoin(report->jobs, ","),
      " errors=", absl::StrJoin(report->errors, "|"));
  return outcome;
}

// Loads `text` with 1, 2 (from a string and from a file) and 3 threads and
// expects the same outcome; returns how many threads the 3-thread load
// used (1 when it fell back).
int ExpectSameLoad(absl::string_view text, bool lenient = false) {
  LoadOutcome one = LoadWithThreads(text, 1, lenient);
  EXPECT_TRUE(one.error.empty() || one.threads == 0);
  int used = 0;
  for (auto [threads, from_file] : {std::pair{2, false}, std::pair{2, true},
                                    std::pair{3, false}}) {
    LoadOutcome many = LoadWithThreads(text, threads, lenient, from_file);
    EXPECT_EQ(many.error, one.error) << threads << " threads";
    EXPECT_EQ(many.report, one.report) << threads << " threads";
    EXPECT_TRUE(many.rows == one.rows) << threads << " threads";
    used = many.threads;
  }
  return used;
}

// ~30,000 influencers over 3 jobs with other result types and ISO
// timestamps mixed in: several 4 MiB pieces.
std::string ParallelDump() {
  GeneratorOptions options;
  options.records = 30'000;
  options.jobs = 3;
  options.seed = 11;
  options.mixed = true;
  return GenerateDumpString(options);
}

TEST(LoaderParallelTest, SameRowsAndReportAsOneThread) {
  std::string dump = ParallelDump();
  ASSERT_GT(dump.size(), size_t{8} << 20);
  EXPECT_GT(ExpectSameLoad(dump), 1);
}

TEST(LoaderParallelTest, RepeatedResultsAcrossPiecesKeepTheLastOccurrence) {
  // The same results twice, the second time with other scores: every row
  // of the second half replaces one of the first, across piece boundaries.
  std::string dump = ParallelDump();
  std::string changed = absl::StrReplaceAll(dump, {{"\"probability\":0.", "\"probability\":0.9"}});
  EXPECT_GT(ExpectSameLoad(absl::StrCat(dump, changed)), 1);
}

TEST(LoaderParallelTest, BadLinesReportTheSameErrorsAsOneThread) {
  std::string dump = ParallelDump();
  // A bad document late in the dump (in the last piece) and one early.
  size_t late = dump.rfind('\n', dump.size() - 1000);
  dump.insert(late + 1, "{\"job_id\":\"job-0\",\"result_type\":\"influencer\"}\n");
  dump.insert(0, "not json\n");
  ExpectSameLoad(dump, /*lenient=*/false);
  EXPECT_EQ(ExpectSameLoad(dump, /*lenient=*/true), 1);
  EXPECT_NE(LoadWithThreads(dump, 2).error, "");
}

TEST(LoaderParallelTest, OtherFormatsFallBackToOneThread) {
  std::string dump = ParallelDump();
  // Search hits NDJSON is parsed in parallel; bulk and arrays fall back.
  std::string hits;
  std::string bulk;
  std::string array = "[";
  size_t begin = 0;
  int id = 0;
  while (begin < dump.size()) {
    size_t end = dump.find('\n', begin);
    absl::string_view line(dump.data() + begin, end - begin);
    ++id;
    absl::StrAppend(&hits, Hit(line, id, id % 2 == 0), "\n");
    absl::StrAppend(&bulk, R"({"index":{"_id":"x)", id, R"("}})", "\n", line, "\n");
    absl::StrAppend(&array, id > 1 ? "," : "", line);
    begin = end + 1;
  }
  array += "]";
  EXPECT_GT(ExpectSameLoad(hits), 1);
  EXPECT_EQ(ExpectSameLoad(bulk), 1);
  EXPECT_EQ(ExpectSameLoad(array), 1);
}

TEST(LoaderParallelTest, ByteOrderMarkInsideTheSourceIsNotSkipped) {
  std::string dump = ParallelDump();
  size_t middle = dump.find('\n', dump.size() / 2);
  dump.insert(middle + 1, "\xEF\xBB\xBF");
  ExpectSameLoad(dump);
  EXPECT_EQ(ExpectSameLoad(dump, /*lenient=*/true), 1);
}

}  // namespace
}  // namespace clout

namespace clout {
namespace {

// The generator allocates per job: a huge job count with few records must
// not allocate for jobs that get no result (it threw bad_alloc).
TEST(GeneratorTest, JobsBeyondRecordsAreLeftOut) {
  GeneratorOptions options;
  options.records = 3;
  options.jobs = 2'000'000'000;
  const std::string dump = GenerateDumpString(options);
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = LoadString(store, dump);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->influencers_added, 3u);
  EXPECT_EQ(report->jobs.size(), 3u);
}

}  // namespace
}  // namespace clout
