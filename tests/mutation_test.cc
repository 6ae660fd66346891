// The mutation API (mutation.h, InfluencerStore::Apply): per-item outcomes,
// _version and _seq_no, job operations, the log hook and group commit, and
// a randomised differential test of random mutation histories against a
// naive model that applies each operation to a list of rows.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <deque>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/error.h"
#include "engine/executor.h"
#include "engine/mutation.h"
#include "engine/response.h"
#include "engine/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clout {
namespace {

InfluencerFields Row(absl::string_view value, int64_t timestamp = 1000,
                     double score = 50.0) {
  InfluencerFields row;
  row.field_name = "host";
  row.field_value = value;
  row.timestamp = timestamp;
  row.bucket_span = 600;
  row.influencer_score = score;
  return row;
}

// The values "h0" to "h<n - 1>", and a kBulk batch upserting Row(value)
// into job "j" for each (the values must outlive the batch's staging).
std::vector<std::string> Hosts(int n) {
  std::vector<std::string> values;
  for (int i = 0; i < n; ++i) values.push_back(absl::StrCat("h", i));
  return values;
}
MutationBatch UpsertAll(const std::vector<std::string>& values) {
  MutationBatch batch(MutationMode::kBulk);
  for (const std::string& value : values) batch.AddInfluencer("j", Row(value));
  return batch;
}

InfluencerResultId IdOf(absl::string_view job, const InfluencerFields& row) {
  return *ParseInfluencerResultId(InfluencerDocumentId(job, row));
}

// (outcome, status, version, seq_no) of each item.
std::vector<std::tuple<std::string, int, uint64_t, int64_t>> Items(
    const MutationResult& result) {
  std::vector<std::tuple<std::string, int, uint64_t, int64_t>> items;
  for (const ItemResult& item : result.items) {
    items.emplace_back(std::string(MutationOutcomeName(item.outcome)),
                       item.status, item.version, item.seq_no);
  }
  return items;
}

using ItemList = std::vector<std::tuple<std::string, int, uint64_t, int64_t>>;

TEST(MutationTest, BulkItemsAnswerAsElasticsearch) {
  InfluencerStore store;
  MutationBatch batch(MutationMode::kBulk);
  batch.AddInfluencer("j", Row("a"));         // created, v1
  batch.AddInfluencer("j", Row("a"));         // identical: still updated, v2
  batch.AddInfluencer("j", Row("b"));         // created, v1
  batch.DeleteInfluencer(IdOf("j", Row("a")));  // deleted, v3
  batch.DeleteInfluencer(IdOf("j", Row("a")));  // not_found, v4
  batch.AddError(EsError(400, "mapper_parsing_exception", "bad"));
  batch.AddInfluencer("j", Row("a", 1000, 7.0));  // created again, v4
  absl::StatusOr<MutationResult> result = store.Apply(std::move(batch));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(Items(*result), (ItemList{{"created", 201, 1, 0},
                                      {"updated", 200, 2, 1},
                                      {"created", 201, 1, 2},
                                      {"deleted", 200, 3, 3},
                                      {"not_found", 404, 4, 4},
                                      {"error", 400, 0, -1},
                                      {"created", 201, 4, 5}}));
  EXPECT_TRUE(result->errors());
  EXPECT_EQ(result->items[5].error.message(), "bad");
  EXPECT_EQ(result->generation, 1u);
  EXPECT_EQ(result->first_seq_no, 0);
  std::shared_ptr<const JobResults> job = store.Current()->PlainJob("j");
  ASSERT_NE(job, nullptr);
  ASSERT_EQ(job->size(), 2u);  // b, then a (written last)
  EXPECT_EQ(job->field_value(0), "b");
  EXPECT_EQ(job->field_value(1), "a");
  EXPECT_EQ(job->columns.influencer_score[1], 7.0);
  EXPECT_EQ(job->columns.version[1], 4u);

  // A second batch: versions go on from the stored ones, sequence numbers
  // from the store's.
  MutationBatch next(MutationMode::kBulk);
  next.AddInfluencer("j", Row("b"));  // identical, still updated
  next.CreateInfluencer("j", Row("a"));
  next.CreateInfluencer("j", Row("c"));
  result = store.Apply(std::move(next));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(Items(*result), (ItemList{{"updated", 200, 2, 6},
                                      {"error", 409, 0, -1},
                                      {"created", 201, 1, 7}}));
  EXPECT_EQ(result->items[1].error.message(),
            "[j_influencer_1000_600_host_97_1]: version conflict, document "
            "already exists (current version [4])");
  EXPECT_NE(ErrorJson(result->items[1].error)
                .find("\"type\":\"version_conflict_engine_exception\""),
            std::string::npos);
  EXPECT_EQ(store.Current()->next_seq_no, 8);
  job = store.Current()->PlainJob("j");
  ASSERT_EQ(job->size(), 3u);  // a, b (moved to the end), c
  EXPECT_EQ(job->field_value(0), "a");
  EXPECT_EQ(job->field_value(1), "b");
  EXPECT_EQ(job->field_value(2), "c");
}

TEST(MutationTest, LoadKeepsIdenticalResultsInPlace) {
  InfluencerStore store;
  MutationBatch first;
  first.AddInfluencer("j", Row("a"));
  first.AddInfluencer("j", Row("b"));
  ASSERT_TRUE(store.Apply(std::move(first)).ok());
  MutationBatch again;
  again.AddInfluencer("j", Row("a"));             // identical: unchanged
  again.AddInfluencer("j", Row("b", 1000, 9.0));  // changed: replaced, v2
  absl::StatusOr<MutationResult> result = store.Apply(std::move(again));
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->items.empty());
  EXPECT_EQ(result->stats.unchanged, 1u);
  EXPECT_EQ(result->stats.replaced, 1u);
  EXPECT_EQ(result->stats.added, 0u);
  std::shared_ptr<const JobResults> job = store.Current()->PlainJob("j");
  EXPECT_EQ(job->field_value(0), "a");
  EXPECT_EQ(job->columns.version[0], 1u);
  EXPECT_EQ(job->columns.version[1], 2u);
}

TEST(MutationTest, LoadRefusesWhatItCannotApplyWhole) {
  InfluencerStore store;
  MutationBatch creates;
  creates.CreateInfluencer("j", Row("a"));
  absl::StatusOr<MutationResult> result = store.Apply(std::move(creates));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(HttpStatusOf(result.status()), 400);
  EXPECT_EQ(ErrorJson(result.status()),
            "{\"error\":{\"root_cause\":[{\"type\":\"illegal_argument_exception\","
            "\"reason\":\"create operations need a bulk-mode batch: a load "
            "applies its documents as a unit\"}],\"type\":\"illegal_argument_exception\","
            "\"reason\":\"create operations need a bulk-mode batch: a load "
            "applies its documents as a unit\"},\"status\":400}");

  MutationBatch unknown;
  unknown.AddInfluencer("k", Row("a"));
  unknown.DeleteJob("nope");
  result = store.Apply(std::move(unknown));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(HttpStatusOf(result.status()), 404);
  EXPECT_EQ(result.status().message(), "No known job with id 'nope'");
  EXPECT_EQ(store.Current()->generation, 0u);
  EXPECT_TRUE(store.Current()->jobs.empty());
}

TEST(MutationTest, JobOperationsInOrder) {
  InfluencerStore store;
  MutationBatch first;
  first.AddInfluencer("j", Row("a"));
  first.AddInfluencer("k", Row("a"));
  ASSERT_TRUE(store.Apply(std::move(first)).ok());

  MutationBatch batch(MutationMode::kBulk);
  batch.AddInfluencer("j", Row("b"));  // undone by the DeleteJob below
  batch.DeleteJob("j");                // deleted
  batch.DeleteJob("j");                // not_found
  batch.AddInfluencer("j", Row("c"));  // a new job j
  batch.ReplaceJob("k");               // deleted (held a)
  batch.ReplaceJob("m");               // noop, m becomes known
  batch.DeleteJob("gone");             // not_found
  absl::StatusOr<MutationResult> result = store.Apply(std::move(batch));
  ASSERT_TRUE(result.ok());
  // The first load's two rows took sequence numbers 0 and 1.
  EXPECT_EQ(Items(*result), (ItemList{{"created", 201, 1, 2},
                                      {"deleted", 200, 0, 3},
                                      {"not_found", 404, 0, 4},
                                      {"created", 201, 1, 5},
                                      {"deleted", 200, 0, 6},
                                      {"noop", 200, 0, 7},
                                      {"not_found", 404, 0, 8}}));
  std::shared_ptr<const StoreVersion> version = store.Current();
  ASSERT_NE(version->PlainJob("j"), nullptr);
  ASSERT_EQ(version->PlainJob("j")->size(), 1u);
  EXPECT_EQ(version->PlainJob("j")->field_value(0), "c");
  ASSERT_NE(version->PlainJob("k"), nullptr);
  EXPECT_EQ(version->PlainJob("k")->size(), 0u);
  EXPECT_NE(version->PlainJob("m"), nullptr);
  EXPECT_EQ(version->PlainJob("gone"), nullptr);

  EXPECT_TRUE(store.DeleteJob("j").ok());
  EXPECT_EQ(store.Current()->PlainJob("j"), nullptr);
  EXPECT_FALSE(version->PlainJob("j") == nullptr);  // old versions live on
}

// A log that records what the store asked of it, and can fail or block.
class RecordingLog : public MutationLog {
 public:
  absl::Status Append(const MutationBatch& batch,
                      uint64_t generation) override {
    std::lock_guard<std::mutex> lock(mu_);
    appended.push_back({generation, batch.operations()});
    if (fail_append_at == generation) {
      fail_append_at = 0;  // once
      return EsError(500, "io_exception", "disk full");
    }
    return absl::OkStatus();
  }
  absl::Status WaitDurable(uint64_t generation) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      synced.push_back(generation);
    }
    if (entered != nullptr) {
      entered->set_value();
      entered = nullptr;
      release.wait();
    }
    if (fail_sync) return EsError(500, "io_exception", "fsync failed");
    return absl::OkStatus();
  }

  std::mutex mu_;
  std::vector<std::pair<uint64_t, size_t>> appended;
  std::vector<uint64_t> synced;
  uint64_t fail_append_at = 0;
  bool fail_sync = false;
  // When set, the next WaitDurable signals it and waits for `release`.
  std::promise<void>* entered = nullptr;
  std::shared_future<void> release;
};

MutationBatch OneRow(absl::string_view value) {
  MutationBatch batch(MutationMode::kBulk);
  batch.AddInfluencer("j", Row(value));
  return batch;
}

// A store whose log holds its first WaitDurable until release.
struct HeldStore {
  explicit HeldStore(uint64_t fail_append_at = 0) {
    log->fail_append_at = fail_append_at;
    log->entered = &entered;
    log->release = release.get_future().share();
    StoreOptions options;
    options.log = log;
    store = std::make_unique<InfluencerStore>(options);
  }
  std::shared_ptr<RecordingLog> log = std::make_shared<RecordingLog>();
  std::promise<void> entered;
  std::promise<void> release;
  std::unique_ptr<InfluencerStore> store;
};

TEST(MutationTest, WritesBecomeVisibleOnlyWhenDurableAndShareOneSync) {
  HeldStore held;
  InfluencerStore& store = *held.store;
  auto log = held.log;
  std::promise<void>& release = held.release;

  auto first = store.Submit(OneRow("a"));
  held.entered.get_future().wait();  // the writer waits for durability
  // Not yet durable: queries do not see it.
  EXPECT_EQ(store.Current()->generation, 0u);
  EXPECT_EQ(store.Current()->PlainJob("j"), nullptr);
  // These queue up behind the sync in progress, and share the next one.
  auto second = store.Submit(OneRow("b"));
  auto third = store.Submit(OneRow("c"));
  auto fourth = store.Submit(OneRow("d"));
  release.set_value();
  for (auto* f : {&first, &second, &third, &fourth}) {
    absl::StatusOr<MutationResult> result = f->get();
    ASSERT_TRUE(result.ok()) << result.status();
  }
  EXPECT_EQ(store.Current()->generation, 4u);
  EXPECT_EQ(store.Current()->PlainJob("j")->size(), 4u);
  std::lock_guard<std::mutex> lock(log->mu_);
  EXPECT_EQ(log->appended,
            (std::vector<std::pair<uint64_t, size_t>>{{1, 1}, {2, 1}, {3, 1}, {4, 1}}));
  EXPECT_EQ(log->synced, (std::vector<uint64_t>{1, 4}));
}

TEST(MutationTest, AFailedAppendFailsItsBatchOnly) {
  auto log = std::make_shared<RecordingLog>();
  log->fail_append_at = 2;
  StoreOptions options;
  options.log = log;
  InfluencerStore store(options);
  ASSERT_TRUE(store.Apply(OneRow("a")).ok());
  absl::StatusOr<MutationResult> failed = store.Apply(OneRow("b"));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().message(), "disk full");
  EXPECT_EQ(HttpStatusOf(failed.status()), 500);
  // The store keeps what was durable; the next batch takes generation 2
  // (the log left itself as it was).
  EXPECT_EQ(store.Current()->generation, 1u);
  EXPECT_EQ(store.Current()->PlainJob("j")->size(), 1u);
  absl::StatusOr<MutationResult> later = store.Apply(OneRow("c"));
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_EQ(later->generation, 2u);
  EXPECT_EQ(store.Current()->PlainJob("j")->size(), 2u);
  std::lock_guard<std::mutex> lock(log->mu_);
  EXPECT_EQ(log->appended,
            (std::vector<std::pair<uint64_t, size_t>>{{1, 1}, {2, 1}, {2, 1}}));
}

TEST(MutationTest, BatchesBeforeAFailedAppendInTheGroupStillLand) {
  HeldStore held(/*fail_append_at=*/3);
  InfluencerStore& store = *held.store;
  auto log = held.log;
  std::promise<void>& release = held.release;
  auto first = store.Submit(OneRow("a"));
  held.entered.get_future().wait();
  auto second = store.Submit(OneRow("b"));  // generation 2: appended
  auto third = store.Submit(OneRow("c"));   // generation 3: refused
  auto fourth = store.Submit(OneRow("d"));  // takes generation 3
  release.set_value();
  ASSERT_TRUE(first.get().ok());
  absl::StatusOr<MutationResult> landed = second.get();
  ASSERT_TRUE(landed.ok()) << landed.status();
  EXPECT_EQ(landed->generation, 2u);
  EXPECT_FALSE(third.get().ok());
  absl::StatusOr<MutationResult> after = fourth.get();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->generation, 3u);
  EXPECT_EQ(store.Current()->generation, 3u);
  EXPECT_EQ(store.Current()->PlainJob("j")->size(), 3u);
  std::lock_guard<std::mutex> lock(log->mu_);
  EXPECT_EQ(log->synced, (std::vector<uint64_t>{1, 3}));
}

TEST(MutationTest, ADeletedJobTakesItsFieldNamesAlong) {
  InfluencerStore store;
  MutationBatch first;
  InfluencerFields user = Row("u");
  user.field_name = "user";
  first.AddInfluencer("j", user);
  ASSERT_TRUE(store.Apply(std::move(first)).ok());
  EXPECT_TRUE(store.Current()->influencer_field_names.contains("user"));
  MutationBatch batch(MutationMode::kBulk);
  batch.DeleteJob("j");
  batch.AddInfluencer("j", Row("a"));  // host
  InfluencerFields failed = Row("b");
  failed.field_name = "client";
  batch.CreateInfluencer("j", failed);
  batch.CreateInfluencer("j", failed);  // 409
  ASSERT_TRUE(store.Apply(std::move(batch)).ok());
  EXPECT_FALSE(store.Current()->influencer_field_names.contains("user"));
  EXPECT_TRUE(store.Current()->influencer_field_names.contains("host"));
  InfluencersRequest request;
  request.job_id = "j";
  request.sort = "user";
  EXPECT_EQ(HttpStatusOf(store.GetInfluencers(request).status()), 400);
}

TEST(MutationTest, AppendedBulkBatchesKeepTheirItems) {
  MutationBatch batch(MutationMode::kBulk);
  batch.AddInfluencer("j", Row("a"));
  MutationBatch more(MutationMode::kBulk);
  more.AddError(EsError(400, "mapper_parsing_exception", "bad"));
  more.AddInfluencer("k", Row("b"));
  more.AddInfluencer("j", Row("a", 1000, 1.0));
  more.DeleteInfluencer(IdOf("j", Row("a")));
  more.AddOtherResult("j", "j_bucket_1");
  batch.Append(std::move(more));
  InfluencerStore store;
  absl::StatusOr<MutationResult> result = store.Apply(std::move(batch));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(Items(*result), (ItemList{{"created", 201, 1, 0},
                                      {"error", 400, 0, -1},
                                      {"created", 201, 1, 1},
                                      {"updated", 200, 2, 2},
                                      {"deleted", 200, 3, 3},
                                      {"created", 201, 1, 4}}));
  EXPECT_EQ(store.Current()->PlainJob("j")->size(), 0u);
  EXPECT_EQ(store.Current()->PlainJob("k")->size(), 1u);
}

// A log whose Append throws, as an allocation failure inside the commit
// would.
class ThrowingLog : public MutationLog {
 public:
  absl::Status Append(const MutationBatch&, uint64_t) override {
    if (throws) throw std::runtime_error("no memory");
    return absl::OkStatus();
  }
  absl::Status WaitDurable(uint64_t) override { return absl::OkStatus(); }
  bool throws = true;
};

TEST(MutationTest, AnExceptionFailsItsBatchNotTheStore) {
  auto log = std::make_shared<ThrowingLog>();
  StoreOptions options;
  options.log = log;
  InfluencerStore store(options);
  absl::StatusOr<MutationResult> failed = store.Apply(OneRow("a"));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(HttpStatusOf(failed.status()), 500);
  EXPECT_EQ(ErrorTypeOf(failed.status()), "exception");
  EXPECT_EQ(failed.status().message(),
            "the batch could not be applied: no memory");
  EXPECT_EQ(store.Current()->generation, 0u);
  log->throws = false;
  absl::StatusOr<MutationResult> next = store.Apply(OneRow("b"));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(store.Current()->PlainJob("j")->size(), 1u);
}

TEST(MutationTest, AnOkErrorItemIsStillAnError) {
  MutationBatch batch(MutationMode::kBulk);
  batch.AddError(absl::OkStatus());
  InfluencerStore store;
  absl::StatusOr<MutationResult> result = store.Apply(std::move(batch));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(Items(*result), (ItemList{{"error", 500, 0, -1}}));
  EXPECT_EQ(result->items[0].error.message(), "an item failed without an error");
}

TEST(MutationTest, WarmIndexesByJobId) {
  InfluencerStore store;
  MutationBatch batch;
  batch.AddInfluencer("j", Row("a"));
  ASSERT_TRUE(store.Apply(std::move(batch)).ok());
  EXPECT_EQ(IndexBytes(*store.Current()->jobs.at("j")), 0u);
  ASSERT_TRUE(store.WarmIndexes("j").ok());
  EXPECT_GT(IndexBytes(*store.Current()->jobs.at("j")), 0u);
  absl::Status unknown = store.WarmIndexes("nope");
  EXPECT_EQ(HttpStatusOf(unknown), 404);
  EXPECT_EQ(unknown.message(), "No known job with id 'nope'");
}

TEST(MutationTest, AFailedSyncPublishesNothing) {
  auto log = std::make_shared<RecordingLog>();
  log->fail_sync = true;
  StoreOptions options;
  options.log = log;
  InfluencerStore store(options);
  absl::StatusOr<MutationResult> failed = store.Apply(OneRow("a"));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().message(), "fsync failed");
  EXPECT_EQ(store.Current()->generation, 0u);
  EXPECT_TRUE(store.Current()->jobs.empty());
  EXPECT_FALSE(store.Apply(OneRow("b")).ok());
}

// ---------------------------------------------------------------------------
// Random mutation histories against a naive model.

constexpr const char* kJobs[] = {"a", "b", "c"};
constexpr const char* kValues[] = {"Aa", "BB", "x", "y"};  // Aa, BB collide
constexpr const char* kNames[] = {"host", "user"};
constexpr int64_t kTimes[] = {1000, 2000, 3000};
constexpr int64_t kSpans[] = {0, 600};
constexpr double kScoreSet[] = {0.0, 1.5, 50.0};

struct ModelRow {
  std::string name;
  std::string value;
  int64_t timestamp;
  int64_t bucket_span;
  double score;
  double initial;
  bool interim;
  uint32_t version;
  auto Identity() const {
    return std::tie(timestamp, bucket_span, name, value);
  }
  bool SameValues(const ModelRow& o) const {
    return std::memcmp(&score, &o.score, sizeof score) == 0 &&
           std::memcmp(&initial, &o.initial, sizeof initial) == 0 &&
           interim == o.interim;
  }
};

struct Op {
  enum Kind { kUpsert, kCreate, kDelete, kDeleteJob, kReplaceJob, kRegister, kError };
  Kind kind;
  std::string job;
  ModelRow row;
  InfluencerResultId id;
};

bool Names(const InfluencerResultId& id, const ModelRow& row) {
  int32_t length = 0;
  int32_t hash = JavaStringHash(row.value, &length);
  return row.timestamp == id.timestamp && row.bucket_span == id.bucket_span &&
         row.name == id.field_name && hash == id.value_hash &&
         length == id.value_length;
}

struct Model {
  std::map<std::string, std::vector<ModelRow>> jobs;  // known jobs' rows
  int64_t next_seq_no = 0;
  uint64_t generation = 0;

  // A kBulk batch: each op in turn.
  ItemList ApplyBulk(const std::vector<Op>& ops) {
    ItemList items;
    // Versions of results deleted in this batch, by (job, identity).
    std::map<std::pair<std::string, std::tuple<int64_t, int64_t, std::string, std::string>>,
             uint32_t>
        tombstones;
    auto key = [](const std::string& job, const ModelRow& row) {
      return std::make_pair(job, std::make_tuple(row.timestamp, row.bucket_span,
                                                 row.name, row.value));
    };
    for (const Op& op : ops) {
      std::string outcome;
      int status = 0;
      uint64_t version = 0;
      switch (op.kind) {
        case Op::kUpsert:
        case Op::kCreate: {
          std::vector<ModelRow>& rows = jobs[op.job];
          auto it = std::find_if(rows.begin(), rows.end(), [&](const ModelRow& r) {
            return r.Identity() == op.row.Identity();
          });
          if (it != rows.end() && op.kind == Op::kCreate) {
            outcome = "error";
            status = 409;
            break;
          }
          ModelRow row = op.row;
          if (it != rows.end()) {
            row.version = it->version + 1;
            rows.erase(it);
            outcome = "updated";
            status = 200;
          } else {
            auto tomb = tombstones.find(key(op.job, op.row));
            row.version = (tomb == tombstones.end() ? 0 : tomb->second) + 1;
            outcome = "created";
            status = 201;
          }
          version = row.version;
          rows.push_back(row);
          break;
        }
        case Op::kDelete: {
          uint32_t removed = 0;
          uint32_t tombstone = 0;
          for (auto& [k, v] : tombstones) {
            ModelRow probe{std::get<2>(k.second), std::get<3>(k.second),
                           std::get<0>(k.second), std::get<1>(k.second)};
            if (k.first == op.job && Names(op.id, probe)) {
              tombstone = std::max(tombstone, v);
            }
          }
          auto found = jobs.find(op.job);
          if (found != jobs.end()) {
            std::vector<ModelRow>& rows = found->second;
            for (auto it = rows.begin(); it != rows.end();) {
              if (!Names(op.id, *it)) {
                ++it;
                continue;
              }
              removed = std::max(removed, it->version + 1);
              tombstones[key(op.job, *it)] = it->version + 1;
              it = rows.erase(it);
            }
          }
          outcome = removed > 0 ? "deleted" : "not_found";
          status = removed > 0 ? 200 : 404;
          version = removed > 0 ? removed : tombstone + 1;
          break;
        }
        case Op::kDeleteJob:
        case Op::kReplaceJob: {
          auto found = jobs.find(op.job);
          const bool known = found != jobs.end();
          const bool held = known && !found->second.empty();
          if (known) jobs.erase(found);
          for (auto it = tombstones.begin(); it != tombstones.end();) {
            it = it->first.first == op.job ? tombstones.erase(it) : std::next(it);
          }
          if (op.kind == Op::kReplaceJob) {
            jobs[op.job];
            outcome = held ? "deleted" : "noop";
            status = 200;
          } else {
            outcome = known ? "deleted" : "not_found";
            status = known ? 200 : 404;
          }
          break;
        }
        case Op::kRegister:
          jobs[op.job];
          continue;  // no item
        case Op::kError:
          outcome = "error";
          status = 400;
          break;
      }
      const int64_t seq_no = outcome == "error" ? -1 : next_seq_no++;
      items.emplace_back(outcome, status, version, seq_no);
    }
    ++generation;
    return items;
  }

  // A kLoad batch: the unit semantics. Returns false (model unchanged) if
  // the store must refuse it.
  bool ApplyLoad(const std::vector<Op>& ops, bool replace_jobs) {
    std::vector<std::string> order;
    std::map<std::string, std::vector<const Op*>> by_job;
    for (const Op& op : ops) {
      if (op.kind == Op::kError) continue;
      if (!by_job.count(op.job)) order.push_back(op.job);
      by_job[op.job].push_back(&op);
    }
    // Validation: a DeleteJob of a job unknown at that point.
    for (const auto& [job, job_ops] : by_job) {
      bool known = jobs.count(job) > 0;
      for (const Op* op : job_ops) {
        if (op->kind == Op::kDeleteJob && !known) return false;
        if (op->kind == Op::kDeleteJob) known = false;
        if (op->kind != Op::kDelete && op->kind != Op::kDeleteJob) known = true;
      }
    }
    int64_t operations = 0;
    for (const std::string& job : order) {
      const std::vector<const Op*>& job_ops = by_job[job];
      size_t start = 0;
      bool had_job_op = false;
      bool named = false;
      for (size_t k = 0; k < job_ops.size(); ++k) {
        const Op::Kind kind = job_ops[k]->kind;
        if (kind != Op::kRegister) ++operations;
        if (kind == Op::kDeleteJob || kind == Op::kReplaceJob) {
          start = k + 1;
          had_job_op = true;
          named = kind == Op::kReplaceJob;
        } else if (kind != Op::kDelete) {
          named = true;
        }
      }
      bool named_any = false;
      for (const Op* op : job_ops) named_any = named_any || op->kind != Op::kDelete;
      auto found = jobs.find(job);
      std::vector<ModelRow> stored;
      if (found != jobs.end() && !had_job_op && !(replace_jobs && named_any)) {
        stored = found->second;
      }
      const bool exists = had_job_op ? named : (found != jobs.end() || named_any);
      // The staged rows after the last job operation, deletions in place.
      std::vector<std::pair<ModelRow, bool>> staged;  // row, alive
      for (size_t k = start; k < job_ops.size(); ++k) {
        const Op& op = *job_ops[k];
        if (op.kind == Op::kUpsert) {
          for (auto& [row, alive] : staged) {
            if (alive && row.Identity() == op.row.Identity()) alive = false;
          }
          staged.emplace_back(op.row, true);
        } else if (op.kind == Op::kDelete) {
          for (auto& [row, alive] : staged) {
            if (alive && Names(op.id, row)) alive = false;
          }
          std::erase_if(stored, [&](const ModelRow& r) { return Names(op.id, r); });
        }
      }
      for (auto& [row, alive] : staged) {
        if (!alive) continue;
        row.version = 1;
        auto it = std::find_if(stored.begin(), stored.end(), [&](const ModelRow& r) {
          return r.Identity() == row.Identity();
        });
        if (it != stored.end()) {
          if (it->SameValues(row)) continue;
          row.version = it->version + 1;
          stored.erase(it);
        }
        stored.push_back(row);
      }
      if (exists) {
        jobs[job] = std::move(stored);
      } else {
        jobs.erase(job);
      }
    }
    next_seq_no += operations;
    ++generation;
    return true;
  }
};

Op RandomOp(std::mt19937_64& random, bool bulk) {
  auto pick = [&](size_t n) { return static_cast<size_t>(random() % n); };
  Op op;
  op.job = kJobs[pick(std::size(kJobs))];
  ModelRow& row = op.row;
  row.name = kNames[pick(std::size(kNames))];
  row.value = kValues[pick(std::size(kValues))];
  row.timestamp = kTimes[pick(std::size(kTimes))];
  row.bucket_span = kSpans[pick(std::size(kSpans))];
  row.score = kScoreSet[pick(std::size(kScoreSet))];
  row.initial = kScoreSet[pick(std::size(kScoreSet))];
  row.interim = pick(5) == 0;
  row.version = 1;
  const size_t kind = pick(100);
  if (kind < 55) {
    op.kind = Op::kUpsert;
  } else if (kind < 65) {
    op.kind = bulk ? Op::kCreate : Op::kUpsert;
  } else if (kind < 88) {
    op.kind = Op::kDelete;
    InfluencerFields fields;
    fields.field_name = row.name;
    fields.field_value = row.value;
    fields.timestamp = row.timestamp;
    fields.bucket_span = row.bucket_span;
    op.id = IdOf(op.job, fields);
  } else if (kind < 91) {
    op.kind = Op::kDeleteJob;
  } else if (kind < 94) {
    op.kind = Op::kReplaceJob;
  } else if (kind < 97) {
    op.kind = Op::kRegister;
  } else {
    op.kind = bulk ? Op::kError : Op::kRegister;
  }
  return op;
}

void Stage(const Op& op, MutationBatch* batch) {
  InfluencerFields fields;
  fields.field_name = op.row.name;
  fields.field_value = op.row.value;
  fields.timestamp = op.row.timestamp;
  fields.bucket_span = op.row.bucket_span;
  fields.influencer_score = op.row.score;
  fields.initial_influencer_score = op.row.initial;
  fields.is_interim = op.row.interim;
  switch (op.kind) {
    case Op::kUpsert: batch->AddInfluencer(op.job, fields); break;
    case Op::kCreate: batch->CreateInfluencer(op.job, fields); break;
    case Op::kDelete: batch->DeleteInfluencer(op.id); break;
    case Op::kDeleteJob: batch->DeleteJob(op.job); break;
    case Op::kReplaceJob: batch->ReplaceJob(op.job); break;
    case Op::kRegister: batch->RegisterJob(op.job); break;
    case Op::kError:
      batch->AddError(EsError(400, "mapper_parsing_exception", "bad document"));
      break;
  }
}

std::string Describe(const ModelRow& r) {
  return absl::StrCat(r.name, "=", r.value, "@", r.timestamp, "/", r.bucket_span,
                      " score ", r.score, " initial ", r.initial,
                      r.interim ? " interim" : "", " v", r.version);
}

// The store's rows of every job, as the model holds them.
std::map<std::string, std::vector<std::string>> StoreRows(const InfluencerStore& store) {
  std::map<std::string, std::vector<std::string>> rows;
  const std::shared_ptr<const StoreVersion> current = store.Current();
  for (const auto& [id, stored] : current->jobs) {
    std::shared_ptr<const JobResults> job = MaterializeJob(stored);
    std::vector<std::string>& out = rows[id];
    for (size_t r = 0; r < job->size(); ++r) {
      out.push_back(Describe(ModelRow{
          std::string(job->field_name(r)), std::string(job->field_value(r)),
          job->columns.timestamp[r], job->bucket_span(r),
          job->columns.influencer_score[r],
          job->columns.initial_influencer_score[r],
          job->columns.is_interim[r] != 0, job->columns.version[r]}));
    }
  }
  return rows;
}

std::map<std::string, std::vector<std::string>> ModelRows(const Model& model) {
  std::map<std::string, std::vector<std::string>> rows;
  for (const auto& [id, job] : model.jobs) {
    std::vector<std::string>& out = rows[id];
    for (const ModelRow& r : job) out.push_back(Describe(r));
  }
  return rows;
}

// A merge executor that keeps the store's merge tasks until told to run
// them, so that a test decides what a merge meets when it is fitted in.
class MergeTasks {
 public:
  std::function<void(std::function<void()>)> Executor() {
    return [this](std::function<void()> task) {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.push_back(std::move(task));
    };
  }
  // Runs the tasks waiting, in the order given, or in a random order when
  // `random` is set (merges of one job may finish in any order); returns
  // how many.
  size_t RunAll(std::mt19937_64* random = nullptr) {
    std::vector<std::function<void()>> tasks;
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks.swap(tasks_);
    }
    if (random != nullptr) std::shuffle(tasks.begin(), tasks.end(), *random);
    for (auto& task : tasks) task();
    return tasks.size();
  }
  // Tasks waiting.
  size_t Waiting() {
    std::lock_guard<std::mutex> lock(mu_);
    return tasks_.size();
  }
  // Runs the tasks waiting newest first; returns how many.
  size_t RunAllNewestFirst() {
    std::vector<std::function<void()>> tasks;
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks.swap(tasks_);
    }
    for (auto task = tasks.rbegin(); task != tasks.rend(); ++task) (*task)();
    return tasks.size();
  }

 private:
  std::mutex mu_;
  std::vector<std::function<void()>> tasks_;
};

TEST(MutationTest, RandomHistoriesMatchTheModel) {
  constexpr int kHistories = 300;
  int bulk_batches = 0;
  int load_batches = 0;
  int refused = 0;
  int segmented = 0;  // jobs seen as segments after a batch
  int merges_fitted = 0;  // background merges published
  int merges_with_deletions = 0;  // ... with rows deleted meanwhile
  for (int seed = 0; seed < kHistories; ++seed) {
    std::mt19937_64 random(seed);
    StoreOptions store_options;
    // Writes kept as segments (deltas merged at 1 to 3, or never merged
    // whole), or merged back often.
    store_options.max_delta_segments = 1 + random() % 3;
    store_options.merge_growing_deltas = random() % 2 == 0;
    if (random() % 3 != 0) store_options.merge_ratio = 1e9;
    InfluencerStore replica(store_options);
    // Whole-job merges run when the history says: a merge task waits
    // while more batches delete and add rows, and is then fitted in.
    const bool merge_often = random() % 2 == 0;
    if (merge_often) store_options.merge_ratio = 0.01 * (random() % 50);
    // Delta windows merged in the background too (these rows are few).
    if (random() % 2 == 0) store_options.inline_merge_rows = 0;
    MergeTasks tasks;
    store_options.merge_executor = tasks.Executor();
    InfluencerStore store(store_options);
    Model model;
    const int batches = 1 + static_cast<int>(random() % 8);
    for (int b = 0; b < batches; ++b) {
      if (random() % 3 == 0) {
        const std::shared_ptr<const StoreVersion> before = store.Current();
        tasks.RunAll(&random);
        store.WaitForMerges();
        const std::shared_ptr<const StoreVersion> after = store.Current();
        for (const auto& [id, job] : after->jobs) {
          if (before->jobs.at(id) == job) continue;
          ++merges_fitted;
          merges_with_deletions +=
              !job->segments.empty() && job->segments[0].deleted != nullptr;
        }
        ASSERT_EQ(StoreRows(store), ModelRows(model)) << "seed " << seed;
      }
      const bool bulk = random() % 2 == 0;
      const bool replace_jobs = !bulk && random() % 8 == 0;
      const int ops = static_cast<int>(random() % 25);
      std::vector<Op> list;
      for (int i = 0; i < ops; ++i) list.push_back(RandomOp(random, bulk));
      MutationBatch batch(bulk ? MutationMode::kBulk : MutationMode::kLoad);
      batch.set_replace_jobs(replace_jobs);
      for (const Op& op : list) Stage(op, &batch);
      ApplyOptions options;
      options.threads = 1 + static_cast<int>(random() % 3);
      std::string where = absl::StrCat("seed ", seed, " batch ", b,
                                       bulk ? " (bulk)" : " (load)");
      // The batch's binary form (a log's record) replayed on a replica
      // must do exactly what the batch does.
      std::string encoded;
      EncodeMutationBatch(batch, &encoded);
      absl::StatusOr<MutationBatch> decoded = DecodeMutationBatch(encoded);
      ASSERT_TRUE(decoded.ok()) << where << ": " << decoded.status();
      absl::StatusOr<MutationResult> replayed =
          replica.Apply(*std::move(decoded));
      absl::StatusOr<MutationResult> result = store.Apply(std::move(batch), options);
      ASSERT_EQ(replayed.ok(), result.ok()) << where;
      if (result.ok()) {
        ASSERT_EQ(Items(*replayed), Items(*result)) << where;
        ASSERT_EQ(replayed->generation, result->generation) << where;
      }
      ASSERT_EQ(StoreRows(replica), StoreRows(store)) << where;
      ASSERT_EQ(replica.Current()->next_seq_no, store.Current()->next_seq_no)
          << where;
      if (bulk) {
        ++bulk_batches;
        ItemList expected = model.ApplyBulk(list);
        ASSERT_TRUE(result.ok()) << where << ": " << result.status();
        ASSERT_EQ(Items(*result), expected) << where;
      } else if (model.ApplyLoad(list, replace_jobs)) {
        ++load_batches;
        ASSERT_TRUE(result.ok()) << where << ": " << result.status();
      } else {
        ++refused;
        ASSERT_FALSE(result.ok()) << where;
        ASSERT_EQ(HttpStatusOf(result.status()), 404) << where;
      }
      ASSERT_EQ(StoreRows(store), ModelRows(model)) << where;
      const std::shared_ptr<const StoreVersion> current = store.Current();
      for (const auto& [id, job] : current->jobs) {
        segmented += !job->segments.empty();
      }
      ASSERT_EQ(store.Current()->generation, model.generation) << where;
      ASSERT_EQ(store.Current()->next_seq_no, model.next_seq_no) << where;
    }
  }
  // The generator must reach every kind of batch.
  EXPECT_GT(bulk_batches, 300);
  EXPECT_GT(load_batches, 300);
  EXPECT_GT(refused, 10);
  EXPECT_GT(segmented, 300);
  EXPECT_GT(merges_fitted, 30);
  EXPECT_GT(merges_with_deletions, 10);
}

// Values of job "j" in ingest order.
std::vector<std::string> ValuesOf(const InfluencerStore& store) {
  std::vector<std::string> values;
  const std::shared_ptr<const StoreVersion> current = store.Current();
  const JobResults* job = current->FindJob("j");
  if (job == nullptr) return values;
  std::shared_ptr<const JobResults> plain = current->PlainJob("j");
  for (size_t r = 0; r < plain->size(); ++r) {
    values.push_back(std::string(plain->field_value(r)));
  }
  return values;
}

// Options under which the second delta asks for a background merge of
// both deltas (never of the whole job), run by `executor`; past that,
// writes are merged on the commit path till it is done.
StoreOptions DeltaMergesIn(std::function<void(std::function<void()>)> executor) {
  StoreOptions options;
  options.max_delta_segments = 2;
  options.merge_ratio = 1e9;
  options.inline_merge_rows = 0;
  options.merge_growing_deltas = false;  // the window rules alone
  options.merge_executor = std::move(executor);
  return options;
}

// Deltas of one job at most max_delta_segments + 1 (store.h), whatever the
// merges do meanwhile.
size_t DeltasOf(const InfluencerStore& store) {
  size_t most = 0;
  // Held: a range-for over a temporary's member would not keep the
  // version alive (the writer may drop it meanwhile).
  const std::shared_ptr<const StoreVersion> current = store.Current();
  for (const auto& [id, job] : current->jobs) {
    if (!job->segments.empty()) most = std::max(most, job->segments.size() - 1);
  }
  return most;
}

// Updates alone add as many deleted rows as delta rows: before the churn
// rule (deltas' rows plus the base's deleted ones past merge_ratio x the
// base's rows) merges the job, the deleted rows would reach merge_ratio /
// (2 + merge_ratio) of the rows stored. They cost memory until merged
// away, so outside a replay the whole job is merged once they pass
// merge_ratio / 4 of the rows stored (and 4,096 rows).
TEST(MutationTest, DeletedRowsPastAQuarterOfTheMergeRatioMergeTheWholeJob) {
  for (bool replay : {false, true}) {
    StoreOptions options;
    options.merge_ratio = 0.3;  // deleted rows past 7.5% of the rows stored
    InfluencerStore store(options);
    ApplyOptions apply;
    apply.replay = replay;
    const std::vector<std::string> values = Hosts(100000);
    ASSERT_TRUE(store.Apply(UpsertAll(values), apply).ok());
    auto deleted_rows = [&] {
      const std::shared_ptr<const StoreVersion> current = store.Current();
      size_t deleted = 0;
      for (const JobResults::Segment& s : current->FindJob("j")->segments) {
        deleted += s.deleted_rows();
      }
      return deleted;
    };
    // Batches of 2,000 updates of the loaded rows: after k of them, 2,000k
    // rows are deleted out of 100,000 + 2,000k stored; past 7.5% at k = 5
    // (10,000 > 8,250; at k = 4, 8,000 < 8,100), while the churn (4,000k)
    // passes 30,000 only at k = 8 (a replay's, at least 1 x the base,
    // never here).
    for (int k = 1; k <= 5; ++k) {
      MutationBatch batch(MutationMode::kBulk);
      for (int i = 0; i < 2000; ++i) {
        batch.AddInfluencer("j", Row(values[(k - 1) * 2000 + i], 1000, 70.0));
      }
      ASSERT_TRUE(store.Apply(std::move(batch), apply).ok());
      store.WaitForMerges();
      EXPECT_EQ(deleted_rows(), k < 5 || replay ? 2000u * k : 0u)
          << "after batch " << k << (replay ? " of a replay" : "");
      EXPECT_EQ(store.Current()->FindJob("j")->size(), 100000u);
    }
  }
  // Deleted rows in deltas count too: 10 deltas of 2,000 new rows on a
  // base of 100,000, then batches of 2,000 updates of the deltas' rows
  // (deltas kept as written, none emptied). After k batches 2,000k of 120,000 + 2,000k
  // rows are deleted, all in deltas: past 7.5% at k = 5 (10,000 > 9,750;
  // at k = 4, 8,000 < 9,600), while the churn (20,000 + 2,000k) passes
  // 30,000 only at k = 6.
  {
    StoreOptions options;
    options.merge_ratio = 0.3;
    options.max_delta_segments = 64;
    options.merge_growing_deltas = false;
    options.inline_merge_rows = 0;
    InfluencerStore store(options);
    std::vector<std::string> values;
    for (int i = 0; i < 120000; ++i) values.push_back(absl::StrCat("h", i));
    MutationBatch load(MutationMode::kBulk);
    for (int i = 0; i < 100000; ++i) load.AddInfluencer("j", Row(values[i]));
    ASSERT_TRUE(store.Apply(std::move(load)).ok());
    for (int d = 0; d < 10; ++d) {
      MutationBatch batch(MutationMode::kBulk);
      for (int i = 0; i < 2000; ++i) {
        batch.AddInfluencer("j", Row(values[100000 + d * 2000 + i]));
      }
      ASSERT_TRUE(store.Apply(std::move(batch)).ok());
    }
    store.WaitForMerges();
    ASSERT_EQ(store.Current()->FindJob("j")->segments.size(), 11u);
    for (int k = 1; k <= 5; ++k) {
      MutationBatch batch(MutationMode::kBulk);
      // 200 rows of each delta (a delta with no live row left is
      // dropped).
      for (int d = 0; d < 10; ++d) {
        for (int i = 0; i < 200; ++i) {
          batch.AddInfluencer(
              "j", Row(values[100000 + d * 2000 + (k - 1) * 200 + i], 1000, 70.0));
        }
      }
      ASSERT_TRUE(store.Apply(std::move(batch)).ok());
      store.WaitForMerges();
      const std::shared_ptr<const StoreVersion> current = store.Current();
      const JobResults& job = *current->FindJob("j");
      size_t deleted = 0;
      for (const JobResults::Segment& s : job.segments) {
        deleted += s.deleted_rows();
      }
      EXPECT_EQ(deleted, k < 5 ? 2000u * k : 0u) << "after delta batch " << k;
      if (k < 5) EXPECT_EQ(job.segments[0].deleted_rows(), 0u);
      EXPECT_EQ(job.size(), 120000u);
    }
  }
  // A small job's few deleted rows do not merge it: 200 of 1,200 rows
  // (past 0.5 / 4; the churn, 400, is within 0.5 x 1,000).
  StoreOptions options;
  options.merge_ratio = 0.5;
  InfluencerStore store(options);
  const std::vector<std::string> values = Hosts(1000);
  ASSERT_TRUE(store.Apply(UpsertAll(values)).ok());
  MutationBatch batch(MutationMode::kBulk);
  for (int i = 0; i < 200; ++i) batch.AddInfluencer("j", Row(values[i], 1000, 70.0));
  ASSERT_TRUE(store.Apply(std::move(batch)).ok());
  store.WaitForMerges();
  EXPECT_EQ(store.Current()->FindJob("j")->segments.at(0).deleted_rows(), 200u);
}

// A job's base that a background merge built has no identity filter (2-4
// B a row, and updates find their rows there anyway).
TEST(MutationTest, ABaseMergedInTheBackgroundHasNoIdentityFilter) {
  StoreOptions options;
  options.merge_ratio = 0.3;
  InfluencerStore store(options);
  const std::vector<std::string> values = Hosts(50000);
  ASSERT_TRUE(store.Apply(UpsertAll(values)).ok());
  // 10,000 updates: churn 20,000 past 0.3 x 50,000, a whole-job merge.
  MutationBatch batch(MutationMode::kBulk);
  for (int i = 0; i < 10000; ++i) batch.AddInfluencer("j", Row(values[i], 1000, 70.0));
  ASSERT_TRUE(store.Apply(std::move(batch)).ok());
  store.WaitForMerges();
  const std::shared_ptr<const StoreVersion> current = store.Current();
  const JobResults& job = *current->FindJob("j");
  ASSERT_LE(job.segments.size(), 1u);  // merged
  const JobResults& base = job.segments.empty() ? job : *job.segments[0].rows;
  EXPECT_EQ(base.size(), 50000u);
  std::lock_guard<std::mutex> lock(base.sort_orders->mu);
  EXPECT_NE(base.sort_orders->identity_index, nullptr);
  EXPECT_EQ(base.sort_orders->identity_filter, nullptr);
}

TEST(MutationTest, MergesOnTheStoresThreadKeepDeltasFewAndRowsInOrder) {
  StoreOptions options;
  options.max_delta_segments = 2;
  options.merge_ratio = 1e9;  // deltas only, never the whole job
  options.inline_merge_rows = 0;  // all in the background
  options.merge_growing_deltas = false;  // the window rules alone
  InfluencerStore store(options);
  std::vector<std::string> expected;
  for (int i = 0; i < 40; ++i) {
    const std::string value = absl::StrCat("v", i);
    ASSERT_TRUE(store.Apply(OneRow(value)).ok());
    expected.push_back(value);
    ASSERT_LE(DeltasOf(store), 3u) << "after batch " << i;
  }
  store.WaitForMerges();
  EXPECT_LE(DeltasOf(store), 3u);
  EXPECT_EQ(ValuesOf(store), expected);
}

// A batch of four new results for job "j" at batch number `k`, their
// values kept in `values` (the rows view them) and appended to
// `expected` if given.
MutationBatch FourNewRows(int k, std::deque<std::string>& values,
                          std::vector<std::string>* expected = nullptr) {
  MutationBatch batch(MutationMode::kBulk);
  for (int r = 0; r < 4; ++r) {
    values.push_back(absl::StrCat("v", k, "-", r));
    batch.AddInfluencer("j", Row(values.back()));
    if (expected != nullptr) expected->push_back(values.back());
  }
  return batch;
}

// StoreOptions::merge_growing_deltas: equal batches merged on the commit
// path count in binary, each delta a set bit: after k batches past the
// base, popcount(k) deltas, shrinking from the oldest to the newest.
TEST(MutationTest, GrowingDeltasCountInBinary) {
  StoreOptions options;
  options.merge_ratio = 1e9;  // deltas only, never the whole job
  options.inline_merge_rows = 1 << 20;  // every pair on the commit path
  ASSERT_TRUE(options.merge_growing_deltas);  // the default
  InfluencerStore store(options);
  std::vector<std::string> expected;
  for (int k = 0; k <= 100; ++k) {
    std::deque<std::string> values;
    ASSERT_TRUE(store.Apply(FourNewRows(k, values, &expected)).ok());
    const std::shared_ptr<const StoreVersion> current = store.Current();
    const JobResults& job = *current->jobs.at("j");
    const size_t deltas = job.segments.empty() ? 0 : job.segments.size() - 1;
    ASSERT_EQ(deltas, static_cast<size_t>(std::popcount(
                          static_cast<unsigned>(k))))
        << "after " << k << " batches past the base";
    for (size_t s = 2; s < job.segments.size(); ++s) {
      ASSERT_LT(job.segments[s].rows->size(), job.segments[s - 1].rows->size());
    }
  }
  EXPECT_EQ(ValuesOf(store), expected);
}

// A commit merges at most inline_merge_rows rows on its path; the rest of
// a carry waits for the next commit, so a carry through many deltas does
// not stall one writer.
TEST(MutationTest, GrowingDeltasCarryAtMostInlineRowsPerCommit) {
  MergeTasks tasks;  // never run: no background merge finishes
  StoreOptions options;
  options.merge_ratio = 1e9;
  options.inline_merge_rows = 16;
  options.merge_executor = tasks.Executor();
  InfluencerStore store(options);
  auto delta_rows = [&] {
    const std::shared_ptr<const StoreVersion> current = store.Current();
    const JobResults& job = *current->jobs.at("j");
    std::vector<size_t> rows;
    for (size_t s = 1; s < job.segments.size(); ++s) {
      rows.push_back(job.segments[s].rows->size());
    }
    return rows;
  };
  std::deque<std::string> values;
  std::vector<std::vector<size_t>> seen;
  for (int k = 0; k <= 5; ++k) {
    ASSERT_TRUE(store.Apply(FourNewRows(k, values)).ok());
    seen.push_back(delta_rows());
  }
  using Rows = std::vector<size_t>;
  EXPECT_EQ(seen[1], Rows({4}));
  EXPECT_EQ(seen[2], Rows({8}));  // 4 + 4 merged: 8 rows of 16
  EXPECT_EQ(seen[3], Rows({8, 4}));
  // 4 + 4 merged (8 rows), then 8 + 8 would take 16 more: it waits.
  EXPECT_EQ(seen[4], Rows({8, 8}));
  EXPECT_EQ(seen[5], Rows({16, 4}));  // the carry, then the new batch
  EXPECT_EQ(tasks.RunAll(), 0u);
}

// A pair too large for the commit path is merged in the background: that
// pair, not its neighbours.
TEST(MutationTest, GrowingDeltasAskForTheirPairInTheBackground) {
  MergeTasks tasks;
  StoreOptions options;
  options.merge_ratio = 1e9;
  options.inline_merge_rows = 7;  // 4 + 4 rows go to the background
  options.merge_executor = tasks.Executor();
  InfluencerStore store(options);
  std::deque<std::string> values;
  auto write = [&](int k) {
    ASSERT_TRUE(store.Apply(FourNewRows(k, values)).ok());
  };
  auto rows = [&] {
    const std::shared_ptr<const StoreVersion> current = store.Current();
    const JobResults& job = *current->jobs.at("j");
    std::vector<size_t> out;
    for (size_t s = 0; s < job.segments.size(); ++s) {
      out.push_back(job.segments[s].rows->size());
    }
    return out;
  };
  auto settle = [&] {
    const size_t ran = tasks.RunAll();
    store.WaitForMerges();
    return ran;
  };
  using Rows = std::vector<size_t>;
  write(0);
  write(1);
  write(2);  // the pair of two 4-row deltas: asked for, not merged yet
  EXPECT_EQ(rows(), Rows({4, 4, 4}));
  EXPECT_EQ(tasks.Waiting(), 1u);
  write(3);  // the pair's deltas are held: no free pair
  EXPECT_EQ(tasks.Waiting(), 1u);
  EXPECT_EQ(rows(), Rows({4, 4, 4, 4}));
  EXPECT_EQ(settle(), 1u);
  EXPECT_EQ(rows(), Rows({4, 8, 4}));  // the pair, not the base with one
  write(4);  // 8 + 4 is no pair; 4 + 4 is
  EXPECT_EQ(tasks.Waiting(), 1u);
  EXPECT_EQ(settle(), 1u);
  EXPECT_EQ(rows(), Rows({4, 8, 8}));
  write(5);  // 8 + 8: the older pair, the newest delta left alone
  EXPECT_EQ(settle(), 1u);
  EXPECT_EQ(rows(), Rows({4, 16, 4}));
  std::vector<std::string> expected(values.begin(), values.end());
  EXPECT_EQ(ValuesOf(store), expected);
}

// Pairs too large for the commit path go to the background, one slot of
// the job's two at a time, and still keep the deltas few.
TEST(MutationTest, GrowingDeltasMergeInTheBackgroundTooAndStayFew) {
  MergeTasks tasks;
  StoreOptions options;
  options.merge_ratio = 1e9;
  options.inline_merge_rows = 15;  // pairs of 4-row deltas on the path
  options.merge_executor = tasks.Executor();
  InfluencerStore store(options);
  std::vector<std::string> expected;
  size_t ran = 0;
  size_t most = 0;
  for (int k = 0; k <= 200; ++k) {
    std::deque<std::string> values;
    ASSERT_TRUE(store.Apply(FourNewRows(k, values, &expected)).ok());
    most = std::max(most, DeltasOf(store));
    if (k % 3 == 0) {  // merges finish a while after they start
      ran += tasks.RunAll();
      store.WaitForMerges();
    }
  }
  ran += tasks.RunAll();
  store.WaitForMerges();
  EXPECT_GT(ran, 10u);
  // The window rules alone hold up to 16 (the limit) here; a binary
  // counter of 200 batches about log2(200) = 8, and a few more while
  // merges wait.
  EXPECT_LE(most, 11u);
  EXPECT_EQ(ValuesOf(store), expected);
}

// The bound holds for any limit, any sizes of batches, and merges that
// finish at any time in any order; and the rows stay in order.
TEST(MutationTest, DeltasStayWithinOneOfTheLimitWhileMergesRun) {
  size_t background = 0;  // merges handed to a task
  size_t at_limit_plus_one = 0;  // versions seen one past the limit
  size_t two_waiting = 0;  // versions seen with two merges waiting
  for (int seed = 0; seed < 120; ++seed) {
    std::mt19937_64 random(seed);
    const size_t limits[] = {1, 2, 3, 4, 5, 8, 16};
    StoreOptions options;
    options.max_delta_segments = limits[random() % std::size(limits)];
    options.merge_ratio = random() % 4 == 0 ? 2.0 : 1e9;
    options.inline_merge_rows = random() % 2 == 0 ? 0 : 8 + random() % 40;
    options.merge_growing_deltas = seed % 2 == 1;
    MergeTasks tasks;
    options.merge_executor = tasks.Executor();
    InfluencerStore store(options);
    std::vector<std::string> expected;
    int next = 0;
    for (int b = 0; b < 80; ++b) {
      MutationBatch batch(MutationMode::kBulk);
      // New rows, and now and then an update of an old one (it moves to
      // the end) in a batch of its own or with them; or only deletions
      // (which may empty a delta, which then goes).
      const bool deletions = !expected.empty() && random() % 6 == 0;
      if (deletions) {
        for (int d = 1 + static_cast<int>(random() % 3); d > 0 && !expected.empty(); --d) {
          const std::string old = expected[random() % expected.size()];
          std::erase(expected, old);
          batch.DeleteInfluencer(
              *ParseInfluencerResultId(InfluencerDocumentId("j", Row(old))));
        }
      }
      const int rows = deletions ? 0 : 1 + static_cast<int>(random() % (random() % 4 == 0 ? 40 : 4));
      std::vector<std::string> values;
      for (int i = 0; i < rows; ++i) values.push_back(absl::StrCat("v", next++));
      if (!deletions && !expected.empty() && random() % 3 == 0) {
        const std::string old = expected[random() % expected.size()];
        std::erase(expected, old);
        values.push_back(old);
      }
      for (const std::string& value : values) {
        // The score is what changes: an update keeps the identity.
        batch.AddInfluencer("j", Row(value, 1000, 1 + b));
        expected.push_back(value);
      }
      ASSERT_TRUE(store.Apply(std::move(batch)).ok());
      const size_t deltas = DeltasOf(store);
      ASSERT_LE(deltas, options.max_delta_segments + 1)
          << "seed " << seed << " batch " << b << " limit "
          << options.max_delta_segments;
      at_limit_plus_one += deltas == options.max_delta_segments + 1;
      two_waiting += tasks.Waiting() >= 2;
      ASSERT_LE(tasks.Waiting(), 2u) << "seed " << seed << " batch " << b;
      if (random() % 5 == 0) {
        background += tasks.RunAll(&random);
        store.WaitForMerges();
        ASSERT_LE(DeltasOf(store), options.max_delta_segments + 1);
      }
    }
    background += tasks.RunAll(&random);
    store.WaitForMerges();
    ASSERT_EQ(ValuesOf(store), expected) << "seed " << seed;
  }
  // The histories must reach background merges and the one past.
  EXPECT_GT(background, 200u);
  EXPECT_GT(at_limit_plus_one, 50u);
  EXPECT_GT(two_waiting, 10u);
}

// A job may have two background merges at a time (a window of deltas
// merged while an older window is): they fit in whatever order they
// finish, each carrying over the rows deleted from its own segments.
TEST(MutationTest, TwoMergesOfOneJobFitInAnyOrder) {
  for (bool newest_first : {true, false}) {
    MergeTasks tasks;
    StoreOptions options = DeltaMergesIn(tasks.Executor());
    options.max_delta_segments = 16;  // windows of 8; asked for from 15 on
    options.merge_growing_deltas = false;  // the window rules alone
    InfluencerStore store(options);
    std::vector<std::string> expected;
    // The base (batch 0), deltas 1-8 of two rows each, deltas 9-16 of
    // three: at 15 deltas the smallest window is 1-8, at 16 the window
    // 9-16.
    for (int i = 0; i <= 16; ++i) {
      MutationBatch batch(MutationMode::kBulk);
      for (int part = 0; part < (i <= 8 ? 2 : 3); ++part) {
        expected.push_back(absl::StrCat("v", i, std::string(1, 'a' + part)));
        batch.AddInfluencer("j", Row(expected.back()));
      }
      ASSERT_TRUE(store.Apply(std::move(batch)).ok());
    }
    ASSERT_EQ(store.Current()->jobs.at("j")->segments.size(), 17u);
    // While they wait: a row of each window deleted, one of the first
    // updated (a new delta, the one past the limit).
    MutationBatch batch(MutationMode::kBulk);
    for (const char* value : {"v2a", "v12b"}) {
      std::optional<InfluencerResultId> id =
          ParseInfluencerResultId(InfluencerDocumentId("j", Row(value)));
      ASSERT_TRUE(id.has_value());
      batch.DeleteInfluencer(*id);
    }
    batch.AddInfluencer("j", Row("v5a", 1000, 60));
    ASSERT_TRUE(store.Apply(std::move(batch)).ok());
    ASSERT_EQ(DeltasOf(store), 17u);
    std::erase_if(expected, [](const std::string& v) {
      return v == "v2a" || v == "v12b" || v == "v5a";
    });
    expected.push_back("v5a");
    EXPECT_EQ(newest_first ? tasks.RunAllNewestFirst() : tasks.RunAll(), 2u);
    store.WaitForMerges();
    EXPECT_EQ(ValuesOf(store), expected);
    // Both merges fitted: the base, two merged windows, the update.
    EXPECT_EQ(store.Current()->jobs.at("j")->segments.size(), 4u);
    EXPECT_EQ(store.Current()->jobs.at("j")->size(), expected.size());
  }
}

TEST(MutationTest, AMergeOfAJobDeletedMeanwhileIsDropped) {
  MergeTasks tasks;
  InfluencerStore store(DeltaMergesIn(tasks.Executor()));
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(store.Apply(OneRow(absl::StrCat("v", i))).ok());
  }
  ASSERT_TRUE(store.DeleteJob("j").ok());
  ASSERT_TRUE(store.Apply(OneRow("again")).ok());  // a new job "j"
  EXPECT_GT(tasks.RunAll(), 0u);
  store.WaitForMerges();
  EXPECT_EQ(ValuesOf(store), std::vector<std::string>{"again"});
}

// A batch whose sync failed is not visible, and a merge it asked for must
// not make it visible later: the merge is never started.
TEST(MutationTest, AMergeAskedForByABatchThatFailedToSyncIsNotStarted) {
  auto log = std::make_shared<RecordingLog>();
  MergeTasks tasks;
  StoreOptions options;
  options.log = log;
  options.max_delta_segments = 8;
  options.merge_ratio = 0.5;
  options.merge_executor = tasks.Executor();
  InfluencerStore store(options);
  MutationBatch first(MutationMode::kBulk);
  for (int i = 0; i < 4; ++i) first.AddInfluencer("j", Row(absl::StrCat("v", i)));
  ASSERT_TRUE(store.Apply(std::move(first)).ok());
  const std::vector<std::string> before = ValuesOf(store);
  // Replaces half the job's rows (churn past the ratio: a whole-job merge)
  // and fails to sync.
  log->fail_sync = true;
  MutationBatch second(MutationMode::kBulk);
  second.AddInfluencer("j", Row("v0", 1000, 99));
  second.AddInfluencer("j", Row("v1", 1000, 99));
  second.AddInfluencer("j", Row("new", 1000, 99));
  EXPECT_FALSE(store.Apply(std::move(second)).ok());
  EXPECT_EQ(tasks.RunAll(), 0u);
  store.WaitForMerges();
  EXPECT_EQ(ValuesOf(store), before);
}

// A merge executor that cannot take a task leaves the job as it is, and
// WaitForMerges does not wait for the task.
TEST(MutationTest, AMergeExecutorThatThrowsLeavesTheJobAsItIs) {
  InfluencerStore store(DeltaMergesIn([](std::function<void()>) {
    throw std::runtime_error("no thread");
  }));
  std::vector<std::string> expected;
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(store.Apply(OneRow(absl::StrCat("v", i))).ok());
    expected.push_back(absl::StrCat("v", i));
  }
  store.WaitForMerges();  // returns: nothing outstanding
  EXPECT_EQ(ValuesOf(store), expected);
}

TEST(MutationTest, AMergeTaskRunAfterItsStoreIsGoneDoesNothing) {
  MergeTasks tasks;
  {
    StoreOptions options;
    options.max_delta_segments = 1;
    options.merge_ratio = 0;
    options.merge_executor = tasks.Executor();
    InfluencerStore store(options);
    for (int i = 0; i < 4; ++i) {
      ASSERT_TRUE(store.Apply(OneRow(absl::StrCat("v", i))).ok());
    }
  }
  // The tasks hold the rows they merge, not the store (ASan would see a
  // use after free).
  EXPECT_GT(tasks.RunAll(), 0u);
}

TEST(MutationTest, CoalescedBatchesDoWhatTheBatchesDoInTurn) {
  int coalesced = 0;
  for (int seed = 0; seed < 300; ++seed) {
    std::mt19937_64 random(seed);
    StoreOptions store_options;
    store_options.max_delta_segments = 1 + random() % 3;
    InfluencerStore one_by_one(store_options);
    InfluencerStore together(store_options);
    const int groups = 1 + static_cast<int>(random() % 5);
    for (int g = 0; g < groups; ++g) {
      const int batches = 1 + static_cast<int>(random() % 5);
      std::vector<ItemList::value_type> expected;
      MutationBatch all(MutationMode::kBulk);
      for (int b = 0; b < batches; ++b) {
        const int ops = static_cast<int>(random() % 12);
        MutationBatch batch(MutationMode::kBulk);
        MutationBatch copy(MutationMode::kBulk);
        for (int i = 0; i < ops; ++i) {
          if (random() % 6 == 0) {
            // Documents of other result types count their writes per batch.
            const std::string doc = absl::StrCat("bucket-", random() % 3);
            if (random() % 2 == 0) {
              batch.AddOtherResult("j", doc);
              copy.AddOtherResult("j", doc);
            } else {
              batch.DeleteOtherResult(doc);
              copy.DeleteOtherResult(doc);
            }
            continue;
          }
          const Op op = RandomOp(random, true);
          Stage(op, &batch);
          Stage(op, &copy);
        }
        absl::StatusOr<MutationResult> result = one_by_one.Apply(std::move(batch));
        ASSERT_TRUE(result.ok()) << result.status();
        for (auto& item : Items(*result)) expected.push_back(item);
        if (b == 0) {
          all = std::move(copy);
        } else {
          all.Coalesce(std::move(copy));
          ++coalesced;
        }
      }
      EXPECT_EQ(all.generations(), static_cast<uint64_t>(batches));
      ApplyOptions options;
      options.replay = random() % 2 == 0;
      // A replay keeps no item outcomes; the store must not notice.
      options.item_results = random() % 3 != 0;
      absl::StatusOr<MutationResult> result =
          together.Apply(std::move(all), options);
      ASSERT_TRUE(result.ok()) << result.status();
      const std::string where = absl::StrCat("seed ", seed, " group ", g);
      if (options.item_results) {
        ASSERT_EQ(Items(*result), ItemList(expected.begin(), expected.end()))
            << where;
      } else {
        ASSERT_TRUE(result->items.empty()) << where;
      }
      ASSERT_EQ(result->generation, one_by_one.Current()->generation) << where;
      ASSERT_EQ(StoreRows(together), StoreRows(one_by_one)) << where;
      ASSERT_EQ(together.Current()->next_seq_no,
                one_by_one.Current()->next_seq_no)
          << where;
    }
  }
  EXPECT_GT(coalesced, 500);
}

TEST(MutationTest, EncodedBatchesRefuseCorruption) {
  MutationBatch batch(MutationMode::kBulk);
  InfluencerFields row = Row("v");
  batch.AddInfluencer("j", row);
  batch.DeleteInfluencer(IdOf("j", row));
  batch.AddError(EsError(400, "mapper_parsing_exception", "bad"));
  batch.AddOtherResult("k", "k_bucket_1");
  batch.ReplaceJob("j");
  std::string encoded;
  EncodeMutationBatch(batch, &encoded);
  ASSERT_TRUE(DecodeMutationBatch(encoded).ok());
  // Every truncation, and every extension, is refused, never misread.
  for (size_t n = 0; n < encoded.size(); ++n) {
    absl::StatusOr<MutationBatch> cut =
        DecodeMutationBatch(absl::string_view(encoded).substr(0, n));
    ASSERT_FALSE(cut.ok()) << n;
    EXPECT_EQ(ErrorTypeOf(cut.status()), "parse_exception");
  }
  EXPECT_FALSE(DecodeMutationBatch(encoded + "x").ok());
  // Another version of the form.
  std::string other = encoded;
  other[0] = 2;
  absl::StatusOr<MutationBatch> refused = DecodeMutationBatch(other);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()),
              testing::HasSubstr("unknown version 2"));
  // Every single-byte flip decodes to an error or to some batch: no crash
  // (ASan checks the reads).
  for (size_t i = 0; i < encoded.size(); ++i) {
    std::string flipped = encoded;
    flipped[i] ^= 0x41;
    DecodeMutationBatch(flipped).status().IgnoreError();
  }
}

TEST(MutationTest, EncodedBatchesKeepMissingDoublesAndRefuseInfinities) {
  auto bits = [](double d) {
    uint64_t b;
    std::memcpy(&b, &d, sizeof b);
    return b;
  };
  MutationBatch batch(MutationMode::kLoad);
  InfluencerFields row = Row("v");
  row.influencer_score = MissingDouble();
  row.probability = -MissingDouble();  // any NaN is missing
  batch.AddInfluencer("j", row);
  std::string encoded;
  EncodeMutationBatch(batch, &encoded);
  absl::StatusOr<MutationBatch> decoded = DecodeMutationBatch(encoded);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  InfluencerStore store;
  ASSERT_TRUE(store.Apply(*std::move(decoded)).ok());
  std::shared_ptr<const JobResults> job = store.Current()->PlainJob("j");
  ASSERT_EQ(job->size(), 1u);
  // Read back as the one canonical missing value.
  EXPECT_EQ(bits(job->columns.influencer_score[0]), bits(MissingDouble()));
  EXPECT_EQ(bits(job->columns.probability[0]), bits(MissingDouble()));
  EXPECT_EQ(job->columns.initial_influencer_score[0],
            row.initial_influencer_score);

  // No document holds an infinity: a log that does is corrupt.
  MutationBatch infinite(MutationMode::kLoad);
  row.influencer_score = std::numeric_limits<double>::infinity();
  infinite.AddInfluencer("j", row);
  std::string bad;
  EncodeMutationBatch(infinite, &bad);
  absl::StatusOr<MutationBatch> refused = DecodeMutationBatch(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()),
              testing::HasSubstr("out of range"));
}

}  // namespace
}  // namespace clout
