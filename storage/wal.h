// The write-ahead log: every mutation batch a store applies, in generation
// order, durable before the store makes it visible (mutation.h's
// MutationLog).
//
// A log is a directory of segment files `wal-<first generation>.log`, each
// a 16-byte header ("CLOUTWAL", format version 2, zero) and then records:
//
//   u32 crc32 | u32 length | u64 generation | u64 synced | length bytes of batch
//
// little-endian, where the CRC (zlib's crc32) covers everything after
// itself: length, generation, synced and the batch in
// EncodeMutationBatch's form. `synced` is how many bytes of the segment
// had been synced when the record was appended. Version 1 segments (the
// same without `synced`) are still read. A new segment starts once the
// current one passes LogOptions::segment_bytes; a segment is removed once
// a snapshot covers it (DropThrough).
//
// Recovery (ScanLog, then ReplayLog): every record of every segment is
// checked. A crash loses what was not synced, and not always as a prefix:
// pages of the unsynced end may be lost (read back as zeros or old bytes)
// while later ones are kept. So a bad record of the last segment is taken
// as torn, and it and everything after it dropped with a warning and the
// segment cut there, when the file ends inside it, when nothing but zeros
// follows it, when (version 1) it ends where the file does, or (version 2)
// when no good record after it, of a later generation, says the log was
// synced past it; the bytes cut off, unless all zeros, are kept first in
// `<segment>.torn` (if there is room). Any other bad record lies in bytes
// that were synced, and is corruption: an error naming the file and the
// offset, or, with skip_corrupt, the replay stops before it and that
// segment and every later one are renamed aside (`.corrupt`). The one case
// this cannot tell apart: damage to the records of the last sync when no
// record was appended after it reads as torn (their bytes are in the
// `.torn` file).
//
// Thread safety: a WriteAheadLog is used by one store's writer thread
// (Append, WaitDurable) while any thread reads stats(); its own
// background thread syncs under kAsync.
#ifndef CLOUT_STORAGE_WAL_H_
#define CLOUT_STORAGE_WAL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/mutation.h"
#include "engine/store.h"
#include "storage/env.h"

namespace clout {

enum class Durability {
  // A batch is acknowledged once it is synced to disk (fdatasync); batches
  // waiting together share one sync.
  kRequest,
  // Batches are acknowledged once written; the log is synced every
  // LogOptions::async_interval_millis. A crash may lose that window.
  kAsync,
};

struct LogOptions {
  Env* env = Env::Default();
  std::string dir;  // must exist
  Durability durability = Durability::kRequest;
  int64_t async_interval_millis = 100;
  // A new segment starts once the current one holds this many bytes.
  uint64_t segment_bytes = 64ull << 20;
  // Recovery (OpenDurableStore) applies consecutive `_bulk` batches of the
  // log as one commit of up to this many operations (at least one batch
  // each): MutationBatch::Coalesce, the same outcome as applying them one
  // at a time. Fewer commits find each stored result and merge each job
  // fewer times; a commit holds about 100 bytes per operation while it is
  // built and applied (8M operations: some 800 MB, for a log of some
  // 450 MB).
  size_t replay_commit_operations = size_t{1} << 23;
};

// What a scan found: the log's valid records, in order.
struct LogScan {
  struct Segment {
    std::string name;            // file name in the log directory
    uint64_t first_generation;   // from the name
    uint64_t valid_bytes = 0;    // bytes up to the end of the last good record
    uint64_t file_bytes = 0;
    uint64_t records = 0;
  };
  std::vector<Segment> segments;  // in generation order
  // The generation of the last good record; 0 if there is none.
  uint64_t last_generation = 0;
  // The first good record's generation; 0 if there is none.
  uint64_t first_generation = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;  // of good records
  // Torn tail dropped (the file and offset where the last segment is cut),
  // or empty.
  std::string torn;
  // With skip_corrupt: what was set aside, or empty.
  std::string skipped;
  // Damage found in segments a snapshot covers (ignored), or empty.
  std::string ignored;
  // Files that earlier starts set aside in the log directory (`*.torn`,
  // `*.corrupt`, and their `.N` copies), sorted: evidence of damage, which
  // Clout never deletes; the operator removes them once looked at.
  std::vector<std::string> kept_earlier;
};

// Reads every segment of the log in `options.dir` and checks each record.
// Returns the scan, or (corruption, unless `skip_corrupt`) 500
// translog_corrupted_exception naming the file and the offset; an I/O
// error naming the path. Damage in a segment that a snapshot of
// generation `covered_through` covers whole (the next segment starts at or
// before covered_through + 1) is not an error: it is noted in
// LogScan::ignored and the segment left as it is, for the snapshot's
// DropThrough to remove. Cuts a torn tail (keeping the bytes cut off in a
// `.torn` file) and renames corrupt segments aside (skip_corrupt; a copy
// never replaces an earlier one: it takes `.corrupt.1`, `.torn.1`, ...) on
// disk; changes nothing else. Checks segments on
// a second thread of its own (joined before it returns); the repairs are
// made in segment order, as one thread would.
absl::StatusOr<LogScan> ScanLog(const LogOptions& options, bool skip_corrupt,
                                uint64_t covered_through = 0);

// Calls `apply` with each batch of the scanned log whose generation is
// above `after_generation`, in order; returns the first error of `apply`,
// or 500 translog_corrupted_exception if a record no longer reads or the
// generations have a gap (a record missing after `after_generation`).
absl::Status ReplayLog(
    const LogOptions& options, const LogScan& scan, uint64_t after_generation,
    const std::function<absl::Status(uint64_t generation,
                                     MutationBatch batch)>& apply);

struct LogStats {
  uint64_t appends = 0;  // batches appended
  uint64_t syncs = 0;    // fdatasync calls that succeeded
  uint64_t bytes = 0;    // bytes of records written
  uint64_t segments = 0; // segment files in the log
  uint64_t log_bytes = 0;  // bytes in those files
  uint64_t last_generation = 0;
};

class WriteAheadLog : public MutationLog {
 public:
  // Opens the log in `options.dir` for appending after `scan` (ScanLog of
  // the same directory) and a snapshot of generation `base` (0: none).
  // Appends of generations up to scan.last_generation are taken as
  // already logged (a replay) until EndReplay(); new records go to a new
  // segment, numbered after both. Segments the snapshot covers are
  // removed. Returns the log, or the error of creating that segment.
  static absl::StatusOr<std::unique_ptr<WriteAheadLog>> Open(
      const LogOptions& options, const LogScan& scan, uint64_t base = 0);
  ~WriteAheadLog() override;

  // MutationLog. Append: 429 cluster_block_exception when the disk is
  // full, 500 translog_exception on another I/O error; the log is cut back
  // to before the record (if that fails too, every later Append and
  // WaitDurable fails). WaitDurable: 500 translog_exception if the sync
  // failed; the log then refuses everything after.
  absl::Status Append(const MutationBatch& batch, uint64_t generation) override;
  absl::Status WaitDurable(uint64_t generation) override;

  // After the replay: an Append of an old generation is now an error.
  void EndReplay();

  // Syncs what is written (for a clean shutdown under kAsync).
  absl::Status Sync();

  // Starts a new segment if the current one holds records (so that a
  // snapshot about to be taken covers whole segments). On error the
  // current segment goes on.
  absl::Status Rotate();

  // Removes the segments whose records all have generations up to
  // `generation` (a snapshot holds them), never the one being written.
  absl::Status DropThrough(uint64_t generation);

  LogStats stats() const;

 private:
  explicit WriteAheadLog(const LogOptions& options);
  absl::Status StartSegment(uint64_t first_generation);
  // Makes what the current file holds durable, one sync at a time. With
  // `let_go`, mu_ is released during the fdatasync itself, so that appends
  // (the store's writer under kAsync) do not wait for the disk; the sync
  // then covers what the file held when it began. Without, mu_ is held
  // throughout, so that nothing is appended between the sync and what the
  // caller does next (starting a segment).
  absl::Status SyncLocked(std::unique_lock<std::mutex>& lock, bool let_go);
  void AsyncLoop();

  const LogOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<WritableFile> file_;  // the segment being written
  std::string file_name_;
  struct Segment {
    std::string name;
    uint64_t first_generation;
    uint64_t bytes;
  };
  std::vector<Segment> segments_;  // every segment, the current one last
  uint64_t replayed_through_ = 0;  // generations logged before Open
  bool replaying_ = true;
  uint64_t last_generation_ = 0;   // last appended
  uint64_t synced_bytes_ = 0;      // of the current file
  bool syncing_ = false;           // a sync runs with mu_ let go
  std::condition_variable sync_cv_;  // signalled when it ends
  absl::Status broken_;            // set: every call fails with it
  bool stopping_ = false;
  std::atomic<uint64_t> appends_{0};
  std::atomic<uint64_t> syncs_{0};
  std::atomic<uint64_t> bytes_{0};
  std::thread async_;
};

// A store over a log directory, recovered.
struct DurableStore {
  std::unique_ptr<InfluencerStore> store;
  std::shared_ptr<WriteAheadLog> log;
  LogScan scan;  // what the log held (torn tail, what was skipped)
};

// Scans the log in `log_options.dir` (ScanLog), opens it for appending,
// makes a store whose StoreOptions::log it is, restores `snapshot` into it
// (may be null: none), and replays the log's batches after the snapshot's
// generation, many per commit (consecutive `_bulk` batches coalesced up to
// LogOptions::replay_commit_operations operations; the log is read and
// decoded on a thread of its own meanwhile). Returns the store ready for writes, or the
// first error (corruption, I/O, a batch that no longer applies, a gap
// between the snapshot and the log). Before the replay it has made
// ScanLog's repairs, started a new segment, and removed the segments the
// snapshot covers; a failed replay leaves those (the next start reads the
// same records).
absl::StatusOr<DurableStore> OpenDurableStore(
    const LogOptions& log_options, bool skip_corrupt,
    StoreOptions store_options,
    std::shared_ptr<const StoreVersion> snapshot = nullptr);

}  // namespace clout

#endif  // CLOUT_STORAGE_WAL_H_
