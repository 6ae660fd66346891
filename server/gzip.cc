#include "server/gzip.h"

#include <zlib.h>

#include <string>

#include "absl/strings/str_cat.h"
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
  size_t offset = 0;  // start of the current member
  auto corrupt = [&](const z_stream& stream, const char* what) {
    return EsError(400, "parse_exception",
                   absl::StrCat("request body is not valid gzip: ", what,
                                " at compressed offset ",
                                offset + stream.total_in));
  };
  do {
    z_stream stream{};
    if (inflateInit2(&stream, 15 + 16) != Z_OK) {
      return EsError(500, "exception", "zlib: out of memory");
    }
    stream.next_in =
        reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + offset));
    stream.avail_in = static_cast<uInt>(data.size() - offset);
    int rc = Z_OK;
    char chunk[64 * 1024];
    while (rc != Z_STREAM_END) {
      stream.next_out = reinterpret_cast<Bytef*>(chunk);
      stream.avail_out = sizeof(chunk);
      rc = inflate(&stream, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END) {
        absl::Status status = corrupt(
            stream, rc == Z_BUF_ERROR ? "it ends early" : stream.msg != nullptr
                                                              ? stream.msg
                                                              : "corrupt data");
        inflateEnd(&stream);
        return status;
      }
      const size_t produced = sizeof(chunk) - stream.avail_out;
      if (out.size() + produced > max_output_bytes) {
        inflateEnd(&stream);
        return EsError(413, "content_too_long_exception",
                       absl::StrCat("request body decompresses to more than [",
                                    max_output_bytes, "] bytes"));
      }
      out.append(chunk, produced);
    }
    offset += stream.total_in;
    inflateEnd(&stream);
  } while (offset < data.size());
  return out;
}

}  // namespace clout
