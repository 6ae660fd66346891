#include "storage/data_dir.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace clout {
namespace {

std::string ParentOf(const std::string& dir) {
  std::string trimmed = dir;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  const size_t slash = trimmed.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return trimmed.substr(0, slash);
}

// Creates `dir` if missing, durably in its parent.
absl::Status MakeDir(Env* env, const std::string& dir) {
  if (absl::Status s = env->CreateDir(dir); !s.ok()) return s;
  return env->SyncDir(ParentOf(dir));
}

}  // namespace

absl::StatusOr<std::unique_ptr<DataDir>> DataDir::Open(DataDirOptions options) {
  std::unique_ptr<DataDir> data(new DataDir());
  Env* env = options.env;
  if (absl::Status s = MakeDir(env, options.dir); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<FileLock>> lock =
      env->Lock(JoinPath(options.dir, "LOCK"));
  if (!lock.ok()) return lock.status();
  data->lock_ = *std::move(lock);
  const std::string log_dir = JoinPath(options.dir, "log");
  const std::string snapshot_dir = JoinPath(options.dir, "snapshots");
  if (absl::Status s = MakeDir(env, log_dir); !s.ok()) return s;
  if (absl::Status s = MakeDir(env, snapshot_dir); !s.ok()) return s;
  if (absl::Status s = MakeDir(env, JoinPath(options.dir, "state")); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::unique_ptr<SnapshotDir>> snapshots =
      SnapshotDir::Open(env, snapshot_dir, options.skip_corrupt);
  if (!snapshots.ok()) return snapshots.status();
  data->snapshots_ = *std::move(snapshots);
  std::shared_ptr<const StoreVersion> base = data->snapshots_->opened();
  data->recovered_snapshot_ = base == nullptr ? 0 : base->generation;
  LogOptions log;
  log.env = env;
  log.dir = log_dir;
  log.durability = options.durability;
  absl::StatusOr<DurableStore> durable = OpenDurableStore(
      log, options.skip_corrupt, options.store, std::move(base));
  if (!durable.ok()) return durable.status();
  data->durable_ = *std::move(durable);
  data->options_ = std::move(options);
  return data;
}

DataDir::~DataDir() {
  // The store's writer thread finishes before the log it appends to goes.
  durable_.store.reset();
}

absl::StatusOr<SnapshotStats> DataDir::Snapshot() {
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  // A new log segment first: the snapshot then covers whole segments,
  // which can go once it is durable.
  if (absl::Status s = durable_.log->Rotate(); !s.ok()) return s;
  std::shared_ptr<const StoreVersion> version = durable_.store->Current();
  absl::StatusOr<SnapshotStats> stats = snapshots_->Write(*version);
  if (!stats.ok()) return stats.status();
  // The snapshot is durable: the log it covers can go.
  if (absl::Status s = durable_.log->DropThrough(version->generation);
      !s.ok()) {
    return s;
  }
  return stats;
}

bool DataDir::SnapshotDue() const {
  return durable_.log->stats().log_bytes > options_.snapshot_log_bytes;
}

absl::StatusOr<std::string> DataDir::ReadState(const std::string& name) const {
  absl::StatusOr<std::string> data = options_.env->ReadFile(
      JoinPath(JoinPath(options_.dir, "state"), name));
  if (absl::IsNotFound(data.status())) return std::string();
  return data;
}

absl::Status DataDir::WriteState(const std::string& name,
                                 absl::string_view data) {
  std::lock_guard<std::mutex> lock(state_mu_);
  return WriteFileDurably(options_.env,
                          JoinPath(JoinPath(options_.dir, "state"), name),
                          data);
}

}  // namespace clout
