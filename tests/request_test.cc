#include "engine/request.h"

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "engine/error.h"
#include "gtest/gtest.h"

namespace clout {
namespace {

// Checks `status` is the Elasticsearch error (http, type, reason).
void ExpectError(const absl::Status& status, int http, const std::string& type,
                 const std::string& reason) {
  ASSERT_FALSE(status.ok());
  EsErrorInfo info = EsErrorOf(status);
  EXPECT_EQ(info.http_status, http) << status;
  EXPECT_EQ(info.type, type) << status;
  EXPECT_EQ(info.reason, reason) << status;
}

TEST(BodyRequestTest, Defaults) {
  absl::StatusOr<InfluencersRequest> r = ParseBodyRequest("job", "{}");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->job_id, "job");
  EXPECT_FALSE(r->start.has_value());
  EXPECT_FALSE(r->end.has_value());
  EXPECT_FALSE(r->exclude_interim);
  EXPECT_EQ(r->influencer_score, 0.0);
  EXPECT_EQ(r->sort, "influencer_score");
  EXPECT_TRUE(r->desc);
  EXPECT_EQ(r->from, 0);
  EXPECT_EQ(r->size, 100);
}

TEST(BodyRequestTest, EveryKey) {
  absl::StatusOr<InfluencersRequest> r = ParseBodyRequest(
      "path-job",
      R"({"job_id":"body-job","start":"2016-02-01","end":1454943600000,
          "exclude_interim":true,"influencer_score":"12.5","sort":"timestamp",
          "desc":"false","page":{"from":"5","size":7}})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->job_id, "path-job");  // the path wins
  EXPECT_EQ(r->start, "2016-02-01");
  EXPECT_FALSE(r->start_is_number);
  EXPECT_EQ(r->end, "1454943600000");
  EXPECT_TRUE(r->end_is_number);  // epoch ms, whatever its digits
  EXPECT_TRUE(r->exclude_interim);
  EXPECT_EQ(r->influencer_score, 12.5);
  EXPECT_EQ(r->sort, "timestamp");
  EXPECT_FALSE(r->desc);
  EXPECT_EQ(r->from, 5);
  EXPECT_EQ(r->size, 7);
}

// Page values as x-content's intValue() reads them: numbers truncated
// toward zero (Jackson), strings through Double.parseDouble.
TEST(BodyRequestTest, PageValuesReadAsElasticsearchReadsThem) {
  for (const auto& [value, expected] :
       std::vector<std::pair<std::string, int64_t>>{
           {"1.9", 1}, {"-0.5", 0}, {"1e2", 100}, {"2147483647", 2147483647},
           {"\"1.5\"", 1}, {"\" 7 \"", 7}, {"\"NaN\"", 0}, {"\"1e1\"", 10},
           {"\"-0.9\"", 0}, {"\"0x10p0\"", 16}, {"\"8d\"", 8}}) {
    absl::StatusOr<InfluencersRequest> r =
        ParseBodyRequest("j", absl::StrCat(R"({"page":{"size":)", value, "}}"));
    ASSERT_TRUE(r.ok()) << value << ": " << r.status();
    EXPECT_EQ(r->size, expected) << value;
    EXPECT_EQ(r->from, 0) << value;
  }
}

TEST(BodyRequestTest, JobIdFromBodyWithoutPath) {
  absl::StatusOr<InfluencersRequest> r =
      ParseBodyRequest("", R"({"job_id":"j1"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->job_id, "j1");
}

TEST(BodyRequestTest, NullDatesAreUnset) {
  absl::StatusOr<InfluencersRequest> r =
      ParseBodyRequest("j", R"({"start":null,"end":null})");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->start.has_value());
  EXPECT_FALSE(r->end.has_value());
}

// Elasticsearch's x-content errors: "[line:column]", the parser's name (the
// action's for the request, "page" for its page), and a value's own error
// as caused_by of "failed to parse field [x]".
constexpr char kParser[] = "[cluster:monitor/xpack/ml/job/results/influencers/get]";

// Checks the caused_by chain of `status`: (type, reason) pairs, outermost
// first.
// The root cause is the outer error unless `root` (type, reason) is given.
void ExpectCauses(const absl::Status& status,
                  std::vector<std::pair<std::string, std::string>> causes,
                  std::pair<std::string, std::string> root = {}) {
  EsErrorInfo info = EsErrorOf(status);
  if (root.first.empty()) root = {info.type, info.reason};
  EXPECT_EQ(info.root_cause_type, root.first) << status;
  EXPECT_EQ(info.root_cause_reason, root.second) << status;
  ASSERT_EQ(info.caused_by.size(), causes.size()) << status;
  for (size_t i = 0; i < causes.size(); ++i) {
    EXPECT_EQ(info.caused_by[i].type, causes[i].first) << status;
    EXPECT_EQ(info.caused_by[i].reason, causes[i].second) << status;
  }
}

TEST(BodyRequestTest, Rejections) {
  const std::string p = kParser;
  ExpectError(ParseBodyRequest("j", R"({"foo":1})").status(), 400,
              "x_content_parse_exception", "[1:2] " + p + " unknown field [foo]");
  // Suggestions as SuggestingErrorOnUnknown makes them (similarity > 0.5).
  ExpectError(ParseBodyRequest("j", R"({"sorts":1})").status(), 400,
              "x_content_parse_exception",
              "[1:2] " + p + " unknown field [sorts] did you mean [sort]?");
  ExpectError(ParseBodyRequest("j", "{\n  \"desc\": true,\n  \"stort\":1}").status(),
              400, "x_content_parse_exception",
              "[3:3] " + p +
                  " unknown field [stort] did you mean any of [sort, start]?");
  absl::Status page_key = ParseBodyRequest("j", R"({"page":{"offset":1}})").status();
  ExpectError(page_key, 400, "x_content_parse_exception",
              "[1:19] " + p + " failed to parse field [page]");
  // guessRootCauses looks through nested x-content errors to the innermost.
  ExpectCauses(page_key, {{"x_content_parse_exception",
                           "[1:10] [page] unknown field [offset]"}},
               {"x_content_parse_exception",
                "[1:10] [page] unknown field [offset]"});
  ExpectError(ParseBodyRequest("j", R"({"sort":"a","sort":"b"})").status(),
              400, "x_content_parse_exception", "Duplicate field 'sort'");
  absl::Status yes = ParseBodyRequest("j", R"({"desc":"yes"})").status();
  ExpectError(yes, 400, "x_content_parse_exception",
              "[1:9] " + p + " failed to parse field [desc]");
  ExpectCauses(yes, {{"illegal_argument_exception",
                      "Failed to parse value [yes] as only [true] or [false] "
                      "are allowed."}});
  ExpectError(ParseBodyRequest("j", R"({"desc":1})").status(), 400,
              "x_content_parse_exception",
              "[1:9] " + p + " desc doesn't support values of type: VALUE_NUMBER");
  ExpectError(ParseBodyRequest("j", R"({"desc":null})").status(), 400,
              "x_content_parse_exception",
              "[1:9] " + p + " desc doesn't support values of type: VALUE_NULL");
  ExpectError(ParseBodyRequest("j", R"({"sort":5})").status(), 400,
              "x_content_parse_exception",
              "[1:9] " + p + " sort doesn't support values of type: VALUE_NUMBER");
  ExpectError(ParseBodyRequest("j", R"({"start":[1]})").status(), 400,
              "x_content_parse_exception",
              "[1:10] " + p + " start doesn't support values of type: START_ARRAY");
  ExpectError(ParseBodyRequest("j", R"({"page":5})").status(), 400,
              "x_content_parse_exception",
              "[1:9] " + p + " page doesn't support values of type: VALUE_NUMBER");
  absl::Status page_type = ParseBodyRequest("j", R"({"page":{"from":true}})").status();
  ExpectError(page_type, 400, "x_content_parse_exception",
              "[1:17] " + p + " failed to parse field [page]");
  ExpectCauses(page_type,
               {{"x_content_parse_exception",
                 "[1:17] [page] from doesn't support values of type: "
                 "VALUE_BOOLEAN"}},
               {"x_content_parse_exception",
                "[1:17] [page] from doesn't support values of type: "
                "VALUE_BOOLEAN"});
  // A value's own error, wrapped twice inside the page; the root cause is
  // the innermost x-content error.
  struct Case {
    const char* body;
    const char* location;
    const char* key;
    std::vector<std::pair<std::string, std::string>> inner;  // below the field's
  };
  const std::pair<std::string, std::string> kBuild = {
      "x_content_parse_exception",
      "Failed to build [page] after last required field arrived"};
  for (const Case& c : std::vector<Case>{
           // Double.parseDouble's error for a string.
           {R"({"page":{"size":"ten"}})", "[1:17]", "size",
            {{"number_format_exception", "For input string: \"ten\""}}},
           {R"({"page":{"size":""}})", "[1:17]", "size",
            {{"number_format_exception", "empty String"}}},
           {R"({"page":{"from":"3e9"}})", "[1:17]", "from",
            {{"illegal_argument_exception",
              "Value [3e9] is out of range for an integer"}}},
           // Java trims before parsing, and words the error trimmed.
           {R"({"page":{"size":"  "}})", "[1:17]", "size",
            {{"number_format_exception", "empty String"}}},
           {R"({"page":{"size":" ten "}})", "[1:17]", "size",
            {{"number_format_exception", "For input string: \"ten\""}}},
           // Jackson's range error for a number, where the number ends,
           // wrapping Jackson's own exception.
           {R"({"page":{"from":3000000000}})", "[1:17]", "from",
            {{"x_content_parse_exception",
              "[1:27] Numeric value (3000000000) out of range of int "
              "(-2147483648 - 2147483647)"},
             {"input_coercion_exception",
              "Numeric value (3000000000) out of range of int "
              "(-2147483648 - 2147483647)"}}},
           {R"({"page":{"size":-2.5e10}})", "[1:17]", "size",
            {{"x_content_parse_exception",
              "[1:24] Numeric value (-2.5e10) out of range of int "
              "(-2147483648 - 2147483647)"},
             {"input_coercion_exception",
              "Numeric value (-2.5e10) out of range of int "
              "(-2147483648 - 2147483647)"}}},
           // With both values in, the page is built as the second arrives.
           {R"({"page":{"from":-1,"size":5}})", "[1:27]", "size",
            {kBuild, {"illegal_argument_exception",
                      "Parameter [from] cannot be < 0"}}},
           {R"({"page":{"size":-1,"from":"-3"}})", "[1:27]", "from",
            {kBuild, {"illegal_argument_exception",
                      "Parameter [from] cannot be < 0"}}}}) {
    absl::Status s = ParseBodyRequest("j", c.body).status();
    const std::string field_error =
        absl::StrCat(c.location, " [page] failed to parse field [", c.key, "]");
    ExpectError(s, 400, "x_content_parse_exception",
                absl::StrCat(c.location, " ", p, " failed to parse field [page]"));
    std::vector<std::pair<std::string, std::string>> causes = {
        {"x_content_parse_exception", field_error}};
    causes.insert(causes.end(), c.inner.begin(), c.inner.end());
    std::pair<std::string, std::string> root = causes[0];
    for (size_t i = 1; i < causes.size() &&
                       causes[i].first == "x_content_parse_exception"; ++i) {
      root = causes[i];
    }
    ExpectCauses(s, causes, root);
  }
  // A duplicate key inside the page stops the parser at that key.
  absl::Status twice = ParseBodyRequest("j", R"({"page":{"from":-1,"from":2}})").status();
  ExpectError(twice, 400, "x_content_parse_exception",
              absl::StrCat("[1:20] ", p, " failed to parse field [page]"));
  // A body cut after the page still builds it at the page's brace.
  absl::Status cut = ParseBodyRequest("j", R"({"page":{"from":-1}  )").status();
  ExpectError(cut, 400, "x_content_parse_exception",
              absl::StrCat("[1:19] ", p, " failed to parse field [page]"));
  ExpectCauses(cut, {kBuild, {"illegal_argument_exception",
                              "Parameter [from] cannot be < 0"}},
               kBuild);
  // With one value (or none), the page is built at its closing brace.
  for (const auto& [body, location, name] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {R"({"page":{"from":-1}})", "[1:19]", "from"},
           {R"({"page":{"size":-5} })", "[1:19]", "size"},
           {"{\"page\":{\"size\":\"-1.5\"\n  }}", "[2:3]", "size"}}) {
    absl::Status s = ParseBodyRequest("j", body).status();
    ExpectError(s, 400, "x_content_parse_exception",
                absl::StrCat(location, " ", p, " failed to parse field [page]"));
    ExpectCauses(s, {kBuild, {"illegal_argument_exception",
                              absl::StrCat("Parameter [", name,
                                           "] cannot be < 0")}},
                 kBuild);
  }
  // Jackson's lines end at "\r\n", "\r" or "\n"; columns count bytes.
  for (const char* body : {"{\r\n\"foo\":1}", "{\r\"foo\":1}", "{\n\"foo\":1}"}) {
    ExpectError(ParseBodyRequest("j", body).status(), 400,
                "x_content_parse_exception", "[2:1] " + p + " unknown field [foo]");
  }
  ExpectError(ParseBodyRequest("j", "{\"job_id\":\"\xc3\xa9\",\"foo\":1}").status(),
              400, "x_content_parse_exception",
              "[1:16] " + p + " unknown field [foo]");
  absl::Status high = ParseBodyRequest("j", R"({"influencer_score":"high"})").status();
  ExpectError(high, 400, "x_content_parse_exception",
              "[1:21] " + p + " failed to parse field [influencer_score]");
  ExpectCauses(high, {{"number_format_exception", "For input string: \"high\""}});
}

TEST(BodyRequestTest, MalformedBodies) {
  for (const char* body : {"{", "{\"desc\":}", "{\"desc\":true", "[]", "5",
                           "\"x\"", "{} {}", "{\"a\" 1}", ""}) {
    absl::StatusOr<InfluencersRequest> r = ParseBodyRequest("j", body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(HttpStatusOf(r.status()), 400) << body;
    EXPECT_EQ(ErrorTypeOf(r.status()), "x_content_parse_exception")
        << body << ": " << r.status();
  }
}

// On demand, simdjson takes a value for a number from its first character:
// the parser must still reject text that is no JSON number, for every key
// that takes one, as malformed JSON (not read as Java would read a string).
TEST(BodyRequestTest, NumbersMustBeJsonNumbers) {
  for (const char* number : {"00", "01", "1.", "-01.50", "1.5.5", "-", "1x",
                             "01454943600000", "1e", "1e+"}) {
    for (const char* pattern :
         {R"({"page":{"from":%s}})", R"({"page":{"size":%s}})",
          R"({"influencer_score":%s})", R"({"start":%s})", R"({"end":%s})"}) {
      const std::string body =
          absl::StrReplaceAll(pattern, {{"%s", number}});
      ExpectError(ParseBodyRequest("j", body).status(), 400,
                  "x_content_parse_exception",
                  absl::StrCat("failed to parse request body: malformed number [",
                               number, "]"));
    }
  }
}

TEST(BodyRequestTest, NumberDatesAreEpochMillis) {
  struct Case {
    const char* body;
    const char* start;
  };
  for (Case c : std::vector<Case>{{R"({"start":2017})", "2017"},
                                  {R"({"start":-5})", "-5"},
                                  {R"({"start":1.4549436E12})", "1454943600000"},
                                  {R"({"start":1454943600000.5})", "1454943600000"},
                                  {R"({"start":-0.5})", "-1"}}) {
    absl::StatusOr<InfluencersRequest> r = ParseBodyRequest("j", c.body);
    ASSERT_TRUE(r.ok()) << c.body << ": " << r.status();
    EXPECT_EQ(r->start, c.start) << c.body;
    EXPECT_TRUE(r->start_is_number) << c.body;
  }
}

TEST(BodyRequestTest, LongDecimalsReadExactly) {
  // 21 digits: Debian's simdjson alone reads 0.0276... (its issue #2093).
  absl::StatusOr<InfluencersRequest> r = ParseBodyRequest(
      "j", R"({"influencer_score":0.95000000000000000000})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->influencer_score, 0.95);
}

TEST(BodyRequestTest, LargeBodyIsParsedNotCrashed) {
  std::string body = "{\"sort\":\"" + std::string(1 << 20, 'x') + "\"}";
  absl::StatusOr<InfluencersRequest> r = ParseBodyRequest("j", body);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->sort.size(), size_t{1} << 20);
}

TEST(ParamRequestTest, EveryParameter) {
  OutputOptions output;
  absl::StatusOr<InfluencersRequest> r = ParseParamRequest(
      "j",
      {{"start", "now-1d"}, {"end", "2016"}, {"exclude_interim", ""},
       {"influencer_score", "3.5"}, {"sort", "kpi_indicator"}, {"desc", ""},
       {"from", "2"}, {"size", "0"}, {"pretty", ""}, {"human", "true"}},
      &output);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->start, "now-1d");
  EXPECT_EQ(r->end, "2016");
  EXPECT_TRUE(r->exclude_interim);
  EXPECT_EQ(r->influencer_score, 3.5);
  EXPECT_EQ(r->sort, "kpi_indicator");
  EXPECT_TRUE(r->desc);
  EXPECT_EQ(r->from, 2);
  EXPECT_EQ(r->size, 0);
  EXPECT_TRUE(output.pretty);
  EXPECT_TRUE(output.human);
}

// With several bad parameters, the error is the one Elasticsearch's
// RestGetInfluencersAction meets first, whatever their order in the request.
TEST(ParamRequestTest, ErrorsComeInElasticsearchsOrder) {
  struct Case {
    std::vector<RequestParam> params;
    std::string type;
    std::string reason;
  };
  const Case cases[] = {
      {{{"from", "-1"}, {"size", "x"}},
       "illegal_argument_exception",
       "Failed to parse int parameter [size] with value [x]"},
      {{{"from", "-1"}, {"exclude_interim", "bad"}},
       "illegal_argument_exception",
       "Failed to parse value [bad] as only [true] or [false] are allowed."},
      {{{"desc", "bad"}, {"influencer_score", "abc"}},
       "number_format_exception", "For input string: \"abc\""},
      {{{"desc", "bad2"}, {"exclude_interim", "bad"}},
       "illegal_argument_exception",
       "Failed to parse value [bad] as only [true] or [false] are allowed."},
      {{{"size", "-2"}, {"from", "-1"}},
       "illegal_argument_exception", "Parameter [from] cannot be < 0"},
      {{{"size", "-2"}, {"influencer_score", "abc"}},
       "illegal_argument_exception", "Parameter [size] cannot be < 0"},
      {{{"colour", "red"}, {"desc", "bad"}},
       "illegal_argument_exception",
       "Failed to parse value [bad] as only [true] or [false] are allowed."},
      {{{"exclude_interim", "bad"}, {"pretty", "bad3"}},
       "illegal_argument_exception",
       "Failed to parse value [bad3] as only [true] or [false] are allowed."},
  };
  for (const Case& c : cases) {
    ExpectError(ParseParamRequest("j", c.params).status(), 400, c.type,
                c.reason);
  }
}

TEST(ParamRequestTest, OutputOptionsAreLeftAloneOnError) {
  OutputOptions output;
  EXPECT_FALSE(
      ParseParamRequest("j", {{"pretty", ""}, {"from", "x"}}, &output).ok());
  EXPECT_FALSE(output.pretty);
}

TEST(ParamRequestTest, RepeatedParameterTakesItsLastValue) {
  absl::StatusOr<InfluencersRequest> r =
      ParseParamRequest("j", {{"from", "x"}, {"from", "3"}, {"sort", "a"},
                              {"sort", "b"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->from, 3);
  EXPECT_EQ(r->sort, "b");
}

TEST(ParamRequestTest, Rejections) {
  ExpectError(ParseParamRequest("j", {{"desc", "maybe"}}).status(), 400,
              "illegal_argument_exception",
              "Failed to parse value [maybe] as only [true] or [false] are "
              "allowed.");
  ExpectError(ParseParamRequest("j", {{"from", "x"}}).status(), 400,
              "illegal_argument_exception",
              "Failed to parse int parameter [from] with value [x]");
  ExpectError(ParseParamRequest("j", {{"size", ""}}).status(), 400,
              "illegal_argument_exception",
              "Failed to parse int parameter [size] with value []");
  ExpectError(ParseParamRequest("j", {{"from", "000000000005x"}}).status(), 400,
              "illegal_argument_exception",
              "Failed to parse int parameter [from] with value [000000000005x]");
  ExpectError(ParseParamRequest("j", {{"from", "-3"}}).status(), 400,
              "illegal_argument_exception", "Parameter [from] cannot be < 0");
  ExpectError(ParseParamRequest("j", {{"influencer_score", "1.2.3"}}).status(),
              400, "number_format_exception", "For input string: \"1.2.3\"");
  ExpectError(ParseParamRequest("j", {{"influencer_score", ""}}).status(), 400,
              "number_format_exception", "empty String");
  ExpectError(ParseParamRequest("j", {{"colour", "red"}}).status(), 400,
              "illegal_argument_exception",
              "request [/_ml/anomaly_detectors/j/results/influencers] contains "
              "unrecognized parameter: [colour]");
  ExpectError(
      ParseParamRequest("j", {{"b", "1"}, {"a", "2"}}).status(), 400,
      "illegal_argument_exception",
      "request [/_ml/anomaly_detectors/j/results/influencers] contains "
      "unrecognized parameters: [a], [b]");
  // Elasticsearch's suggestions: similarity above 0.5, best first.
  ExpectError(ParseParamRequest("j", {{"sizee", "5"}}).status(), 400,
              "illegal_argument_exception",
              "request [/_ml/anomaly_detectors/j/results/influencers] contains "
              "unrecognized parameter: [sizee] -> did you mean [size]?");
  ExpectError(ParseParamRequest("j", {{"fro", "5"}, {"prety", ""}, {"x", ""}})
                  .status(),
              400, "illegal_argument_exception",
              "request [/_ml/anomaly_detectors/j/results/influencers] contains "
              "unrecognized parameters: [fro] -> did you mean [from]?, [prety] "
              "-> did you mean [pretty]?, [x]");
  ExpectError(ParseParamRequest("j", {{"srt", "1"}}).status(), 400,
              "illegal_argument_exception",
              "request [/_ml/anomaly_detectors/j/results/influencers] contains "
              "unrecognized parameter: [srt] -> did you mean any of [sort, "
              "start]?");
}

TEST(ParamRequestTest, LevenshteinSimilarityIsLucenes) {
  EXPECT_FLOAT_EQ(LevenshteinSimilarity("size", "size"), 1.0f);
  EXPECT_FLOAT_EQ(LevenshteinSimilarity("sizee", "size"), 0.8f);
  EXPECT_FLOAT_EQ(LevenshteinSimilarity("star", "sort"), 0.25f);
  EXPECT_FLOAT_EQ(LevenshteinSimilarity("srt", "start"), 0.6f);
  EXPECT_FLOAT_EQ(LevenshteinSimilarity("", ""), 1.0f);
  EXPECT_FLOAT_EQ(LevenshteinSimilarity("", "a"), 0.0f);
  EXPECT_FLOAT_EQ(LevenshteinSimilarity("\xc3\xa9t\xc3\xa9", "ete"), 1.0f - 2.0f / 3.0f);
}

TEST(ParamRequestTest, IntegersMayHaveLeadingZeros) {
  // As Java's Integer.parseInt: leading zeros do not count against int's
  // ten digits.
  absl::StatusOr<InfluencersRequest> r = ParseParamRequest(
      "j", {{"from", "00000000005"}, {"size", "+000000000000000007"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->from, 5);
  EXPECT_EQ(r->size, 7);
}

TEST(ParamRequestTest, JavaDoubleSyntax) {
  struct Case {
    const char* text;
    double value;
  };
  for (Case c : std::vector<Case>{{"1", 1},
                                  {" 2.5 ", 2.5},
                                  {"1e2", 100},
                                  {"-0.5", -0.5},
                                  {"3d", 3},
                                  {".5", 0.5},
                                  {"5.", 5},
                                  {"1e999", INFINITY},
                                  {"1e-999", 0},
                                  // Hexadecimal, as Java reads it.
                                  {"0x1p6", 64},
                                  {"-0X1.8P1", -3},
                                  {"0x.8p0d", 0.5},
                                  {" 0x10p-4 ", 1},
                                  {"0x1p9999", INFINITY}}) {
    absl::StatusOr<InfluencersRequest> r =
        ParseParamRequest("j", {{"influencer_score", c.text}});
    ASSERT_TRUE(r.ok()) << c.text << ": " << r.status();
    EXPECT_EQ(r->influencer_score, c.value) << c.text;
  }
  absl::StatusOr<InfluencersRequest> nan =
      ParseParamRequest("j", {{"influencer_score", "NaN"}});
  ASSERT_TRUE(nan.ok());
  EXPECT_TRUE(std::isnan(nan->influencer_score));
  for (const char* bad : {"e5", "1e", "--1", "0x10", "1,5", "abc", "0x",
                          "0xp1", "0x1p", "0x1.2.3p1", "0x1g1", "0x1p1x"}) {
    EXPECT_FALSE(ParseParamRequest("j", {{"influencer_score", bad}}).ok())
        << bad;
  }
}

TEST(QueryStringTest, Splits) {
  std::vector<RequestParam> params =
      SplitQueryString("?desc&start=2016-01-01T00%3A00%3A00Z&sort=a+b&x=");
  ASSERT_EQ(params.size(), 4u);
  EXPECT_EQ(params[0], RequestParam("desc", ""));
  EXPECT_EQ(params[1], RequestParam("start", "2016-01-01T00:00:00Z"));
  EXPECT_EQ(params[2], RequestParam("sort", "a b"));
  EXPECT_EQ(params[3], RequestParam("x", ""));
}

TEST(RequestToJsonTest, RoundTripsThroughBodyParser) {
  InfluencersRequest r;
  r.job_id = "j\"1";
  r.start = "now-1d";
  r.influencer_score = 12.25;
  r.sort = "timestamp";
  r.desc = false;
  r.from = 3;
  r.size = 9;
  absl::StatusOr<InfluencersRequest> back =
      ParseBodyRequest("", RequestToJson(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(RequestToJson(*back), RequestToJson(r));
}

TEST(RequestToJsonTest, NumberDatesStayNumbers) {
  absl::StatusOr<InfluencersRequest> r =
      ParseBodyRequest("j", R"({"start":2017,"end":"2017"})");
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string json = RequestToJson(*r);
  EXPECT_NE(json.find(R"("start":2017,"end":"2017")"), std::string::npos)
      << json;
  absl::StatusOr<InfluencersRequest> back = ParseBodyRequest("", json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->start_is_number);
  EXPECT_FALSE(back->end_is_number);

  // Out of range (beyond 64 bits even), it fails alike as a string, which
  // keeps the output JSON that any parser reads (found by fuzzing).
  r = ParseBodyRequest("j", R"({"start":3241247177300000703200})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NE(RequestToJson(*r).find(R"("start":"3241247177300000703200")"),
            std::string::npos)
      << RequestToJson(*r);
}

}  // namespace
}  // namespace clout
