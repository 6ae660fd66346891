#include "server/metrics.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/columns.h"

namespace clout {
namespace {

// A label value in the exposition format: backslash, quote and newline
// escaped.
std::string LabelValue(absl::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out.append("\\n");
      continue;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

void ServerMetrics::Record(const RequestRecord& record) {
  const double seconds = static_cast<double>(record.micros) / 1e6;
  const size_t bucket =
      std::lower_bound(kBuckets.begin(), kBuckets.end(), seconds) -
      kBuckets.begin();
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{std::string(EndpointName(record.endpoint)), record.status}];
  ++bucket_counts_[bucket];
  latency_sum_seconds_ += seconds;
  ++latency_count_;
  bulk_items_ += record.bulk_items;
}

std::string ServerMetrics::Render(const InfluencerStore& store,
                                  const LogCounters* log) const {
  std::string out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    out.append(
        "# HELP clout_http_requests_total HTTP requests answered.\n"
        "# TYPE clout_http_requests_total counter\n");
    for (const auto& [key, count] : requests_) {
      absl::StrAppend(&out, "clout_http_requests_total{endpoint=\"", key.first,
                      "\",status=\"", key.second, "\"} ", count, "\n");
    }
    out.append(
        "# HELP clout_http_request_duration_seconds Time from a request read "
        "to its response sent.\n"
        "# TYPE clout_http_request_duration_seconds histogram\n");
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += bucket_counts_[i];
      absl::StrAppend(&out, "clout_http_request_duration_seconds_bucket{le=\"",
                      absl::StrFormat("%g", kBuckets[i]), "\"} ", cumulative,
                      "\n");
    }
    cumulative += bucket_counts_[kBuckets.size()];
    absl::StrAppend(
        &out, "clout_http_request_duration_seconds_bucket{le=\"+Inf\"} ",
        cumulative, "\n", "clout_http_request_duration_seconds_sum ",
        absl::StrFormat("%.6f", latency_sum_seconds_), "\n",
        "clout_http_request_duration_seconds_count ", latency_count_, "\n");
    absl::StrAppend(&out,
                    "# HELP clout_bulk_items_total Items of _bulk requests.\n"
                    "# TYPE clout_bulk_items_total counter\n"
                    "clout_bulk_items_total ",
                    bulk_items_, "\n");
  }
  std::shared_ptr<const StoreVersion> version = store.Current();
  std::vector<std::pair<std::string, size_t>> jobs;
  for (const auto& [job, results] : version->jobs) {
    jobs.emplace_back(job, results == nullptr ? 0 : results->size());
  }
  std::sort(jobs.begin(), jobs.end());
  out.append(
      "# HELP clout_job_results Influencer results held per job.\n"
      "# TYPE clout_job_results gauge\n");
  for (const auto& [job, rows] : jobs) {
    absl::StrAppend(&out, "clout_job_results{job=\"", LabelValue(job), "\"} ",
                    rows, "\n");
  }
  absl::StrAppend(&out,
                  "# HELP clout_store_generation Batches applied to the store.\n"
                  "# TYPE clout_store_generation counter\n"
                  "clout_store_generation ",
                  version->generation, "\n");
  if (log != nullptr) {
    absl::StrAppend(
        &out,
        "# HELP clout_wal_appends_total Batches appended to the write-ahead "
        "log.\n# TYPE clout_wal_appends_total counter\n"
        "clout_wal_appends_total ", log->appends, "\n",
        "# HELP clout_wal_syncs_total fdatasync calls of the write-ahead "
        "log (one per group of batches).\n"
        "# TYPE clout_wal_syncs_total counter\n"
        "clout_wal_syncs_total ", log->syncs, "\n",
        "# HELP clout_wal_bytes_total Bytes appended to the write-ahead "
        "log.\n# TYPE clout_wal_bytes_total counter\n"
        "clout_wal_bytes_total ", log->bytes, "\n",
        "# HELP clout_wal_segments Segment files of the write-ahead log.\n"
        "# TYPE clout_wal_segments gauge\n"
        "clout_wal_segments ", log->segments, "\n",
        "# HELP clout_wal_size_bytes Bytes in the write-ahead log's files.\n"
        "# TYPE clout_wal_size_bytes gauge\n"
        "clout_wal_size_bytes ", log->log_bytes, "\n");
  }
  if (std::FILE* statm = std::fopen("/proc/self/statm", "r")) {
    unsigned long long size = 0, resident = 0;
    if (std::fscanf(statm, "%llu %llu", &size, &resident) == 2) {
      absl::StrAppend(
          &out,
          "# HELP clout_process_resident_bytes Resident memory of the "
          "process.\n# TYPE clout_process_resident_bytes gauge\n"
          "clout_process_resident_bytes ",
          resident * static_cast<unsigned long long>(sysconf(_SC_PAGESIZE)),
          "\n");
    }
    std::fclose(statm);
  }
  return out;
}

}  // namespace clout
