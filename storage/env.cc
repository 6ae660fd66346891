#include "storage/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace clout {
namespace {

absl::Status ErrnoError(int error, absl::string_view what,
                        absl::string_view path) {
  const std::string message =
      absl::StrCat(what, " [", path, "]: ", std::strerror(error));
  if (error == ENOSPC || error == EDQUOT) {
    return absl::ResourceExhaustedError(message);
  }
  if (error == ENOENT) return absl::NotFoundError(message);
  return absl::InternalError(message);
}

class PosixWritableFile : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  ~PosixWritableFile() override { close(fd_); }

  absl::Status Append(absl::string_view data) override {
    while (!data.empty()) {
      // In pieces of at most 1 MiB: one huge write() is throttled as a
      // whole by the kernel's dirty-page accounting.
      const ssize_t n =
          write(fd_, data.data(), std::min<size_t>(data.size(), 1 << 20));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoError(errno, "cannot write", path_);
      }
      size_ += static_cast<uint64_t>(n);
      data.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }
  absl::Status Sync() override {
    if (fdatasync(fd_) != 0) return ErrnoError(errno, "cannot sync", path_);
    return absl::OkStatus();
  }
  absl::Status Truncate(uint64_t size) override {
    if (ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      return ErrnoError(errno, "cannot truncate", path_);
    }
    size_ = size;
    return absl::OkStatus();
  }
  uint64_t size() const override { return size_; }

 private:
  const std::string path_;
  const int fd_;
  uint64_t size_;
};

// A file written once, front to back, around the page cache: appends
// gather in an aligned buffer, whole blocks of which are written with
// O_DIRECT. What is not a whole block at Sync (the tail) is written
// through the cache after O_DIRECT is turned off, and so is everything
// after it. A file system that refuses O_DIRECT (EINVAL at open or at a
// write) gets every byte from then on through the cache instead.
// One thread at a time: Append and Sync share the buffer.
class PosixDirectWritableFile : public WritableFile {
 public:
  // O_DIRECT's alignment of memory, offsets and lengths: the logical block
  // size of every common disk, and a multiple of the rest.
  static constexpr size_t kBlock = 4096;
  static constexpr size_t kBuffer = 2 << 20;

  // Takes `fd` and `buffer` (kBuffer bytes, kBlock-aligned, from
  // std::aligned_alloc).
  PosixDirectWritableFile(std::string path, int fd, bool direct, char* buffer)
      : path_(std::move(path)), fd_(fd), direct_(direct), buffer_(buffer) {}
  ~PosixDirectWritableFile() override {
    // Appended bytes reach the file, as with an unbuffered one.
    Flush(/*all=*/true).IgnoreError();
    close(fd_);
    std::free(buffer_);
  }

  absl::Status Append(absl::string_view data) override {
    while (!data.empty()) {
      const size_t n = std::min(data.size(), kBuffer - used_);
      std::memcpy(buffer_ + used_, data.data(), n);
      used_ += n;
      data.remove_prefix(n);
      if (used_ == kBuffer) {
        if (absl::Status s = Flush(/*all=*/false); !s.ok()) return s;
      }
    }
    return absl::OkStatus();
  }
  absl::Status Sync() override {
    if (absl::Status s = Flush(/*all=*/true); !s.ok()) return s;
    if (fdatasync(fd_) != 0) return ErrnoError(errno, "cannot sync", path_);
    return absl::OkStatus();
  }
  absl::Status Truncate(uint64_t size) override {
    if (size >= written_) {
      // Within the buffer (maybe bytes a failed write left there): drop
      // its end, with no I/O, so that undoing works on a full disk too.
      used_ = std::min<size_t>(used_, static_cast<size_t>(size - written_));
      return absl::OkStatus();
    }
    used_ = 0;
    if (ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      return ErrnoError(errno, "cannot truncate", path_);
    }
    written_ = size;
    if (lseek(fd_, static_cast<off_t>(size), SEEK_SET) < 0 ||
        (direct_ && size % kBlock != 0 && !Buffered())) {
      return ErrnoError(errno, "cannot truncate", path_);
    }
    return absl::OkStatus();
  }
  uint64_t size() const override { return written_ + used_; }

 private:
  // Writes the buffer's whole blocks (all: every byte) and keeps the rest
  // at its front. On error the buffer keeps what was not written.
  absl::Status Flush(bool all) {
    size_t at = 0;
    absl::Status s = WriteOut(&at, direct_ ? used_ / kBlock * kBlock : used_);
    if (s.ok() && all) s = WriteOut(&at, used_);  // the tail
    Keep(at);
    return s;
  }
  // Writes the buffer from *at to `end`, advancing *at past what was
  // written. A length that is not whole blocks goes through the cache.
  absl::Status WriteOut(size_t* at, size_t end) {
    while (*at < end) {
      if (direct_ && (end - *at) % kBlock != 0 && !Buffered()) {
        return ErrnoError(errno, "cannot write", path_);
      }
      const ssize_t n = write(fd_, buffer_ + *at, end - *at);
      if (n < 0) {
        if (errno == EINTR) continue;
        // O_DIRECT refused after all (an alignment this file system does
        // not take): the rest through the cache.
        if (errno == EINVAL && direct_ && Buffered()) continue;
        return ErrnoError(errno, "cannot write", path_);
      }
      if (n == 0) return ErrnoError(EIO, "cannot write", path_);
      *at += static_cast<size_t>(n);
      written_ += static_cast<uint64_t>(n);
    }
    return absl::OkStatus();
  }
  // Turns O_DIRECT off. Returns false (errno set) if it cannot.
  bool Buffered() {
    const int flags = fcntl(fd_, F_GETFL);
    if (flags < 0 || fcntl(fd_, F_SETFL, flags & ~O_DIRECT) != 0) return false;
    direct_ = false;
    return true;
  }
  // Drops the buffer's first `n` bytes (written).
  void Keep(size_t n) {
    std::memmove(buffer_, buffer_ + n, used_ - n);
    used_ -= n;
  }

  const std::string path_;
  const int fd_;
  bool direct_;
  char* const buffer_;
  size_t used_ = 0;
  uint64_t written_ = 0;
};

class PosixMappedFile : public MappedFile {
 public:
  PosixMappedFile(void* base, size_t size, int fd, std::string path)
      : base_(base), size_(size), fd_(fd), path_(std::move(path)) {}
  ~PosixMappedFile() override {
    if (size_ > 0) munmap(base_, size_);
    close(fd_);
  }
  absl::string_view data() const override {
    return absl::string_view(static_cast<const char*>(base_), size_);
  }
  absl::Status ReadAt(uint64_t offset, char* to, size_t n) const override {
    while (n > 0) {
      const ssize_t got = pread(fd_, to, n, static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        return ErrnoError(got < 0 ? errno : EIO, "cannot read", path_);
      }
      to += got;
      offset += static_cast<uint64_t>(got);
      n -= static_cast<size_t>(got);
    }
    return absl::OkStatus();
  }

 private:
  void* base_;
  size_t size_;
  int fd_;  // kept open for ReadAt
  std::string path_;
};

class PosixLock : public FileLock {
 public:
  explicit PosixLock(int fd) : fd_(fd) {}
  ~PosixLock() override { close(fd_); }  // releases the flock

 private:
  int fd_;
};

class PosixEnv : public Env {
 public:
  absl::StatusOr<std::unique_ptr<WritableFile>> OpenAppendable(
      const std::string& path) override {
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                        0644);
    if (fd < 0) return ErrnoError(errno, "cannot open", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
      const int error = errno;
      close(fd);
      return ErrnoError(error, "cannot stat", path);
    }
    return std::make_unique<PosixWritableFile>(path, fd,
                                               static_cast<uint64_t>(st.st_size));
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> CreateForLargeWrite(
      const std::string& path) override {
    using File = PosixDirectWritableFile;
    char* buffer =
        static_cast<char*>(std::aligned_alloc(File::kBlock, File::kBuffer));
    if (buffer == nullptr) return ErrnoError(ENOMEM, "cannot write", path);
    constexpr int kFlags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
    bool direct = true;
    int fd = open(path.c_str(), kFlags | O_DIRECT, 0644);
    if (fd < 0 && errno == EINVAL) {  // a file system without O_DIRECT
      direct = false;
      fd = open(path.c_str(), kFlags, 0644);
    }
    if (fd < 0) {
      const int error = errno;
      std::free(buffer);
      return ErrnoError(error, "cannot create", path);
    }
    return std::make_unique<File>(path, fd, direct, buffer);
  }

  absl::StatusOr<std::string> ReadFile(const std::string& path) override {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError(errno, "cannot open", path);
    std::string data;
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
      data.reserve(static_cast<size_t>(st.st_size));
    }
    char buffer[1 << 16];
    for (;;) {
      const ssize_t n = read(fd, buffer, sizeof buffer);
      if (n < 0) {
        if (errno == EINTR) continue;
        const int error = errno;
        close(fd);
        return ErrnoError(error, "cannot read", path);
      }
      if (n == 0) break;
      data.append(buffer, static_cast<size_t>(n));
    }
    close(fd);
    return data;
  }

  absl::StatusOr<std::unique_ptr<MappedFile>> MapFile(
      const std::string& path) override {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError(errno, "cannot open", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
      const int error = errno;
      close(fd);
      return ErrnoError(error, "cannot stat", path);
    }
    const size_t size = static_cast<size_t>(st.st_size);
    void* base = nullptr;
    if (size > 0) {
      base = mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
      if (base == MAP_FAILED) {
        const int error = errno;
        close(fd);
        return ErrnoError(error, "cannot map", path);
      }
    }
    return std::make_unique<PosixMappedFile>(base, size, fd, path);
  }

  absl::Status WriteFile(const std::string& path,
                         absl::string_view data) override {
    const int fd =
        open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoError(errno, "cannot create", path);
    PosixWritableFile file(path, fd, 0);  // closes fd
    if (absl::Status s = file.Append(data); !s.ok()) return s;
    return file.Sync();
  }

  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) override {
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) return ErrnoError(errno, "cannot list", dir);
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* entry = readdir(d)) {
      const absl::string_view name = entry->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    const int error = errno;
    closedir(d);
    if (error != 0) return ErrnoError(error, "cannot list", dir);
    return names;
  }

  absl::Status CreateDir(const std::string& dir) override {
    if (mkdir(dir.c_str(), 0755) == 0) return absl::OkStatus();
    const int error = errno;
    struct stat st;
    if (error == EEXIST && stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      return absl::OkStatus();
    }
    return ErrnoError(error, "cannot create directory", dir);
  }

  absl::Status SyncDir(const std::string& dir) override {
    const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoError(errno, "cannot open directory", dir);
    const int rc = fsync(fd);
    const int error = errno;
    close(fd);
    if (rc != 0) return ErrnoError(error, "cannot sync directory", dir);
    return absl::OkStatus();
  }

  absl::Status Rename(const std::string& from, const std::string& to) override {
    if (rename(from.c_str(), to.c_str()) != 0) {
      return ErrnoError(errno, absl::StrCat("cannot rename to [", to, "]"),
                        from);
    }
    return absl::OkStatus();
  }

  absl::Status Remove(const std::string& path) override {
    if (unlink(path.c_str()) != 0) return ErrnoError(errno, "cannot remove", path);
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<FileLock>> Lock(
      const std::string& path) override {
    const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoError(errno, "cannot open", path);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      close(fd);
      if (error == EWOULDBLOCK) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the data directory is in use by another process (lock [", path,
            "] is held)"));
      }
      return ErrnoError(error, "cannot lock", path);
    }
    return std::make_unique<PosixLock>(fd);
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<WritableFile>> Env::CreateForLargeWrite(
    const std::string& path) {
  if (absl::Status s = Remove(path); !s.ok() && !absl::IsNotFound(s)) return s;
  return OpenAppendable(path);
}

Env* Env::Default() {
  static Env* env = new PosixEnv();
  return env;
}

std::string JoinPath(absl::string_view dir, absl::string_view name) {
  if (dir.empty()) return std::string(name);
  if (dir.back() == '/') return absl::StrCat(dir, name);
  return absl::StrCat(dir, "/", name);
}

absl::Status WriteFileDurably(Env* env, const std::string& path,
                              absl::string_view data) {
  const std::string tmp = path + ".tmp";
  if (absl::Status s = env->WriteFile(tmp, data); !s.ok()) {
    env->Remove(tmp).IgnoreError();
    return s;
  }
  if (absl::Status s = env->Rename(tmp, path); !s.ok()) return s;
  const size_t slash = path.rfind('/');
  return env->SyncDir(slash == std::string::npos ? "."
                      : slash == 0                ? "/"
                                                  : path.substr(0, slash));
}

}  // namespace clout
