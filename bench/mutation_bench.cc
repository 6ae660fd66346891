// What writes cost, and what they cost queries, on one job of --records
// influencers (default 10,000,000):
//
//   BM_ApplyBulk1000     applying a `_bulk`-style batch of 1,000 results
//                        (half updates of stored ones, half new) in bulk
//                        mode (per-item outcomes); p50/p99 per batch
//   BM_ApplyLoad1000     the same batches in load mode (totals only)
//   BM_QueryMerged       the Q1-Q7 shapes on the job as one segment
//   BM_QuerySegmented    the same rows as the base plus 16 delta segments
//                        of such batches (unmerged), same shapes
//   BM_QueryRewritten    the job as a whole-job merge leaves it (the
//                        base plus 64 batches in one segment), after 16
//                        batches that rewrite rows the 64 rewrote
//   BM_QueryQuiet        the shapes through InfluencerStore, p50 per
//                        query, before any write (one plain segment)
//   BM_QueryUnderWrites  the same while another thread applies a batch
//                        every 10 ms (100 batches/s)
//   BM_Memory            bytes per influencer of that job, by part
//   BM_MemoryUnderUpdates  the most the memory budget per influencer
//                        reaches while batches of updates alone rewrite
//                        a job of --records (its own store)
//
//   bazel run --config=opt //bench:mutation_bench -- [--records=N]
//       [--max_deltas=N]  (StoreOptions::max_delta_segments of the store
//                          BM_Apply* and BM_Query{Quiet,UnderWrites} use)
//       [--merge_ratio=X] (its StoreOptions::merge_ratio; 0.01 merges the
//                          whole job within BM_ApplyBulk1000)
//       [--update_batches=N] (BM_MemoryUnderUpdates's batches; default
//                          about five whole-job merges' worth)
//       --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "bench/shapes.h"
#include "engine/executor.h"
#include "engine/mutation.h"
#include "engine/store.h"

namespace clout {
namespace {

uint64_t g_records = 10'000'000;
// StoreOptions::max_delta_segments of the written-to store (--max_deltas).
size_t g_max_deltas = StoreOptions().max_delta_segments;
// StoreOptions::merge_ratio of the written-to store (--merge_ratio): a small
// one merges the whole job within BM_ApplyBulk1000, as a long run of writes
// does at the default.
double g_merge_ratio = StoreOptions().merge_ratio;
// Batches BM_MemoryUnderUpdates writes (--update_batches); 0: about five
// whole-job merges' worth.
uint64_t g_update_batches = 0;
constexpr int64_t kBase = 1454943600000;
constexpr int64_t kBucketMs = 3'600'000;
constexpr int kValuesPerBucket = 100;

std::string Value(uint64_t i) { return absl::StrCat("host-", i % 5000); }

InfluencerFields RowAt(uint64_t i, const std::string& value, double score) {
  InfluencerFields row;
  row.field_name = "host";
  row.field_value = value;
  row.timestamp = kBase + static_cast<int64_t>(i / kValuesPerBucket) * kBucketMs;
  row.bucket_span = 3600;
  row.influencer_score = score;
  row.initial_influencer_score = score;
  row.probability = 0.001;
  return row;
}

// A store of one job of g_records rows: each bucket holds
// kValuesPerBucket hosts.
InfluencerStore* NewStore(StoreOptions options = {},
                          uint64_t records = g_records) {
  auto* s = new InfluencerStore(std::move(options));
  MutationBatch batch;
  for (uint64_t i = 0; i < records; ++i) {
    const std::string value = absl::StrCat(
        "host-", (i % kValuesPerBucket) + (i / kValuesPerBucket) % 50 * 100);
    batch.AddInfluencer("job-0", RowAt(i, value, static_cast<double>(i % 100)));
  }
  if (!s->Apply(std::move(batch)).ok()) std::abort();
  WarmIndexes(*s->Current());
  std::fprintf(stderr, "data: %zu influencers in job-0\n",
               s->Current()->FindJob("job-0")->size());
  return s;
}

InfluencerStore& Store() {
  static InfluencerStore* store = [] {
    StoreOptions options;
    options.max_delta_segments = g_max_deltas;
    options.merge_ratio = g_merge_ratio;
    return NewStore(options);
  }();
  return *store;
}

// 500 updates of stored results (new scores) and 500 new results (after
// the job's last bucket), as a live writer sends them.
MutationBatch Batch(MutationMode mode, uint64_t round) {
  MutationBatch batch(mode);
  std::vector<std::string> values;
  values.reserve(1000);
  for (uint64_t k = 0; k < 500; ++k) {
    const uint64_t i = (round * 7919 + k * 104729) % g_records;
    values.push_back(
        absl::StrCat("host-", (i % kValuesPerBucket) + (i / kValuesPerBucket) % 50 * 100));
    batch.AddInfluencer("job-0",
                        RowAt(i, values.back(), 100.0 + static_cast<double>(round % 7)));
  }
  for (uint64_t k = 0; k < 500; ++k) {
    const uint64_t i = g_records + round * 500 + k;
    values.push_back(Value(i));
    batch.AddInfluencer("job-0", RowAt(i, values.back(), 42.0));
  }
  return batch;
}

// Median and 99th percentile of `micros`, as counters.
void Percentiles(benchmark::State& state, std::vector<double> micros,
                 const char* unit) {
  if (micros.empty()) return;
  std::sort(micros.begin(), micros.end());
  state.counters[absl::StrCat("p50_", unit)] = micros[micros.size() / 2];
  state.counters[absl::StrCat("p99_", unit)] = micros[micros.size() * 99 / 100];
}

double MicrosSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::micro>(
             std::chrono::steady_clock::now() - start)
      .count();
}

uint64_t g_round = 0;  // batches applied to Store() so far

void ApplyBatches(benchmark::State& state, MutationMode mode) {
  InfluencerStore& store = Store();
  // The first write to a job builds its identity index (once per segment).
  if (!store.Apply(Batch(mode, g_round++)).ok()) std::abort();
  std::vector<double> millis;
  size_t max_deltas = 0;
  for (auto _ : state) {
    state.PauseTiming();
    MutationBatch batch = Batch(mode, g_round++);
    state.ResumeTiming();
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<MutationResult> result = store.Apply(std::move(batch));
    millis.push_back(MicrosSince(start) / 1000);
    if (!result.ok()) std::abort();
    benchmark::DoNotOptimize(result->generation);
    // Deltas after each batch (the target: at most 16).
    const size_t segments =
        store.Current()->jobs.at("job-0")->segments.size();
    max_deltas = std::max(max_deltas, segments == 0 ? 0 : segments - 1);
  }
  state.SetItemsProcessed(state.iterations() * 1000);
  Percentiles(state, std::move(millis), "ms");
  std::shared_ptr<const JobResults> job = store.Current()->jobs.at("job-0");
  state.counters["job_rows"] = static_cast<double>(job->size());
  state.counters["segments"] = static_cast<double>(job->segments.size());
  state.counters["max_deltas"] = static_cast<double>(max_deltas);
}

void BM_ApplyBulk1000(benchmark::State& state) {
  ApplyBatches(state, MutationMode::kBulk);
}
void BM_ApplyLoad1000(benchmark::State& state) {
  ApplyBatches(state, MutationMode::kLoad);
}

// The same rows as a base plus 16 delta segments, and merged into one.
struct SegmentedJob {
  StoreVersion segmented;
  StoreVersion merged;
  int64_t lo = 0;
  int64_t hi = 0;
};

const SegmentedJob& Segmented() {
  static SegmentedJob* pair = [] {
    // Room for 16 deltas that no merge touches (at max_delta_segments = 16
    // windows would merge from 14 on).
    StoreOptions options;
    options.max_delta_segments = 64;
    options.merge_ratio = 1e9;
    options.merge_growing_deltas = false;  // the 16 batches as written
    InfluencerStore* store = NewStore(options);
    for (uint64_t round = 0; round < 16; ++round) {
      if (!store->Apply(Batch(MutationMode::kBulk, round)).ok()) std::abort();
    }
    auto* out = new SegmentedJob;
    std::shared_ptr<const StoreVersion> version = store->Current();
    out->segmented = *version;
    out->merged = *version;
    std::shared_ptr<const JobResults> merged =
        MaterializeJob(version->jobs.at("job-0"));
    out->merged.jobs["job-0"] = merged;
    WarmIndexes(out->segmented);
    WarmIndexes(out->merged);
    auto [lo, hi] = std::minmax_element(merged->columns.timestamp.begin(),
                                        merged->columns.timestamp.end());
    out->lo = *lo;
    out->hi = *hi;
    std::fprintf(stderr, "segmented job-0: %zu segments, %zu rows\n",
                 version->jobs.at("job-0")->segments.size(),
                 version->jobs.at("job-0")->size());
    return out;
  }();
  return *pair;
}

// The job as a whole-job merge leaves it after a long run of writes, and
// as writes then change it: the base plus 64 batches merged into one
// segment (the updated rows, scored 100-106, at the top of the score
// order), then the first 16 batches written again, which deletes the
// merged versions of their rows.
const StoreVersion& Rewritten() {
  static StoreVersion* out = [] {
    StoreOptions options;
    options.max_delta_segments = 64;
    options.merge_ratio = 1e9;
    options.merge_growing_deltas = false;
    auto merged = std::make_shared<StoreVersion>();
    {
      std::unique_ptr<InfluencerStore> store(NewStore(options));
      for (uint64_t round = 0; round < 64; ++round) {
        if (!store->Apply(Batch(MutationMode::kBulk, round)).ok()) std::abort();
      }
      *merged = *store->Current();
      merged->jobs["job-0"] = MaterializeJob(merged->jobs.at("job-0"));
    }
    InfluencerStore store(options);
    if (!store.Restore(merged).ok()) std::abort();
    for (uint64_t round = 0; round < 16; ++round) {
      if (!store.Apply(Batch(MutationMode::kBulk, round)).ok()) std::abort();
    }
    auto* version = new StoreVersion(*store.Current());
    WarmIndexes(*version);
    const JobResults::Segment& base = version->jobs.at("job-0")->segments[0];
    std::fprintf(stderr, "rewritten job-0: %zu segments, base %zu rows, %zu deleted\n",
                 version->jobs.at("job-0")->segments.size(), base.rows->size(),
                 base.deleted_rows());
    return version;
  }();
  return *out;
}

void QueryOn(benchmark::State& state, const StoreVersion& snapshot) {
  const int shape = static_cast<int>(state.range(0));
  const SegmentedJob& pair = Segmented();
  InfluencersRequest request = ShapeRequest(shape, "job-0", pair.lo, pair.hi);
  QueryContext context;
  absl::StatusOr<ResolvedQuery> query = ResolveQuery(snapshot, request, context);
  if (!query.ok()) std::abort();
  for (int i = 0; i < 3; ++i) ExecuteQuery(*query);  // orders built on reuse
  int64_t count = 0;
  for (auto _ : state) {
    InfluencersPage page = ExecuteQuery(*query);
    count = page.count;
    benchmark::DoNotOptimize(page.influencers.data());
  }
  state.SetLabel(kShapeNames[shape]);
  state.counters["count"] = static_cast<double>(count);
}

void BM_QueryMerged(benchmark::State& state) {
  QueryOn(state, Segmented().merged);
}
void BM_QuerySegmented(benchmark::State& state) {
  QueryOn(state, Segmented().segmented);
}
void BM_QueryRewritten(benchmark::State& state) {
  QueryOn(state, Rewritten());
}

// Queries through the store, p50 per query, with or without a writer
// applying a 1,000-document bulk batch every 10 ms.
void QueryStore(benchmark::State& state, bool writes) {
  const int shape = static_cast<int>(state.range(0));
  InfluencerStore& store = Store();
  std::shared_ptr<const JobResults> job = MaterializeJob(
      store.Current()->jobs.at("job-0"));
  auto [lo, hi] = std::minmax_element(job->columns.timestamp.begin(),
                                      job->columns.timestamp.end());
  InfluencersRequest request = ShapeRequest(shape, "job-0", *lo, *hi);
  job.reset();
  std::atomic<bool> stop{false};
  std::atomic<int> batches{0};
  std::atomic<size_t> max_deltas{0};  // after each batch
  std::thread writer;
  if (writes) {
    writer = std::thread([&] {
      auto next = std::chrono::steady_clock::now();
      while (!stop.load()) {
        if (!store.Apply(Batch(MutationMode::kBulk, g_round++)).ok()) std::abort();
        ++batches;
        const size_t segments =
            store.Current()->jobs.at("job-0")->segments.size();
        max_deltas = std::max(max_deltas.load(),
                              segments == 0 ? size_t{0} : segments - 1);
        next += std::chrono::milliseconds(10);
        std::this_thread::sleep_until(next);
      }
    });
  }
  for (int i = 0; i < 3; ++i) (void)store.GetInfluencers(request);
  std::vector<double> micros;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<InfluencersPage> page = store.GetInfluencers(request);
    micros.push_back(MicrosSince(start));
    benchmark::DoNotOptimize(page->influencers.data());
  }
  stop = true;
  if (writer.joinable()) writer.join();
  state.SetLabel(kShapeNames[shape]);
  Percentiles(state, std::move(micros), "us");
  if (writes) {
    state.counters["batches"] = batches.load();
    state.counters["max_deltas"] = static_cast<double>(max_deltas.load());
    // The base segment after the writes: once a long run of writes has
    // merged the whole job, it holds the updated rows at its end and is
    // no longer in time order (window scans read its TimeIndex).
    std::shared_ptr<const JobResults> after = store.Current()->jobs.at("job-0");
    // The same query once the writer has stopped: what the job's state
    // costs, apart from sharing the cores with the writer and its merges.
    std::vector<double> quiet_after;
    for (int i = 0; i < 21; ++i) {
      const auto start = std::chrono::steady_clock::now();
      absl::StatusOr<InfluencersPage> page = store.GetInfluencers(request);
      quiet_after.push_back(MicrosSince(start));
      benchmark::DoNotOptimize(page->influencers.data());
    }
    std::sort(quiet_after.begin(), quiet_after.end());
    state.counters["after_p50_us"] = quiet_after[quiet_after.size() / 2];
    if (!after->segments.empty()) {
      const JobResults::Segment& base = after->segments.front();
      state.counters["base_rows"] = static_cast<double>(base.rows->columns.size());
      state.counters["base_time_ordered"] = base.rows->time_ordered ? 1 : 0;
    }
  }
}

void BM_QueryQuiet(benchmark::State& state) { QueryStore(state, false); }
void BM_QueryUnderWrites(benchmark::State& state) { QueryStore(state, true); }

// A job's memory: its columns (with _version), its indexes, and its rows
// stored (deleted ones too, until a merge drops them) and live.
struct JobMemory {
  size_t column_bytes = 0;
  IndexMemory indexes;
  size_t stored_rows = 0;
  size_t live_rows = 0;
  // The budget: columns (with _version and presence), warm
  // indexes, the identity index and filters, deleted-row lists; sort
  // orders that queries of other sorts built are extra (4 B per row each).
  size_t budget() const {
    return column_bytes + indexes.warm + indexes.identity + indexes.deleted;
  }
};

JobMemory MemoryOf(const JobResults& job) {
  JobMemory memory;
  auto add = [&](const JobResults& segment) {
    memory.column_bytes +=
        segment.columns.size() * InfluencerColumns::kBytesPerRow;
    memory.stored_rows += segment.columns.size();
  };
  if (job.segments.empty()) add(job);
  for (const JobResults::Segment& s : job.segments) add(*s.rows);
  memory.indexes = IndexMemoryOf(job);
  memory.live_rows = job.size();
  return memory;
}

// Bytes per influencer of the written-to job, by part: columns (with
// _version), warm indexes, the identity index and filters, deleted-row
// lists, and sort orders queries of other sorts built.
void BM_Memory(benchmark::State& state) {
  InfluencerStore& store = Store();
  std::shared_ptr<const JobResults> job = store.Current()->jobs.at("job-0");
  for (auto _ : state) benchmark::DoNotOptimize(job.get());
  const double rows = static_cast<double>(job->size());
  const JobMemory memory = MemoryOf(*job);
  const size_t column_bytes = memory.column_bytes;
  const size_t stored_rows = memory.stored_rows;
  const IndexMemory& indexes = memory.indexes;
  auto per_row = [&](size_t bytes) { return static_cast<double>(bytes) / rows; };
  state.counters["columns_B_per_row"] = per_row(column_bytes);
  state.counters["warm_B_per_row"] = per_row(indexes.warm);
  state.counters["identity_B_per_row"] = per_row(indexes.identity);
  state.counters["deleted_B_per_row"] = per_row(indexes.deleted);
  state.counters["other_orders_B_per_row"] = per_row(indexes.other_orders);
  state.counters["budget_B_per_row"] = per_row(memory.budget());
  state.counters["total_B_per_row"] =
      per_row(column_bytes + indexes.total());
  // Deleted rows not merged away yet (up to about merge_ratio / 4 of the
  // rows stored, plus those deleted while a whole-job merge runs): they cost columns and indexes until the whole-job
  // merge, so the budget per live row rises with them. The same budget per
  // stored row is the cost of the layout itself.
  state.counters["deleted_share"] =
      1.0 - rows / static_cast<double>(std::max<size_t>(stored_rows, 1));
  state.counters["budget_B_per_stored_row"] =
      static_cast<double>(memory.budget()) /
      static_cast<double>(std::max<size_t>(stored_rows, 1));
}

// The most the budget per live influencer reaches while batches of 1,000
// updates alone (no new results) rewrite a job of --records rows, with
// Q1 and Q4 asked after each batch (so that every segment's score and time
// indexes are built, as under a live reader): deleted rows pile up until a
// whole-job merge drops them, and updates alone pile up the most of them
// per merge. A batch every 10 ms. Reported: that peak, the deleted share there, and the whole-
// job merges seen. The store has --merge_ratio and --max_deltas.
void BM_MemoryUnderUpdates(benchmark::State& state) {
  StoreOptions options;
  options.max_delta_segments = g_max_deltas;
  options.merge_ratio = g_merge_ratio;
  const uint64_t records = std::max<uint64_t>(g_records, 1000);
  std::unique_ptr<InfluencerStore> store(NewStore(options, records));
  std::vector<InfluencersRequest> requests;
  {
    const std::shared_ptr<const JobResults> job =
        store->Current()->PlainJob("job-0");
    auto [lo, hi] = std::minmax_element(job->columns.timestamp.begin(),
                                        job->columns.timestamp.end());
    requests.push_back(ShapeRequest(0, "job-0", *lo, *hi));
    requests.push_back(ShapeRequest(3, "job-0", *lo, *hi));
  }
  // Enough batches for about five whole-job merges at merge_ratio / 4
  // deleted (each merge adds the rows rewritten since to the base's tail
  // out of time order, which its TimeIndex pays for), at most 20,000
  // (200 s).
  const uint64_t batches =
      g_update_batches > 0
          ? g_update_batches
          : std::min<uint64_t>(
                static_cast<uint64_t>(5 * g_merge_ratio / 4 *
                                      static_cast<double>(records) / 1000) + 8,
                20000);
  double peak = 0;
  double peak_share = 0;
  JobMemory at_peak;
  size_t deltas_at_peak = 0;
  int merges = 0;
  for (auto _ : state) {
    const JobResults* base = nullptr;
    auto next = std::chrono::steady_clock::now();
    for (uint64_t round = 0; round < batches; ++round) {
      // 100 batches/s, as BM_QueryUnderWrites's writer: a whole-job merge
      // runs in the background meanwhile, and a writer that never waits
      // would pile up deleted rows faster than any merge drops them.
      next += std::chrono::milliseconds(10);
      std::this_thread::sleep_until(next);
      MutationBatch batch(MutationMode::kBulk);
      std::vector<std::string> values;
      values.reserve(1000);
      for (uint64_t k = 0; k < 1000; ++k) {
        const uint64_t i = (round * 7919 + k * 104729) % records;
        values.push_back(absl::StrCat(
            "host-", (i % kValuesPerBucket) + (i / kValuesPerBucket) % 50 * 100));
        batch.AddInfluencer(
            "job-0", RowAt(i, values.back(), 100.0 + static_cast<double>(round % 7)));
      }
      if (!store->Apply(std::move(batch)).ok()) std::abort();
      const std::shared_ptr<const StoreVersion> current = store->Current();
      QueryContext context;
      for (const InfluencersRequest& request : requests) {
        absl::StatusOr<ResolvedQuery> query =
            ResolveQuery(*current, request, context);
        if (!query.ok()) std::abort();
        benchmark::DoNotOptimize(ExecuteQuery(*query).count);
      }
      const JobResults& job = *current->FindJob("job-0");
      const JobResults* now = job.segments.empty() ? &job : job.segments[0].rows.get();
      if (base != nullptr && now != base) ++merges;
      base = now;
      const JobMemory memory = MemoryOf(job);
      const double per_live = static_cast<double>(memory.budget()) /
                              static_cast<double>(memory.live_rows);
      if (per_live > peak) {
        peak = per_live;
        peak_share = 1.0 - static_cast<double>(memory.live_rows) /
                               static_cast<double>(memory.stored_rows);
        at_peak = memory;
        deltas_at_peak = job.segments.empty() ? 0 : job.segments.size() - 1;
      }
    }
  }
  store->WaitForMerges();
  // The share of the base segment's rows (deleted ones too) after its
  // longest prefix in time order: the rows rewritten since the load,
  // which a merge keeps after the others (ingest order).
  {
    const std::shared_ptr<const StoreVersion> current = store->Current();
    const JobResults& job = *current->FindJob("job-0");
    const JobResults& base = job.segments.empty() ? job : *job.segments[0].rows;
    const Column<int64_t>& ts = base.columns.timestamp;
    const auto ordered = std::is_sorted_until(ts.begin(), ts.end()) - ts.begin();
    state.counters["final_tail_share"] =
        1.0 - static_cast<double>(ordered) / static_cast<double>(ts.size());
  }
  // Of the published versions (a running merge's snapshot and the segment
  // it builds are not counted).
  state.counters["peak_budget_B_per_row"] = peak;
  state.counters["deleted_share_at_peak"] = peak_share;
  state.counters["whole_job_merges"] = merges;
  // The parts at the peak, per live influencer.
  const double live = static_cast<double>(std::max<size_t>(at_peak.live_rows, 1));
  state.counters["peak_columns"] = static_cast<double>(at_peak.column_bytes) / live;
  state.counters["peak_warm"] = static_cast<double>(at_peak.indexes.warm) / live;
  state.counters["peak_identity"] =
      static_cast<double>(at_peak.indexes.identity) / live;
  state.counters["peak_deleted"] =
      static_cast<double>(at_peak.indexes.deleted) / live;
  state.counters["peak_deltas"] = static_cast<double>(deltas_at_peak);
  state.counters["rows"] = static_cast<double>(records);
}

// In this order: quiet queries on the job as loaded, then the writes,
// then queries while writes go on.
BENCHMARK(BM_QueryQuiet)->DenseRange(0, kLastShape)->Unit(benchmark::kMicrosecond)->MinTime(1.0);
BENCHMARK(BM_ApplyBulk1000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ApplyLoad1000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_QueryUnderWrites)->DenseRange(0, kLastShape)->Unit(benchmark::kMicrosecond)->MinTime(1.0);
BENCHMARK(BM_QueryMerged)->DenseRange(0, kLastShape)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_QuerySegmented)->DenseRange(0, kLastShape)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_QueryRewritten)->DenseRange(0, kLastShape)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Memory)->Iterations(1)->Repetitions(1);
BENCHMARK(BM_MemoryUnderUpdates)->Iterations(1)->Repetitions(1)->Unit(benchmark::kSecond);

}  // namespace
}  // namespace clout

int main(int argc, char** argv) {
  // --records=N, --max_deltas=N and --merge_ratio=X before Google
  // Benchmark's own flags.
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--merge_ratio=", 14) == 0) {
      double ratio = 0;
      if (!absl::SimpleAtod(argv[i] + 14, &ratio) || !(ratio > 0)) {
        std::fprintf(stderr, "--merge_ratio wants a positive number\n");
        return 2;
      }
      clout::g_merge_ratio = ratio;
      for (int j = i; j + 1 < argc; ++j) argv[j] = argv[j + 1];
      --argc;
      --i;
      continue;
    }
    const bool records = std::strncmp(argv[i], "--records=", 10) == 0;
    const bool deltas = std::strncmp(argv[i], "--max_deltas=", 13) == 0;
    const bool batches = std::strncmp(argv[i], "--update_batches=", 17) == 0;
    if (!records && !deltas && !batches) continue;
    const char* name = records ? "--records" : deltas ? "--max_deltas"
                                                      : "--update_batches";
    uint64_t value = 0;
    if (!absl::SimpleAtoi(argv[i] + std::strlen(name) + 1, &value) ||
        value == 0) {
      std::fprintf(stderr, "%s wants a positive integer\n", name);
      return 2;
    }
    if (records) {
      clout::g_records = value;
    } else if (deltas) {
      clout::g_max_deltas = static_cast<size_t>(value);
    } else {
      clout::g_update_batches = value;
    }
    for (int j = i; j + 1 < argc; ++j) argv[j] = argv[j + 1];
    --argc;
    --i;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
