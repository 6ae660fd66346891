#include "server/gzip.h"

#include <zlib.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "engine/decompress.h"
#include "engine/error.h"

namespace clout {

std::string GzipCompress(absl::string_view data) {
  z_stream stream{};
  // 15 window bits + 16: a gzip header and trailer rather than zlib's.
  if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    return std::string();  // only on out of memory
  }
  std::string out;
  out.resize(deflateBound(&stream, data.size()));
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  deflate(&stream, Z_FINISH);  // deflateBound guarantees room for all
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

absl::StatusOr<std::string> GzipDecompress(absl::string_view data,
                                           size_t max_output_bytes) {
  std::string out;
  DecompressFailure failure;
  if (DecompressAll(Compression::kGzip, data, max_output_bytes, &out,
                    &failure)) {
    return out;
  }
  if (failure.kind == DecompressFailure::kInternal) {
    return EsError(500, "exception", absl::StrCat("gzip: ", failure.what));
  }
  if (failure.kind == DecompressFailure::kTooLarge) {
    return EsError(413, "content_too_long_exception",
                   absl::StrCat("request body decompresses to more than [",
                                max_output_bytes, "] bytes"));
  }
  return EsError(400, "parse_exception",
                 absl::StrCat("request body is not valid gzip: ",
                              failure.kind == DecompressFailure::kTruncated
                                  ? std::string("it ends early")
                                  : failure.what,
                              " at compressed offset ", failure.offset));
}

}  // namespace clout
