#include "tools/compress.h"

#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/error.h"

namespace clout {
namespace {

constexpr size_t kOutBytes = size_t{1} << 18;

absl::Status WriteAll(std::FILE* out, const char* data, size_t n) {
  if (n > 0 && std::fwrite(data, 1, n, out) != n) {
    return EsError(500, "io_exception",
                   absl::StrCat("write failed: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status Flush(std::FILE* out) {
  if (std::fflush(out) != 0) {
    return EsError(500, "io_exception",
                   absl::StrCat("write failed: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

class GzipWriter : public CompressingWriter {
 public:
  explicit GzipWriter(std::FILE* out) : out_(out), buffer_(kOutBytes, '\0') {
    std::memset(&z_, 0, sizeof z_);
    ok_ = deflateInit2(&z_, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) ==
          Z_OK;
  }
  ~GzipWriter() override { deflateEnd(&z_); }

  absl::Status Write(absl::string_view data) override {
    return Deflate(data, Z_NO_FLUSH);
  }
  absl::Status Finish() override {
    if (absl::Status s = Deflate({}, Z_FINISH); !s.ok()) return s;
    return Flush(out_);
  }

 private:
  absl::Status Deflate(absl::string_view data, int flush) {
    if (!ok_) return EsError(500, "exception", "zlib could not start");
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z_.avail_in = static_cast<uInt>(data.size());
    int ret;
    do {
      z_.next_out = reinterpret_cast<Bytef*>(buffer_.data());
      z_.avail_out = static_cast<uInt>(buffer_.size());
      ret = deflate(&z_, flush);
      if (ret == Z_STREAM_ERROR) {
        return EsError(500, "exception", "zlib failed to compress");
      }
      if (absl::Status s = WriteAll(out_, buffer_.data(),
                                    buffer_.size() - z_.avail_out);
          !s.ok()) {
        return s;
      }
    } while (z_.avail_out == 0 || (flush == Z_FINISH && ret != Z_STREAM_END));
    return absl::OkStatus();
  }

  std::FILE* out_;
  std::string buffer_;
  z_stream z_;
  bool ok_ = false;
};

class ZstdWriter : public CompressingWriter {
 public:
  explicit ZstdWriter(std::FILE* out)
      : out_(out), buffer_(ZSTD_CStreamOutSize(), '\0'), ctx_(ZSTD_createCCtx()) {
    if (ctx_ != nullptr) {
      ZSTD_CCtx_setParameter(ctx_, ZSTD_c_compressionLevel, 3);
      ZSTD_CCtx_setParameter(ctx_, ZSTD_c_checksumFlag, 1);
    }
  }
  ~ZstdWriter() override { ZSTD_freeCCtx(ctx_); }

  absl::Status Write(absl::string_view data) override {
    return Compress(data, ZSTD_e_continue);
  }
  absl::Status Finish() override {
    if (absl::Status s = Compress({}, ZSTD_e_end); !s.ok()) return s;
    return Flush(out_);
  }

 private:
  absl::Status Compress(absl::string_view data, ZSTD_EndDirective mode) {
    if (ctx_ == nullptr) return EsError(500, "exception", "zstd could not start");
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    for (;;) {
      ZSTD_outBuffer out{buffer_.data(), buffer_.size(), 0};
      const size_t left = ZSTD_compressStream2(ctx_, &out, &in, mode);
      if (ZSTD_isError(left)) {
        return EsError(500, "exception",
                       absl::StrCat("zstd: ", ZSTD_getErrorName(left)));
      }
      if (absl::Status s = WriteAll(out_, buffer_.data(), out.pos); !s.ok()) {
        return s;
      }
      const bool done = mode == ZSTD_e_end ? left == 0 : in.pos == in.size;
      if (done) return absl::OkStatus();
    }
  }

  std::FILE* out_;
  std::string buffer_;
  ZSTD_CCtx* ctx_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CompressingWriter>> NewCompressingWriter(
    absl::string_view format, std::FILE* out) {
  if (format == "gzip") return std::make_unique<GzipWriter>(out);
  if (format == "zstd") return std::make_unique<ZstdWriter>(out);
  return EsError(400, "illegal_argument_exception",
                 absl::StrCat("--compress must be gzip or zstd, not [", format,
                              "]"));
}

}  // namespace clout
