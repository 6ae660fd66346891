// Snapshot files and data directories (storage/snapshot.h, data_dir.h):
// round trips, refused corruption, incremental writes, and crashes at any
// point of a snapshot under fault injection.
#include "storage/snapshot.h"

#include <bit>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/columns.h"
#include "engine/executor.h"
#include "engine/column_view.h"
#include "engine/error.h"
#include "engine/loader.h"
#include "engine/mutation.h"
#include "engine/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/data_dir.h"
#include "storage/env.h"
#include "storage/fault_env.h"
#include "tools/generator.h"

namespace clout {
namespace {

using ::testing::HasSubstr;

std::map<std::string, std::vector<std::string>> Rows(const StoreVersion& v) {
  std::map<std::string, std::vector<std::string>> rows;
  for (const auto& [id, stored] : v.jobs) {
    std::shared_ptr<const JobResults> job = MaterializeJob(stored);
    std::vector<std::string>& out = rows[id];
    for (size_t r = 0; r < job->size(); ++r) {
      out.push_back(absl::StrCat(
          job->field_name(r), "=", job->field_value(r), "@",
          job->columns.timestamp[r], "/", job->bucket_span(r), " ",
          job->columns.influencer_score[r], " ",
          job->columns.initial_influencer_score[r], " ",
          job->columns.probability[r], job->columns.is_interim[r] ? " i" : "",
          " v", job->columns.version[r]));
    }
  }
  return rows;
}

InfluencerFields Row(absl::string_view value, int64_t timestamp, double score) {
  InfluencerFields row;
  row.field_name = "host";
  row.field_value = value;
  row.timestamp = timestamp;
  row.bucket_span = 900;
  row.influencer_score = score;
  row.initial_influencer_score = score;
  row.probability = 0.5;
  return row;
}

MutationBatch RandomBatch(std::mt19937_64& random) {
  MutationBatch batch(MutationMode::kBulk);
  const int ops = 1 + static_cast<int>(random() % 8);
  for (int i = 0; i < ops; ++i) {
    const std::string job = absl::StrCat("job-", random() % 3);
    // The row views the value: it must outlive the row's use.
    const std::string value = absl::StrCat("h", random() % 6);
    InfluencerFields row = Row(value, 1000 * (random() % 5), random() % 100);
    row.is_interim = random() % 4 == 0;
    if (random() % 8 == 0) {
      batch.DeleteInfluencer(
          *ParseInfluencerResultId(InfluencerDocumentId(job, row)));
    } else if (random() % 40 == 0) {
      batch.DeleteJob(job);
    } else {
      batch.AddInfluencer(job, row);
    }
  }
  return batch;
}

// A store of a generated dump and then random writes kept as segments.
std::unique_ptr<InfluencerStore> SampleStore(uint64_t seed) {
  StoreOptions options;
  options.merge_ratio = 1e9;  // keep segments and deleted rows
  auto store = std::make_unique<InfluencerStore>(options);
  GeneratorOptions generator;
  generator.records = 300;
  generator.jobs = 3;
  generator.seed = seed;
  EXPECT_TRUE(LoadString(*store, GenerateDumpString(generator), {}).ok());
  std::mt19937_64 random(seed);
  for (int b = 0; b < 10; ++b) {
    EXPECT_TRUE(store->Apply(RandomBatch(random)).ok());
  }
  store->RegisterJob("empty-job");
  return store;
}

TEST(SnapshotTest, BundlesRoundTrip) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    std::unique_ptr<InfluencerStore> store = SampleStore(seed);
    FaultEnv env;
    absl::StatusOr<uint64_t> bytes =
        WriteSnapshotBundle(&env, "/snap.clout", *store->Current());
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    EXPECT_EQ(*bytes, env.Contents("/snap.clout").size());
    EXPECT_TRUE(IsSnapshotFile(env.Contents("/snap.clout")));
    absl::StatusOr<std::shared_ptr<const StoreVersion>> read =
        ReadSnapshotBundle(&env, "/snap.clout");
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(Rows(**read), Rows(*store->Current()));
    EXPECT_EQ((*read)->generation, store->Current()->generation);
    EXPECT_EQ((*read)->next_seq_no, store->Current()->next_seq_no);
    EXPECT_EQ((*read)->influencer_field_names,
              store->Current()->influencer_field_names);
    EXPECT_TRUE((*read)->jobs.contains("empty-job"));
    // Restored, the store takes writes as the original does.
    InfluencerStore restored;
    ASSERT_TRUE(restored.Restore(*read).ok());
    std::mt19937_64 random(seed + 100);
    MutationBatch batch = RandomBatch(random);
    std::string encoded;
    EncodeMutationBatch(batch, &encoded);
    absl::StatusOr<MutationResult> a = store->Apply(std::move(batch));
    absl::StatusOr<MutationResult> b =
        restored.Apply(*DecodeMutationBatch(encoded));
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->generation, b->generation);
    EXPECT_EQ(Rows(*restored.Current()), Rows(*store->Current()));
    // Restore is for a store that was given nothing yet.
    EXPECT_FALSE(restored.Restore(*read).ok());
  }
}

// The score order of every segment that has one is written and read back
// (no sort on open); a segment without one is written without.
TEST(SnapshotTest, ScoreOrdersRoundTrip) {
  size_t cold_orders = 0;
  size_t warm_orders = 0;
  for (bool warm : {false, true}) {
    std::unique_ptr<InfluencerStore> store = SampleStore(11);
    if (warm) WarmIndexes(*store->Current());
    FaultEnv env;
    ASSERT_TRUE(WriteSnapshotBundle(&env, "/s", *store->Current()).ok());
    absl::StatusOr<std::shared_ptr<const StoreVersion>> read =
        ReadSnapshotBundle(&env, "/s");
    ASSERT_TRUE(read.ok()) << read.status();
    size_t orders = 0;
    for (const auto& [id, job] : store->Current()->jobs) {
      std::optional<JobColumnView> a = JobColumnView::Of(*store->Current(), id);
      std::optional<JobColumnView> b = JobColumnView::Of(**read, id);
      ASSERT_TRUE(a && b);
      ASSERT_EQ(a->segments().size(), b->segments().size()) << id;
      for (size_t s = 0; s < a->segments().size(); ++s) {
        const SegmentColumnView& x = a->segments()[s];
        const SegmentColumnView& y = b->segments()[s];
        EXPECT_EQ(std::vector<uint32_t>(x.score_order.begin(),
                                        x.score_order.end()),
                  std::vector<uint32_t>(y.score_order.begin(),
                                        y.score_order.end()))
            << id << " segment " << s;
        orders += y.score_order.empty() ? 0 : 1;
      }
    }
    // Unwarmed, only the segments a commit warmed have one.
    (warm ? warm_orders : cold_orders) = orders;
    EXPECT_EQ(Rows(**read), Rows(*store->Current()));
  }
  EXPECT_GT(warm_orders, cold_orders + 2);
}

// An offered order is used only if it is the one the executor would
// build: each row once, scores descending, ties in ingest order. Else the
// order is built as if none had been offered.
TEST(SnapshotTest, OnlyTheTrueScoreOrderIsUsed) {
  auto fresh = [] {
    InfluencerStore store;
    MutationBatch batch;
    std::deque<std::string> values{"a", "b", "c", "d"};
    const double scores[] = {5, 7, 5, 1};
    for (int i = 0; i < 4; ++i) {
      batch.AddInfluencer("j", Row(values[i], 1000 * i, scores[i]));
    }
    EXPECT_TRUE(store.Apply(std::move(batch)).ok());
    std::shared_ptr<const JobResults> job = store.Current()->jobs.at("j");
    EXPECT_TRUE(job->segments.empty());
    return job;
  };
  auto order = [](std::vector<uint32_t> rows) {
    auto o = std::make_shared<RowOrder>(rows.size());
    std::copy(rows.begin(), rows.end(), o->begin());
    return std::shared_ptr<const RowOrder>(std::move(o));
  };
  auto rows_of = [](const std::shared_ptr<const RowOrder>& o) {
    return o == nullptr ? std::vector<uint32_t>{}
                        : std::vector<uint32_t>(o->begin(), o->end());
  };
  const std::vector<uint32_t> truth{1, 0, 2, 3};
  for (const std::vector<uint32_t>& wrong :
       std::vector<std::vector<uint32_t>>{{0, 1, 2, 3},  // not by score
                                          {1, 2, 0, 3},  // tie reversed
                                          {1, 0, 0, 3},  // a row twice
                                          {1, 0, 2, 4},  // past the end
                                          {1, 0, 2}}) {  // too short
    SCOPED_TRACE(testing::PrintToString(wrong));
    std::shared_ptr<const JobResults> job = fresh();
    EXPECT_FALSE(IsScoreOrder(job, *order(wrong)));
    OfferScoreOrder(job, order(wrong));
    WarmIndexes(job);
    EXPECT_EQ(rows_of(BuiltScoreOrder(job)), truth);
  }
  std::shared_ptr<const JobResults> job = fresh();
  EXPECT_TRUE(IsScoreOrder(job, *order(truth)));
  std::shared_ptr<const RowOrder> offered = order(truth);
  OfferScoreOrder(job, offered);
  EXPECT_EQ(BuiltScoreOrder(job), offered);  // not checked yet
  WarmIndexes(job);
  EXPECT_EQ(BuiltScoreOrder(job), offered);  // checked and used, not built
}

// Files of format version 1 (before score orders) are still read.
TEST(SnapshotTest, VersionOneFilesStillRead) {
  absl::StatusOr<std::shared_ptr<const StoreVersion>> read =
      ReadSnapshotBundle(Env::Default(), "tests/data/it_ops_new_kpi.v1.clout");
  ASSERT_TRUE(read.ok()) << read.status();
  InfluencerStore store;
  ASSERT_TRUE(LoadFile(store, "data/it_ops_new_kpi.ndjson", {}).ok());
  EXPECT_EQ(Rows(**read), Rows(*store.Current()));
  EXPECT_EQ(Rows(**read).at("it_ops_new_kpi").size(), 28u);
}

TEST(SnapshotTest, AWrittenBundleSurvivesACrash) {
  std::unique_ptr<InfluencerStore> store = SampleStore(5);
  FaultEnv env;
  ASSERT_TRUE(env.CreateDir("/out").ok());
  ASSERT_TRUE(env.SyncDir("/").ok());
  for (int seed = 0; seed < 16; ++seed) {
    ASSERT_TRUE(
        WriteSnapshotBundle(&env, "/out/s.clout", *store->Current()).ok());
    env.Crash(/*torn=*/true, seed);
    absl::StatusOr<std::shared_ptr<const StoreVersion>> read =
        ReadSnapshotBundle(&env, "/out/s.clout");
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(Rows(**read), Rows(*store->Current()));
  }
}

TEST(SnapshotTest, DamageIsRefusedNeverMisread) {
  std::unique_ptr<InfluencerStore> store = SampleStore(7);
  WarmIndexes(*store->Current());  // the score orders are checked too
  FaultEnv env;
  ASSERT_TRUE(WriteSnapshotBundle(&env, "/s", *store->Current()).ok());
  const std::string good = env.Contents("/s");
  // Every truncation.
  for (size_t n = 0; n < good.size(); n += 1 + n / 8) {
    absl::StatusOr<std::shared_ptr<const StoreVersion>> cut =
        ParseSnapshotBundle(good.substr(0, n), "cut");
    ASSERT_FALSE(cut.ok()) << n;
  }
  // A bit flipped in every byte: a checksum, the file table's layout or
  // the zero padding catches each (the bundle's own payload checksum is
  // not computed on open).
  std::mt19937_64 random(1);
  for (size_t at = 0; at < good.size(); ++at) {
    std::string bad = good;
    bad[at] ^= static_cast<char>(1 << (random() % 8));
    absl::StatusOr<std::shared_ptr<const StoreVersion>> read =
        ParseSnapshotBundle(bad, "flipped");
    ASSERT_FALSE(read.ok()) << "flip at " << at;
    EXPECT_THAT(std::string(read.status().message()), HasSubstr("[flipped"));
  }
  // Another format version: refused with a clear message.
  std::string other = good;
  other[8] = 3;
  absl::StatusOr<std::shared_ptr<const StoreVersion>> refused =
      ParseSnapshotBundle(other, "old.clout");
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("has format version 3; this build reads versions 1 to 2"));
}

// A missing double is stored as any NaN a writer left (a negative,
// signalling or payload NaN): a snapshot reads each back as the canonical
// MissingDouble(), sets the job's may_have_missing_doubles, and sorts it
// last; a job without one keeps the flag clear.
TEST(SnapshotTest, MissingDoublesRoundTripCanonicalAndFlagged) {
  InfluencerStore store;
  MutationBatch batch(MutationMode::kBulk);
  for (int i = 0; i < 6; ++i) {
    const std::string value = absl::StrCat("h", i);
    InfluencerFields row = Row(value, 1000 * i, 10.0 * i);
    if (i % 2 == 1) row.influencer_score = MissingDouble();
    if (i == 3) row.probability = MissingDouble();
    batch.AddInfluencer("with-missing", row);
    batch.AddInfluencer("complete", Row(value, 1000 * i, 5.0 + i));
  }
  ASSERT_TRUE(store.Apply(std::move(batch)).ok());
  std::shared_ptr<const StoreVersion> current = store.Current();
  // The same version with non-canonical NaNs in place of the missing values.
  auto job = std::make_shared<JobResults>(*current->PlainJob("with-missing"));
  ASSERT_TRUE(job->may_have_missing_doubles);
  const uint64_t kNaNs[] = {0xFFF8000000000000u, 0x7FF0000000000001u,
                            0x7FFFFFFFFFFFFFFFu, 0xFFF0000000000123u};
  size_t replaced = 0;
  for (Column<double>* column :
       {&job->columns.influencer_score, &job->columns.probability}) {
    for (double& v : *column) {
      if (IsMissing(v)) v = std::bit_cast<double>(kNaNs[replaced++ % 4]);
    }
  }
  ASSERT_EQ(replaced, 4u);
  StoreVersion odd = *current;
  odd.jobs["with-missing"] = job;
  FaultEnv env;
  ASSERT_TRUE(WriteSnapshotBundle(&env, "/nan.clout", odd).ok());
  absl::StatusOr<std::shared_ptr<const StoreVersion>> read =
      ReadSnapshotBundle(&env, "/nan.clout");
  ASSERT_TRUE(read.ok()) << read.status();
  const JobResults* back = (*read)->FindJob("with-missing");
  ASSERT_NE(back, nullptr);
  EXPECT_TRUE(back->may_have_missing_doubles);
  EXPECT_FALSE((*read)->FindJob("complete")->may_have_missing_doubles);
  const uint64_t canonical = std::bit_cast<uint64_t>(MissingDouble());
  size_t missing = 0;
  for (const Column<double>* column :
       {&back->columns.influencer_score, &back->columns.initial_influencer_score,
        &back->columns.probability}) {
    for (double v : *column) {
      if (!IsMissing(v)) continue;
      ++missing;
      EXPECT_EQ(std::bit_cast<uint64_t>(v), canonical);
    }
  }
  EXPECT_EQ(missing, 4u);
  EXPECT_EQ(Rows(**read), Rows(*current));
  // Queried, the missing scores sort last in both directions.
  InfluencerStore restored;
  ASSERT_TRUE(restored.Restore(*read).ok());
  for (bool desc : {true, false}) {
    InfluencersRequest request;
    request.job_id = "with-missing";
    request.desc = desc;
    absl::StatusOr<InfluencersPage> page = restored.GetInfluencers(request);
    ASSERT_TRUE(page.ok()) << page.status();
    std::vector<std::string> order;
    for (const Influencer& influencer : page->influencers) {
      order.emplace_back(influencer.influencer_field_value);
    }
    // h1, h3 and h5 (missing scores) come last either way, in ingest order.
    const std::vector<std::string> expected =
        desc ? std::vector<std::string>{"h4", "h2", "h0", "h1", "h3", "h5"}
             : std::vector<std::string>{"h0", "h2", "h4", "h1", "h3", "h5"};
    EXPECT_EQ(order, expected) << (desc ? "desc" : "asc");
  }
}

DataDirOptions Options(FaultEnv* env) {
  DataDirOptions options;
  options.env = env;
  options.dir = "/data";
  options.store.merge_ratio = 1e9;
  return options;
}

TEST(SnapshotTest, ASnapshotWritesOnlyWhatChangedAndDropsTheLog) {
  FaultEnv env;
  absl::StatusOr<std::unique_ptr<DataDir>> data = DataDir::Open(Options(&env));
  ASSERT_TRUE(data.ok()) << data.status();
  GeneratorOptions generator;
  generator.records = 2000;
  generator.jobs = 2;
  ASSERT_TRUE(
      LoadString((*data)->store(), GenerateDumpString(generator), {}).ok());
  absl::StatusOr<SnapshotStats> first = (*data)->Snapshot();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->segments_written, 2u);
  EXPECT_EQ((*data)->log().stats().segments, 1u);  // the one being written
  // One small write: the next snapshot writes its delta segment and a
  // manifest, not the jobs again.
  MutationBatch batch(MutationMode::kBulk);
  batch.AddInfluencer("job-0", Row("new", 5, 1));
  ASSERT_TRUE((*data)->store().Apply(std::move(batch)).ok());
  absl::StatusOr<SnapshotStats> second = (*data)->Snapshot();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->segments_written, 1u);
  EXPECT_LT(second->bytes_written, first->bytes_written / 10);
  const auto expected = Rows(*(*data)->store().Current());
  data->reset();
  absl::StatusOr<std::unique_ptr<DataDir>> reopened =
      DataDir::Open(Options(&env));
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->recovered_snapshot(), 2u);
  EXPECT_EQ((*reopened)->recovered_log().records, 0u);
  EXPECT_EQ(Rows(*(*reopened)->store().Current()), expected);
  // Only the newest manifest and the segments it names are left.
  absl::StatusOr<std::vector<std::string>> names =
      env.ListDir("/data/snapshots");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(names->size(), 4u) << testing::PrintToString(*names);
}

// A data directory on `env` holding a generated dump of two jobs
// (`records` results) and a snapshot of it: segment file 0 holds job-0,
// file 1 job-1. Null (and a test failure) if any step fails.
std::unique_ptr<DataDir> TwoJobsSnapshotted(FaultEnv* env, uint64_t records) {
  absl::StatusOr<std::unique_ptr<DataDir>> data = DataDir::Open(Options(env));
  if (!data.ok()) {
    ADD_FAILURE() << data.status();
    return nullptr;
  }
  GeneratorOptions generator;
  generator.records = records;
  generator.jobs = 2;
  absl::Status loaded =
      LoadString((*data)->store(), GenerateDumpString(generator), {}).status();
  absl::Status snapshot =
      loaded.ok() ? (*data)->Snapshot().status() : absl::OkStatus();
  if (!loaded.ok() || !snapshot.ok()) {
    ADD_FAILURE() << loaded << " " << snapshot;
    return nullptr;
  }
  return *std::move(data);
}

// A damaged or missing segment file stops the start, unless skip_corrupt:
// then its rows are lost (and said to be), the rest is served, the file
// is kept aside, and later snapshots and starts go on without it.
TEST(SnapshotTest, ADamagedSegmentIsLeftOutOnlyWithSkipCorrupt) {
  FaultEnv env;
  std::map<std::string, std::vector<std::string>> before;
  {
    std::unique_ptr<DataDir> data = TwoJobsSnapshotted(&env, 500);
    ASSERT_NE(data, nullptr);
    MutationBatch batch(MutationMode::kBulk);
    batch.AddInfluencer("job-0", Row("a", 5, 1));
    batch.AddInfluencer("job-1", Row("b", 5, 1));
    ASSERT_TRUE(data->store().Apply(std::move(batch)).ok());
    ASSERT_TRUE(data->Snapshot().ok());  // seg 2 and 3: the deltas
    MutationBatch logged(MutationMode::kBulk);
    logged.AddInfluencer("job-1", Row("c", 5, 1));
    ASSERT_TRUE(data->store().Apply(std::move(logged)).ok());
    before = Rows(*data->store().Current());
  }
  const std::string seg1 = "/data/snapshots/seg-00000000000000000001.seg";
  const std::string seg2 = "/data/snapshots/seg-00000000000000000002.seg";
  env.FlipBit(seg1, env.Contents(seg1).size() / 2, 3);
  absl::StatusOr<std::unique_ptr<DataDir>> refused =
      DataDir::Open(Options(&env));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(ErrorTypeOf(refused.status()), "snapshot_corrupted_exception");
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr(seg1));

  // job-1 keeps its delta and the logged write; its base's rows are lost.
  std::map<std::string, std::vector<std::string>> expected = before;
  std::vector<std::string>& job1 = expected["job-1"];
  job1.erase(std::remove_if(job1.begin(), job1.end(),
                            [](const std::string& row) {
                              return !absl::StartsWith(row, "host=b@") &&
                                     !absl::StartsWith(row, "host=c@");
                            }),
             job1.end());
  ASSERT_EQ(job1.size(), 2u);
  {
    DataDirOptions options = Options(&env);
    options.skip_corrupt = true;
    absl::StatusOr<std::unique_ptr<DataDir>> data = DataDir::Open(options);
    ASSERT_TRUE(data.ok()) << data.status();
    ASSERT_EQ((*data)->snapshots().skipped().size(), 1u);
    EXPECT_THAT((*data)->snapshots().skipped()[0],
                HasSubstr("seg-00000000000000000001.seg.corrupt"));
    EXPECT_EQ(Rows(*(*data)->store().Current()), expected);
    EXPECT_EQ((*data)->recovered_log().records, 1u);
    // The next snapshot names what is left, and keeps the damaged file.
    ASSERT_TRUE((*data)->Snapshot().ok());
  }
  EXPECT_TRUE(env.ReadFile(seg1 + ".corrupt").ok());
  EXPECT_FALSE(env.ReadFile(seg1).ok());
  {
    absl::StatusOr<std::unique_ptr<DataDir>> data =
        DataDir::Open(Options(&env));
    ASSERT_TRUE(data.ok()) << data.status();
    EXPECT_TRUE((*data)->snapshots().skipped().empty());
    EXPECT_EQ((*data)->snapshots().kept_earlier(),
              std::vector<std::string>{"seg-00000000000000000001.seg.corrupt"});
    EXPECT_EQ(Rows(*(*data)->store().Current()), expected);
  }
  // A segment file gone altogether: job-0's delta (row "a") is lost.
  ASSERT_TRUE(env.Remove(seg2).ok());
  ASSERT_TRUE(env.SyncDir("/data/snapshots").ok());
  ASSERT_FALSE(DataDir::Open(Options(&env)).ok());
  DataDirOptions options = Options(&env);
  options.skip_corrupt = true;
  absl::StatusOr<std::unique_ptr<DataDir>> data = DataDir::Open(options);
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_EQ((*data)->snapshots().skipped().size(), 1u);
  EXPECT_THAT((*data)->snapshots().skipped()[0], HasSubstr("cannot be read"));
  std::vector<std::string>& job0 = expected["job-0"];
  ASSERT_TRUE(absl::StartsWith(job0.back(), "host=a@"));
  job0.pop_back();
  EXPECT_EQ(Rows(*(*data)->store().Current()), expected);
}

// What skip_corrupt cannot do: leave out a damaged MANIFEST (it alone says
// which rows of the other segments are deleted), or set a damaged segment
// aside when the rename fails. Both refuse to start and change nothing.
TEST(SnapshotTest, SkipCorruptRefusesADamagedManifestOrAFailedSetAside) {
  FaultEnv env;
  std::map<std::string, std::vector<std::string>> before;
  {
    std::unique_ptr<DataDir> data = TwoJobsSnapshotted(&env, 300);
    ASSERT_NE(data, nullptr);
    before = Rows(*data->store().Current());
  }
  DataDirOptions skip = Options(&env);
  skip.skip_corrupt = true;
  const std::string seg1 = "/data/snapshots/seg-00000000000000000001.seg";
  const std::string seg1_bytes = env.Contents(seg1);
  env.FlipBit(seg1, seg1_bytes.size() / 2, 5);
  const std::string damaged = env.Contents(seg1);

  // The rename fails: no start, the damaged file keeps its name and bytes,
  // and nothing is set aside.
  env.SetRenameFails(true);
  absl::StatusOr<std::unique_ptr<DataDir>> failed = DataDir::Open(skip);
  env.SetRenameFails(false);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(env.Contents(seg1), damaged);
  EXPECT_FALSE(env.ReadFile(seg1 + ".corrupt").ok());
  {
    // Once the disk takes renames again, the set-aside succeeds, and it
    // is durable as soon as the open reports it: a power cut keeps it.
    absl::StatusOr<std::unique_ptr<SnapshotDir>> snapshots =
        SnapshotDir::Open(&env, "/data/snapshots", /*skip_corrupt=*/true);
    ASSERT_TRUE(snapshots.ok()) << snapshots.status();
    ASSERT_EQ((*snapshots)->skipped().size(), 1u);
    EXPECT_THAT((*snapshots)->skipped()[0], HasSubstr(".seg.corrupt"));
  }
  env.Crash(/*torn=*/false, 0);
  EXPECT_EQ(env.Contents(seg1 + ".corrupt"), damaged);
  EXPECT_FALSE(env.ReadFile(seg1).ok());
  {
    // A start after it leaves out the segment the manifest still names.
    absl::StatusOr<std::unique_ptr<DataDir>> data = DataDir::Open(skip);
    ASSERT_TRUE(data.ok()) << data.status();
    EXPECT_EQ((*data)->snapshots().skipped().size(), 1u);
    std::map<std::string, std::vector<std::string>> rows =
        Rows(*(*data)->store().Current());
    EXPECT_TRUE(rows["job-1"].empty());  // its only segment was left out
    EXPECT_EQ(rows["job-0"], before.at("job-0"));
  }
  EXPECT_EQ(env.Contents(seg1 + ".corrupt"), damaged);

  // A bit flipped in the manifest: refused even with skip_corrupt, naming
  // the manifest; no segment is set aside on its account.
  absl::StatusOr<std::vector<std::string>> names =
      env.ListDir("/data/snapshots");
  ASSERT_TRUE(names.ok());
  std::string manifest;
  for (const std::string& name : *names) {
    if (absl::StartsWith(name, "MANIFEST-")) manifest = name;
  }
  ASSERT_FALSE(manifest.empty());
  const std::string path = "/data/snapshots/" + manifest;
  env.FlipBit(path, env.Contents(path).size() / 2, 1);
  for (const DataDirOptions& options : {Options(&env), skip}) {
    absl::StatusOr<std::unique_ptr<DataDir>> refused = DataDir::Open(options);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(ErrorTypeOf(refused.status()), "snapshot_corrupted_exception");
    EXPECT_THAT(std::string(refused.status().message()), HasSubstr(path));
  }
  absl::StatusOr<std::vector<std::string>> after =
      env.ListDir("/data/snapshots");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, *names);
}

TEST(SnapshotTest, AcknowledgedWritesSurviveCrashesDuringSnapshots) {
  for (int seed = 0; seed < 60; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    std::mt19937_64 random(seed);
    FaultEnv env;
    InfluencerStore mirror;
    for (int life = 0; life < 4; ++life) {
      absl::StatusOr<std::unique_ptr<DataDir>> data =
          DataDir::Open(Options(&env));
      ASSERT_TRUE(data.ok()) << "life " << life << ": " << data.status();
      ASSERT_EQ(Rows(*(*data)->store().Current()), Rows(*mirror.Current()))
          << "life " << life;
      ASSERT_EQ((*data)->store().Current()->generation,
                mirror.Current()->generation);
      const int steps = 1 + static_cast<int>(random() % 10);
      for (int step = 0; step < steps; ++step) {
        if (random() % 4 == 0) {
          // A snapshot, maybe failing part-way (a full disk).
          if (random() % 3 == 0) env.SetSpaceLeft(random() % 4000);
          absl::StatusOr<SnapshotStats> stats = (*data)->Snapshot();
          env.SetSpaceLeft(-1);
          continue;
        }
        MutationBatch batch = RandomBatch(random);
        std::string encoded;
        EncodeMutationBatch(batch, &encoded);
        ASSERT_TRUE((*data)->store().Apply(std::move(batch)).ok());
        ASSERT_TRUE(mirror.Apply(*DecodeMutationBatch(encoded)).ok());
      }
      if (random() % 2 == 0) {
        // Crash in the middle of a snapshot, after any of its syncs: its
        // unsynced files and names survive in part, at random.
        env.FailSyncsAfter(static_cast<int64_t>(random() % 12));
        (*data)->Snapshot().IgnoreError();
      }
      data->reset();
      env.Crash(/*torn=*/true, random());
    }
  }
}

TEST(SnapshotTest, SnapshotFilesLoadIntoStores) {
  std::unique_ptr<InfluencerStore> store = SampleStore(3);
  FaultEnv env;
  ASSERT_TRUE(WriteSnapshotBundle(&env, "/s", *store->Current()).ok());
  // An empty store takes the version itself.
  InfluencerStore fresh;
  absl::StatusOr<uint64_t> loaded = LoadSnapshotFile(fresh, "/s", &env);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(Rows(*fresh.Current()), Rows(*store->Current()));
  // A store holding results upserts them as a dump load would.
  InfluencerStore busy;
  MutationBatch batch;
  batch.AddInfluencer("other", Row("x", 1, 2));
  ASSERT_TRUE(busy.Apply(std::move(batch)).ok());
  ASSERT_TRUE(LoadSnapshotFile(busy, "/s", &env).ok());
  EXPECT_TRUE(busy.Current()->jobs.contains("other"));
  const std::shared_ptr<const StoreVersion> current = store->Current();
  for (const auto& [id, job] : current->jobs) {
    EXPECT_EQ(busy.Current()->jobs.at(id)->size(), job->size()) << id;
  }
}

// A mapped file that shrank under the reader: ReadAt reports the read
// error, naming the file, instead of faulting or returning stale bytes.
// Files of a MiB and more go through Env::CreateForLargeWrite, which only
// the real Env implements apart (O_DIRECT): a bundle and a data
// directory's segments written on the real file system read back whole.
TEST(SnapshotTest, LargeFilesRoundTripOnTheRealFileSystem) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = JoinPath(tmp != nullptr ? tmp : "/tmp", "large");
  Env* env = Env::Default();
  ASSERT_TRUE(env->CreateDir(dir).ok());
  GeneratorOptions generator;
  generator.records = 60000;
  generator.jobs = 2;  // a segment file of about 1.5 MiB each
  const std::string dump = GenerateDumpString(generator);
  InfluencerStore store;
  ASSERT_TRUE(LoadString(store, dump, {}).ok());
  WarmIndexes(*store.Current());  // score orders in the files too
  const std::string bundle = JoinPath(dir, "s.clout");
  absl::StatusOr<uint64_t> bytes =
      WriteSnapshotBundle(env, bundle, *store.Current());
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  ASSERT_GT(*bytes, 2u << 20);
  absl::StatusOr<std::shared_ptr<const StoreVersion>> read =
      ReadSnapshotBundle(env, bundle);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(Rows(**read), Rows(*store.Current()));

  DataDirOptions options;
  options.env = env;
  options.dir = JoinPath(dir, "data");
  {
    absl::StatusOr<std::unique_ptr<DataDir>> data = DataDir::Open(options);
    ASSERT_TRUE(data.ok()) << data.status();
    ASSERT_TRUE(LoadString((*data)->store(), dump, {}).ok());
    absl::StatusOr<SnapshotStats> stats = (*data)->Snapshot();
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_EQ(stats->segments_written, 2u);
    EXPECT_GT(stats->bytes_written, 5u << 19);  // each of about 1.5 MiB
  }
  absl::StatusOr<std::unique_ptr<DataDir>> data = DataDir::Open(options);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(Rows(*(*data)->store().Current()), Rows(*store.Current()));
}

TEST(SnapshotTest, ReadingAFileThatShrankIsAnError) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string path =
      JoinPath(tmp != nullptr ? tmp : "/tmp", "shrinking.seg");
  Env* env = Env::Default();
  ASSERT_TRUE(env->WriteFile(path, std::string(8192, 'x')).ok());
  absl::StatusOr<std::unique_ptr<MappedFile>> mapped = env->MapFile(path);
  ASSERT_TRUE(mapped.ok()) << mapped.status();
  char buffer[100];
  ASSERT_TRUE((*mapped)->ReadAt(8000, buffer, sizeof buffer).ok());
  ASSERT_EQ(truncate(path.c_str(), 4096), 0);
  absl::Status read = (*mapped)->ReadAt(8000, buffer, sizeof buffer);
  EXPECT_FALSE(read.ok());
  EXPECT_THAT(std::string(read.message()), testing::HasSubstr(path));
  mapped->reset();
  env->Remove(path).IgnoreError();
}

}  // namespace
}  // namespace clout
