// Compressed dumps: gzip (zlib) and zstd, recognised by their magic bytes,
// never by a file's name. Internal to the loader (loader.h describes what
// users see: LoadOptions' limits and the errors).
#ifndef CLOUT_ENGINE_DECOMPRESS_H_
#define CLOUT_ENGINE_DECOMPRESS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/byte_source.h"

namespace clout {

enum class Compression { kNone, kGzip, kZstd };

// "gzip", "zstd" or "" for kNone.
absl::string_view CompressionName(Compression compression);

// The compression whose magic bytes start `prefix` (a source's first bytes:
// gzip's 1f 8b, zstd's 28 b5 2f fd). A prefix shorter than the magic is
// kNone. Pure.
Compression DetectCompression(absl::string_view prefix);

struct DecompressLimits {
  // Fail once more than this many bytes came out (0: no limit).
  uint64_t max_decompressed_bytes = 0;
  // Fail once the output is more than this many times the input read so
  // far, counted only past `ratio_floor_bytes` of output (0: no limit).
  double max_expansion_ratio = 0;
  uint64_t ratio_floor_bytes = uint64_t{256} << 20;
};

// A source that decompresses `inner` (which holds `compression`'s stream;
// not kNone) on a thread of its own, a few MiB ahead of the reader, so
// that a load takes as long as the slower of the two rather than their
// sum. Multi-member gzip files and multi-frame zstd files read as the
// concatenation of their members.
//
// Read() returns the decompressed bytes, then 0 at the end; or, at the
// point where the stream stops making sense, 400 parse_exception naming
// `name` and the compressed byte offset (corrupt data, a stream that ends
// inside a member or frame, data after the last gzip member that is not
// another member), 413 content_too_long_exception past a limit, or
// `inner`'s own read error. The thread stops when the source is
// destroyed. Read() is for one thread at a time.
std::unique_ptr<ByteSource> NewDecompressingSource(
    Compression compression, std::unique_ptr<ByteSource> inner,
    std::string name, DecompressLimits limits);

// Reads `inner`'s first bytes to detect its compression, and returns a
// source of its content: `inner` itself (with the bytes read put back in
// front) or a decompressing one. `*compression` (if not null) says which.
// Errors: `inner`'s read error.
absl::StatusOr<std::unique_ptr<ByteSource>> DetectAndDecompress(
    std::unique_ptr<ByteSource> inner, std::string name,
    DecompressLimits limits, Compression* compression);

// Why DecompressAll stopped.
struct DecompressFailure {
  enum Kind {
    kCorrupt,    // data that is not `compression`'s stream
    kTruncated,  // the data ends inside a member or frame
    kTooLarge,   // the output would pass max_output_bytes
    kInternal,   // the decoder could not start (out of memory)
  };
  Kind kind = kCorrupt;
  std::string what;     // for kCorrupt: the decompressor's words
  uint64_t offset = 0;  // compressed bytes read when it stopped
};

// Decompresses all of `data` (one or more gzip members or zstd frames, as
// `compression` says; not kNone) on the calling thread, with the same
// decoders as NewDecompressingSource. Returns true with the bytes in *out;
// or false with *failure set, leaving *out holding what came out before
// the failure. `max_output_bytes` is a true limit (0: nothing may come
// out), unlike DecompressLimits' 0 for none. Stops before the output
// passes it, so a bomb never holds more than about twice that in memory
// (the string's growth). Pure and thread-safe.
bool DecompressAll(Compression compression, absl::string_view data,
                   uint64_t max_output_bytes, std::string* out,
                   DecompressFailure* failure);

}  // namespace clout

#endif  // CLOUT_ENGINE_DECOMPRESS_H_
