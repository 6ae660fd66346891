#include "cli/bench.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/common.h"
#include "cli/flags.h"
#include "engine/dates.h"
#include "engine/error.h"
#include "engine/java_format.h"
#include "engine/loader.h"
#include "engine/request.h"
#include "engine/response.h"
#include "engine/store.h"
#include "simdjson.h"

namespace clout {

const char kBenchHelp[] = R"(Usage: clout bench --queries=FILE [--repeat=R] [--threads=T] [--format=text|json] DUMP...

Loads the dumps (--load_threads=N parsing threads per NDJSON dump; default
0: one per core, at most 8; --lenient skips bad documents), then runs each
request of FILE R times (default 100) on each of T threads (default 1).
FILE is NDJSON, one request a line: "job_id", the body keys, and an
optional "name", e.g.
  {"name":"top","job_id":"job-0","page":{"size":100}}
Every request is checked before the dumps are loaded; an error names its
FILE:LINE. --now=T fixes "now" for date math (ISO 8601 or epoch ms).
Each timed request is what a service pays: parsing the request, executing
it and writing the response JSON. Reports the load and, per request, its
count, the latency of its first run (on the fresh store, before any index
later runs build; microseconds), p50 and p99 latency and QPS of the timed
runs, then the total QPS. --format=json prints one line:
  {"load":{"bytes":B,"seconds":S,"influencers":N},"queries":[{"name":..,"count":..,"first_us":..,"p50_us":..,"p99_us":..,"qps":..}],"qps":Q}

Example:
  clout generate --records=1000000 --jobs=4 --output=/tmp/1m.ndjson
  clout bench --queries=bench/queries.ndjson --threads=2 /tmp/1m.ndjson
)";

namespace {

struct BenchQuery {
  std::string name;
  std::string job_id;
  std::string body;
  std::string where;  // FILE:LINE, for messages
};

// `status` with `where` before its reason and its root cause's reason (an
// error about one request of a queries file says which); its caused_by
// chain is kept as it is.
absl::Status At(absl::string_view where, const absl::Status& status) {
  EsErrorInfo e = EsErrorOf(status);
  return WithCausesOf(
      status, EsErrorWithRootCause(e.http_status, e.type,
                                   absl::StrCat(where, ": ", e.reason),
                                   e.root_cause_type,
                                   absl::StrCat(where, ": ",
                                                e.root_cause_reason)));
}

absl::StatusOr<std::vector<BenchQuery>> ReadBenchQueries(
    const std::string& path) {
  bool ok = false;
  std::string text = ReadWholeFile(path, &ok);
  if (!ok) {
    return EsError(500, "io_exception",
                   absl::StrCat(path, ": cannot read the queries file"));
  }
  std::vector<BenchQuery> queries;
  simdjson::ondemand::parser parser;
  int line_no = 0;
  for (absl::string_view raw_line : absl::StrSplit(text, '\n')) {
    ++line_no;
    absl::string_view line = absl::StripAsciiWhitespace(raw_line);
    if (line.empty()) continue;
    auto bad = [&](absl::string_view why) {
      return EsError(400, "x_content_parse_exception",
                     absl::StrCat(path, ":", line_no, ": ", why));
    };
    simdjson::padded_string padded(line.data(), line.size());
    simdjson::ondemand::document doc;
    simdjson::ondemand::object object;
    if (parser.iterate(padded).get(doc) || doc.get_object().get(object)) {
      return bad("expected a JSON object");
    }
    BenchQuery query;
    query.where = absl::StrCat(path, ":", line_no);
    // The request body is the line itself with its name and job_id members
    // blanked out, so that an error's [line:column] points into the file's
    // line (its leading whitespace kept).
    std::string body(line);
    bool has_name = false, has_job_id = false;
    for (auto field : object) {
      const char* key_at = nullptr;
      {
        simdjson::ondemand::raw_json_string raw_key;
        if (field.key().get(raw_key)) return bad("malformed JSON");
        key_at = raw_key.raw() - 1;
      }
      std::string_view key;
      if (field.unescaped_key().get(key)) return bad("malformed JSON");
      // Other members are left to the request parser (on demand skips
      // their values).
      if (key != "name" && key != "job_id") continue;
      bool& seen = key == "name" ? has_name : has_job_id;
      if (seen) return bad(absl::StrCat("duplicate [", std::string(key), "]"));
      seen = true;
      simdjson::ondemand::value value;
      std::string_view given;
      if (field.value().get(value)) return bad("malformed JSON");
      const std::string_view token = value.raw_json_token();
      if (value.get_string().get(given)) {
        return bad(absl::StrCat("[", std::string(key), "] must be a string"));
      }
      (key == "name" ? query.name : query.job_id) = std::string(given);
      // Blank `"key": value` and one comma next to it.
      size_t begin = static_cast<size_t>(key_at - padded.data());
      size_t end = static_cast<size_t>(token.data() + token.size() - padded.data());
      while (end < body.size() && absl::ascii_isspace(body[end])) ++end;
      if (end < body.size() && body[end] == ',') {
        ++end;
      } else {
        size_t before = begin;
        while (before > 0 && absl::ascii_isspace(body[before - 1])) --before;
        if (before > 0 && body[before - 1] == ',') begin = before - 1;
      }
      std::fill(body.begin() + begin, body.begin() + end, ' ');
    }
    const char* after = nullptr;
    if (doc.current_location().get(after) == simdjson::SUCCESS) {
      return bad("more than one JSON value on the line");
    }
    if (query.job_id.empty()) return bad("each request needs a job_id");
    if (query.name.empty()) query.name = absl::StrCat("line", line_no);
    body.insert(0, static_cast<size_t>(line.data() - raw_line.data()), ' ');
    // The request itself is checked now, before any dump is loaded.
    absl::StatusOr<InfluencersRequest> request =
        ParseBodyRequest(query.job_id, body);
    if (!request.ok()) return At(query.where, request.status());
    query.body = std::move(body);
    queries.push_back(std::move(query));
  }
  if (queries.empty()) {
    return EsError(400, "illegal_argument_exception",
                   absl::StrCat(path, ": no requests"));
  }
  return queries;
}

}  // namespace

int RunBench(const std::vector<std::string>& dumps,
             const std::set<std::string>& given) {
  const std::string format =
      absl::GetFlag(FLAGS_format).empty() ? "text" : absl::GetFlag(FLAGS_format);
  if (format != "text" && format != "json") {
    return UsageError(absl::StrCat("--format must be text or json, not [",
                                   format, "]"));
  }
  if (!given.count("queries")) return UsageError("--queries=FILE is required");
  const int repeat = absl::GetFlag(FLAGS_repeat);
  const int threads = absl::GetFlag(FLAGS_threads);
  if (repeat < 1) return UsageError("--repeat must be at least 1");
  if (threads < 1 || threads > 256) {
    return UsageError("--threads must be between 1 and 256");
  }
  absl::StatusOr<std::vector<BenchQuery>> queries =
      ReadBenchQueries(ResolvePath(absl::GetFlag(FLAGS_queries)));
  if (!queries.ok()) {
    return Fail(queries.status(), HttpStatusOf(queries.status()) == 500
                                      ? kLoadFailure
                                      : kUsage);
  }
  StoreOptions store_options;
  if (int code = StoreOptionsFromFlags(given, &store_options); code != kOk) {
    return code;
  }
  Loaded loaded;
  if (int code = LoadDumps(dumps, store_options,
                           absl::GetFlag(FLAGS_lenient),
                           absl::GetFlag(FLAGS_load_threads), &loaded);
      code != kOk) {
    return code;
  }
  // Run every request once before the timed runs: a bad one fails the run
  // up front, and its time is the first query's (on a fresh store, before
  // any index the later runs may build).
  std::vector<int64_t> counts;
  std::vector<double> first_us;
  for (const BenchQuery& q : *queries) {
    auto begin = std::chrono::steady_clock::now();
    absl::StatusOr<InfluencersRequest> request =
        ParseBodyRequest(q.job_id, q.body);
    if (!request.ok()) return Fail(At(q.where, request.status()), kUsage);
    absl::StatusOr<InfluencersPage> page =
        loaded.store->GetInfluencers(*request);
    if (!page.ok()) {
      return Fail(At(q.where, page.status()), ExitCodeFor(page.status()));
    }
    std::string out;
    AppendInfluencersJson(*page, OutputOptions(), &out);
    first_us.push_back(std::chrono::duration<double, std::micro>(
                           std::chrono::steady_clock::now() - begin)
                           .count());
    counts.push_back(page->count);
  }

  struct QueryResult {
    double p50_us = 0, p99_us = 0, qps = 0;
  };
  std::vector<QueryResult> results(queries->size());
  uint64_t total_ops = 0;
  double total_seconds = 0;
  for (size_t q = 0; q < queries->size(); ++q) {
    const BenchQuery& query = (*queries)[q];
    std::vector<std::vector<double>> latencies(threads);
    std::atomic<bool> failed{false};
    auto worker = [&](int t) {
      std::vector<double>& mine = latencies[t];
      mine.reserve(repeat);
      std::string out;
      for (int r = 0; r < repeat; ++r) {
        auto begin = std::chrono::steady_clock::now();
        absl::StatusOr<InfluencersRequest> request =
            ParseBodyRequest(query.job_id, query.body);
        absl::StatusOr<InfluencersPage> page =
            request.ok() ? loaded.store->GetInfluencers(*request)
                         : absl::StatusOr<InfluencersPage>(request.status());
        out.clear();
        if (page.ok()) {
          AppendInfluencersJson(*page, OutputOptions(), &out);
        } else {
          failed = true;
        }
        auto elapsed = std::chrono::steady_clock::now() - begin;
        mine.push_back(
            std::chrono::duration<double, std::micro>(elapsed).count());
      }
    };
    auto wall_begin = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(worker, t);
    worker(0);
    for (std::thread& th : pool) th.join();
    double wall = std::chrono::duration<double>(
                      std::chrono::steady_clock::now() - wall_begin)
                      .count();
    if (failed) {
      return Fail(EsError(500, "exception",
                          absl::StrCat("request [", query.name,
                                       "] failed during the run")),
                  kUsage);
    }
    std::vector<double> all;
    for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
    std::sort(all.begin(), all.end());
    auto quantile = [&](double p) {
      size_t i = static_cast<size_t>(p * (all.size() - 1) + 0.5);
      return all[std::min(i, all.size() - 1)];
    };
    results[q].p50_us = quantile(0.50);
    results[q].p99_us = quantile(0.99);
    results[q].qps = wall > 0 ? all.size() / wall : 0;
    total_ops += all.size();
    total_seconds += wall;
  }
  const double total_qps = total_seconds > 0 ? total_ops / total_seconds : 0;
  if (format == "json") {
    std::string json = absl::StrCat(
        "{\"load\":{\"bytes\":", loaded.bytes, ",\"seconds\":",
        absl::StrFormat("%.6f", loaded.seconds),
        ",\"influencers\":", loaded.influencers, "},\"queries\":[");
    for (size_t q = 0; q < queries->size(); ++q) {
      if (q > 0) json += ",";
      json += "{\"name\":";
      AppendJsonString((*queries)[q].name, &json);
      absl::StrAppend(&json, ",\"count\":", counts[q], ",\"first_us\":",
                      absl::StrFormat("%.3f", first_us[q]), ",\"p50_us\":",
                      absl::StrFormat("%.3f", results[q].p50_us),
                      ",\"p99_us\":",
                      absl::StrFormat("%.3f", results[q].p99_us),
                      ",\"qps\":", absl::StrFormat("%.1f", results[q].qps),
                      "}");
    }
    absl::StrAppend(&json, "],\"qps\":", absl::StrFormat("%.1f", total_qps),
                    "}\n");
    std::fwrite(json.data(), 1, json.size(), stdout);
    return kOk;
  }
  std::printf("load: %llu bytes in %.3f s (%.1f MB/s), %llu influencers\n",
              static_cast<unsigned long long>(loaded.bytes), loaded.seconds,
              loaded.seconds > 0 ? loaded.bytes / 1e6 / loaded.seconds : 0.0,
              static_cast<unsigned long long>(loaded.influencers));
  std::printf("%d thread(s) x %d runs per request\n", threads, repeat);
  size_t name_width = 4;
  for (const BenchQuery& q : *queries) {
    name_width = std::max(name_width, q.name.size());
  }
  std::printf("%-*s %12s %12s %12s %12s %12s\n", static_cast<int>(name_width),
              "name", "count", "first_us", "p50_us", "p99_us", "qps");
  for (size_t q = 0; q < queries->size(); ++q) {
    std::printf("%-*s %12lld %12.1f %12.1f %12.1f %12.0f\n",
                static_cast<int>(name_width), (*queries)[q].name.c_str(),
                static_cast<long long>(counts[q]), first_us[q],
                results[q].p50_us, results[q].p99_us, results[q].qps);
  }
  std::printf("total: %.0f queries per second\n", total_qps);
  return kOk;
}

}  // namespace clout
