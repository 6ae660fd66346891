// Compressed dumps: is a load bounded by decompression, or by the sum of
// decompression and parsing? The loader decompresses on a thread of its
// own (engine/decompress.h), so on two cores a compressed load should take
// about max(decompress, parse), not decompress + parse.
//
//   bazel run --config=opt //bench:compressed_load_bench --
//       --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// One dump of 500,000 influencers over 4 jobs (~150 MB), compressed once
// with gzip (zlib level 6) and zstd (level 3). Cases, all from memory, one
// parsing thread:
//   BM_Load/plain          parse + commit of the plain text
//   BM_Load/gzip, /zstd    the same from the compressed bytes
//   BM_Decompress/gzip,... the decompressing source drained, nothing parsed
// bench/README.md quotes load(c) / max(decompress(c), load(plain)): 1.0 is
// perfect overlap; (decompress + load) / max(...) is what no overlap costs.
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "benchmark/benchmark.h"
#include "engine/decompress.h"
#include "engine/loader.h"
#include "engine/store.h"
#include "tools/generator.h"

namespace clout {
namespace {

const std::string& Dump() {
  static const std::string* dump = [] {
    GeneratorOptions options;
    options.records = 500'000;
    options.jobs = 4;
    options.seed = 42;
    return new std::string(GenerateDumpString(options));
  }();
  return *dump;
}

std::string Gzip(const std::string& text) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, text.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string Zstd(const std::string& text) {
  std::string out(ZSTD_compressBound(text.size()), '\0');
  out.resize(ZSTD_compress(out.data(), out.size(), text.data(), text.size(), 3));
  return out;
}

// 0 plain, 1 gzip, 2 zstd.
const std::string& Input(int which) {
  static const std::string* gz = new std::string(Gzip(Dump()));
  static const std::string* zst = new std::string(Zstd(Dump()));
  return which == 0 ? Dump() : which == 1 ? *gz : *zst;
}

class MemorySource : public ByteSource {
 public:
  explicit MemorySource(absl::string_view text) : text_(text) {}
  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    const size_t k = std::min(n, text_.size());
    std::memcpy(buf, text_.data(), k);
    text_.remove_prefix(k);
    return k;
  }

 private:
  absl::string_view text_;
};

void BM_Load(benchmark::State& state) {
  const std::string& input = Input(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    InfluencerStore store;
    absl::StatusOr<LoadReport> report = LoadString(store, input);
    if (!report.ok()) state.SkipWithError(report.status().ToString().c_str());
    benchmark::DoNotOptimize(report);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * Dump().size()));
  state.counters["input_mb"] = input.size() / 1e6;
}
BENCHMARK(BM_Load)->ArgName("plain0_gzip1_zstd2")->DenseRange(0, 2)
    ->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Decompress(benchmark::State& state) {
  const int which = static_cast<int>(state.range(0));
  const std::string& input = Input(which);
  std::string buffer(size_t{16} << 20, '\0');
  for (auto _ : state) {
    std::unique_ptr<ByteSource> source = NewDecompressingSource(
        which == 1 ? Compression::kGzip : Compression::kZstd,
        std::make_unique<MemorySource>(input), "bench", {});
    size_t total = 0;
    for (;;) {
      absl::StatusOr<size_t> n = source->Read(buffer.data(), buffer.size());
      if (!n.ok()) state.SkipWithError("decompression failed");
      if (!n.ok() || *n == 0) break;
      total += *n;
    }
    if (total != Dump().size()) state.SkipWithError("wrong size");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * Dump().size()));
}
BENCHMARK(BM_Decompress)->ArgName("gzip1_zstd2")->DenseRange(1, 2)
    ->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace clout
