#include "storage/fault_env.h"

#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace clout {
namespace {

absl::Status Eio(absl::string_view what, absl::string_view path) {
  return absl::InternalError(
      absl::StrCat(what, " [", path, "]: Input/output error"));
}

}  // namespace

class FaultEnv::File : public WritableFile {
 public:
  File(FaultEnv* env, std::string path, std::shared_ptr<Inode> inode)
      : env_(env), path_(std::move(path)), inode_(std::move(inode)) {}

  absl::Status Append(absl::string_view data) override {
    std::lock_guard<std::mutex> lock(env_->mu_);
    size_t n = data.size();
    bool full = false;
    if (env_->space_left_ >= 0 &&
        static_cast<int64_t>(n) > env_->space_left_) {
      n = static_cast<size_t>(env_->space_left_);
      full = true;
    }
    inode_->data.append(data.data(), n);
    if (env_->space_left_ >= 0) env_->space_left_ -= static_cast<int64_t>(n);
    if (full) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "cannot write [", path_, "]: No space left on device"));
    }
    return absl::OkStatus();
  }
  absl::Status Sync() override {
    // What a sync makes durable is what the file held when it began:
    // appends while a hook holds it back are not covered, so that a log
    // counting on them fails its tests.
    std::function<void()> hook;
    std::string data;
    {
      std::lock_guard<std::mutex> lock(env_->mu_);
      hook = env_->sync_hook_;
      if (hook) data = inode_->data;
    }
    if (hook) hook();
    std::lock_guard<std::mutex> lock(env_->mu_);
    if (env_->SyncFails()) return Eio("cannot sync", path_);
    inode_->durable = hook ? std::move(data) : inode_->data;
    inode_->synced_once = true;
    ++env_->syncs_;
    return absl::OkStatus();
  }
  absl::Status Truncate(uint64_t size) override {
    std::lock_guard<std::mutex> lock(env_->mu_);
    if (size < inode_->data.size()) {
      if (env_->space_left_ >= 0) {
        env_->space_left_ +=
            static_cast<int64_t>(inode_->data.size() - size);
      }
      inode_->data.resize(size);
    }
    return absl::OkStatus();
  }
  uint64_t size() const override {
    std::lock_guard<std::mutex> lock(env_->mu_);
    return inode_->data.size();
  }

 private:
  FaultEnv* env_;
  const std::string path_;
  std::shared_ptr<Inode> inode_;
};

std::string FaultEnv::DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::StatusOr<std::unique_ptr<WritableFile>> FaultEnv::OpenAppendable(
    const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string dir = DirOf(path);
  if (dir != "/" && !dirs_.contains(dir)) {
    return absl::NotFoundError(
        absl::StrCat("cannot open [", path, "]: No such file or directory"));
  }
  std::shared_ptr<Inode>& inode = names_[path];
  if (inode == nullptr) inode = std::make_shared<Inode>();
  return std::make_unique<File>(this, path, inode);
}

absl::StatusOr<std::string> FaultEnv::ReadFile(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = names_.find(path);
  if (it == names_.end()) {
    return absl::NotFoundError(
        absl::StrCat("cannot open [", path, "]: No such file or directory"));
  }
  return it->second->data;
}

namespace {
class CopiedFile : public MappedFile {
 public:
  explicit CopiedFile(std::string data) : data_(std::move(data)) {}
  absl::string_view data() const override { return data_; }

 private:
  std::string data_;
};
}  // namespace

absl::StatusOr<std::unique_ptr<MappedFile>> FaultEnv::MapFile(
    const std::string& path) {
  absl::StatusOr<std::string> data = ReadFile(path);
  if (!data.ok()) return data.status();
  return std::make_unique<CopiedFile>(*std::move(data));
}

absl::Status FaultEnv::WriteFile(const std::string& path,
                                 absl::string_view data) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = names_.find(path);
    // O_TRUNC: a new, empty file under the name.
    if (it != names_.end()) {
      if (space_left_ >= 0) {
        space_left_ += static_cast<int64_t>(it->second->data.size());
      }
      it->second = std::make_shared<Inode>();
    }
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> file = OpenAppendable(path);
  if (!file.ok()) return file.status();
  if (absl::Status s = (*file)->Append(data); !s.ok()) return s;
  return (*file)->Sync();
}

absl::StatusOr<std::vector<std::string>> FaultEnv::ListDir(
    const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  if (dir != "/" && !dirs_.contains(dir)) {
    return absl::NotFoundError(
        absl::StrCat("cannot list [", dir, "]: No such file or directory"));
  }
  std::vector<std::string> names;
  for (const auto& [path, inode] : names_) {
    if (DirOf(path) == dir) names.push_back(path.substr(path.rfind('/') + 1));
  }
  for (const auto& [path, unused] : dirs_) {
    if (DirOf(path) == dir) names.push_back(path.substr(path.rfind('/') + 1));
  }
  return names;
}

absl::Status FaultEnv::CreateDir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string parent = DirOf(dir);
  if (parent != "/" && !dirs_.contains(parent)) {
    return absl::NotFoundError(absl::StrCat(
        "cannot create directory [", dir, "]: No such file or directory"));
  }
  dirs_[dir] = true;
  return absl::OkStatus();
}

absl::Status FaultEnv::SyncDir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  if (SyncFails()) return Eio("cannot sync directory", dir);
  for (auto it = durable_names_.begin(); it != durable_names_.end();) {
    it = DirOf(it->first) == dir ? durable_names_.erase(it) : std::next(it);
  }
  for (const auto& [path, inode] : names_) {
    if (DirOf(path) == dir) durable_names_[path] = inode;
  }
  for (auto it = durable_dirs_.begin(); it != durable_dirs_.end();) {
    it = DirOf(it->first) == dir ? durable_dirs_.erase(it) : std::next(it);
  }
  for (const auto& [path, unused] : dirs_) {
    if (DirOf(path) == dir) durable_dirs_[path] = true;
  }
  return absl::OkStatus();
}

absl::Status FaultEnv::Rename(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> lock(mu_);
  if (rename_fails_) return Eio("cannot rename", from);
  auto it = names_.find(from);
  if (it == names_.end()) {
    return absl::NotFoundError(
        absl::StrCat("cannot rename [", from, "]: No such file or directory"));
  }
  std::shared_ptr<Inode> inode = it->second;
  names_.erase(it);
  names_[to] = std::move(inode);
  return absl::OkStatus();
}

absl::Status FaultEnv::Remove(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = names_.find(path);
  if (it == names_.end()) {
    return absl::NotFoundError(
        absl::StrCat("cannot remove [", path, "]: No such file or directory"));
  }
  names_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<FileLock>> FaultEnv::Lock(
    const std::string& path) {
  // One process: locking always succeeds (the name is created like a
  // file's).
  absl::StatusOr<std::unique_ptr<WritableFile>> file = OpenAppendable(path);
  if (!file.ok()) return file.status();
  return std::make_unique<FileLock>();
}

void FaultEnv::SetSpaceLeft(int64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  space_left_ = bytes;
}

void FaultEnv::SetSyncHook(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  sync_hook_ = std::move(hook);
}

void FaultEnv::SetSyncFails(bool fails) {
  std::lock_guard<std::mutex> lock(mu_);
  sync_fails_ = fails;
}

bool FaultEnv::SyncFails() {
  if (sync_fails_) return true;
  if (syncs_left_ == 0) return true;
  if (syncs_left_ > 0) --syncs_left_;
  return false;
}

void FaultEnv::FailSyncsAfter(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  syncs_left_ = n;
}

void FaultEnv::SetRenameFails(bool fails) {
  std::lock_guard<std::mutex> lock(mu_);
  rename_fails_ = fails;
}

void FaultEnv::FlipBit(const std::string& path, uint64_t offset, int bit) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = names_.find(path);
  if (it == names_.end() || offset >= it->second->data.size()) return;
  it->second->data[offset] ^= static_cast<char>(1 << bit);
  if (offset < it->second->durable.size()) {
    it->second->durable[offset] ^= static_cast<char>(1 << bit);
  }
}

void FaultEnv::Crash(bool torn, uint64_t seed, bool holes) {
  std::lock_guard<std::mutex> lock(mu_);
  std::mt19937_64 random(seed);
  dirs_ = durable_dirs_;
  // Torn: each change of a name since its directory's last sync (a
  // creation, a rename's two halves, a removal) survives or not on its
  // own, as a file system may write its metadata in any order. Else only
  // what was synced survives.
  std::map<std::string, std::shared_ptr<Inode>> chosen = durable_names_;
  if (torn) {
    std::map<std::string, std::shared_ptr<Inode>> changed;
    for (const auto& [path, inode] : names_) {
      auto it = durable_names_.find(path);
      if (it == durable_names_.end() || it->second != inode) {
        changed[path] = inode;
      }
    }
    for (const auto& [path, inode] : durable_names_) {
      if (!names_.contains(path)) changed[path] = nullptr;  // removed
    }
    for (const auto& [path, inode] : changed) {
      if (random() % 2 == 0) continue;  // the change was lost
      if (inode == nullptr) {
        chosen.erase(path);
      } else {
        chosen[path] = inode;
      }
    }
  }
  // A name survives if its directory did.
  std::map<std::string, std::shared_ptr<Inode>> names;
  for (const auto& [path, inode] : chosen) {
    const std::string dir = DirOf(path);
    if (dir == "/" || dirs_.contains(dir)) names[path] = inode;
  }
  for (auto& [path, inode] : names) {
    std::string kept = inode->durable;
    if (torn && inode->data.size() > kept.size() &&
        absl::StartsWith(inode->data, kept)) {
      const size_t extra = inode->data.size() - kept.size();
      const size_t durable = kept.size();
      kept = inode->data.substr(0, durable + random() % (extra + 1));
      if (holes) {
        // Each page of the unsynced bytes kept is lost (zeros) or not, on
        // its own: the page cache writes pages back in any order.
        constexpr size_t kPage = 4096;
        for (size_t page = durable / kPage * kPage; page < kept.size();
             page += kPage) {
          if (random() % 2 != 0) continue;
          const size_t from = std::max(page, durable);
          const size_t to = std::min(page + kPage, kept.size());
          std::fill(kept.begin() + from, kept.begin() + to, '\0');
        }
      }
    }
    // Each name gets an inode of its own (a torn rename may leave the
    // same file under both names).
    auto fresh = std::make_shared<Inode>();
    fresh->data = kept;
    fresh->durable = kept;
    inode = std::move(fresh);
  }
  names_ = names;
  durable_names_ = std::move(names);
  space_left_ = -1;
  sync_fails_ = false;
  syncs_left_ = -1;
  rename_fails_ = false;
}

int64_t FaultEnv::syncs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return syncs_;
}

std::string FaultEnv::Contents(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = names_.find(path);
  return it == names_.end() ? std::string() : it->second->data;
}

}  // namespace clout
