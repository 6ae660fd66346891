// FaultEnv: an in-memory Env (env.h) that remembers what is durable and
// what is not, for fault-injection tests.
//
// Each file's content since its last Sync, and each name created, renamed
// or removed since the last SyncDir of its directory, is volatile: Crash()
// drops it, as a power cut drops the page cache (optionally keeping a
// random prefix of a file's unsynced appends, as a torn write would, with
// or without holes). On
// top of that it injects the faults of a real disk: a full disk (short
// writes, then ENOSPC), failing syncs, and bit flips.
//
// Directories are names too: one created is durable after SyncDir of its
// parent. "/" always exists.
//
// Thread-safe (one mutex).
#ifndef CLOUT_STORAGE_FAULT_ENV_H_
#define CLOUT_STORAGE_FAULT_ENV_H_

#include <cstdint>
#include <map>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include "storage/env.h"

namespace clout {

class FaultEnv : public Env {
 public:
  FaultEnv() = default;

  absl::StatusOr<std::unique_ptr<WritableFile>> OpenAppendable(
      const std::string& path) override;
  absl::StatusOr<std::string> ReadFile(const std::string& path) override;
  // A copy: later writes to the file do not show through it.
  absl::StatusOr<std::unique_ptr<MappedFile>> MapFile(
      const std::string& path) override;
  absl::Status WriteFile(const std::string& path,
                         absl::string_view data) override;
  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) override;
  absl::Status CreateDir(const std::string& dir) override;
  absl::Status SyncDir(const std::string& dir) override;
  absl::Status Rename(const std::string& from, const std::string& to) override;
  absl::Status Remove(const std::string& path) override;
  absl::StatusOr<std::unique_ptr<FileLock>> Lock(
      const std::string& path) override;

  // --- Faults. ----------------------------------------------------------
  // The disk holds `bytes` more bytes of appends: the append that crosses
  // the limit writes what fits and fails with ENOSPC, as do later ones.
  // Truncating gives space back. Negative: unlimited (the default).
  void SetSpaceLeft(int64_t bytes);
  // While set, Sync and SyncDir fail with EIO (and make nothing durable).
  void SetSyncFails(bool fails);
  // The next `n` Sync and SyncDir calls succeed, and every one after them
  // fails with EIO (a crash at that point, or a dying disk). Negative:
  // off (the default).
  void FailSyncsAfter(int64_t n);
  // Called at the start of every file Sync, before the sync takes the
  // env's lock: a test blocks a sync in it to see what waits for one.
  void SetSyncHook(std::function<void()> hook);
  // While set, Rename fails with EIO.
  void SetRenameFails(bool fails);
  // Flips bit `bit` of byte `offset` of `path`, durably.
  void FlipBit(const std::string& path, uint64_t offset, int bit);
  // Drops everything not durable. With `torn`, each file keeps a random
  // prefix (maybe all, maybe none) of the bytes appended since its last
  // Sync, and each name created, renamed or removed since its directory's
  // last SyncDir keeps the change or not, at random, each on its own, as
  // a crash in the middle of writing would. With `holes` too (and
  // `torn`), each 4 KiB page of a file's unsynced bytes kept is zeroed or
  // not at random, as a page cache writing pages back in any order leaves
  // them. Open WritableFiles must not be used afterwards.
  void Crash(bool torn, uint64_t seed, bool holes = false);

  // Successful Sync calls so far.
  int64_t syncs() const;
  // The content of `path` (volatile view), or "" if it does not exist.
  std::string Contents(const std::string& path) const;

 private:
  struct Inode {
    std::string data;
    std::string durable;  // content at the last Sync
    bool synced_once = false;
  };
  class File;
  friend class File;
  static std::string DirOf(const std::string& path);

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Inode>> names_;
  std::map<std::string, std::shared_ptr<Inode>> durable_names_;
  std::map<std::string, bool> dirs_;  // existing directories
  std::map<std::string, bool> durable_dirs_;
  int64_t space_left_ = -1;
  bool sync_fails_ = false;
  std::function<void()> sync_hook_;
  int64_t syncs_left_ = -1;  // FailSyncsAfter
  // Whether this sync fails (sync_fails_, or FailSyncsAfter's count run
  // out); counts it otherwise. Called with mu_ held.
  bool SyncFails();
  bool rename_fails_ = false;
  int64_t syncs_ = 0;
};

}  // namespace clout

#endif  // CLOUT_STORAGE_FAULT_ENV_H_
