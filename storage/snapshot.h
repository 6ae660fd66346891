// Snapshot files: a store's results as versioned, checksummed binary files
// that open with a memory map, a checksum pass and a copy of each column,
// not a parse.
//
// Every file starts with a 64-byte header, little-endian:
//   "CLOUTSNP" | u32 format version | u32 kind | u64 payload bytes |
//   u64 XXH3-64 of the payload | u64 XXH3-64 of the 32 bytes before it |
//   zeros
// kind 1 is a segment (one plain segment of a job: its columns, its
// dictionary, its bucket spans and, from format version 2, its score order
// if the engine had built it, each 64-byte aligned), kind 2 a manifest
// (the store's generation and _seq_no, and for each job its segments with
// their deleted rows and its field names), kind 3 a bundle (one file
// holding segments and a manifest: `clout snapshot`'s output).
//
// A data directory's snapshot (SnapshotDir) is one immutable file per
// segment plus a manifest per snapshot, as LevelDB and Lucene keep theirs:
// a new snapshot writes only the segments the last one does not hold.
// Files are written under a temporary name, synced, renamed, and the
// directory synced; then older manifests and segments no manifest uses are
// removed.
//
// This build writes format version 2 and reads versions 1 (no score
// orders) and 2. A file of another format version is refused with 400
// illegal_argument_exception; a bad checksum, or contents that do not hold
// together (a code outside its dictionary, a deleted row past the
// segment's end) with 500 snapshot_corrupted_exception naming the file:
// never misread. A score order read is offered to the engine
// (OfferScoreOrder), which checks it instead of sorting the first time a
// query or WarmIndexes needs it, and sorts if it is not the rows' order.
#ifndef CLOUT_STORAGE_SNAPSHOT_H_
#define CLOUT_STORAGE_SNAPSHOT_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/columns.h"
#include "engine/store.h"
#include "storage/env.h"

namespace clout {

// Whether `prefix` (a file's first bytes, at least 8 of them) starts a
// snapshot file. Pure.
bool IsSnapshotFile(absl::string_view prefix);

// Writes `version` as one bundle file at `path` (through a temporary file,
// synced, renamed, and the directory synced). Returns the bytes written,
// or the I/O error (no file at `path` is changed then).
absl::StatusOr<uint64_t> WriteSnapshotBundle(Env* env, const std::string& path,
                                             const StoreVersion& version);

// Reads a bundle file: the version it holds (generation and _seq_no as
// written). Every checksum is checked. Thread-safe.
absl::StatusOr<std::shared_ptr<const StoreVersion>> ReadSnapshotBundle(
    Env* env, const std::string& path);

// The same from bytes in memory (`name` names them in errors). Pure;
// thread-safe.
absl::StatusOr<std::shared_ptr<const StoreVersion>> ParseSnapshotBundle(
    absl::string_view bytes, absl::string_view name);

// Loads the snapshot file `path` into `store`: on a store that has
// applied nothing and has no log, its version becomes the store's
// (InfluencerStore::Restore: no copy of the rows); otherwise its results
// are upserted as a dump's would be (one kLoad batch, logged). Returns the number of results it
// holds, or the error (the store unchanged). If `jobs` is given, sets it to
// the snapshot's job ids, sorted (on success only).
absl::StatusOr<uint64_t> LoadSnapshotFile(InfluencerStore& store,
                                          const std::string& path,
                                          Env* env = Env::Default(),
                                          std::vector<std::string>* jobs = nullptr);

// What a data directory snapshot wrote.
struct SnapshotStats {
  uint64_t generation = 0;
  uint64_t segments = 0;          // in the snapshot
  uint64_t segments_written = 0;  // new ones (the others were kept)
  uint64_t bytes_written = 0;
  uint64_t bytes = 0;             // of the whole snapshot
};

// The snapshots of a data directory (`dir`, which must exist).
// Thread-safe: Write calls are serialised.
class SnapshotDir {
 public:
  // Opens `dir`: reads its newest manifest and the segments it names, if
  // there is one. Returns the directory, or the first error (a corrupt
  // manifest or segment, an I/O error).
  //
  // With `skip_corrupt`, a segment file that is corrupt, missing or
  // unreadable is left out of its job instead: its rows (and the deletes
  // the manifest records against them) are lost, the file is renamed
  // aside to `<name>.corrupt` (`.corrupt.1`, ... : never over an earlier
  // one), and skipped() says so. A corrupt manifest is still an error: it
  // alone says which rows of the other segments are deleted.
  static absl::StatusOr<std::unique_ptr<SnapshotDir>> Open(
      Env* env, std::string dir, bool skip_corrupt = false);

  // The version the newest snapshot holds, or null if there is none.
  std::shared_ptr<const StoreVersion> opened() const { return opened_; }

  // What Open skipped (skip_corrupt): one line per segment, naming the
  // file, the damage and where the file was set aside. Empty if nothing.
  const std::vector<std::string>& skipped() const { return skipped_; }
  // Files that earlier opens set aside (`*.corrupt*`), sorted: evidence
  // of damage, never deleted by Clout.
  const std::vector<std::string>& kept_earlier() const { return kept_earlier_; }

  // Writes `version` as the newest snapshot: the segments not written yet,
  // then its manifest, then removes older manifests and unused segments.
  // On error the previous snapshot stays the newest.
  absl::StatusOr<SnapshotStats> Write(const StoreVersion& version);

 private:
  SnapshotDir(Env* env, std::string dir) : env_(env), dir_(std::move(dir)) {}
  Env* env_;
  std::string dir_;
  std::shared_ptr<const StoreVersion> opened_;
  std::mutex mu_;
  // Segments on disk: the object each was written from, and its file.
  struct Written {
    std::weak_ptr<const void> segment;  // SegmentColumnView::handle
    std::string file;
    uint64_t bytes;
  };
  absl::flat_hash_map<const void*, Written> written_;  // by view id
  std::string manifest_;  // the newest manifest's file name
  std::vector<std::string> skipped_;
  std::vector<std::string> kept_earlier_;
  uint64_t next_file_ = 0;
};

}  // namespace clout

#endif  // CLOUT_STORAGE_SNAPSHOT_H_
