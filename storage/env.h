// Env: the file-system operations the log and snapshots use, behind an
// interface so that tests can put a faulty file system in their place
// (storage/fault_env.h), as LevelDB's Env does.
//
// Durability follows POSIX: bytes appended to a file survive a crash only
// after WritableFile::Sync; a file's creation, a rename and a removal
// survive a crash only after SyncDir of the directory that holds the name.
//
// Errors are absl::Status values whose message names the path and the
// system's reason; ENOSPC and EDQUOT give kResourceExhausted.
//
// Thread safety: an Env is thread-safe. A WritableFile may be appended to
// from one thread while another calls Sync; otherwise one thread at a time.
#ifndef CLOUT_STORAGE_ENV_H_
#define CLOUT_STORAGE_ENV_H_

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clout {

// A file open for appending.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Appends `data` at the end. On error a prefix of `data` may have been
  // written: size() says how much the file holds.
  virtual absl::Status Append(absl::string_view data) = 0;
  // Makes every appended byte durable (fdatasync).
  virtual absl::Status Sync() = 0;
  // Cuts the file to `size` bytes (<= size()), to undo a failed append.
  // Durable after the next Sync.
  virtual absl::Status Truncate(uint64_t size) = 0;
  // Bytes in the file, as far as this handle knows (its appends included).
  virtual uint64_t size() const = 0;
};

// A file's content, read-only, for as long as the object lives (a memory
// map, or a copy). Thread-safe (immutable).
class MappedFile {
 public:
  virtual ~MappedFile() = default;
  virtual absl::string_view data() const = 0;
  // Copies `n` bytes at `offset` of data() to `to`, without touching the
  // mapping where the file can be read instead (the POSIX Env preads: on
  // this project's VMs the first touch of a mapped page costs more than
  // reading it). Requires offset + n <= data().size(). Returns OK, or the
  // read's error (the file shrank).
  virtual absl::Status ReadAt(uint64_t offset, char* to, size_t n) const {
    std::memcpy(to, data().data() + offset, n);
    return absl::OkStatus();
  }
};

// A lock on a data directory, released when destroyed.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class Env {
 public:
  virtual ~Env() = default;

  // The real file system (POSIX calls). Never null; lives forever.
  static Env* Default();

  // Opens `path` for appending, creating it empty if it does not exist
  // (the creation is durable after SyncDir of its directory).
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> OpenAppendable(
      const std::string& path) = 0;
  // Creates `path` empty (replacing a file there, truncated in place: map
  // no file that may be replaced) for one large write, front to back: a
  // snapshot file. The bytes appended are durable after Sync, as with
  // OpenAppendable, and the creation after SyncDir. Unlike OpenAppendable's
  // files, the file is for one thread at a time, and Append may hold up to
  // 2 MiB in memory until the buffer fills or Sync (or the destructor)
  // writes them: an I/O error can surface at a later Append or at Sync,
  // a crash loses them as it loses any unsynced bytes, and size() counts
  // them as the file's. Truncate within them does no I/O.
  //
  // The POSIX Env writes such a file around the page cache (O_DIRECT, in
  // aligned blocks through a buffer of its own) where the file system
  // allows it, and through the cache otherwise: writing a snapshot then
  // neither evicts what the cache holds nor pays for fresh cache pages,
  // which on virtual machines that hand freed memory back to their host
  // costs more than the disk (bench/README.md). Default: OpenAppendable
  // on an emptied file.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> CreateForLargeWrite(
      const std::string& path);
  // The whole content of `path`. kNotFound if it does not exist.
  virtual absl::StatusOr<std::string> ReadFile(const std::string& path) = 0;
  // The whole content of `path` without copying it (mmap). The file must
  // not shrink while mapped (reading past its end would fault).
  virtual absl::StatusOr<std::unique_ptr<MappedFile>> MapFile(
      const std::string& path) = 0;
  // Writes `data` to a new file at `path` (replacing one), syncs it and
  // closes it. Not atomic: write to a temporary name, then Rename.
  virtual absl::Status WriteFile(const std::string& path,
                                 absl::string_view data) = 0;
  // The names (not paths) in `dir`, without "." and "..", in no order.
  virtual absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) = 0;
  // Creates `dir` (not its parents); OK if it exists as a directory.
  virtual absl::Status CreateDir(const std::string& dir) = 0;
  // Makes the creations, renames and removals of names in `dir` durable.
  virtual absl::Status SyncDir(const std::string& dir) = 0;
  // Renames `from` to `to`, atomically replacing `to`.
  virtual absl::Status Rename(const std::string& from,
                              const std::string& to) = 0;
  // Removes the file `path`.
  virtual absl::Status Remove(const std::string& path) = 0;
  // Takes an exclusive lock on `path` (created if missing), so that two
  // processes never use one data directory. kFailedPrecondition naming
  // the path if another process holds it.
  virtual absl::StatusOr<std::unique_ptr<FileLock>> Lock(
      const std::string& path) = 0;
};

// "dir/name".
std::string JoinPath(absl::string_view dir, absl::string_view name);

// Replaces the file at `path` with `data` durably and atomically: written
// to `path`.tmp, synced, renamed over `path`, and the directory synced. On
// error `path` is as it was.
absl::Status WriteFileDurably(Env* env, const std::string& path,
                              absl::string_view data);

}  // namespace clout

#endif  // CLOUT_STORAGE_ENV_H_
