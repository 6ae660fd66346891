#include "cli/stats.h"

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
#include "engine/build_info.h"

namespace clout {

const char kStatsHelp[] = R"(Usage: clout stats [--format=text|json] [--lenient] [--load_threads=N] DUMP...

Per job: influencer count, time range, bucket spans, interim count,
influencer field names with their distinct values, the top 5 influencers.
Then skipped result types, memory per influencer and load throughput,
with a warning when this build parses with simdjson's slow portable kernel
(see clout version). --load_threads=N parses each NDJSON dump on N threads
(default 0: one per core, at most 8). Dumps may be gzip- or
zstd-compressed.

Example:
  clout stats data/it_ops_new_kpi.ndjson
)";

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

}  // namespace clout
