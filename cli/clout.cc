// clout: Get Influencers over result dumps, from the shell.
//
//   clout query --job=ID [request] DUMP...   the API response for one request
//   clout stats DUMP...                       what a dump holds
//   clout generate --records=N ...            a synthetic dump
//   clout bench --queries=FILE DUMP...        queries per second on your data
//   clout serve [--port=N] [DUMP...]          the REST API over HTTP
//   clout snapshot --output=FILE DUMP...      dumps into one snapshot file
//
// Exit codes: 0 success, 1 load or I/O failure, 2 invalid request or usage,
// 3 unknown job. Errors go to stderr as one line of Elasticsearch's error
// envelope; stdout then stays empty.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/common.h"
#include "cli/serve.h"
#include "cli/snapshot.h"
#include "engine/build_info.h"
#include "engine/dates.h"
#include "engine/error.h"
#include "tools/compress.h"
#include "tools/generator.h"
#include "engine/java_format.h"
#include "engine/loader.h"
#include "engine/request.h"
#include "engine/response.h"
#include "engine/store.h"
#include "simdjson.h"

// Request flags are strings passed through verbatim to the parameter-mode
// parser, so they behave exactly as the REST parameters (`--desc` alone is
// `?desc`, which means true).
ABSL_FLAG(std::string, job, "", "job id to query");
ABSL_FLAG(std::string, body, "", "request body (JSON), body mode");
ABSL_FLAG(std::string, body_file, "", "file holding the request body");
ABSL_FLAG(std::string, start, "", "keep timestamp >= start");
ABSL_FLAG(std::string, end, "", "keep timestamp < end");
ABSL_FLAG(std::string, from, "", "skip this many matches");
ABSL_FLAG(std::string, size, "", "return at most this many");
ABSL_FLAG(std::string, sort, "", "field to sort on");
ABSL_FLAG(std::string, desc, "", "descending order (true|false)");
ABSL_FLAG(std::string, exclude_interim, "", "drop interim results");
ABSL_FLAG(std::string, influencer_score, "", "keep influencer_score >= this");
ABSL_FLAG(bool, pretty, false, "indent the JSON response");
ABSL_FLAG(bool, human, false, "add timestamp_string to each influencer");
ABSL_FLAG(std::string, format, "", "output format");
ABSL_FLAG(bool, lenient, false, "skip bad documents instead of failing");
ABSL_FLAG(uint64_t, records, 1000, "influencer results to generate");
ABSL_FLAG(int, jobs, 1, "jobs to generate");
ABSL_FLAG(uint64_t, seed, 1, "generator seed");
ABSL_FLAG(bool, mixed, false, "interleave other result types, ISO timestamps");
ABSL_FLAG(std::string, output, "", "output file (default: stdout)");
ABSL_FLAG(std::string, compress, "", "compress the generated dump: gzip or zstd");
ABSL_FLAG(std::string, queries, "", "NDJSON file of requests");
ABSL_FLAG(int, repeat, 100, "times each thread runs each request");
ABSL_FLAG(int, threads, 1, "threads running requests concurrently");
ABSL_FLAG(int, load_threads, 0,
          "threads parsing each NDJSON dump (0: one per core, at most 8)");
ABSL_FLAG(std::string, now, "", "fix \"now\" for date math (ISO 8601 or epoch ms)");

namespace clout {
namespace {

struct Command {
  const char* name;
  const char* summary;
  const char* help;
  std::vector<std::string> flags;
};

const std::vector<std::string> kRequestFlags = {
    "job", "body", "body_file", "start", "end", "from", "size", "sort",
    "desc", "exclude_interim", "influencer_score"};

const std::vector<Command>& Commands() {
  static const std::vector<Command> commands = {
      {"query", "print the Get Influencers response for one request",
       R"(Usage: clout query --job=ID [request] [options] DUMP...

Loads the dumps (in the order given; "-" reads stdin) and prints the exact
response of GET _ml/anomaly_detectors/ID/results/influencers.

The request is either a JSON body (body mode) or flat flags (parameter
mode), never both:
  --body='{"sort":"timestamp","page":{"size":5}}'   or --body_file=FILE
                             (an empty body is no body, as in Elasticsearch:
                             the defaults)
  --start=T --end=T          time range; T is epoch ms, ISO 8601 or date
                             math (now-1d, now/d, 2016-06-01||+1h)
  --from=N --size=N          paging (defaults 0 and 100)
  --sort=FIELD               influencer_score (default), timestamp,
                             probability, influencer_field_value, a field
                             name such as kpi_indicator, ...
  --desc[=true|false]        descending (default true)
  --exclude_interim[=true|false]
  --influencer_score=X       keep influencer_score >= X

Options:
  --pretty                   indent the JSON
  --human                    add timestamp_string to each influencer
  --format=json|ndjson|csv|table
                             json: the API response (default); ndjson: one
                             influencer per line; csv: a header and rows;
                             table: aligned columns for people
  --lenient                  skip bad documents (counted on stderr)
  --load_threads=N           threads parsing each NDJSON dump (default 0:
                             one per core, at most 8; 1: no parallel parsing)
  --now=T                    fix "now" for date math

Examples:
  clout query --job=it_ops_new_kpi --body='{"sort":"influencer_score","desc":true}' data/it_ops_new_kpi.ndjson
  clout query --job=it_ops_new_kpi --sort=timestamp --desc=false --size=5 --format=table data/it_ops_new_kpi.ndjson
  zcat dump.ndjson.gz | clout query --job=web --start=now-1d --influencer_score=50 -

Exit codes: 0 success, 1 load or I/O failure, 2 invalid request or usage,
3 unknown job. Errors are one line of Elasticsearch's error JSON on stderr.
)",
       {"job", "body", "body_file", "start", "end", "from", "size", "sort",
        "desc", "exclude_interim", "influencer_score", "pretty", "human",
        "format", "lenient", "load_threads", "now"}},
      {"stats", "summarise what dumps hold, per job",
       R"(Usage: clout stats [--format=text|json] [--lenient] [--load_threads=N] DUMP...

Per job: influencer count, time range, bucket spans, interim count,
influencer field names with their distinct values, the top 5 influencers.
Then skipped result types, memory per influencer and load throughput,
with a warning when this build parses with simdjson's slow portable kernel
(see clout version). --load_threads=N parses each NDJSON dump on N threads
(default 0: one per core, at most 8). Dumps may be gzip- or
zstd-compressed.

Example:
  clout stats data/it_ops_new_kpi.ndjson
)",
       {"format", "lenient", "load_threads"}},
      {"generate", "write a deterministic synthetic dump",
       R"(Usage: clout generate [--records=N] [--jobs=J] [--seed=S] [--mixed] [--compress=gzip|zstd] [--output=F]

Writes NDJSON result documents: N influencer results (default 1000) over J
jobs (default 1; at most N), the same bytes for the same flags (--seed
default 1). --mixed interleaves bucket and record results and some ISO 8601
timestamps. --compress writes the dump gzip- or zstd-compressed (every
command reads either, recognised by its content). Without --output, the
dump goes to stdout.

Examples:
  clout generate --records=1000000 --jobs=4 --output=/tmp/1m.ndjson
  clout generate --records=1000000 --compress=zstd --output=/tmp/1m.ndjson.zst
)",
       {"records", "jobs", "seed", "mixed", "compress", "output"}},
      {"bench", "measure load throughput and queries per second",
       R"(Usage: clout bench --queries=FILE [--repeat=R] [--threads=T] [--format=text|json] DUMP...

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
count, p50 and p99 latency (microseconds) and QPS, then the total QPS.
--format=json prints one line:
  {"load":{"bytes":B,"seconds":S,"influencers":N},"queries":[{"name":..,"count":..,"p50_us":..,"p99_us":..,"qps":..}],"qps":Q}

Example:
  clout generate --records=1000000 --jobs=4 --output=/tmp/1m.ndjson
  clout bench --queries=bench/queries.ndjson --threads=2 /tmp/1m.ndjson
)",
       {"queries", "repeat", "threads", "format", "lenient", "load_threads",
        "now"}},
      {"serve", "serve Elasticsearch's REST API for influencers over HTTP",
       kServeHelp, ServeFlags()},
      {"snapshot", "write dumps as one snapshot file that opens fast",
       kSnapshotHelp, {"output", "lenient", "load_threads"}},
  };
  return commands;
}

void PrintMainHelp(std::FILE* out) {
  std::fprintf(out,
               "clout: Elasticsearch's Get Influencers over result dumps, in "
               "memory.\n\nUsage: clout <command> [flags] [DUMP...]\n\n"
               "Commands:\n");
  for (const Command& c : Commands()) {
    std::fprintf(out, "  %-9s %s\n", c.name, c.summary);
  }
  std::fprintf(out,
               "  version   the version, the build and simdjson's parsing "
               "kernel (also --version)\n");
  std::fprintf(out,
               "  help      this text; `clout help <command>` or `clout "
               "<command> --help` for one\n\nExample:\n  clout query "
               "--job=it_ops_new_kpi --pretty data/it_ops_new_kpi.ndjson\n");
}

// After an unknown job's error, for a person at a terminal only (stderr
// stays one line of the error envelope for programs): the jobs the dumps
// do hold, and documents skipped for having no result_type, whose job
// ids are not read (such as influencer documents wrapped in another
// object).
void HintAtJobs(const Loaded& loaded) {
  if (!isatty(2)) return;
  std::vector<std::string> jobs;
  uint64_t untyped = 0;
  for (const LoadReport& report : loaded.reports) {
    for (const std::string& job : report.jobs) {
      if (std::find(jobs.begin(), jobs.end(), job) == jobs.end()) {
        jobs.push_back(job);
      }
    }
    if (auto it = report.skipped.find("(none)"); it != report.skipped.end()) {
      untyped += it->second;
    }
  }
  constexpr size_t kShown = 10;
  std::string hint = "hint: ";
  if (jobs.empty()) {
    absl::StrAppend(&hint, "the dumps hold no job");
  } else {
    absl::StrAppend(&hint, "the dumps hold ", jobs.size(),
                    jobs.size() == 1 ? " job: " : " jobs: ");
    for (size_t i = 0; i < jobs.size() && i < kShown; ++i) {
      absl::StrAppend(&hint, i ? ", " : "", jobs[i]);
    }
    if (jobs.size() > kShown) absl::StrAppend(&hint, ", ...");
  }
  if (untyped > 0) {
    absl::StrAppend(&hint, "; ", untyped,
                    " documents without a result_type were skipped (only "
                    "\"result_type\":\"influencer\" documents are results)");
  }
  std::fprintf(stderr, "%s\n", hint.c_str());
}

// `s` for a line of text output: control characters (a newline in a
// value would forge a line) written as \n, \t or \xNN.
std::string Printable(absl::string_view s) {
  std::string out;
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

absl::StatusOr<int64_t> ParseNow(const std::string& text) {
  absl::StatusOr<int64_t> t = ParseIsoDate(text);
  if (!t.ok()) t = ParseEpochMillis(text);
  if (!t.ok()) {
    return EsError(400, "illegal_argument_exception",
                   absl::StrCat("--now: cannot parse [", text,
                                "] as ISO 8601 or epoch milliseconds"));
  }
  return t;
}

int ExitCodeFor(const absl::Status& status) {
  return HttpStatusOf(status) == 404 ? kUnknownJob : kUsage;
}

StoreOptions StoreOptionsFromFlags(int64_t now_millis, bool fixed_now) {
  StoreOptions options;
  if (fixed_now) options.now_millis = [now_millis] { return now_millis; };
  return options;
}

std::string ReadWholeFile(const std::string& path, bool* ok) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    *ok = false;  // a directory opens, but reads as nothing
    return "";
  }
  std::ifstream in(path, std::ios::binary);
  *ok = static_cast<bool>(in);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string CsvField(absl::string_view s) {
  if (s.find_first_of(",\"\n\r") == absl::string_view::npos) {
    return std::string(s);
  }
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

void PrintTable(const InfluencersPage& page, int64_t from) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"#", "timestamp", "field", "value", "score", "initial",
                  "probability", "span", "interim"});
  int64_t n = from;
  for (const Influencer& i : page.influencers) {
    rows.push_back({absl::StrCat(++n), FormatIsoMillis(i.timestamp),
                    std::string(i.influencer_field_name),
                    std::string(i.influencer_field_value),
                    JavaDoubleToString(i.influencer_score),
                    JavaDoubleToString(i.initial_influencer_score),
                    JavaDoubleToString(i.probability),
                    absl::StrCat(i.bucket_span),
                    i.is_interim ? "yes" : "no"});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) {
      width[c] = std::max(width[c], row[c].size());
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      bool numeric = c == 0 || (c >= 4 && c <= 7);
      std::string pad(width[c] - row[c].size(), ' ');
      line += numeric ? pad + row[c] : row[c] + pad;
      if (c + 1 < row.size()) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::printf("%s\n", line.c_str());
  }
  std::printf("%zu of %lld influencers\n", page.influencers.size(),
              static_cast<long long>(page.count));
}

int RunQuery(const std::vector<std::string>& dumps,
             const std::set<std::string>& given) {
  const std::string format =
      absl::GetFlag(FLAGS_format).empty() ? "json" : absl::GetFlag(FLAGS_format);
  if (format != "json" && format != "ndjson" && format != "csv" &&
      format != "table") {
    return UsageError(absl::StrCat("--format must be json, ndjson, csv or "
                                   "table, not [", format, "]"));
  }
  if (!given.count("job")) return UsageError("--job is required");
  const std::string job = absl::GetFlag(FLAGS_job);
  const bool body_mode = given.count("body") || given.count("body_file");
  if (given.count("body") && given.count("body_file")) {
    return UsageError("give the body with --body or --body_file, not both");
  }
  std::vector<std::string> param_flags;
  for (const std::string& f : kRequestFlags) {
    if (f != "job" && f != "body" && f != "body_file" && given.count(f)) {
      param_flags.push_back("--" + f);
    }
  }
  if (body_mode && !param_flags.empty()) {
    return UsageError(absl::StrCat(
        "a request is a body or parameters, not both: drop ",
        absl::StrJoin(param_flags, ", "), " or put them in the body"));
  }
  int64_t now = 0;
  if (given.count("now")) {
    absl::StatusOr<int64_t> t = ParseNow(absl::GetFlag(FLAGS_now));
    if (!t.ok()) return Fail(t.status(), kUsage);
    now = *t;
  }

  OutputOptions output;
  absl::StatusOr<InfluencersRequest> request;
  if (body_mode) {
    std::string body = absl::GetFlag(FLAGS_body);
    if (given.count("body_file")) {
      bool ok = false;
      std::string path = ResolvePath(absl::GetFlag(FLAGS_body_file));
      body = ReadWholeFile(path, &ok);
      if (!ok) {
        return Fail(EsError(500, "io_exception",
                            absl::StrCat(path, ": cannot read the body file")),
                    kLoadFailure);
      }
    }
    // Elasticsearch takes a request without content (zero bytes) for one
    // without a body: parameter mode, here with no parameters.
    request = body.empty() ? ParseParamRequest(job, {}) : ParseBodyRequest(job, body);
  } else {
    std::vector<RequestParam> params;
    auto add = [&](const char* name, const std::string& value) {
      if (given.count(name)) params.emplace_back(name, value);
    };
    add("start", absl::GetFlag(FLAGS_start));
    add("end", absl::GetFlag(FLAGS_end));
    add("from", absl::GetFlag(FLAGS_from));
    add("size", absl::GetFlag(FLAGS_size));
    add("sort", absl::GetFlag(FLAGS_sort));
    add("desc", absl::GetFlag(FLAGS_desc));
    add("exclude_interim", absl::GetFlag(FLAGS_exclude_interim));
    add("influencer_score", absl::GetFlag(FLAGS_influencer_score));
    request = ParseParamRequest(job, params, &output);
  }
  output.pretty = absl::GetFlag(FLAGS_pretty);
  output.human = absl::GetFlag(FLAGS_human);
  // A malformed request is rejected before any dump is read.
  if (!request.ok()) return Fail(request.status(), kUsage);

  Loaded loaded;
  if (int code = LoadDumps(dumps, StoreOptionsFromFlags(now, given.count("now")),
                           absl::GetFlag(FLAGS_lenient),
                           absl::GetFlag(FLAGS_load_threads), &loaded);
      code != kOk) {
    return code;
  }
  absl::StatusOr<InfluencersPage> page = loaded.store->GetInfluencers(*request);
  if (!page.ok()) {
    const int code = Fail(page.status(), ExitCodeFor(page.status()));
    if (code == kUnknownJob) HintAtJobs(loaded);
    return code;
  }

  std::string out;
  if (format == "json") {
    AppendInfluencersJson(*page, output, &out);
    out.push_back('\n');
  } else if (format == "ndjson") {
    for (const Influencer& i : page->influencers) {
      AppendInfluencerJson(i, output.human, &out);
      out.push_back('\n');
    }
  } else if (format == "csv") {
    out = "job_id,result_type,influencer_field_name,influencer_field_value,"
          "influencer_score,initial_influencer_score,probability,bucket_span,"
          "is_interim,timestamp\n";
    for (const Influencer& i : page->influencers) {
      absl::StrAppend(&out, CsvField(i.job_id), ",influencer,",
                      CsvField(i.influencer_field_name), ",",
                      CsvField(i.influencer_field_value), ",",
                      JavaDoubleToString(i.influencer_score), ",",
                      JavaDoubleToString(i.initial_influencer_score), ",",
                      JavaDoubleToString(i.probability), ",", i.bucket_span,
                      ",", i.is_interim ? "true" : "false", ",", i.timestamp,
                      "\n");
    }
  } else {
    PrintTable(*page, request->from);
    return kOk;
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kOk;
}

int RunStats(const std::vector<std::string>& dumps) {
  const std::string format =
      absl::GetFlag(FLAGS_format).empty() ? "text" : absl::GetFlag(FLAGS_format);
  if (format != "text" && format != "json") {
    return UsageError(absl::StrCat("--format must be text or json, not [",
                                   format, "]"));
  }
  Loaded loaded;
  if (int code = LoadDumps(dumps, StoreOptions(), absl::GetFlag(FLAGS_lenient),
                           absl::GetFlag(FLAGS_load_threads), &loaded);
      code != kOk) {
    return code;
  }
  std::shared_ptr<const StoreVersion> snapshot = loaded.store->Current();
  std::vector<std::string> job_ids;
  for (const auto& [id, job] : snapshot->jobs) job_ids.push_back(id);
  std::sort(job_ids.begin(), job_ids.end());
  std::map<std::string, uint64_t> skipped;
  uint64_t documents = 0;
  uint64_t replaced = 0, deleted = 0, unchanged = 0, rows = 0;
  for (const LoadReport& r : loaded.reports) {
    documents += r.documents;
    replaced += r.replaced;
    deleted += r.deleted;
    unchanged += r.unchanged;
    for (const auto& [type, n] : r.skipped) skipped[type] += n;
  }
  for (const auto& [id, job] : snapshot->jobs) rows += job->size();
  uint64_t column_bytes = 0;
  uint64_t string_bytes = 0;
  std::string json = "{\"jobs\":[";
  std::string text;
  for (size_t j = 0; j < job_ids.size(); ++j) {
    const std::shared_ptr<const JobResults> plain =
        MaterializeJob(snapshot->jobs.at(job_ids[j]));
    const JobResults& job = *plain;
    column_bytes += job.size() * InfluencerColumns::kBytesPerRow;
    for (absl::string_view s : job.strings) string_bytes += s.size();
    int64_t lo = 0, hi = 0;
    if (job.size() > 0) {
      auto [mn, mx] = std::minmax_element(job.columns.timestamp.begin(),
                                          job.columns.timestamp.end());
      lo = *mn;
      hi = *mx;
    }
    // Distinct values per field name.
    std::map<std::string, absl::flat_hash_set<uint32_t>> values;
    for (size_t r = 0; r < job.size(); ++r) {
      values[std::string(job.field_name(r))].insert(
          job.columns.field_value_code[r]);
    }
    // The spans of the rows the job holds (its dictionary may keep spans
    // of results since replaced or deleted).
    std::vector<bool> span_used(job.bucket_spans.size(), false);
    for (uint32_t code : job.columns.bucket_span_code) span_used[code] = true;
    std::vector<int64_t> spans;
    for (size_t c = 0; c < span_used.size(); ++c) {
      if (span_used[c]) spans.push_back(job.bucket_spans[c]);
    }
    std::sort(spans.begin(), spans.end());
    InfluencersRequest top;
    top.job_id = job.job_id;
    top.size = 5;
    absl::StatusOr<InfluencersPage> page = loaded.store->GetInfluencers(top);

    absl::StrAppend(&text, "job ", Printable(job.job_id), "\n  influencers: ", job.size(),
                    " (", job.interim_rows, " interim)\n");
    if (job.size() > 0) {
      absl::StrAppend(&text, "  time range:  ", FormatIsoMillis(lo), " .. ",
                      FormatIsoMillis(hi), "\n  bucket spans: ",
                      absl::StrJoin(spans, ", "), " s\n  fields:\n");
      for (const auto& [name, set] : values) {
        absl::StrAppend(&text, "    ", Printable(name), ": ", set.size(),
                        " distinct values\n");
      }
      absl::StrAppend(&text, "  top influencers:\n");
      if (page.ok()) {
        for (const Influencer& i : page->influencers) {
          absl::StrAppend(&text, "    ", JavaDoubleToString(i.influencer_score),
                          "  ", Printable(i.influencer_field_name), "=",
                          Printable(i.influencer_field_value), "  ",
                          FormatIsoMillis(i.timestamp),
                          i.is_interim ? "  (interim)" : "", "\n");
        }
      }
    }
    if (j > 0) json += ",";
    json += "{\"job_id\":";
    AppendJsonString(job.job_id, &json);
    absl::StrAppend(&json, ",\"influencers\":", job.size(),
                    ",\"interim\":", job.interim_rows);
    if (job.size() > 0) {
      absl::StrAppend(&json, ",\"start\":\"", FormatIsoMillis(lo),
                      "\",\"end\":\"", FormatIsoMillis(hi),
                      "\",\"bucket_spans\":[", absl::StrJoin(spans, ","),
                      "],\"fields\":{");
      bool first = true;
      for (const auto& [name, set] : values) {
        if (!first) json += ",";
        first = false;
        AppendJsonString(name, &json);
        absl::StrAppend(&json, ":", set.size());
      }
      json += "}";
    }
    json += ",\"top\":";
    if (page.ok()) {
      std::string top_json;
      AppendInfluencersJson(*page, OutputOptions(), &top_json);
      // Only the array.
      json += top_json.substr(top_json.find('['),
                              top_json.size() - top_json.find('[') - 1);
    } else {
      json += "[]";
    }
    json += "}";
  }
  const double per_influencer =
      rows ? static_cast<double>(column_bytes + string_bytes) / rows : 0;
  const double mb_per_s =
      loaded.seconds > 0 ? loaded.bytes / 1e6 / loaded.seconds : 0;
  int parse_threads = 1;
  for (const LoadReport& report : loaded.reports) {
    parse_threads = std::max(parse_threads, report.threads);
  }
  const BuildInfo build = GetBuildInfo();
  if (format == "json") {
    json += "],\"skipped\":{";
    bool first = true;
    for (const auto& [type, n] : skipped) {
      if (!first) json += ",";
      first = false;
      AppendJsonString(type, &json);
      absl::StrAppend(&json, ":", n);
    }
    absl::StrAppend(&json, "},\"documents\":", documents,
                    ",\"influencers\":", rows, ",\"added\":",
                    loaded.influencers, ",\"replaced\":", replaced,
                    ",\"deleted\":", deleted, ",\"unchanged\":", unchanged,
                    ",\"bytes_per_influencer\":",
                    absl::StrFormat("%.1f", per_influencer),
                    ",\"load\":{\"bytes\":", loaded.bytes, ",\"seconds\":",
                    absl::StrFormat("%.6f", loaded.seconds),
                    ",\"mb_per_s\":", absl::StrFormat("%.1f", mb_per_s),
                    ",\"parse_threads\":", parse_threads,
                    ",\"parse_kernel\":\"", build.parse_kernel,
                    "\",\"slow_parse_kernel\":",
                    build.slow_parse_kernel ? "true" : "false", "}}\n");
    std::fwrite(json.data(), 1, json.size(), stdout);
    return kOk;
  }
  absl::StrAppend(&text, "skipped result types:");
  if (skipped.empty()) absl::StrAppend(&text, " none");
  for (const auto& [type, n] : skipped) {
    absl::StrAppend(&text, " ", type, "=", n);
  }
  absl::StrAppend(
      &text, "\nmemory: ", absl::StrFormat("%.1f", per_influencer),
      " bytes per influencer (", InfluencerColumns::kBytesPerRow,
      " in columns, the rest dictionary strings)\nresults: ",
      loaded.influencers, " added, ", replaced, " replaced, ", deleted,
      " deleted, ", unchanged, " unchanged (an influencer result is one per "
      "job, time, bucket span, field and value)\nload: ", documents,
      " documents, ", rows, " influencers, ", loaded.bytes,
      " bytes in ", absl::StrFormat("%.3f", loaded.seconds), " s (",
      absl::StrFormat("%.1f", mb_per_s), " MB/s, ", parse_threads,
      parse_threads == 1 ? " parsing thread)\n" : " parsing threads)\n");
  if (build.slow_parse_kernel) {
    // The load figures above are those of a slow build: say so.
    absl::StrAppend(&text, "warning: this clout parses with simdjson's "
                           "portable fallback kernel; this CPU supports ",
                    build.cpu_best_kernel,
                    ", several times faster: build with bazel build "
                    "--config=opt\n");
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  return kOk;
}

int RunGenerate(const std::vector<std::string>& args) {
  if (!args.empty()) {
    return UsageError(absl::StrCat("generate takes no arguments, got [",
                                   args[0], "]"));
  }
  GeneratorOptions options;
  options.records = absl::GetFlag(FLAGS_records);
  options.jobs = absl::GetFlag(FLAGS_jobs);
  options.seed = absl::GetFlag(FLAGS_seed);
  options.mixed = absl::GetFlag(FLAGS_mixed);
  if (options.jobs < 1) return UsageError("--jobs must be at least 1");
  if (static_cast<uint64_t>(options.jobs) > options.records) {
    return UsageError(absl::StrCat("--jobs=", options.jobs, " is more than --records=",
                                   options.records, ": every job needs a result"));
  }
  const std::string compress = absl::GetFlag(FLAGS_compress);
  if (!compress.empty() && compress != "gzip" && compress != "zstd") {
    return UsageError(absl::StrCat("--compress must be gzip or zstd, not [",
                                   compress, "]"));
  }
  std::string path = absl::GetFlag(FLAGS_output);
  std::FILE* out = stdout;
  if (!path.empty()) {
    path = ResolvePath(path);
    out = std::fopen(path.c_str(), "wb");
    if (out == nullptr) {
      return Fail(EsError(500, "io_exception",
                          absl::StrCat(path, ": ", std::strerror(errno))),
                  kLoadFailure);
    }
  }
  bool write_failed = false;
  std::unique_ptr<CompressingWriter> writer;
  if (!compress.empty()) writer = *NewCompressingWriter(compress, out);
  GenerateDump(options, [&](absl::string_view piece) {
    if (write_failed) return;
    if (writer != nullptr) {
      write_failed = !writer->Write(piece).ok();
    } else if (std::fwrite(piece.data(), 1, piece.size(), out) !=
               piece.size()) {
      write_failed = true;
    }
  });
  if (writer != nullptr && !write_failed) write_failed = !writer->Finish().ok();
  if (std::fflush(out) != 0) write_failed = true;
  if (out != stdout && std::fclose(out) != 0) write_failed = true;
  if (write_failed) {
    return Fail(EsError(500, "io_exception",
                        absl::StrCat(path.empty() ? "<stdout>" : path,
                                     ": write failed")),
                kLoadFailure);
  }
  return kOk;
}

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
  int64_t now = 0;
  if (given.count("now")) {
    absl::StatusOr<int64_t> t = ParseNow(absl::GetFlag(FLAGS_now));
    if (!t.ok()) return Fail(t.status(), kUsage);
    now = *t;
  }
  Loaded loaded;
  if (int code = LoadDumps(dumps, StoreOptionsFromFlags(now, given.count("now")),
                           absl::GetFlag(FLAGS_lenient),
                           absl::GetFlag(FLAGS_load_threads), &loaded);
      code != kOk) {
    return code;
  }
  // Check every request once, untimed: a bad one fails the run up front.
  std::vector<int64_t> counts;
  for (const BenchQuery& q : *queries) {
    absl::StatusOr<InfluencersRequest> request =
        ParseBodyRequest(q.job_id, q.body);
    if (!request.ok()) return Fail(At(q.where, request.status()), kUsage);
    absl::StatusOr<InfluencersPage> page =
        loaded.store->GetInfluencers(*request);
    if (!page.ok()) {
      return Fail(At(q.where, page.status()), ExitCodeFor(page.status()));
    }
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
      absl::StrAppend(&json, ",\"count\":", counts[q], ",\"p50_us\":",
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
  std::printf("%-*s %12s %12s %12s %12s\n", static_cast<int>(name_width),
              "name", "count", "p50_us", "p99_us", "qps");
  for (size_t q = 0; q < queries->size(); ++q) {
    std::printf("%-*s %12lld %12.1f %12.1f %12.0f\n",
                static_cast<int>(name_width), (*queries)[q].name.c_str(),
                static_cast<long long>(counts[q]), results[q].p50_us,
                results[q].p99_us, results[q].qps);
  }
  std::printf("total: %.0f queries per second\n", total_qps);
  return kOk;
}

// Which flags the command line names, with bare request booleans rewritten
// to "--desc=" (a present but empty parameter, which means true). Returns an
// error message for a flag the command does not take.
std::string ScanFlags(const Command& command, std::vector<char*>& argv,
                      std::vector<std::string>& storage,
                      std::set<std::string>* given) {
  static const std::set<std::string> kBareBooleans = {"desc",
                                                      "exclude_interim"};
  for (size_t i = 1; i < argv.size(); ++i) {
    std::string arg = argv[i];
    if (arg == "--") break;
    if (arg.size() < 3 || arg[0] != '-' || arg[1] != '-') continue;
    std::string name = arg.substr(2, arg.find('=') - 2);
    bool has_value = arg.find('=') != std::string::npos;
    // absl would exit(1) on a bad value; a usage error is exit code 2.
    static const std::set<std::string> kNumbers = {"records", "jobs", "seed",
                                                   "repeat", "threads", "port",
                                                   "shutdown_grace_seconds",
                                                   "max_content_length",
                                                   "idle_timeout_seconds",
                                                   "request_timeout_seconds",
                                                   "load_threads"};
    static const std::set<std::string> kInts = {"jobs", "repeat", "threads", "port",
                                                "shutdown_grace_seconds",
                                                "idle_timeout_seconds",
                                                "request_timeout_seconds",
                                                "load_threads"};
    static const std::set<std::string> kBools = {"pretty", "human", "lenient",
                                                 "mixed",
                                                 "insecure_listen_anywhere"};
    std::string plain = name;
    // Only boolean flags have a negative form, and it takes no value.
    if (absl::StartsWith(plain, "no") && !has_value &&
        kBools.count(plain.substr(2)) &&
        std::find(command.flags.begin(), command.flags.end(), plain) ==
            command.flags.end()) {
      plain = plain.substr(2);  // --nopretty
    }
    if (std::find(command.flags.begin(), command.flags.end(), plain) ==
        command.flags.end()) {
      std::vector<std::string> candidates(command.flags.begin(),
                                          command.flags.end());
      if (std::string(command.name) == "query") {
        // The flags are the API's parameters: Elasticsearch's words, with
        // its "did you mean" suggestions.
        std::string job = "{job_id}";
        for (size_t j = 1; j < argv.size(); ++j) {
          absl::string_view a = argv[j];
          if (absl::ConsumePrefix(&a, "--job=")) job = std::string(a);
        }
        return UnrecognizedParametersReason(
            absl::StrCat("/_ml/anomaly_detectors/", job,
                         "/results/influencers"),
            {name}, candidates);
      }
      // The same suggestions, as flags: "... -> did you mean [a]?" or
      // "... -> did you mean any of [a, b]?".
      const std::string reason =
          UnrecognizedParametersReason("", {name}, candidates);
      std::string hint;
      if (size_t at = reason.find("did you mean "); at != std::string::npos) {
        absl::string_view names = absl::string_view(reason).substr(at + 13);
        absl::ConsumePrefix(&names, "any of ");
        absl::ConsumePrefix(&names, "[");
        absl::ConsumeSuffix(&names, "?");
        absl::ConsumeSuffix(&names, "]");
        std::vector<std::string> flags;
        for (absl::string_view n : absl::StrSplit(names, ", ")) {
          flags.push_back(absl::StrCat("--", n));
        }
        hint = absl::StrCat(" (did you mean ", absl::StrJoin(flags, " or "), "?)");
      }
      return absl::StrCat("clout ", command.name, " does not take --", name,
                          hint, "; see clout ", command.name, " --help");
    }
    given->insert(plain);
    if (!has_value && !kBools.count(plain) && !kBareBooleans.count(plain) &&
        i + 1 >= argv.size()) {
      return absl::StrCat("--", name, " needs a value");
    }
    std::string value = has_value ? arg.substr(arg.find('=') + 1) : "";
    if (kNumbers.count(plain)) {
      if (!has_value && i + 1 < argv.size()) value = argv[i + 1];
      uint64_t number;
      if (!absl::SimpleAtoi(value, &number) ||
          (kInts.count(plain) && number > 2147483647u)) {
        return absl::StrCat("--", name, " needs a non-negative integer",
                            kInts.count(plain) ? " below 2^31" : "", ", not [",
                            value, "]");
      }
    }
    if (kBools.count(plain) && has_value) {
      static const std::set<std::string> kBoolText = {
          "true", "false", "1", "0", "yes", "no", "t", "f", "y", "n"};
      if (!kBoolText.count(value)) {
        return absl::StrCat("--", name, " is true or false, not [", value,
                            "]");
      }
    }
    if (!has_value && kBareBooleans.count(name)) {
      storage.push_back(arg + "=");
      argv[i] = storage.back().data();
    }
  }
  return "";
}

int Main(int argc, char** argv) {
  if (argc < 2) {
    PrintMainHelp(stderr);
    return kUsage;
  }
  std::string name = argv[1];
  if (name == "version" || name == "--version") {
    std::fputs(BuildInfoText().c_str(), stdout);
    return kOk;
  }
  if (name == "help" || name == "--help" || name == "-h") {
    if (argc >= 3) {
      for (const Command& c : Commands()) {
        if (argv[2] == std::string(c.name)) {
          std::fputs(c.help, stdout);
          return kOk;
        }
      }
      return UsageError(absl::StrCat("no command [", argv[2],
                                     "]: see clout help"));
    }
    PrintMainHelp(stdout);
    return kOk;
  }
  const Command* command = nullptr;
  for (const Command& c : Commands()) {
    if (name == c.name) command = &c;
  }
  if (command == nullptr) {
    // One line of the error envelope, like every other error.
    return UsageError(absl::StrCat("unknown command [", name,
                                   "]: see clout help"));
  }
  std::vector<char*> args(argv + 1, argv + argc);  // argv[0] = the command
  std::vector<std::string> storage;
  storage.reserve(2 * args.size());
  for (size_t i = 1; i < args.size(); ++i) {
    std::string s = args[i];
    if (s == "--") break;  // what follows are file names
    if (s == "-h") s = "--help";
    // absl also takes -flag for --flag: spell it --flag so that every flag
    // is checked here (and so that its errors are usage errors, exit 2).
    if (s.size() >= 2 && s[0] == '-' && absl::ascii_isalpha(s[1])) {
      storage.push_back("-" + s);
      args[i] = storage.back().data();
      s = storage.back();
    }
    if (s == "--help" || s == "--helpfull" || s == "--helpshort") {
      std::fputs(command->help, stdout);
      return kOk;
    }
  }
  std::set<std::string> given;
  std::string error = ScanFlags(*command, args, storage, &given);
  if (!error.empty()) return UsageError(error);
  std::vector<char*> rest =
      absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  std::vector<std::string> positional(rest.begin() + 1, rest.end());
  if (name == "query") return RunQuery(positional, given);
  if (name == "stats") return RunStats(positional);
  if (name == "generate") return RunGenerate(positional);
  if (name == "snapshot") {
    return RunSnapshot(positional, absl::GetFlag(FLAGS_output),
                       absl::GetFlag(FLAGS_lenient),
                       absl::GetFlag(FLAGS_load_threads));
  }
  if (name == "serve") {
    ServeArgs serve;
    serve.dumps = positional;
    serve.threads = given.count("threads") ? absl::GetFlag(FLAGS_threads) : 0;
    serve.lenient = absl::GetFlag(FLAGS_lenient);
    serve.load_threads = absl::GetFlag(FLAGS_load_threads);
    return RunServe(serve);
  }
  return RunBench(positional, given);
}

}  // namespace
}  // namespace clout

int main(int argc, char** argv) { return clout::Main(argc, argv); }
