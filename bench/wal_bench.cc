// Recovery of the write-ahead log: how long OpenDurableStore takes to scan
// and replay a log of at least --log_mib MiB of `_bulk` batches of 1,000
// documents, on the disk of --dir, and where the time goes (scan and
// checksums, decoding, applying). Medians of --repeat runs.
//
//   bazel run --config=opt //bench:wal_bench -- --dir=/tmp/clout-wal-bench
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "engine/bulk.h"
#include "engine/mutation.h"
#include "engine/store.h"
#include "storage/wal.h"
#include "tools/generator.h"

ABSL_FLAG(std::string, dir, "/tmp/clout-wal-bench", "directory of the log");
ABSL_FLAG(int, log_mib, 256, "size of the log to recover");
ABSL_FLAG(int, repeat, 3, "runs per figure");
ABSL_FLAG(bool, reuse, false,
          "recover the log --dir holds from an earlier --keep run");
ABSL_FLAG(bool, keep, false, "leave the log in --dir");

namespace clout {
namespace {

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

// CPU seconds (user + system) of the whole process so far: on a shared
// machine, a steadier figure than the wall clock.
double CpuSeconds() {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) /
             1e6;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Writes a log of --log_mib MiB into log.dir (emptied first).
bool Fill(const LogOptions& log) {
  const std::string& dir = log.dir;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  // 1,000 bodies of 1,000 documents (1M results of one job), as _bulk.
  GeneratorOptions generator;
  generator.records = 1000000;
  const std::string dump = GenerateDumpString(generator);
  std::vector<std::string> bodies(1);
  size_t docs = 0;
  for (size_t pos = 0; pos < dump.size();) {
    size_t end = dump.find('\n', pos);
    if (end == std::string::npos) end = dump.size();
    if (docs == 1000) {
      bodies.emplace_back();
      docs = 0;
    }
    absl::StrAppend(&bodies.back(),
                    "{\"index\":{\"_index\":\".ml-anomalies-shared\"}}\n",
                    absl::string_view(dump).substr(pos, end - pos), "\n");
    ++docs;
    pos = end + 1;
  }
  {
    absl::StatusOr<DurableStore> durable = OpenDurableStore(log, false, {});
    if (!durable.ok()) {
      std::fprintf(stderr, "%s\n", durable.status().ToString().c_str());
      return false;
    }
    const uint64_t target = static_cast<uint64_t>(absl::GetFlag(FLAGS_log_mib)) << 20;
    for (size_t i = 0; durable->log->stats().log_bytes < target; ++i) {
      absl::StatusOr<BulkRequest> request =
          ParseBulkRequest(bodies[i % bodies.size()], {});
      if (!request.ok() || !durable->store->Apply(std::move(request->batch)).ok()) {
        std::fprintf(stderr, "fill failed\n");
        return false;
      }
    }
    if (!durable->log->Sync().ok()) return false;
    const LogStats stats = durable->log->stats();
    std::printf("log: %.1f MiB in %llu segments, %llu batches of 1,000 documents\n",
                static_cast<double>(stats.log_bytes) / (1 << 20),
                static_cast<unsigned long long>(stats.segments),
                static_cast<unsigned long long>(stats.appends));
  }
  return true;
}

int Main() {
  const std::string dir = absl::GetFlag(FLAGS_dir);
  LogOptions log;
  log.dir = dir;
  log.durability = Durability::kAsync;  // filling fast; recovery is the figure
  if (!absl::GetFlag(FLAGS_reuse) && !Fill(log)) return 1;
  std::vector<double> scan_s, decode_s, open_s, cpu_s;
  for (int r = 0; r < absl::GetFlag(FLAGS_repeat); ++r) {
    auto start = std::chrono::steady_clock::now();
    absl::StatusOr<LogScan> scan = ScanLog(log, false);
    if (!scan.ok()) return 1;
    scan_s.push_back(Seconds(start));
    start = std::chrono::steady_clock::now();
    size_t ops = 0;
    if (!ReplayLog(log, *scan, 0, [&](uint64_t, MutationBatch batch) {
           ops += batch.operations();
           return absl::OkStatus();
         }).ok()) {
      return 1;
    }
    decode_s.push_back(Seconds(start));
    start = std::chrono::steady_clock::now();
    const double cpu_start = CpuSeconds();
    StoreOptions store_options;
    if (getenv("RATIO")) store_options.merge_ratio = atof(getenv("RATIO"));
    if (getenv("DELTAS")) store_options.max_delta_segments = atoi(getenv("DELTAS"));
    absl::StatusOr<DurableStore> durable = OpenDurableStore(log, false, store_options);
    if (!durable.ok()) return 1;
    open_s.push_back(Seconds(start));
    cpu_s.push_back(CpuSeconds() - cpu_start);
    std::printf("run %d: scan %.3f s, scan+read+decode %.3f s, recovery %.3f s "
                "(CPU %.3f s; %zu operations, generation %llu)\n",
                r, scan_s.back(), decode_s.back(), open_s.back(), cpu_s.back(),
                ops,
                static_cast<unsigned long long>(
                    durable->store->Current()->generation));
  }
  std::printf("median: scan %.3f s, read+decode %.3f s, recovery (all) %.3f s "
              "(CPU %.3f s)\n",
              Median(scan_s), Median(decode_s), Median(open_s), Median(cpu_s));
  if (!absl::GetFlag(FLAGS_keep)) std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace clout

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return clout::Main();
}
