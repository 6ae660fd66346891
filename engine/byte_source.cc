#include "engine/byte_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/error.h"

namespace clout {
namespace {

// ---------------------------------------------------------------------------
// Byte sources.

class StringSource : public ByteSource {
 public:
  explicit StringSource(absl::string_view text) : text_(text) {}
  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    size_t k = std::min(n, text_.size());
    std::memcpy(buf, text_.data(), k);
    text_.remove_prefix(k);
    return k;
  }
  absl::string_view Borrow(size_t n, size_t padding) override {
    if (text_.size() <= padding) return {};
    absl::string_view lent = text_.substr(0, std::min(n, text_.size() - padding));
    text_.remove_prefix(lent.size());
    return lent;
  }

 private:
  absl::string_view text_;
};

absl::Status IoError(absl::string_view source, absl::string_view problem) {
  return EsError(500, "io_exception", absl::StrCat(source, ": ", problem));
}

class FdSource : public ByteSource {
 public:
  FdSource(int fd, std::string name, bool owned)
      : fd_(fd), name_(std::move(name)), owned_(owned) {}
  ~FdSource() override {
    if (owned_) close(fd_);
  }
  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    size_t total = 0;
    while (total < n) {
      ssize_t r = read(fd_, buf + total, n - total);
      if (r < 0) {
        if (errno == EINTR) continue;
        return IoError(name_, std::strerror(errno));
      }
      if (r == 0) break;
      total += static_cast<size_t>(r);
    }
    return total;
  }

 private:
  int fd_;
  std::string name_;
  bool owned_;
};

absl::StatusOr<std::unique_ptr<ByteSource>> OpenFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError(path, std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    close(fd);
    return IoError(path, "is a directory, not a dump file");
  }
  return std::unique_ptr<ByteSource>(new FdSource(fd, path, true));
}

}  // namespace

std::unique_ptr<ByteSource> NewStringSource(absl::string_view text) {
  return std::make_unique<StringSource>(text);
}

std::unique_ptr<ByteSource> NewFdSource(int fd, std::string name, bool owned) {
  return std::make_unique<FdSource>(fd, std::move(name), owned);
}

absl::StatusOr<std::unique_ptr<ByteSource>> OpenFileSource(
    const std::string& path) {
  return OpenFile(path);
}

}  // namespace clout
