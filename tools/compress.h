// Streaming gzip and zstd compression of a byte stream into a FILE, for
// `clout generate --compress` (the loader reads both back: engine/loader.h).
#ifndef CLOUT_TOOLS_COMPRESS_H_
#define CLOUT_TOOLS_COMPRESS_H_

#include <cstdio>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clout {

// Compresses what is written to it into `out` (not owned; left open).
// Not thread-safe.
class CompressingWriter {
 public:
  virtual ~CompressingWriter() = default;
  // Compresses `data` (buffered: it may reach `out` later). Returns an
  // io_exception (500) if `out` failed.
  virtual absl::Status Write(absl::string_view data) = 0;
  // Ends the stream (gzip's trailer, zstd's last frame block and checksum)
  // and flushes `out`. Call once; the writer takes no more data.
  virtual absl::Status Finish() = 0;
};

// `format` is "gzip" (one member, level 6) or "zstd" (level 3, with a
// content checksum). Any other name is 400 illegal_argument_exception.
absl::StatusOr<std::unique_ptr<CompressingWriter>> NewCompressingWriter(
    absl::string_view format, std::FILE* out);

}  // namespace clout

#endif  // CLOUT_TOOLS_COMPRESS_H_
