// gzip bodies through zlib: HTTP's `Content-Encoding: gzip` both ways.
// Pure and thread-safe.
#ifndef CLOUT_SERVER_GZIP_H_
#define CLOUT_SERVER_GZIP_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clout {

// Returns `data` gzip-compressed (one member, default level).
std::string GzipCompress(absl::string_view data);

// Returns the decompressed bytes of `data`, one or more concatenated gzip
// members. Errors: 400 parse_exception naming the compressed offset for data
// that is not gzip, is corrupt or ends early; 413 content_too_long_exception
// once the output would pass `max_output_bytes` (a decompression bomb stops
// there, having held at most about twice that in memory); 500 if zlib
// cannot start.
absl::StatusOr<std::string> GzipDecompress(absl::string_view data,
                                           size_t max_output_bytes);

}  // namespace clout

#endif  // CLOUT_SERVER_GZIP_H_
