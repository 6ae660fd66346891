// The executor against the naive reference executor, same store, same run.
// The executor must win by being one pass plus a bounded partial sort; the
// reference materialises and stable-sorts every match.
//
//   bazel run --config=opt //bench:query_bench --
//       --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Data: one generated job of 1,000,000 influencers. The sort-order cache is
// cleared between BM_BuildOrder iterations (single-threaded here).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

#include "benchmark/benchmark.h"
#include "sqlite3.h"
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

// The request shapes of the indexes issue (Q1-Q7); WINDOW is replaced by a
// start/end pair covering the middle 10% of the job's time range.
const char* const kShapes[] = {
    R"({})",
    R"({WINDOW,"exclude_interim":true})",
    R"({"influencer_score":50})",
    R"({"sort":"timestamp","page":{"from":5000,"size":100}})",
    R"({"sort":"influencer_field_value","desc":false})",
    R"({"page":{"from":9900,"size":100}})",
    R"({WINDOW,"influencer_score":30,"sort":"probability","desc":false})",
};
const char* const kShapeNames[] = {
    "Q1 default",         "Q2 window+final",  "Q3 score>=50",
    "Q4 timestamp@5000",  "Q5 value asc",     "Q6 from 9900",
    "Q7 window+score>=30 by probability"};
constexpr int kLastShape = 6;

ResolvedQuery Resolve(int shape) {
  const JobResults& job = *Store().Snapshot()->FindJob("job-0");
  auto [lo, hi] = std::minmax_element(job.columns.timestamp.begin(),
                                      job.columns.timestamp.end());
  const int64_t span = *hi - *lo;
  const std::string window =
      absl::StrCat(R"("start":)", *lo + span / 100 * 45, R"(,"end":)",
                   *lo + span / 100 * 55);
  const std::string body =
      absl::StrReplaceAll(kShapes[shape], {{"WINDOW", window}});
  absl::StatusOr<InfluencersRequest> request = ParseBodyRequest("job-0", body);
  QueryContext context;
  context.now_millis = [] { return int64_t{1454943600000}; };
  absl::StatusOr<ResolvedQuery> query =
      ResolveQuery(*Store().Snapshot(), *request, context);
  if (!query.ok()) std::abort();
  return *query;
}

// The scan strategy: one pass plus a bounded partial sort.
void BM_Executor(benchmark::State& state) {
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

// The order strategy, with the sort order already built (a repeated query).
void BM_ExecutorIndexed(benchmark::State& state) {
  ResolvedQuery query = Resolve(static_cast<int>(state.range(0)));
  ExecuteQuery(query, IndexUse::kAlways);  // builds the order once
  for (auto _ : state) {
    InfluencersPage page = ExecuteQuery(query, IndexUse::kAlways);
    benchmark::DoNotOptimize(page.count);
  }
  state.SetLabel(kShapeNames[state.range(0)]);
}

// Building a sort order from nothing (the first repeated query pays it).
void BM_BuildOrder(benchmark::State& state) {
  ResolvedQuery query = Resolve(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    query.job->sort_orders->orders.clear();
    InfluencersPage page = ExecuteQuery(query, IndexUse::kAlways);
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

BENCHMARK(BM_Executor)->DenseRange(0, kLastShape)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ExecutorIndexed)
    ->DenseRange(0, kLastShape)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_BuildOrder)
    ->Arg(0)
    ->Arg(4)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);
BENCHMARK(BM_Reference)
    ->DenseRange(0, kLastShape)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

// SQLite as the baseline a user would otherwise reach for: the same rows in
// an in-memory database with an index on (job, each sort column), and per
// request the page query plus its count.
struct SqliteBaseline {
  sqlite3* db = nullptr;

  SqliteBaseline() {
    const JobResults& job = *Store().Snapshot()->FindJob("job-0");
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
