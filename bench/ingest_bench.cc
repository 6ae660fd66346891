// Ingest throughput: Clout's loader against the raw simdjson on-demand walk
// of the same bytes (the baseline: parse every line, visit every field and
// read every value, build nothing).
//
//   bazel run --config=opt //bench:ingest_bench --
//       --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// The dump is generated once: 1,000,000 influencers over 4 jobs (~300 MB).
// BM_Load runs with 1 and 2 parsing threads, each without and with the
// index builds a query server does after loading. Each repetition first
// loads once untimed (first_load_ms): the timed loads are those of a
// process whose memory is already in use, not the first one's page faults.
#include <sys/resource.h>

#include <cstring>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "engine/executor.h"
#include "tools/generator.h"
#include "engine/loader.h"
#include "engine/store.h"
#include "simdjson.h"

namespace clout {
namespace {

// Seconds this process has spent in the kernel (page faults, mostly).
double SystemSeconds() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
}

const std::string& Dump() {
  static const std::string* dump = [] {
    GeneratorOptions options;
    options.records = 1'000'000;
    options.jobs = 4;
    options.seed = 42;
    return new std::string(GenerateDumpString(options));
  }();
  return *dump;
}

// Arg 0: parsing threads (LoadOptions::threads). Arg 1: 1 to also build
// every job's warm indexes (score order and TimeIndex, WarmIndexes), as a
// query server would before taking traffic.
void BM_Load(benchmark::State& state) {
  const std::string& dump = Dump();
  LoadOptions options;
  options.threads = static_cast<int>(state.range(0));
  const bool warm = state.range(1) != 0;
  size_t rows = 0;
  size_t column_bytes = 0;
  int threads_used = 0;
  // The first load of a process pays for memory the process has not
  // touched yet (page faults, expensive on a VM) and for the first pass over
  // the generated dump: it is timed on its own (first_load_ms), untimed by
  // the benchmark, whose repetitions measure the loads that follow.
  {
    const absl::Time start = absl::Now();
    InfluencerStore store;
    if (!LoadString(store, dump, options).ok()) {
      state.SkipWithError("first load failed");
      return;
    }
    if (warm) WarmIndexes(*store.Current(), options.threads);
    state.counters["first_load_ms"] =
        absl::ToDoubleMilliseconds(absl::Now() - start);
  }
  const double system_start = SystemSeconds();
  for (auto _ : state) {
    InfluencerStore store;
    absl::StatusOr<LoadReport> report = LoadString(store, dump, options);
    if (!report.ok()) {
      state.SkipWithError(std::string(report.status().message()).c_str());
      return;
    }
    threads_used = report->threads;
    if (warm) WarmIndexes(*store.Current(), options.threads);
    rows = report->influencers_added;
    column_bytes = 0;
    const std::shared_ptr<const StoreVersion> current = store.Current();
    for (const auto& [id, job] : current->jobs) {
      const InfluencerColumns& c = job->columns;
      column_bytes += c.timestamp.capacity() * sizeof(int64_t) +
                      c.influencer_score.capacity() * sizeof(double) +
                      c.initial_influencer_score.capacity() * sizeof(double) +
                      c.probability.capacity() * sizeof(double) +
                      c.bucket_span_code.capacity() * sizeof(uint32_t) +
                      c.is_interim.capacity() * sizeof(uint8_t) +
                      c.field_name_code.capacity() * sizeof(uint32_t) +
                      c.field_value_code.capacity() * sizeof(uint32_t);
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * dump.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * rows));
  state.counters["column_bytes_per_influencer"] =
      rows ? static_cast<double>(column_bytes) / rows : 0;
  state.counters["dump_mb"] = dump.size() / 1e6;
  state.counters["threads_used"] = threads_used;
  // Kernel time per timed load, in every thread: on a VM, page faults.
  state.counters["system_ms"] = benchmark::Counter(
      (SystemSeconds() - system_start) * 1e3, benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_Load)
    ->ArgNames({"threads", "warm"})
    ->Args({1, 0})
    ->Args({2, 0})
    ->Args({1, 1})
    ->Args({2, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Re-loading the same dump into a store that already holds it: every
// result is matched by identity and found unchanged.
void BM_Reload(benchmark::State& state) {
  const std::string& dump = Dump();
  InfluencerStore store;
  if (!LoadString(store, dump).ok()) {
    state.SkipWithError("first load failed");
    return;
  }
  uint64_t unchanged = 0;
  for (auto _ : state) {
    absl::StatusOr<LoadReport> report = LoadString(store, dump);
    if (!report.ok()) {
      state.SkipWithError(std::string(report.status().message()).c_str());
      return;
    }
    unchanged = report->unchanged;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * dump.size()));
  state.counters["unchanged"] = static_cast<double>(unchanged);
}
BENCHMARK(BM_Reload)->Unit(benchmark::kMillisecond)->UseRealTime();

// The baseline: the same bytes, line by line, every field visited and every
// scalar value read, with the same simdjson on-demand parser.
void BM_RawSimdjsonWalk(benchmark::State& state) {
  const std::string& dump = Dump();
  simdjson::padded_string padded(dump);
  simdjson::ondemand::parser parser;
  // (Copying the dump into `padded` above touched its memory: untimed.)
  for (auto _ : state) {
    size_t fields = 0;
    double sum = 0;
    const char* p = padded.data();
    const char* end = p + padded.size();
    while (p < end) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
      size_t length = (nl ? nl : end) - p;
      simdjson::ondemand::document doc;
      if (parser.iterate(p, length, padded.size() + simdjson::SIMDJSON_PADDING -
                                        (p - padded.data()))
              .get(doc)) {
        state.SkipWithError("parse error");
        return;
      }
      simdjson::ondemand::object object;
      if (doc.get_object().get(object)) {
        state.SkipWithError("not an object");
        return;
      }
      for (auto field : object) {
        ++fields;
        simdjson::ondemand::value value = field.value();
        switch (value.type()) {
          case simdjson::ondemand::json_type::number:
            sum += double(value.get_double());
            break;
          case simdjson::ondemand::json_type::string:
            sum += std::string_view(value.get_string()).size();
            break;
          case simdjson::ondemand::json_type::boolean:
            sum += bool(value.get_bool());
            break;
          default:
            break;
        }
      }
      p += length + 1;
    }
    benchmark::DoNotOptimize(fields);
    benchmark::DoNotOptimize(sum);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * dump.size()));
}
BENCHMARK(BM_RawSimdjsonWalk)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace clout
