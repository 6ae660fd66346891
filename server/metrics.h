// ServerMetrics: what `GET /_clout/metrics` reports, in Prometheus' text
// exposition format (version 0.0.4).
//
// Thread-safe: Record() is called from every I/O and writer thread.
#ifndef CLOUT_SERVER_METRICS_H_
#define CLOUT_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "engine/store.h"
#include "server/http_server.h"

namespace clout {

// The write-ahead log's counters (storage/wal.h's LogStats), when the
// server has one.
struct LogCounters {
  uint64_t appends = 0;  // batches appended
  uint64_t syncs = 0;    // fdatasync calls
  uint64_t bytes = 0;    // bytes of records appended
  uint64_t segments = 0;
  uint64_t log_bytes = 0;  // bytes in the log's files now
};

class ServerMetrics {
 public:
  // Counts one answered request: by endpoint and status, its latency in
  // the histogram, and its `_bulk` items.
  void Record(const RequestRecord& record);

  // The exposition text: clout_http_requests_total{endpoint,status},
  // clout_http_request_duration_seconds (histogram), clout_bulk_items_total,
  // clout_job_results{job} (live results per job of `store`'s current
  // version), clout_process_resident_bytes (from /proc/self/statm; absent
  // where unreadable), clout_store_generation, and with `log` the log's
  // clout_wal_appends_total, clout_wal_syncs_total, clout_wal_bytes_total,
  // clout_wal_segments and clout_wal_size_bytes.
  std::string Render(const InfluencerStore& store,
                     const LogCounters* log = nullptr) const;

 private:
  // Upper bounds of the latency buckets, in seconds.
  static constexpr std::array<double, 12> kBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
      0.01,   0.025,   0.1,    0.25,  1.0,    10.0};
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::array<uint64_t, kBuckets.size() + 1> bucket_counts_{};
  double latency_sum_seconds_ = 0;
  uint64_t latency_count_ = 0;
  uint64_t bulk_items_ = 0;
};

}  // namespace clout

#endif  // CLOUT_SERVER_METRICS_H_
