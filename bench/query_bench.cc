// Get Influencers query speed on the indexes issue's shapes (Q1-Q7), with
// every baseline in the same binary and run: the naive reference executor,
// SQLite (in-memory, indexed), and Clout's own first-time scan.
//
//   bazel run --config=opt //bench:query_bench -- [--records=N] [--jobs=J]
//       --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Data: the project's generator, --records influencers (default
// 10,000,000) over --jobs jobs (default 1); queries go to job-0. The dump is
// loaded through LoadString once, then the job's indexes are warmed.
//
//   BM_FirstQuery     a query with no order built yet (scan + top-k); the
//                     issue's "first time" figure
//   BM_GetInfluencers through InfluencerStore::GetInfluencers with the
//                     page materialised, the sort's order already built
//   BM_BuildOrder     building an order from nothing (Q1's, Q5's) and the
//                     TimeIndex
//   BM_Reference      the naive executor (one repetition: seconds each)
//   BM_Sqlite         the page query plus its COUNT(*)
//   BM_Memory         bytes per influencer: columns, warm indexes, and
//                     every order the shapes use
//   BM_WriteResponse  the response writer's output rate
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

#include "benchmark/benchmark.h"
#include "sqlite3.h"
#include "engine/executor.h"
#include "tools/generator.h"
#include "engine/loader.h"
#include "engine/reference_executor.h"
#include "engine/request.h"
#include "engine/response.h"
#include "engine/store.h"
#include "bench/shapes.h"

namespace clout {
namespace {

uint64_t g_records = 10'000'000;
int g_jobs = 1;

InfluencerStore& Store() {
  static InfluencerStore* store = [] {
    StoreOptions store_options;
    store_options.now_millis = [] { return int64_t{1454943600000}; };
    auto* s = new InfluencerStore(store_options);
    GeneratorOptions options;
    options.records = g_records;
    options.jobs = g_jobs;
    options.seed = 7;
    auto t0 = std::chrono::steady_clock::now();
    std::string dump = GenerateDumpString(options);
    auto t1 = std::chrono::steady_clock::now();
    absl::StatusOr<LoadReport> report = LoadString(*s, dump);
    if (!report.ok()) {
      std::fprintf(stderr, "load failed: %s\n", report.status().ToString().c_str());
      std::abort();
    }
    auto t2 = std::chrono::steady_clock::now();
    WarmIndexes(s->Current()->jobs.at("job-0"));
    auto t3 = std::chrono::steady_clock::now();
    auto secs = [](auto a, auto b) {
      return std::chrono::duration<double>(b - a).count();
    };
    std::fprintf(stderr,
                 "data: %llu influencers over %d job(s), %.0f MB; generated in "
                 "%.1f s, loaded in %.2f s (%.0f MB/s), job-0 indexes warmed "
                 "in %.2f s\n",
                 static_cast<unsigned long long>(g_records), g_jobs,
                 dump.size() / 1e6, secs(t0, t1), secs(t1, t2),
                 dump.size() / 1e6 / secs(t1, t2), secs(t2, t3));
    return s;
  }();
  return *store;
}

InfluencersRequest Request(int shape) {
  const JobResults& job = *Store().Current()->FindJob("job-0");
  auto [lo, hi] = std::minmax_element(job.columns.timestamp.begin(),
                                      job.columns.timestamp.end());
  return ShapeRequest(shape, "job-0", *lo, *hi);
}

ResolvedQuery Resolve(int shape) {
  InfluencersRequest request = Request(shape);
  QueryContext context;
  context.now_millis = [] { return int64_t{1454943600000}; };
  absl::StatusOr<ResolvedQuery> query =
      ResolveQuery(*Store().Current(), request, context);
  if (!query.ok()) std::abort();
  return *query;
}

// A query whose sort has no order yet: one filter pass plus a bounded
// top-k selection (what a first, one-off query costs).
void BM_FirstQuery(benchmark::State& state) {
  ResolvedQuery query = Resolve(static_cast<int>(state.range(0)));
  int64_t count = 0;
  for (auto _ : state) {
    InfluencersPage page = ExecuteQuery(query, IndexUse::kNever);
    count = page.count;
    benchmark::DoNotOptimize(page.count);
  }
  state.SetLabel(kShapeNames[state.range(0)]);
  state.counters["count"] = static_cast<double>(count);
}

// A repeated query through the public entry point: snapshot, resolve,
// execute with the sort's order built, page materialised.
void BM_GetInfluencers(benchmark::State& state) {
  const int shape = static_cast<int>(state.range(0));
  InfluencersRequest request = Request(shape);
  ExecuteQuery(Resolve(shape), IndexUse::kAlways);  // builds the order once
  int64_t count = 0;
  for (auto _ : state) {
    absl::StatusOr<InfluencersPage> page = Store().GetInfluencers(request);
    count = page->count;
    benchmark::DoNotOptimize(page->influencers.data());
  }
  state.SetLabel(kShapeNames[shape]);
  state.counters["count"] = static_cast<double>(count);
}

// Building an order (arg: shape) or, with arg -1, the TimeIndex (and the
// score order it needs) from nothing. The caches are cleared between
// iterations (single-threaded here).
void BM_BuildOrder(benchmark::State& state) {
  const int shape = static_cast<int>(state.range(0));
  ResolvedQuery query = Resolve(shape < 0 ? 0 : shape);
  SortOrderCache& cache = *query.job->sort_orders;
  for (auto _ : state) {
    cache.orders.clear();
    cache.time_index.reset();
    cache.string_ranks.reset();
    if (shape < 0) {
      WarmIndexes(query.job);
    } else {
      benchmark::DoNotOptimize(ExecuteQuery(query, IndexUse::kAlways).count);
    }
  }
  state.SetLabel(shape < 0 ? "score order + TimeIndex" : kShapeNames[shape]);
  WarmIndexes(query.job);
}

void BM_Reference(benchmark::State& state) {
  ResolvedQuery query = Resolve(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    InfluencersPage page = ReferenceExecuteQuery(query);
    benchmark::DoNotOptimize(page.count);
  }
  state.SetLabel(kShapeNames[state.range(0)]);
}

// Bytes per influencer of job-0: the columns, the warm indexes (score
// order + TimeIndex), and with every order the shapes use built.
void BM_Memory(benchmark::State& state) {
  std::shared_ptr<const JobResults> job = Store().Current()->jobs.at("job-0");
  const double rows = static_cast<double>(job->size());
  double warm = 0;
  double all = 0;
  for (auto _ : state) {
    job->sort_orders->orders.clear();
    job->sort_orders->time_index.reset();
    job->sort_orders->string_ranks.reset();
    WarmIndexes(job);
    warm = static_cast<double>(IndexBytes(*job));
    for (int shape = 0; shape <= kLastShape; ++shape) {
      ExecuteQuery(Resolve(shape), IndexUse::kAlways);
    }
    all = static_cast<double>(IndexBytes(*job));
  }
  const double columns = static_cast<double>(InfluencerColumns::kBytesPerRow);
  state.counters["rows"] = rows;
  state.counters["columns_B_per_row"] = columns;
  state.counters["warm_B_per_row"] = columns + warm / rows;
  state.counters["all_orders_B_per_row"] = columns + all / rows;
}

BENCHMARK(BM_FirstQuery)->DenseRange(0, kLastShape)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GetInfluencers)
    ->DenseRange(0, kLastShape)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_BuildOrder)
    ->Arg(-1)
    ->Arg(0)
    ->Arg(4)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);
BENCHMARK(BM_Reference)
    ->DenseRange(0, kLastShape)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->Repetitions(1);
BENCHMARK(BM_Memory)->Iterations(1)->Repetitions(1)->Unit(benchmark::kMillisecond);

// SQLite as the baseline a user would otherwise reach for: the same rows in
// an in-memory database with an index on (job, each sort column), and per
// request the page query plus its count.
struct SqliteBaseline {
  sqlite3* db = nullptr;

  SqliteBaseline() {
    const JobResults& job = *Store().Current()->FindJob("job-0");
    sqlite3_open(":memory:", &db);
    Exec("CREATE TABLE influencers(job TEXT, timestamp INTEGER, "
         "influencer_score REAL, initial_influencer_score REAL, "
         "probability REAL, bucket_span INTEGER, is_interim INTEGER, "
         "influencer_field_name TEXT, influencer_field_value TEXT, "
         "ingest INTEGER)");
    Exec("BEGIN");
    sqlite3_stmt* insert = nullptr;
    sqlite3_prepare_v2(db,
                       "INSERT INTO influencers VALUES(?,?,?,?,?,?,?,?,?,?)",
                       -1, &insert, nullptr);
    const InfluencerColumns& c = job.columns;
    for (size_t r = 0; r < job.size(); ++r) {
      sqlite3_bind_text(insert, 1, "job-0", -1, SQLITE_STATIC);
      sqlite3_bind_int64(insert, 2, c.timestamp[r]);
      sqlite3_bind_double(insert, 3, c.influencer_score[r]);
      sqlite3_bind_double(insert, 4, c.initial_influencer_score[r]);
      sqlite3_bind_double(insert, 5, c.probability[r]);
      sqlite3_bind_int64(insert, 6, job.bucket_span(r));
      sqlite3_bind_int(insert, 7, c.is_interim[r]);
      absl::string_view name = job.field_name(r);
      absl::string_view value = job.field_value(r);
      sqlite3_bind_text(insert, 8, name.data(), static_cast<int>(name.size()),
                        SQLITE_STATIC);
      sqlite3_bind_text(insert, 9, value.data(),
                        static_cast<int>(value.size()), SQLITE_STATIC);
      sqlite3_bind_int64(insert, 10, static_cast<int64_t>(r));
      sqlite3_step(insert);
      sqlite3_reset(insert);
    }
    sqlite3_finalize(insert);
    Exec("COMMIT");
    for (const char* column : {"influencer_score", "timestamp", "probability",
                               "influencer_field_value"}) {
      Exec(absl::StrCat("CREATE INDEX by_", column, " ON influencers(job, ",
                        column, ", ingest)"));
    }
    Exec("ANALYZE");
  }

  void Exec(const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      std::fprintf(stderr, "sqlite: %s: %s\n", sql.c_str(), error);
      std::abort();
    }
  }

  // The page and count statements of a resolved query.
  std::pair<std::string, std::string> Sql(const ResolvedQuery& q) const {
    std::string where = "job = 'job-0'";
    if (q.start) absl::StrAppend(&where, " AND timestamp >= ", *q.start);
    if (q.end) absl::StrAppend(&where, " AND timestamp < ", *q.end);
    if (q.min_score) absl::StrAppend(&where, " AND influencer_score >= ", *q.min_score);
    if (q.exclude_interim) absl::StrAppend(&where, " AND is_interim = 0");
    const char* column = q.sort == SortField::kTimestamp ? "timestamp"
                         : q.sort == SortField::kProbability ? "probability"
                         : q.sort == SortField::kInfluencerFieldValue
                             ? "influencer_field_value"
                             : "influencer_score";
    std::string page = absl::StrCat(
        "SELECT * FROM influencers WHERE ", where, " ORDER BY ", column,
        q.desc ? " DESC" : " ASC", ", ingest ASC LIMIT ", q.size, " OFFSET ",
        q.from);
    return {page, absl::StrCat("SELECT COUNT(*) FROM influencers WHERE ", where)};
  }
};

SqliteBaseline& Sqlite() {
  static SqliteBaseline* baseline = new SqliteBaseline();
  return *baseline;
}

void BM_Sqlite(benchmark::State& state) {
  ResolvedQuery query = Resolve(static_cast<int>(state.range(0)));
  SqliteBaseline& sqlite = Sqlite();
  auto [page_sql, count_sql] = sqlite.Sql(query);
  sqlite3_stmt* page = nullptr;
  sqlite3_stmt* count = nullptr;
  sqlite3_prepare_v2(sqlite.db, page_sql.c_str(), -1, &page, nullptr);
  sqlite3_prepare_v2(sqlite.db, count_sql.c_str(), -1, &count, nullptr);
  int64_t matches = 0;
  for (auto _ : state) {
    int rows = 0;
    while (sqlite3_step(page) == SQLITE_ROW) ++rows;
    sqlite3_reset(page);
    if (sqlite3_step(count) == SQLITE_ROW) matches = sqlite3_column_int64(count, 0);
    sqlite3_reset(count);
    benchmark::DoNotOptimize(rows);
  }
  sqlite3_finalize(page);
  sqlite3_finalize(count);
  state.SetLabel(kShapeNames[state.range(0)]);
  state.counters["count"] = static_cast<double>(matches);
}
BENCHMARK(BM_Sqlite)->DenseRange(0, kLastShape)->Unit(benchmark::kMicrosecond);

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

// Takes --records=N and --jobs=J off the command line, then hands the rest
// to Google Benchmark.
int main(int argc, char** argv) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    absl::string_view arg = argv[i];
    uint64_t records = 0;
    int jobs = 0;
    if (absl::ConsumePrefix(&arg, "--records=")) {
      if (!absl::SimpleAtoi(arg, &records) || records == 0) {
        std::fprintf(stderr, "query_bench: --records must be a positive integer\n");
        return 2;
      }
      clout::g_records = records;
    } else if (absl::ConsumePrefix(&arg, "--jobs=")) {
      if (!absl::SimpleAtoi(arg, &jobs) || jobs < 1) {
        std::fprintf(stderr, "query_bench: --jobs must be a positive integer\n");
        return 2;
      }
      clout::g_jobs = jobs;
    } else {
      rest.push_back(argv[i]);
    }
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 2;
  clout::Store();  // load before any timing, and report the load
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
