// libFuzzer target: the snapshot reader (storage/snapshot.h).
//
// Input: byte 0 chooses the mode, the rest is a snapshot bundle file. With
// bit 0 set, every checksum in it (the bundle's, and those of the files in
// its table that it can find) is recomputed first, so that the checks
// behind the checksums (codes within dictionaries, deleted rows in
// range, summaries that match the rows) see inputs no checksum stops.
//
// Invariants checked (a failure aborts):
//   - a refused file is a 500 snapshot_corrupted_exception, or the 400 of
//     another format version, that names the file;
//   - an accepted one restores into a store on which every query answers
//     the same through the fast and reference executors, and which takes
//     a write.
#include <xxhash.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "engine/error.h"
#include "engine/mutation.h"
#include "engine/store.h"
#include "fuzz/fuzz_util.h"
#include "storage/snapshot.h"

namespace {

// Recomputes the checksums of the file at `at` (header and payload), if
// it has a whole header and a payload that fits.
void FixFile(std::string& bytes, size_t at, size_t size) {
  if (size < 64 || at > bytes.size() || size > bytes.size() - at) return;
  char* p = bytes.data() + at;
  uint64_t payload;
  std::memcpy(&payload, p + 16, 8);
  if (payload > size - 64) return;
  const uint64_t payload_hash = XXH3_64bits(p + 64, payload);
  std::memcpy(p + 24, &payload_hash, 8);
  const uint64_t header_hash = XXH3_64bits(p, 32);
  std::memcpy(p + 32, &header_hash, 8);
}

// The bundle's files first (their hashes are in the bundle's payload),
// then the bundle.
void FixBundle(std::string& bytes) {
  if (bytes.size() < 72) return;
  uint32_t count;
  std::memcpy(&count, bytes.data() + 64, 4);
  for (uint64_t i = 0; i < count && 64 + 8 + 16 * (i + 1) <= bytes.size();
       ++i) {
    uint64_t offset, size;
    std::memcpy(&offset, bytes.data() + 64 + 8 + 16 * i, 8);
    std::memcpy(&size, bytes.data() + 64 + 16 + 16 * i, 8);
    if (offset > bytes.size()) continue;
    FixFile(bytes, 64 + offset, size);
  }
  FixFile(bytes, 0, bytes.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) FixBundle(bytes);
  absl::StatusOr<std::shared_ptr<const clout::StoreVersion>> version =
      clout::ParseSnapshotBundle(bytes, "fuzzed.clout");
  if (!version.ok()) {
    const std::string type = clout::ErrorTypeOf(version.status());
    CLOUT_FUZZ_CHECK(type == "snapshot_corrupted_exception" ||
                         type == "illegal_argument_exception",
                     "error type ", type.c_str());
    CLOUT_FUZZ_CHECK(
        absl::StrContains(version.status().message(), "[fuzzed.clout"),
        "the error names the file");
    return 0;
  }
  clout::StoreOptions options;
  options.now_millis = [] { return clout_fuzz::kNowMillis; };
  clout::InfluencerStore store(options);
  CLOUT_FUZZ_CHECK(store.Restore(*version).ok(), "restore");
  const std::shared_ptr<const clout::StoreVersion> current = store.Current();
  for (const auto& [job_id, job] : current->jobs) {
    for (const char* sort : {"influencer_score", "timestamp"}) {
      clout::InfluencersRequest query;
      query.job_id = job_id;
      query.sort = sort;
      query.size = 5;
      clout_fuzz::RunQuery(store, query, clout_fuzz::IsValidUtf8(job_id));
    }
    // The restored job takes a write (its identity index, its segments).
    clout::MutationBatch batch(clout::MutationMode::kBulk);
    clout::InfluencerFields row;
    row.field_name = "host";
    row.field_value = "fuzz";
    row.timestamp = clout_fuzz::kNowMillis;
    batch.AddInfluencer(job_id, row);
    CLOUT_FUZZ_CHECK(store.Apply(std::move(batch)).ok(), "a write");
  }
  return 0;
}
