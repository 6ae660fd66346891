#include "engine/error.h"

#include <string>

#include "engine/response.h"
#include "gtest/gtest.h"

namespace clout {
namespace {

// Reasons with the characters the caused_by encoding uses (':' and digits
// before it) and newlines survive the chain unchanged.
TEST(ErrorTest, CausedByChainKeepsAnyText) {
  const std::string inner_reason = "12:34 a:b\nline two\n5:";
  absl::Status inner = EsError(400, "illegal_argument_exception", inner_reason);
  absl::Status middle = EsErrorCausedBy(400, "x_content_parse_exception",
                                        "3:x_content [a:b]\n", inner);
  absl::Status outer =
      EsErrorCausedBy(400, "x_content_parse_exception", "outer\n1:2", middle);
  EsErrorInfo info = EsErrorOf(outer);
  EXPECT_EQ(info.reason, "outer\n1:2");
  ASSERT_EQ(info.caused_by.size(), 2u);
  EXPECT_EQ(info.caused_by[0].type, "x_content_parse_exception");
  EXPECT_EQ(info.caused_by[0].reason, "3:x_content [a:b]\n");
  EXPECT_EQ(info.caused_by[1].type, "illegal_argument_exception");
  EXPECT_EQ(info.caused_by[1].reason, inner_reason);
  // guessRootCauses looks through the nested x-content error, not into the
  // illegal_argument_exception.
  EXPECT_EQ(info.root_cause_type, "x_content_parse_exception");
  EXPECT_EQ(info.root_cause_reason, "3:x_content [a:b]\n");
}

TEST(ErrorTest, RootCauseStopsAtAPlainJavaException) {
  absl::Status s = EsErrorCausedBy(
      400, "x_content_parse_exception", "outer",
      EsErrorCausedBy(400, "illegal_argument_exception", "middle",
                      EsError(400, "x_content_parse_exception", "inner")));
  EsErrorInfo info = EsErrorOf(s);
  EXPECT_EQ(info.root_cause_reason, "outer");
  ASSERT_EQ(info.caused_by.size(), 2u);
  // A status without the payload is an "exception".
  EsErrorInfo plain = EsErrorOf(EsErrorCausedBy(
      400, "x_content_parse_exception", "outer", absl::InternalError("disk")));
  ASSERT_EQ(plain.caused_by.size(), 1u);
  EXPECT_EQ(plain.caused_by[0].type, "exception");
  EXPECT_EQ(plain.caused_by[0].reason, "disk");
  EXPECT_EQ(plain.root_cause_reason, "outer");
}

// guessRootCauses looks from an x-content error into an Elasticsearch
// exception, and from one Elasticsearch exception into another, but never
// from an Elasticsearch exception into an x-content error (which is a
// plain IllegalArgumentException to it).
TEST(ErrorTest, RootCauseLooksThroughElasticsearchExceptions) {
  auto root = [](const absl::Status& s) { return EsErrorOf(s).root_cause_reason; };
  EXPECT_EQ(root(EsErrorCausedBy(400, "x_content_parse_exception", "outer",
                                 EsError(400, "parse_exception", "inner"))),
            "inner");
  EXPECT_EQ(root(EsErrorCausedBy(
                400, "parse_exception", "outer",
                EsErrorCausedBy(400, "parse_exception", "middle",
                                EsError(400, "illegal_argument_exception", "x")))),
            "middle");
  EXPECT_EQ(root(EsErrorCausedBy(400, "parse_exception", "outer",
                                 EsError(400, "x_content_parse_exception",
                                         "inner"))),
            "outer");
  EXPECT_EQ(root(EsErrorCausedBy(400, "illegal_argument_exception", "outer",
                                 EsError(400, "x_content_parse_exception",
                                         "inner"))),
            "outer");
}

TEST(ErrorTest, WithCausesOfCopiesTheChainOnly) {
  absl::Status from = EsErrorCausedBy(400, "x_content_parse_exception", "a",
                                      EsError(400, "illegal_argument_exception", "b"));
  absl::Status to = WithCausesOf(from, EsError(400, "x_content_parse_exception",
                                               "f: a"));
  EsErrorInfo info = EsErrorOf(to);
  EXPECT_EQ(info.reason, "f: a");
  ASSERT_EQ(info.caused_by.size(), 1u);
  EXPECT_EQ(info.caused_by[0].reason, "b");
  EXPECT_TRUE(WithCausesOf(from, absl::OkStatus()).ok());
  EXPECT_TRUE(EsErrorOf(WithCausesOf(EsError(400, "t", "r"), to)).caused_by.size() == 1);
}

TEST(ErrorTest, ErrorJsonNestsTheChainCompactAndPretty) {
  absl::Status s = EsErrorCausedBy(
      400, "x_content_parse_exception", "[1:9] outer",
      EsErrorCausedBy(400, "x_content_parse_exception", "[1:11] middle",
                      EsError(400, "number_format_exception",
                              "For input string: \"ten\"")));
  EXPECT_EQ(ErrorJson(s),
            R"({"error":{"root_cause":[{"type":"x_content_parse_exception",)"
            R"("reason":"[1:11] middle"}],"type":"x_content_parse_exception",)"
            R"("reason":"[1:9] outer","caused_by":{"type":)"
            R"("x_content_parse_exception","reason":"[1:11] middle",)"
            R"("caused_by":{"type":"number_format_exception","reason":)"
            R"("For input string: \"ten\""}}},"status":400})");
  EXPECT_EQ(ErrorJson(s, /*pretty=*/true),
            "{\n"
            "  \"error\" : {\n"
            "    \"root_cause\" : [\n"
            "      {\n"
            "        \"type\" : \"x_content_parse_exception\",\n"
            "        \"reason\" : \"[1:11] middle\"\n"
            "      }\n"
            "    ],\n"
            "    \"type\" : \"x_content_parse_exception\",\n"
            "    \"reason\" : \"[1:9] outer\",\n"
            "    \"caused_by\" : {\n"
            "      \"type\" : \"x_content_parse_exception\",\n"
            "      \"reason\" : \"[1:11] middle\",\n"
            "      \"caused_by\" : {\n"
            "        \"type\" : \"number_format_exception\",\n"
            "        \"reason\" : \"For input string: \\\"ten\\\"\"\n"
            "      }\n"
            "    }\n"
            "  },\n"
            "  \"status\" : 400\n"
            "}");
}

}  // namespace
}  // namespace clout
