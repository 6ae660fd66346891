#include "engine/decompress.h"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/error.h"

namespace clout {

absl::string_view CompressionName(Compression compression) {
  switch (compression) {
    case Compression::kGzip:
      return "gzip";
    case Compression::kZstd:
      return "zstd";
    case Compression::kNone:
      break;
  }
  return "";
}

Compression DetectCompression(absl::string_view prefix) {
  if (prefix.size() >= 2 && prefix[0] == '\x1f' && prefix[1] == '\x8b') {
    return Compression::kGzip;
  }
  if (prefix.size() >= 4 && prefix.substr(0, 4) == "\x28\xb5\x2f\xfd") {
    return Compression::kZstd;
  }
  return Compression::kNone;
}

namespace {

constexpr size_t kInputBytes = size_t{1} << 20;
constexpr size_t kChunkBytes = size_t{4} << 20;
constexpr size_t kChunksAhead = 2;

// Bytes put back in front of a source.
class PrefixedSource : public ByteSource {
 public:
  PrefixedSource(std::string prefix, std::unique_ptr<ByteSource> inner)
      : prefix_(std::move(prefix)), inner_(std::move(inner)) {}
  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    if (next_ < prefix_.size()) {
      const size_t k = std::min(n, prefix_.size() - next_);
      std::memcpy(buf, prefix_.data() + next_, k);
      next_ += k;
      return k;
    }
    return inner_->Read(buf, n);
  }

 private:
  std::string prefix_;
  size_t next_ = 0;
  std::unique_ptr<ByteSource> inner_;
};

// One decompressor step over the input it is given.
class Inflater {
 public:
  virtual ~Inflater() = default;
  // Decompresses from *in (advancing it) into *out (appending, up to its
  // capacity). Returns an error message, or "" on progress.
  virtual std::string Step(absl::string_view* in, std::string* out,
                           size_t capacity) = 0;
  // Whether the input may end here: no member or frame is open.
  virtual bool AtBoundary() const = 0;
  // Whether the decoder could be set up (false only without memory).
  virtual bool Started() const = 0;
};

class GzipInflater : public Inflater {
 public:
  GzipInflater() {
    std::memset(&z_, 0, sizeof z_);
    ok_ = inflateInit2(&z_, 15 + 16) == Z_OK;  // gzip wrapper only
  }
  ~GzipInflater() override { inflateEnd(&z_); }

  std::string Step(absl::string_view* in, std::string* out,
                   size_t capacity) override {
    if (!ok_) return "zlib could not start";
    const size_t before = out->size();
    out->resize(capacity);
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in->data()));
    z_.avail_in = static_cast<uInt>(std::min<size_t>(in->size(), UINT32_MAX));
    z_.next_out = reinterpret_cast<Bytef*>(out->data() + before);
    z_.avail_out = static_cast<uInt>(capacity - before);
    const size_t given = z_.avail_in;
    const bool between_members = !open_ && members_ > 0;
    if (given > 0) open_ = true;
    const int ret = inflate(&z_, Z_NO_FLUSH);
    in->remove_prefix(given - z_.avail_in);
    out->resize(capacity - z_.avail_out);
    if (ret == Z_STREAM_END) {
      // A member ended; another may follow (multi-member files).
      open_ = false;
      ++members_;
      inflateReset(&z_);
      return "";
    }
    if (ret == Z_OK || ret == Z_BUF_ERROR) return "";
    if (between_members && ret == Z_DATA_ERROR) {
      return absl::StrCat("data that is not a gzip member after ", members_,
                          " member", members_ == 1 ? "" : "s");
    }
    return absl::StrCat("zlib: ",
                        z_.msg != nullptr ? z_.msg : "error " + std::to_string(ret));
  }

  bool AtBoundary() const override { return !open_; }
  bool Started() const override { return ok_; }

 private:
  z_stream z_;
  bool ok_ = false;
  bool open_ = false;  // inside a member
  uint64_t members_ = 0;  // members ended
};

class ZstdInflater : public Inflater {
 public:
  ZstdInflater() : ctx_(ZSTD_createDCtx()) {}
  ~ZstdInflater() override { ZSTD_freeDCtx(ctx_); }

  std::string Step(absl::string_view* in, std::string* out,
                   size_t capacity) override {
    if (ctx_ == nullptr) return "zstd could not start";
    const size_t before = out->size();
    out->resize(capacity);
    ZSTD_inBuffer input{in->data(), in->size(), 0};
    ZSTD_outBuffer output{out->data(), capacity, before};
    const size_t ret = ZSTD_decompressStream(ctx_, &output, &input);
    in->remove_prefix(input.pos);
    out->resize(output.pos);
    if (ZSTD_isError(ret)) return absl::StrCat("zstd: ", ZSTD_getErrorName(ret));
    // 0: a frame is complete and flushed. (A call that took and gave
    // nothing says nothing: after a frame it asks for the next header.)
    if (input.pos > 0 || output.pos > before) open_ = ret != 0;
    return "";
  }

  bool AtBoundary() const override { return !open_; }
  bool Started() const override { return ctx_ != nullptr; }

 private:
  ZSTD_DCtx* ctx_;
  bool open_ = false;
};

// The decoder of `compression` (not kNone).
std::unique_ptr<Inflater> NewInflater(Compression compression) {
  if (compression == Compression::kGzip) return std::make_unique<GzipInflater>();
  return std::make_unique<ZstdInflater>();
}

class DecompressingSource : public ByteSource {
 public:
  DecompressingSource(Compression compression,
                      std::unique_ptr<ByteSource> inner, std::string name,
                      DecompressLimits limits)
      : compression_(compression),
        inner_(std::move(inner)),
        name_(std::move(name)),
        limits_(limits) {
    inflater_ = NewInflater(compression);
    thread_ = std::thread([this] { Produce(); });
  }

  ~DecompressingSource() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    while (next_ == current_.size()) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return !ready_.empty() || done_; });
      if (ready_.empty()) {
        if (!status_.ok()) return status_;
        return 0;
      }
      current_ = std::move(ready_.front());
      ready_.pop_front();
      next_ = 0;
      lock.unlock();
      cv_.notify_all();  // room for the producer
    }
    const size_t k = std::min(n, current_.size() - next_);
    std::memcpy(buf, current_.data() + next_, k);
    next_ += k;
    return k;
  }

 private:
  absl::Status Corrupt(absl::string_view problem) const {
    return EsError(400, "parse_exception",
                   absl::StrCat(name_, ": corrupt ",
                                CompressionName(compression_),
                                " data at compressed byte ", consumed_, " (",
                                problem, "); nothing of it was loaded"));
  }
  absl::Status Truncated() const {
    return EsError(400, "parse_exception",
                   absl::StrCat(name_, ": the ", CompressionName(compression_),
                                " stream ends inside a ",
                                compression_ == Compression::kGzip ? "member"
                                                                   : "frame",
                                " at compressed byte ", consumed_,
                                ": the file is truncated; nothing of it was "
                                "loaded"));
  }

  // Hands a full chunk to the reader; false if the reader went away.
  bool Deliver(std::string* chunk) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return ready_.size() < kChunksAhead || stop_; });
    if (stop_) return false;
    ready_.push_back(std::move(*chunk));
    lock.unlock();
    cv_.notify_all();
    chunk->clear();
    chunk->reserve(kChunkBytes);
    return true;
  }

  void Finish(absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = std::move(status);
    done_ = true;
    cv_.notify_all();
  }

  absl::Status Limits() const {
    if (limits_.max_decompressed_bytes != 0 &&
        produced_ > limits_.max_decompressed_bytes) {
      return EsError(
          413, "content_too_long_exception",
          absl::StrCat(name_, ": decompresses to more than ",
                       limits_.max_decompressed_bytes,
                       " bytes (max_decompressed_bytes)"));
    }
    if (limits_.max_expansion_ratio > 0 &&
        produced_ > limits_.ratio_floor_bytes &&
        static_cast<double>(produced_) >
            limits_.max_expansion_ratio *
                static_cast<double>(std::max<uint64_t>(consumed_, 1))) {
      return EsError(
          413, "content_too_long_exception",
          absl::StrCat(name_, ": ", consumed_, " compressed bytes gave ",
                       produced_, " bytes, more than ",
                       limits_.max_expansion_ratio,
                       " times as many: refused as a decompression bomb "
                       "(max_expansion_ratio)"));
    }
    return absl::OkStatus();
  }

  void Produce() {
    std::string input(kInputBytes, '\0');
    absl::string_view pending;
    std::string chunk;
    chunk.reserve(kChunkBytes);
    bool input_ended = false;
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return;
      }
      if (pending.empty() && !input_ended) {
        absl::StatusOr<size_t> n = inner_->Read(input.data(), input.size());
        if (!n.ok()) return Finish(n.status());
        if (*n == 0) {
          input_ended = true;
        } else {
          pending = absl::string_view(input.data(), *n);
        }
      }
      // With the input used up, the inflater may still hold output (it
      // stopped when the chunk was full): steps go on while they give.
      const size_t before_in = pending.size();
      const size_t before_out = chunk.size();
      std::string error = inflater_->Step(&pending, &chunk, kChunkBytes);
      consumed_ += before_in - pending.size();
      produced_ += chunk.size() - before_out;
      if (!error.empty()) return Finish(Corrupt(error));
      if (absl::Status s = Limits(); !s.ok()) return Finish(s);
      if (chunk.size() == kChunkBytes) {
        if (!Deliver(&chunk)) return;
        continue;
      }
      const bool progress =
          before_in != pending.size() || before_out != chunk.size();
      if (progress) continue;
      if (pending.empty() && input_ended) {
        if (!inflater_->AtBoundary()) return Finish(Truncated());
        if (!chunk.empty() && !Deliver(&chunk)) return;
        return Finish(absl::OkStatus());
      }
      if (!pending.empty()) {
        // Input and room for output, and no progress: a stuck stream.
        return Finish(Corrupt("undecodable data"));
      }
    }
  }

  const Compression compression_;
  std::unique_ptr<ByteSource> inner_;
  const std::string name_;
  const DecompressLimits limits_;
  std::unique_ptr<Inflater> inflater_;
  uint64_t consumed_ = 0;  // producer thread only
  uint64_t produced_ = 0;  // producer thread only

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> ready_;  // guarded by mu_
  bool done_ = false;              // guarded by mu_
  bool stop_ = false;              // guarded by mu_
  absl::Status status_;            // guarded by mu_

  std::string current_;  // reader only
  size_t next_ = 0;      // reader only
  std::thread thread_;   // last: started after everything above
};

}  // namespace

bool DecompressAll(Compression compression, absl::string_view data,
                   uint64_t max_output_bytes, std::string* out,
                   DecompressFailure* failure) {
  constexpr size_t kStep = 64 * 1024;
  std::unique_ptr<Inflater> inflater = NewInflater(compression);
  out->clear();
  absl::string_view pending = data;
  auto fail = [&](DecompressFailure::Kind kind, std::string what) {
    failure->kind = kind;
    failure->what = std::move(what);
    failure->offset = data.size() - pending.size();
    return false;
  };
  for (;;) {
    const size_t before_in = pending.size();
    const size_t before_out = out->size();
    // One byte past the limit is room enough to see it passed (without
    // overflowing when there is no limit to speak of).
    const uint64_t room = max_output_bytes - std::min<uint64_t>(
                                                 before_out, max_output_bytes);
    const size_t capacity =
        before_out + static_cast<size_t>(room >= kStep ? kStep : room + 1);
    if (!inflater->Started()) {
      return fail(DecompressFailure::kInternal, "the decoder could not start");
    }
    std::string error = inflater->Step(&pending, out, capacity);
    if (!error.empty()) return fail(DecompressFailure::kCorrupt, error);
    if (out->size() > max_output_bytes) {
      out->resize(max_output_bytes);
      return fail(DecompressFailure::kTooLarge, "");
    }
    if (before_in != pending.size() || before_out != out->size()) continue;
    if (!pending.empty()) {
      return fail(DecompressFailure::kCorrupt, "undecodable data");
    }
    if (!inflater->AtBoundary()) return fail(DecompressFailure::kTruncated, "");
    return true;
  }
}

std::unique_ptr<ByteSource> NewDecompressingSource(
    Compression compression, std::unique_ptr<ByteSource> inner,
    std::string name, DecompressLimits limits) {
  return std::make_unique<DecompressingSource>(compression, std::move(inner),
                                               std::move(name), limits);
}

absl::StatusOr<std::unique_ptr<ByteSource>> DetectAndDecompress(
    std::unique_ptr<ByteSource> inner, std::string name,
    DecompressLimits limits, Compression* compression) {
  std::string prefix(4, '\0');
  size_t have = 0;
  while (have < prefix.size()) {
    absl::StatusOr<size_t> n = inner->Read(prefix.data() + have,
                                           prefix.size() - have);
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    have += *n;
  }
  prefix.resize(have);
  const Compression detected = DetectCompression(prefix);
  if (compression != nullptr) *compression = detected;
  auto source =
      std::make_unique<PrefixedSource>(std::move(prefix), std::move(inner));
  if (detected == Compression::kNone) return source;
  return NewDecompressingSource(detected, std::move(source), std::move(name),
                                limits);
}

}  // namespace clout
