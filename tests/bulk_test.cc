// `_bulk` requests (bulk.h): parsing into a kBulk MutationBatch, the items
// response, and every whole-request and per-item error.
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/bulk.h"
#include "engine/error.h"
#include "engine/store.h"
#include "gtest/gtest.h"

namespace clout {
namespace {

std::string Doc(absl::string_view value, double score = 50.0,
                absl::string_view job = "j") {
  return absl::StrCat(
      R"({"job_id":")", job,
      R"(","result_type":"influencer","influencer_field_name":"host",)",
      R"("influencer_field_value":")", value, R"(","influencer_score":)", score,
      R"(,"bucket_span":600,"timestamp":1000})");
}

// Parses and applies `body`; returns the response, or the whole-request
// error's JSON-free "status type: reason".
std::string Bulk(InfluencerStore& store, const std::string& body,
                 BulkOptions options = {}) {
  absl::StatusOr<BulkRequest> request = ParseBulkRequest(body, options);
  if (!request.ok()) {
    return absl::StrCat(HttpStatusOf(request.status()), " ",
                        ErrorTypeOf(request.status()), ": ",
                        request.status().message());
  }
  std::vector<BulkItem> items = request->items;
  absl::StatusOr<MutationResult> result = store.Apply(std::move(request->batch));
  if (!result.ok()) return std::string(result.status().message());
  return BulkResponseJson(items, *result, 3);
}

constexpr char kShards[] = R"("_shards":{"total":1,"successful":1,"failed":0})";

TEST(BulkTest, ItemsAnswerAsElasticsearch) {
  InfluencerStore store;
  const std::string id_a = "j_influencer_1000_600_host_97_1";
  std::string body = absl::StrCat(
      R"({"index":{"_index":".ml-anomalies-shared"}})", "\n", Doc("a"), "\n",
      R"({"index":{"_index":".ml-anomalies-shared","_id":")", id_a, R"("}})", "\n",
      Doc("a"), "\n",
      R"({"create":{"_index":".ml-anomalies-.write-j"}})", "\n", Doc("a"), "\n",
      R"({"delete":{"_index":".ml-anomalies-shared","_id":")", id_a, R"("}})", "\n",
      R"({"delete":{"_index":".ml-anomalies-shared","_id":")", id_a, R"("}})", "\n",
      R"({"index":{"_index":".ml-anomalies-shared","_id":"j_bucket_1000_600"}})", "\n",
      R"({"job_id":"j","result_type":"bucket","timestamp":1000,"bucket_span":600})", "\n");
  EXPECT_EQ(
      Bulk(store, body),
      absl::StrCat(
          R"({"errors":true,"took":3,"items":[)",
          R"({"index":{"_index":".ml-anomalies-shared","_id":")", id_a,
          R"(","_version":1,"result":"created",)", kShards,
          R"(,"_seq_no":0,"_primary_term":1,"status":201}},)",
          R"({"index":{"_index":".ml-anomalies-shared","_id":")", id_a,
          R"(","_version":2,"result":"updated",)", kShards,
          R"(,"_seq_no":1,"_primary_term":1,"status":200}},)",
          R"({"create":{"_index":".ml-anomalies-shared","_id":")", id_a,
          R"(","status":409,"error":{"type":"version_conflict_engine_exception",)",
          R"("reason":"[)", id_a,
          R"x(]: version conflict, document already exists (current version [2])"}}},)x",
          R"({"delete":{"_index":".ml-anomalies-shared","_id":")", id_a,
          R"(","_version":3,"result":"deleted",)", kShards,
          R"(,"_seq_no":2,"_primary_term":1,"status":200}},)",
          R"({"delete":{"_index":".ml-anomalies-shared","_id":")", id_a,
          R"(","_version":4,"result":"not_found",)", kShards,
          R"(,"_seq_no":3,"_primary_term":1,"status":404}},)",
          R"({"index":{"_index":".ml-anomalies-shared","_id":"j_bucket_1000_600",)",
          R"("_version":1,"result":"created",)", kShards,
          R"(,"_seq_no":4,"_primary_term":1,"status":201}}]})"));
  std::shared_ptr<const JobResults> job = store.Current()->PlainJob("j");
  ASSERT_NE(job, nullptr);
  EXPECT_EQ(job->size(), 0u);
}

TEST(BulkTest, ParsedRequestCountsOtherResultTypes) {
  std::string body = absl::StrCat(
      R"({"index":{}})", "\n",
      R"({"job_id":"k","result_type":"record","timestamp":1000,"bucket_span":600})", "\n",
      R"({"index":{}})", "\n", Doc("b", 1.0, "k"), "\n");
  BulkOptions options;
  options.default_index = ".ml-anomalies-custom-mine";
  absl::StatusOr<BulkRequest> request = ParseBulkRequest(body, options);
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->other_results.at("record"), 1u);
  ASSERT_EQ(request->items.size(), 2u);
  EXPECT_EQ(request->items[0].index, ".ml-anomalies-custom-mine");
  EXPECT_EQ(request->items[0].id.size(), 20u);  // generated
  EXPECT_EQ(request->items[1].id, "k_influencer_1000_600_host_98_1");
  InfluencerStore store;
  absl::StatusOr<MutationResult> result = store.Apply(std::move(request->batch));
  ASSERT_TRUE(result.ok());
  EXPECT_FALSE(result->errors());
  ASSERT_NE(store.Current()->PlainJob("k"), nullptr);
  EXPECT_EQ(store.Current()->PlainJob("k")->size(), 1u);
}

TEST(BulkTest, BadItemsFailAlone) {
  InfluencerStore store;
  std::string body = absl::StrCat(
      R"({"index":{"_index":"logs"}})", "\n", Doc("a"), "\n",
      R"({"index":{"_index":".ml-anomalies-shared","_id":"j_influencer_1000_600_host_1_1"}})",
      "\n", Doc("a"), "\n",
      R"({"index":{"_index":".ml-anomalies-shared"}})", "\n",
      R"({"job_id":"j","result_type":"influencer","influencer_field_name":"host","influencer_field_value":"a","timestamp":"soon"})",
      "\n",
      R"({"update":{"_index":".ml-anomalies-shared","_id":"x"}})", "\n",
      R"({"doc":{"a":1}})", "\n",
      R"({"index":{"_index":".ml-anomalies-shared"}})", "\n", Doc("ok"), "\n");
  absl::StatusOr<BulkRequest> request = ParseBulkRequest(body, {});
  ASSERT_TRUE(request.ok()) << request.status();
  absl::StatusOr<MutationResult> result = store.Apply(std::move(request->batch));
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result->items.size(), 5u);
  auto error_of = [&](int i) {
    const ItemResult& item = result->items[i];
    return absl::StrCat(item.status, " ", ErrorTypeOf(item.error), ": ",
                        item.error.message());
  };
  EXPECT_EQ(error_of(0), "404 index_not_found_exception: no such index [logs]");
  EXPECT_EQ(error_of(1),
            "400 illegal_argument_exception: [_id] [j_influencer_1000_600_host_1_1] "
            "does not name the influencer result of its document, whose _id is "
            "[j_influencer_1000_600_host_97_1]");
  EXPECT_TRUE(absl::StartsWith(
      error_of(2),
      "400 mapper_parsing_exception: failed to parse document at line [6]: "))
      << error_of(2);
  EXPECT_NE(error_of(2).find("field [timestamp]"), std::string::npos) << error_of(2);
  EXPECT_TRUE(absl::StartsWith(
      error_of(3), "400 illegal_argument_exception: update actions are "))
      << error_of(3);
  EXPECT_EQ(result->items[4].outcome, MutationOutcome::kCreated);
  EXPECT_EQ(result->items[4].seq_no, 0);
  EXPECT_EQ(store.Current()->PlainJob("j")->size(), 1u);
}

TEST(BulkTest, WholeRequestErrors) {
  InfluencerStore store;
  const std::string doc = Doc("a");
  struct Case {
    std::string body;
    std::string error;
  } cases[] = {
      {"", "400 parse_exception: request body is required"},
      {R"({"index":{"_index":".ml-anomalies-shared"}})",
       "400 illegal_argument_exception: The bulk request must be terminated by "
       "a newline [\\n]"},
      {"[1]\n",
       "400 illegal_argument_exception: Malformed action/metadata line [1], "
       "expected START_OBJECT but found [START_ARRAY]"},
      {"\n\"index\"\n",
       "400 illegal_argument_exception: Malformed action/metadata line [2], "
       "expected START_OBJECT but found [VALUE_STRING]"},
      {"{}\n",
       "400 illegal_argument_exception: Malformed action/metadata line [1], "
       "expected FIELD_NAME but found [END_OBJECT]"},
      {"{\"upsert\":{}}\n",
       "400 illegal_argument_exception: Malformed action/metadata line [1], "
       "expected field [create], [delete], [index] or [update] but found [upsert]"},
      {"{\"index\":\"x\"}\n",
       "400 illegal_argument_exception: Malformed action/metadata line [1], "
       "expected START_OBJECT or END_OBJECT but found [VALUE_STRING]"},
      {"{\"index\":{\"_idx\":\"a\"}}\n",
       "400 illegal_argument_exception: Action/metadata line [1] contains an "
       "unknown parameter [_idx]"},
      {"{\"index\":{\"_index\":[\"a\"]}}\n",
       "400 illegal_argument_exception: Malformed action/metadata line [1], "
       "expected a simple value for field [_index] but found [START_ARRAY]"},
      {"{\"index\":{},\"delete\":{}}\n",
       "400 illegal_argument_exception: Malformed action/metadata line [1], "
       "expected END_OBJECT but found [FIELD_NAME]"},
      {absl::StrCat("{\"index\":{}}\n", doc, "\n"),
       "400 action_request_validation_exception: Validation Failed: 1: index "
       "is missing;"},
      {"{\"delete\":{\"_index\":\".ml-anomalies-shared\"}}\n",
       "400 action_request_validation_exception: Validation Failed: 1: id is "
       "missing;"},
      {absl::StrCat("{\"index\":{\"_index\":\".ml-anomalies-shared\"}}\n", doc,
                    "\n{\"index\":{\"_index\":\".ml-anomalies-shared\"}}\n"),
       "400 illegal_argument_exception: Malformed action/metadata line [3], the "
       "[index] action has no document line"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Bulk(store, c.body), c.error) << c.body;
  }
  // Nothing was applied by any of them.
  EXPECT_EQ(store.Current()->generation, 0u);
}

TEST(BulkTest, MalformedActionJsonFailsTheRequest) {
  InfluencerStore store;
  std::string response = Bulk(store, "{\"index\":{\n");
  EXPECT_TRUE(absl::StartsWith(
      response,
      "400 illegal_argument_exception: Malformed action/metadata line [1], "
      "malformed JSON: "))
      << response;
}

TEST(BulkTest, ResultsIndices) {
  EXPECT_TRUE(IsResultsIndex(".ml-anomalies-shared"));
  EXPECT_TRUE(IsResultsIndex(".ml-anomalies-custom-x"));
  EXPECT_TRUE(IsResultsIndex(".ml-anomalies-my_job"));
  EXPECT_TRUE(IsResultsIndex(".ml-anomalies-.write-my_job"));
  EXPECT_FALSE(IsResultsIndex(".ml-anomalies-"));
  EXPECT_FALSE(IsResultsIndex(".ml-state"));
  EXPECT_FALSE(IsResultsIndex("logs"));
}

}  // namespace
}  // namespace clout
