// DataDir: a durable store in a directory: snapshots plus a write-ahead
// log, recovered on open.
//
//   DIR/LOCK        held while open (a second process is refused)
//   DIR/log/        the write-ahead log (wal.h)
//   DIR/snapshots/  segment files and manifests (snapshot.h)
//   DIR/state/      small state of the server (its API keys)
//
// Open restores the newest snapshot, replays the log after it, and hands
// out the store: every batch applied to it is logged before it is
// acknowledged. Snapshot() writes the current version as a snapshot (only
// the segments the last one lacks) and drops the log it covers.
//
// Thread safety: the store is thread-safe; Snapshot() may run from any
// thread, concurrently with writes and queries (it reads one immutable
// version), and Snapshot() calls are serialised.
#ifndef CLOUT_STORAGE_DATA_DIR_H_
#define CLOUT_STORAGE_DATA_DIR_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "engine/store.h"
#include "storage/env.h"
#include "storage/snapshot.h"
#include "storage/wal.h"

namespace clout {

struct DataDirOptions {
  Env* env = Env::Default();
  std::string dir;  // created if missing (not its parents)
  Durability durability = Durability::kRequest;
  // Start despite damage: replay the log up to a corrupt record and set
  // the rest aside (wal.h); leave a corrupt or missing snapshot segment
  // out, losing its rows, and set its file aside (SnapshotDir::Open).
  bool skip_corrupt = false;
  // SnapshotDue() once the log holds more than this.
  uint64_t snapshot_log_bytes = uint64_t{256} << 20;
  StoreOptions store;  // its `log` is set by Open
};

class DataDir {
 public:
  // Creates the directory if missing, locks it, and recovers its store.
  // Returns it, or the error: 500 snapshot_corrupted_exception or
  // translog_corrupted_exception naming the file and offset, an I/O error
  // naming the path, FailedPrecondition if another process holds it.
  static absl::StatusOr<std::unique_ptr<DataDir>> Open(DataDirOptions options);
  ~DataDir();

  InfluencerStore& store() { return *durable_.store; }
  WriteAheadLog& log() { return *durable_.log; }
  // What recovery found in the log (torn tail dropped, damage skipped).
  const LogScan& recovered_log() const { return durable_.scan; }
  // The snapshot's generation recovery started from (0: none).
  uint64_t recovered_snapshot() const { return recovered_snapshot_; }
  // The snapshot segments recovery left out (skip_corrupt), and the files
  // earlier starts set aside; SnapshotDir::skipped/kept_earlier.
  const SnapshotDir& snapshots() const { return *snapshots_; }

  // Writes the store's current version as the newest snapshot, then drops
  // the log segments it covers. On error (disk full, say) the previous
  // snapshot and the whole log stay; writes and queries go on.
  absl::StatusOr<SnapshotStats> Snapshot();

  // Whether the log has grown past options.snapshot_log_bytes.
  bool SnapshotDue() const;

  // Small state kept beside the results (the server's API keys), in
  // DIR/state/<name>: the content last written, or "" if none.
  absl::StatusOr<std::string> ReadState(const std::string& name) const;
  // Replaces DIR/state/<name> durably and atomically (WriteFileDurably).
  // Thread-safe.
  absl::Status WriteState(const std::string& name, absl::string_view data);

 private:
  DataDir() = default;
  DataDirOptions options_;
  std::unique_ptr<FileLock> lock_;
  std::unique_ptr<SnapshotDir> snapshots_;
  DurableStore durable_;
  uint64_t recovered_snapshot_ = 0;
  std::mutex snapshot_mu_;
  std::mutex state_mu_;
};

}  // namespace clout

#endif  // CLOUT_STORAGE_DATA_DIR_H_
