// ByteSource: where the loader's bytes come from (a string, a file, a
// decompressor). Internal to the loader.
#ifndef CLOUT_ENGINE_BYTE_SOURCE_H_
#define CLOUT_ENGINE_BYTE_SOURCE_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clout {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to `n` bytes (n > 0) into `buf`; returns how many, 0 only at
  // the end of input, or the error that stopped the source.
  virtual absl::StatusOr<size_t> Read(char* buf, size_t n) = 0;
  // For a source already in memory: lends its next bytes in place, at most
  // `n` of them, contiguous with those lent before, and only while at least
  // `padding` more readable bytes follow them in memory. Returns an empty
  // view once the rest cannot be lent that way; Read() then copies it.
  virtual absl::string_view Borrow(size_t n, size_t padding) {
    (void)n;
    (void)padding;
    return {};
  }
};

// A source over `text`, which must outlive it; it lends its bytes (Borrow)
// while the padding allows.
std::unique_ptr<ByteSource> NewStringSource(absl::string_view text);

// A source reading file descriptor `fd` (closed with the source when
// `owned`); errors are 500 io_exception naming `name`.
std::unique_ptr<ByteSource> NewFdSource(int fd, std::string name, bool owned);

// A source reading the file at `path`. Errors: 500 io_exception naming the
// path when it cannot be opened or is a directory.
absl::StatusOr<std::unique_ptr<ByteSource>> OpenFileSource(
    const std::string& path);

}  // namespace clout

#endif  // CLOUT_ENGINE_BYTE_SOURCE_H_
