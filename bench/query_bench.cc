// The executor against the naive reference executor, same store, same run.
// The executor must win by being one pass plus a bounded partial sort; the
// reference materialises and stable-sorts every match.
//
//   bazel run --config=opt //bench:query_bench --
//       --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Data: one generated job of 1,000,000 influencers.
#include <string>

#include "benchmark/benchmark.h"
#include "engine/executor.h"
#include "engine/generator.h"
#include "engine/loader.h"
#include "engine/reference_executor.h"
#include "engine/request.h"
#include "engine/response.h"
#include "engine/store.h"

namespace clout {
namespace {

InfluencerStore& Store() {
  static InfluencerStore* store = [] {
    auto* s = new InfluencerStore();
    GeneratorOptions options;
    options.records = 1'000'000;
    options.jobs = 1;
    options.seed = 7;
    absl::StatusOr<LoadReport> report =
        LoadString(*s, GenerateDumpString(options));
    if (!report.ok()) std::abort();
    return s;
  }();
  return *store;
}

// Shapes: a body each.
const char* const kShapes[] = {
    R"({})",                                                    // default
    R"({"influencer_score":50})",                               // threshold
    R"({"sort":"timestamp","page":{"from":5000,"size":100}})",  // deep page
    R"({"sort":"influencer_field_value","desc":false})",        // strings
    R"({"page":{"from":9900,"size":100}})",                     // last page
};
const char* const kShapeNames[] = {"default", "score>=50", "timestamp_from5000",
                                   "field_value_asc", "from9900"};

ResolvedQuery Resolve(int shape) {
  absl::StatusOr<InfluencersRequest> request =
      ParseBodyRequest("job-0", kShapes[shape]);
  QueryContext context;
  absl::StatusOr<ResolvedQuery> query =
      ResolveQuery(*Store().Snapshot(), *request, context);
  if (!query.ok()) std::abort();
  return *query;
}

void BM_Executor(benchmark::State& state) {
  ResolvedQuery query = Resolve(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    InfluencersPage page = ExecuteQuery(query);
    benchmark::DoNotOptimize(page.count);
  }
  state.SetLabel(kShapeNames[state.range(0)]);
}

void BM_Reference(benchmark::State& state) {
  ResolvedQuery query = Resolve(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    InfluencersPage page = ReferenceExecuteQuery(query);
    benchmark::DoNotOptimize(page.count);
  }
  state.SetLabel(kShapeNames[state.range(0)]);
}

BENCHMARK(BM_Executor)->DenseRange(0, 4)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Reference)
    ->DenseRange(0, 4)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

// Writing the response JSON of a 100-influencer page.
void BM_WriteResponse(benchmark::State& state) {
  InfluencersPage page = ExecuteQuery(Resolve(0));
  std::string out;
  size_t bytes = 0;
  for (auto _ : state) {
    out.clear();
    AppendInfluencersJson(page, OutputOptions(), &out);
    bytes += out.size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_WriteResponse);

}  // namespace
}  // namespace clout
