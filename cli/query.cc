#include "cli/query.h"

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

namespace clout {

const char kQueryHelp[] = R"(Usage: clout query --job=ID [request] [options] DUMP...

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
)";

const std::vector<std::string> kRequestFlags = {
    "job", "body", "body_file", "start", "end", "from", "size", "sort",
    "desc", "exclude_interim", "influencer_score"};

namespace {

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

}  // namespace

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
  StoreOptions store_options;
  if (int code = StoreOptionsFromFlags(given, &store_options); code != kOk) {
    return code;
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
  if (int code = LoadDumps(dumps, store_options,
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

}  // namespace clout
