// Result identity: re-loaded and overlapping dumps update results, never
// duplicate them (InfluencerStore::Apply's contract).
#include <algorithm>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "engine/error.h"
#include "tools/generator.h"
#include "engine/loader.h"
#include "engine/request.h"
#include "engine/response.h"
#include "engine/store.h"
#include "gtest/gtest.h"

namespace clout {
namespace {

std::string Doc(absl::string_view value, int64_t ts, double score,
                bool interim = false, double initial = -1) {
  return absl::StrCat(
      R"({"job_id":"j","result_type":"influencer","influencer_field_name":"host",)"
      R"("influencer_field_value":")",
      value, R"(","influencer_score":)", score,
      R"(,"initial_influencer_score":)", initial < 0 ? score : initial,
      R"(,"probability":0.01,"bucket_span":600,"is_interim":)",
      interim ? "true" : "false", R"(,"timestamp":)", ts, "}\n");
}

std::string Query(const InfluencerStore& store, absl::string_view body,
                  absl::string_view job = "j") {
  absl::StatusOr<InfluencersRequest> request = ParseBodyRequest(job, body);
  EXPECT_TRUE(request.ok()) << request.status();
  absl::StatusOr<InfluencersPage> page = store.GetInfluencers(*request);
  return page.ok() ? InfluencersJson(*page) : ErrorJson(page.status());
}

int64_t Count(const InfluencerStore& store, absl::string_view body,
              absl::string_view job = "j") {
  absl::StatusOr<InfluencersRequest> request = ParseBodyRequest(job, body);
  absl::StatusOr<InfluencersPage> page = store.GetInfluencers(*request);
  return page.ok() ? page->count : -1;
}

TEST(IdentityTest, InterimResultIsReplacedByItsFinalVersion) {
  InfluencerStore store;
  ASSERT_TRUE(LoadString(store, Doc("a", 1000, 10.0) + Doc("b", 2000, 40.0, true)).ok());
  EXPECT_EQ(Count(store, "{}"), 2);
  EXPECT_EQ(Count(store, R"({"exclude_interim":true})"), 1);

  absl::StatusOr<LoadReport> report =
      LoadString(store, Doc("b", 2000, 45.5, false, 40.0));
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->influencers_added, 0u);
  EXPECT_EQ(report->replaced, 1u);
  EXPECT_EQ(Count(store, "{}"), 2);
  EXPECT_EQ(Count(store, R"({"exclude_interim":true})"), 2);
  EXPECT_EQ(store.Current()->PlainJob("j")->interim_rows, 0u);
  std::string top = Query(store, R"({"page":{"size":1}})");
  EXPECT_NE(top.find(R"("influencer_score":45.5,"initial_influencer_score":40.0)"),
            std::string::npos)
      << top;
  EXPECT_NE(top.find(R"("is_interim":false)"), std::string::npos) << top;
}

TEST(IdentityTest, RenormalizedScoresReorderResults) {
  InfluencerStore store;
  ASSERT_TRUE(LoadString(store, Doc("a", 1000, 90.0) + Doc("b", 1000, 50.0) +
                                    Doc("c", 2000, 70.0))
                  .ok());
  // Renormalization lowers a and raises c; initial scores keep first values.
  ASSERT_TRUE(LoadString(store, Doc("a", 1000, 20.0, false, 90.0) +
                                    Doc("c", 2000, 95.0, false, 70.0))
                  .ok());
  EXPECT_EQ(Query(store, R"({"page":{"size":3}})"),
            Query(store, R"({"page":{"size":3}})"));
  std::string page = Query(store, "{}");
  size_t c = page.find(R"("influencer_field_value":"c")");
  size_t b = page.find(R"("influencer_field_value":"b")");
  size_t a = page.find(R"("influencer_field_value":"a")");
  ASSERT_NE(a, std::string::npos);
  EXPECT_LT(c, b);
  EXPECT_LT(b, a);
  EXPECT_NE(page.find(R"("influencer_score":20.0,"initial_influencer_score":90.0)"),
            std::string::npos);
  EXPECT_EQ(Count(store, "{}"), 3);
}

TEST(IdentityTest, LoadingTheSameDumpTwiceChangesNothing) {
  GeneratorOptions options;
  options.records = 3000;
  options.jobs = 2;
  options.mixed = true;
  std::string dump = GenerateDumpString(options);
  InfluencerStore store;
  absl::StatusOr<LoadReport> first = LoadString(store, dump);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->influencers_added, 3000u);
  const std::vector<std::string> bodies = {
      "{}", R"({"sort":"timestamp","desc":false,"page":{"size":500}})",
      R"({"sort":"host","page":{"from":7,"size":50}})",
      R"({"exclude_interim":true,"influencer_score":10})"};
  std::vector<std::string> before;
  for (const std::string& b : bodies) before.push_back(Query(store, b));

  absl::StatusOr<LoadReport> second = LoadString(store, dump);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->influencers_added, 0u);
  EXPECT_EQ(second->replaced, 0u);
  EXPECT_EQ(second->unchanged, 3000u);
  for (size_t i = 0; i < bodies.size(); ++i) {
    EXPECT_EQ(Query(store, bodies[i]), before[i]) << bodies[i];
  }
}

TEST(IdentityTest, OverlappingDumpsKeepOneCopyOfEachResult) {
  InfluencerStore store;
  ASSERT_TRUE(LoadString(store, Doc("a", 1000, 1) + Doc("b", 2000, 2) +
                                    Doc("c", 3000, 3))
                  .ok());
  absl::StatusOr<LoadReport> report = LoadString(
      store, Doc("c", 3000, 3) + Doc("d", 4000, 4) + Doc("e", 5000, 5));
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->influencers_added, 2u);
  EXPECT_EQ(report->unchanged, 1u);
  EXPECT_EQ(Count(store, "{}"), 5);
}

TEST(IdentityTest, IdentityIncludesBucketSpanAndField) {
  InfluencerStore store;
  std::string other_span = Doc("a", 1000, 1);
  other_span.replace(other_span.find("600"), 3, "900");
  std::string other_field = Doc("a", 1000, 1);
  other_field.replace(other_field.find("\"host\""), 6, "\"user\"");
  ASSERT_TRUE(LoadString(store, Doc("a", 1000, 1) + other_span + other_field).ok());
  EXPECT_EQ(Count(store, "{}"), 3);
}

TEST(IdentityTest, LastOccurrenceWithinOneDumpWins) {
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = LoadString(
      store, Doc("a", 1000, 10) + Doc("b", 1000, 20) + Doc("a", 1000, 30));
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->influencers_added, 2u);
  EXPECT_EQ(report->replaced, 1u);
  EXPECT_EQ(Count(store, "{}"), 2);
  // a took the later position: in ascending order by job_id (all ties), b
  // comes first.
  std::string page = Query(store, R"({"sort":"job_id","desc":false})");
  EXPECT_LT(page.find(R"("influencer_field_value":"b")"),
            page.find(R"("influencer_field_value":"a")"));
  EXPECT_NE(page.find(R"("influencer_score":30.0)"), std::string::npos);
}

TEST(IdentityTest, ReplacedResultMovesToTheEndOfIngestOrder) {
  InfluencerStore store;
  ASSERT_TRUE(LoadString(store, Doc("a", 1000, 5) + Doc("b", 1000, 5)).ok());
  ASSERT_TRUE(LoadString(store, Doc("a", 1000, 5, true)).ok());  // changed
  std::string page = Query(store, "{}");  // ties on score: ingest order
  EXPECT_LT(page.find(R"("influencer_field_value":"b")"),
            page.find(R"("influencer_field_value":"a")"));
}

TEST(IdentityTest, ReplaceJobModeDropsOldResultsAtomically) {
  InfluencerStore store;
  ASSERT_TRUE(LoadString(store, Doc("a", 1000, 1) + Doc("b", 2000, 2)).ok());
  LoadOptions options;
  options.replace_jobs = true;
  absl::StatusOr<LoadReport> report =
      LoadString(store, Doc("c", 3000, 3), options);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->deleted, 2u);
  EXPECT_EQ(report->influencers_added, 1u);
  EXPECT_EQ(Count(store, "{}"), 1);
  // A failed replace leaves the old results.
  EXPECT_FALSE(LoadString(store, Doc("d", 4000, 4) + "{bad\n", options).ok());
  EXPECT_EQ(Count(store, "{}"), 1);
}

TEST(IdentityTest, DeleteJob) {
  InfluencerStore store;
  ASSERT_TRUE(LoadString(store, Doc("a", 1000, 1)).ok());
  EXPECT_TRUE(store.DeleteJob("j").ok());
  EXPECT_EQ(Count(store, "{}"), -1);
  absl::Status again = store.DeleteJob("j");
  EXPECT_EQ(HttpStatusOf(again), 404);
  EXPECT_EQ(again.message(), "No known job with id 'j'");
  // Its field name is no longer sortable.
  absl::StatusOr<InfluencersRequest> request =
      ParseBodyRequest("j", R"({"sort":"host"})");
  store.RegisterJob("j");
  absl::StatusOr<InfluencersPage> page = store.GetInfluencers(*request);
  EXPECT_EQ(HttpStatusOf(page.status()), 400);
}

// A naive model of the identity semantics: a list per job, linear search.
struct ModelRow {
  std::string value;
  int64_t ts;
  int64_t span;
  double score;
  bool interim;
};

bool SameIdentity(const ModelRow& a, const ModelRow& b) {
  return a.value == b.value && a.ts == b.ts && a.span == b.span;
}
bool SameRow(const ModelRow& a, const ModelRow& b) {
  return SameIdentity(a, b) &&
         std::memcmp(&a.score, &b.score, sizeof a.score) == 0 &&
         a.interim == b.interim;
}

std::string ModelDoc(const ModelRow& r) {
  return absl::StrCat(
      R"({"job_id":"j","result_type":"influencer","influencer_field_name":"host",)"
      R"("influencer_field_value":")",
      r.value, R"(","influencer_score":)", r.score,
      R"(,"bucket_span":)", r.span, R"(,"is_interim":)",
      r.interim ? "true" : "false", R"(,"timestamp":)", r.ts, "}\n");
}

// Runs the differential test below. With `sorted_runs`, each batch is in
// time order with long runs of one timestamp (the commit then finds repeats
// run by run instead of with an index of the whole batch).
void IncrementalLoadsMatchTheModel(bool sorted_runs) {
  for (int seed = 0; seed < 150; ++seed) {
    std::mt19937_64 random(seed);
    auto pick = [&](int n) { return static_cast<int>(random() % n); };
    InfluencerStore store;
    std::vector<ModelRow> model;
    for (int load = 0; load < 4; ++load) {
      bool replace = pick(6) == 0;
      std::vector<ModelRow> batch;
      int n = sorted_runs ? pick(120) : pick(30);
      for (int i = 0; i < n; ++i) {
        batch.push_back({absl::StrCat("v", pick(sorted_runs ? 30 : 6)),
                         1000 * pick(sorted_runs ? 2 : 4),
                         pick(3) == 0 ? 900 : 600,
                         static_cast<double>(pick(4)) * 12.5, pick(3) == 0});
      }
      if (sorted_runs) {
        std::stable_sort(batch.begin(), batch.end(),
                         [](const ModelRow& a, const ModelRow& b) {
                           return a.ts < b.ts;
                         });
      }
      std::string dump;
      for (const ModelRow& r : batch) dump += ModelDoc(r);
      LoadOptions options;
      options.replace_jobs = replace;
      absl::StatusOr<LoadReport> report = LoadString(store, dump, options);
      ASSERT_TRUE(report.ok()) << report.status();
      uint64_t expected_replaced = 0;  // repeats in the batch, changed rows
      // The model: drop old rows on replace; then each staged row, in order,
      // replaces (moves to the end) or, if identical, keeps the stored one.
      // An empty dump names no job, so it replaces nothing.
      if (n == 0) continue;
      if (replace) model.clear();
      for (const ModelRow& r : batch) {
        // Only the last occurrence within the batch counts.
        bool later = false;
        for (size_t k = &r - batch.data() + 1; k < batch.size(); ++k) {
          if (SameIdentity(batch[k], r)) later = true;
        }
        if (later) {
          ++expected_replaced;
          continue;
        }
        auto it = std::find_if(model.begin(), model.end(), [&](const ModelRow& m) {
          return SameIdentity(m, r);
        });
        if (it != model.end() && SameRow(*it, r)) continue;
        if (it != model.end()) {
          model.erase(it);
          ++expected_replaced;
        }
        model.push_back(r);
      }
      EXPECT_EQ(report->replaced, expected_replaced) << "seed " << seed;
    }
    if (store.Current()->PlainJob("j") == nullptr) continue;
    InfluencerStore fresh;
    std::string dump;
    for (const ModelRow& r : model) dump += ModelDoc(r);
    fresh.RegisterJob("j");
    ASSERT_TRUE(LoadString(fresh, dump).ok());
    for (const char* body :
         {"{}", R"({"desc":false})", R"({"sort":"timestamp"})",
          R"({"sort":"job_id","desc":false})", R"({"sort":"host"})",
          R"({"exclude_interim":true,"sort":"bucket_span"})"}) {
      std::string got = Query(store, body);
      std::string want = Query(fresh, body);
      ASSERT_EQ(got, want) << "seed " << seed << " request " << body;
    }
  }
}

TEST(IdentityDifferentialTest, IncrementalLoadsMatchAFreshLoadOfTheModel) {
  IncrementalLoadsMatchTheModel(false);
}

TEST(IdentityDifferentialTest, TimeOrderedBatchesWithLongRunsMatchTheModel) {
  IncrementalLoadsMatchTheModel(true);
}

}  // namespace
}  // namespace clout

namespace clout {
namespace {

std::string BulkIndex(const std::string& doc) {
  return "{\"index\":{\"_index\":\".ml-anomalies-shared\"}}\n" + doc;
}

std::string BulkDelete(const std::string& id) {
  return "{\"delete\":{\"_index\":\".ml-anomalies-shared\",\"_id\":\"" + id +
         "\"}}\n";
}

// Elasticsearch's _id of an influencer of job "j", field "host".
std::string EsId(absl::string_view value, int64_t ts, int64_t span = 600) {
  int32_t length = 0;
  int32_t hash = JavaStringHash(value, &length);
  return absl::StrCat("j_influencer_", ts, "_", span, "_host_", hash, "_",
                      length);
}

TEST(JavaStringHashTest, MatchesJava) {
  int32_t length = 0;
  // "hello".hashCode() == 99162322 in Java.
  EXPECT_EQ(JavaStringHash("hello", &length), 99162322);
  EXPECT_EQ(length, 5);
  EXPECT_EQ(JavaStringHash("", &length), 0);
  EXPECT_EQ(length, 0);
  // Wraps around as Java's int does (value from the same formula over the
  // UTF-16 units, computed independently with Python).
  EXPECT_EQ(JavaStringHash("online_purchases", &length), -790773594);
  // U+00E9 is one UTF-16 unit; U+1F600 is a surrogate pair.
  JavaStringHash("\xc3\xa9", &length);
  EXPECT_EQ(length, 1);
  EXPECT_EQ(JavaStringHash("\xc3\xa9", nullptr), 0xE9);
  EXPECT_EQ(JavaStringHash("\xf0\x9f\x98\x80", &length), 0xD83D * 31 + 0xDE00);
  EXPECT_EQ(length, 2);
  // Not UTF-8: a lead byte without its continuation, or a code point past
  // U+10FFFF; each byte is one unit.
  EXPECT_EQ(JavaStringHash("\xc3" "A", &length), 0xC3 * 31 + 'A');
  EXPECT_EQ(length, 2);
  JavaStringHash("\xf5\x80\x80\x80", &length);
  EXPECT_EQ(length, 4);
}

TEST(InfluencerResultIdTest, Parses) {
  std::optional<InfluencerResultId> id = ParseInfluencerResultId(
      "it_ops_new_kpi_influencer_1454943600000_600_kpi_indicator_-790773594_16");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->job_id, "it_ops_new_kpi");
  EXPECT_EQ(id->timestamp, 1454943600000);
  EXPECT_EQ(id->bucket_span, 600);
  EXPECT_EQ(id->field_name, "kpi_indicator");
  EXPECT_EQ(id->value_hash, -790773594);
  EXPECT_EQ(id->value_length, 16);
  for (const char* bad : {"job_bucket_1454943600000_600",
                          "j_influencer_x_600_f_1_2", "j_influencer_1_600_f_1",
                          "_influencer_1_600_f_1_2", "j_influencer_1_600__1_2_"}) {
    EXPECT_FALSE(ParseInfluencerResultId(bad).has_value()) << bad;
  }
}

TEST(InfluencerResultIdTest, JobIdMayContainTheMarker) {
  // Elasticsearch allows job ids such as my_influencer_job.
  std::optional<InfluencerResultId> id = ParseInfluencerResultId(
      "my_influencer_job_influencer_1000_600_f_97_1");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->job_id, "my_influencer_job");
  EXPECT_EQ(id->timestamp, 1000);
  EXPECT_EQ(id->bucket_span, 600);
  EXPECT_EQ(id->field_name, "f");
  EXPECT_EQ(id->value_hash, 97);
  EXPECT_EQ(id->value_length, 1);
  // The field name may hold it too: the first reading that parses wins.
  id = ParseInfluencerResultId("j_influencer_-5_0_my_influencer_1_2_3_4");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->job_id, "j");
  EXPECT_EQ(id->timestamp, -5);
  EXPECT_EQ(id->field_name, "my_influencer_1_2");

  // End to end: a _bulk delete of a result of such a job removes it.
  InfluencerStore store;
  const std::string doc =
      R"({"job_id":"my_influencer_job","result_type":"influencer",)"
      R"("influencer_field_name":"f","influencer_field_value":"%s",)"
      R"("influencer_score":1,"bucket_span":600,"timestamp":1000})";
  const std::string bulk = absl::StrCat(
      R"({"index":{}})", "\n", absl::StrReplaceAll(doc, {{"%s", "a"}}), "\n",
      R"({"index":{}})", "\n", absl::StrReplaceAll(doc, {{"%s", "b"}}), "\n",
      R"({"delete":{"_id":"my_influencer_job_influencer_1000_600_f_97_1"}})",
      "\n");
  absl::StatusOr<LoadReport> report = LoadString(store, bulk);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->bulk_deletes, 1u);
  EXPECT_EQ(Count(store, "{}", "my_influencer_job"), 1);
}

// A job emptied by deletions keeps its dictionaries; a later load of the
// same strings in another order must not take the batch's codes for the
// job's (the rows came back with each other's value and span).
TEST(BulkTest, ReloadAfterDeletingEveryRowKeepsValuesAndSpans) {
  auto doc = [](const char* value, int ts, int span) {
    return absl::StrCat(
        R"({"job_id":"j","result_type":"influencer","influencer_field_name":"host",)",
        R"("influencer_field_value":")", value, R"(","influencer_score":1,)",
        R"("bucket_span":)", span, R"(,"timestamp":)", ts, "}\n");
  };
  InfluencerStore store;
  ASSERT_TRUE(LoadString(store, doc("x", 1, 300) + doc("y", 2, 600)).ok());
  ASSERT_TRUE(LoadString(store,
                         "{\"delete\":{\"_id\":\"j_influencer_1_300_host_120_1\"}}\n"
                         "{\"delete\":{\"_id\":\"j_influencer_2_600_host_121_1\"}}\n")
                  .ok());
  ASSERT_EQ(Count(store, "{}"), 0);
  ASSERT_TRUE(LoadString(store, doc("y", 3, 600) + doc("x", 4, 300)).ok());
  const std::string page =
      Query(store, R"({"sort":"timestamp","desc":false})");
  EXPECT_NE(page.find(R"("influencer_field_value":"y","host":"y","influencer_score":1.0,"initial_influencer_score":0.0,"probability":0.0,"bucket_span":600,"is_interim":false,"timestamp":3)"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find(R"("influencer_field_value":"x","host":"x","influencer_score":1.0,"initial_influencer_score":0.0,"probability":0.0,"bucket_span":300,"is_interim":false,"timestamp":4)"),
            std::string::npos)
      << page;
}

TEST(BulkTest, DeleteActionsRemoveNamedResults) {
  InfluencerStore store;
  ASSERT_TRUE(LoadString(store, Doc("a", 1000, 1) + Doc("b", 2000, 2) +
                                    Doc("c", 3000, 3))
                  .ok());
  std::string bulk = BulkDelete(EsId("a", 1000)) +
                     BulkDelete("j_bucket_1000_600") +       // not an influencer
                     BulkDelete(EsId("zzz", 1000)) +         // matches nothing
                     BulkIndex(Doc("d", 4000, 4)) +
                     BulkDelete(EsId("d", 4000)) +           // staged before: gone
                     BulkDelete(EsId("b", 2000)) +
                     BulkIndex(Doc("b", 2000, 9));           // staged after: kept
  absl::StatusOr<LoadReport> report = LoadString(store, bulk);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->format, DumpFormat::kBulk);
  EXPECT_EQ(report->bulk_deletes, 4u);
  EXPECT_EQ(report->deleted, 2u);  // stored a and b
  EXPECT_EQ(report->delete_misses, 1u);
  EXPECT_EQ(report->skipped.at("(bulk delete)"), 1u);
  EXPECT_EQ(Count(store, "{}"), 2);  // c and the new b
  std::string page = Query(store, "{}");
  EXPECT_NE(page.find(R"("influencer_field_value":"b","host":"b","influencer_score":9.0)"),
            std::string::npos)
      << page;
  EXPECT_EQ(page.find(R"("influencer_field_value":"a")"), std::string::npos);
  EXPECT_EQ(page.find(R"("influencer_field_value":"d")"), std::string::npos);
}

TEST(BulkTest, DeleteOfAnUnknownJobDoesNotCreateIt) {
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = LoadString(store, BulkDelete(EsId("a", 1)));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->delete_misses, 1u);
  EXPECT_EQ(store.Current()->PlainJob("j"), nullptr);
}

TEST(BulkTest, UpdateActionsAreRejectedInStrictModeAndCountedInLenient) {
  InfluencerStore store;
  std::string bulk = "{\"update\":{\"_id\":\"x\"}}\n{\"doc\":{\"a\":1}}\n" +
                     BulkIndex(Doc("a", 1000, 1));
  absl::StatusOr<LoadReport> strict = LoadString(store, bulk);
  ASSERT_FALSE(strict.ok());
  EXPECT_NE(strict.status().message().find("update"), absl::string_view::npos);
  LoadOptions lenient;
  lenient.lenient = true;
  absl::StatusOr<LoadReport> report = LoadString(store, bulk, lenient);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->rejected, 1u);
  EXPECT_EQ(Count(store, "{}"), 1);
}

}  // namespace
}  // namespace clout

namespace clout {
namespace {

// Apply(batch, {threads}) merges jobs in parallel: the same batches over
// several jobs (upserts, deletions, replace_jobs) must leave the same store
// and the same stats as a one-thread commit.
MutationBatch RandomMultiJobBatch(std::mt19937_64& random,
                                std::vector<std::string>* strings) {
  auto pick = [&](int n) { return static_cast<int>(random() % n); };
  MutationBatch batch;
  batch.set_replace_jobs(pick(5) == 0);
  const int n = pick(60);
  for (int i = 0; i < n; ++i) {
    std::string job = absl::StrCat("job", pick(5));
    if (pick(8) == 0) {
      InfluencerResultId id;
      id.job_id = job;
      id.timestamp = 1000 * pick(4);
      id.bucket_span = 600;
      id.field_name = "host";
      std::string value = absl::StrCat("v", pick(6));
      id.value_hash = JavaStringHash(value, &id.value_length);
      batch.DeleteInfluencer(id);
      continue;
    }
    strings->push_back(absl::StrCat("v", pick(6)));
    InfluencerFields row;
    row.field_name = "host";
    row.field_value = strings->back();
    row.timestamp = 1000 * pick(4);
    row.bucket_span = 600;
    row.influencer_score = 10.0 * pick(3);
    row.is_interim = pick(4) == 0;
    batch.AddInfluencer(job, row);
  }
  if (pick(4) == 0) batch.RegisterJob("registered-only");
  return batch;
}

TEST(IdentityTest, ParallelCommitEqualsOneThreadCommit) {
  for (int seed = 0; seed < 60; ++seed) {
    InfluencerStore one;
    InfluencerStore many;
    std::mt19937_64 random_one(seed);
    std::mt19937_64 random_many(seed);
    for (int load = 0; load < 4; ++load) {
      std::vector<std::string> strings_one;
      std::vector<std::string> strings_many;
      strings_one.reserve(100);
      strings_many.reserve(100);
      absl::StatusOr<MutationResult> ra =
          one.Apply(RandomMultiJobBatch(random_one, &strings_one), {1});
      absl::StatusOr<MutationResult> rb =
          many.Apply(RandomMultiJobBatch(random_many, &strings_many), {3});
      ASSERT_TRUE(ra.ok() && rb.ok());
      const CommitStats& a = ra->stats;
      const CommitStats& b = rb->stats;
      ASSERT_EQ(std::tie(a.added, a.replaced, a.deleted, a.unchanged, a.delete_misses),
                std::tie(b.added, b.replaced, b.deleted, b.unchanged, b.delete_misses))
          << "seed " << seed << " load " << load;
    }
    std::shared_ptr<const StoreVersion> sa = one.Current();
    std::shared_ptr<const StoreVersion> sb = many.Current();
    ASSERT_EQ(sa->jobs.size(), sb->jobs.size()) << "seed " << seed;
    ASSERT_EQ(sa->influencer_field_names, sb->influencer_field_names);
    for (const auto& [id, job] : sa->jobs) {
      ASSERT_TRUE(sb->jobs.contains(id)) << id;
      for (const char* body : {"{}", R"({"sort":"timestamp","desc":false})"}) {
        ASSERT_EQ(Query(one, body, id), Query(many, body, id))
            << "seed " << seed << " job " << id;
      }
    }
  }
}

}  // namespace
}  // namespace clout
