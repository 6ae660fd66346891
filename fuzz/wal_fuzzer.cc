// libFuzzer target: the write-ahead log's reader (storage/wal.h) and the
// mutation batch decoder it feeds (DecodeMutationBatch).
//
// Input: byte 0 chooses the mode, the rest is
//   - bit 0 clear: a whole log segment file, as found on disk;
//   - bit 0 set: one record's batch, framed here with a valid header and
//     CRC, so that the decoder sees inputs no checksum stops.
// Bit 1: scan with skip_corrupt. Bit 2 (with bit 0): frame the record in
// log format 2 (24-byte record headers) rather than 1. The corpus holds
// format 2 segments with damage that a later record does or does not say
// was synced (corruption, or a torn tail).
//
// Invariants checked (a failure aborts):
//   - a refused log is a 500 translog_corrupted_exception that names the
//     file, and a refused batch a 400 parse_exception;
//   - what the scan accepts replays into a store: every batch applies in
//     generation order, and every query answers the same through the fast
//     and reference executors afterwards.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "engine/error.h"
#include "engine/store.h"
#include "fuzz/fuzz_util.h"
#include "storage/fault_env.h"
#include "storage/wal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const absl::string_view rest(reinterpret_cast<const char*>(data) + 1,
                               size - 1);
  std::string file;
  if (mode & 1) {
    // A valid segment header and one record framing `rest`: format
    // version 1 (16-byte record headers) or 2 (24, with `synced` zero).
    const bool v2 = mode & 4;
    file = std::string(v2 ? "CLOUTWAL\x02\0\0\0\0\0\0\0"
                          : "CLOUTWAL\x01\0\0\0\0\0\0\0",
                       16);
    std::string record(v2 ? 24 : 16, '\0');
    const uint32_t length = static_cast<uint32_t>(rest.size());
    const uint64_t generation = 1;
    std::memcpy(record.data() + 4, &length, 4);
    std::memcpy(record.data() + 8, &generation, 8);
    record.append(rest.data(), rest.size());
    const uint32_t crc = static_cast<uint32_t>(
        crc32(0, reinterpret_cast<const Bytef*>(record.data() + 4),
              static_cast<uInt>(record.size() - 4)));
    std::memcpy(record.data(), &crc, 4);
    file += record;
    absl::StatusOr<clout::MutationBatch> batch =
        clout::DecodeMutationBatch(rest);
    if (!batch.ok()) {
      CLOUT_FUZZ_CHECK(clout::ErrorTypeOf(batch.status()) == "parse_exception",
                       "decode error type");
    }
  } else {
    file = std::string(rest);
  }
  clout::FaultEnv env;
  if (!env.CreateDir("/log").ok()) abort();
  const std::string path = "/log/wal-00000000000000000001.log";
  if (!env.WriteFile(path, file).ok()) abort();
  clout::LogOptions options;
  options.env = &env;
  options.dir = "/log";
  absl::StatusOr<clout::LogScan> scan = clout::ScanLog(options, mode & 2);
  if (!scan.ok()) {
    CLOUT_FUZZ_CHECK(
        clout::ErrorTypeOf(scan.status()) == "translog_corrupted_exception",
        "scan error type");
    CLOUT_FUZZ_CHECK(absl::StrContains(scan.status().message(), path),
                     "the error names the file");
    return 0;
  }
  clout::StoreOptions store_options;
  store_options.now_millis = [] { return clout_fuzz::kNowMillis; };
  clout::InfluencerStore store(store_options);
  uint64_t expected = 1;
  absl::Status replayed = clout::ReplayLog(
      options, *scan, 0,
      [&](uint64_t generation, clout::MutationBatch batch) -> absl::Status {
        CLOUT_FUZZ_CHECK(generation == expected++, "generation order");
        // A batch the decoder accepts may still be one a store refuses as
        // a whole (a kLoad batch deleting an unknown job): never a crash.
        store.Apply(std::move(batch)).IgnoreError();
        return absl::OkStatus();
      });
  if (!replayed.ok()) {
    CLOUT_FUZZ_CHECK(clout::ErrorTypeOf(replayed) ==
                         "translog_corrupted_exception",
                     "replay error type");
  }
  const std::shared_ptr<const clout::StoreVersion> current = store.Current();
  for (const auto& [job_id, job] : current->jobs) {
    clout::InfluencersRequest query;
    query.job_id = job_id;
    query.size = 5;
    clout_fuzz::RunQuery(store, query, clout_fuzz::IsValidUtf8(job_id));
  }
  return 0;
}
