// What a write costs: applying a `_bulk`-style batch of 1,000 influencer
// results (half new, half updates of stored ones) to one job of
// --records influencers (default 10,000,000), in bulk mode (per-item
// outcomes) and load mode (totals only).
//
//   bazel run --config=opt //bench:mutation_bench -- [--records=N]
//       --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// The engine's issue asks for p50 <= 2 ms and >= 100x today's whole-job
// copy at 10M rows; these figures are that baseline until a commit costs
// the batch rather than the job.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "engine/mutation.h"
#include "engine/store.h"

namespace clout {
namespace {

uint64_t g_records = 10'000'000;
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

// One job of g_records rows: each bucket holds kValuesPerBucket hosts.
InfluencerStore& Store() {
  static InfluencerStore* store = [] {
    auto* s = new InfluencerStore();
    MutationBatch batch;
    for (uint64_t i = 0; i < g_records; ++i) {
      const std::string value =
          absl::StrCat("host-", (i % kValuesPerBucket) + (i / kValuesPerBucket) % 50 * 100);
      batch.AddInfluencer("job-0", RowAt(i, value, static_cast<double>(i % 100)));
    }
    if (!s->Apply(std::move(batch)).ok()) std::abort();
    std::fprintf(stderr, "data: %zu influencers in job-0\n",
                 s->Snapshot()->FindJob("job-0")->size());
    return s;
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

void ApplyBatches(benchmark::State& state, MutationMode mode) {
  InfluencerStore& store = Store();
  uint64_t round = 0;
  for (auto _ : state) {
    state.PauseTiming();
    MutationBatch batch = Batch(mode, round++);
    state.ResumeTiming();
    absl::StatusOr<MutationResult> result = store.Apply(std::move(batch));
    if (!result.ok()) std::abort();
    benchmark::DoNotOptimize(result->generation);
  }
  state.SetItemsProcessed(state.iterations() * 1000);
  state.counters["job_rows"] =
      static_cast<double>(store.Snapshot()->FindJob("job-0")->size());
}

void BM_ApplyBulk1000(benchmark::State& state) {
  ApplyBatches(state, MutationMode::kBulk);
}
void BM_ApplyLoad1000(benchmark::State& state) {
  ApplyBatches(state, MutationMode::kLoad);
}
BENCHMARK(BM_ApplyBulk1000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ApplyLoad1000)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace clout

int main(int argc, char** argv) {
  // --records=N before Google Benchmark's own flags.
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--records=", 10) == 0) {
      if (!absl::SimpleAtoi(argv[i] + 10, &clout::g_records) ||
          clout::g_records == 0) {
        std::fprintf(stderr, "--records wants a positive integer\n");
        return 2;
      }
      for (int j = i; j + 1 < argc; ++j) argv[j] = argv[j + 1];
      --argc;
      --i;
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
