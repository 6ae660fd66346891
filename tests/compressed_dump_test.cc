// Compressed dumps (gzip through zlib, zstd through libzstd): detected by
// magic bytes, streamed through a decompressing thread, and refused whole
// when corrupt, truncated or a bomb.
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "engine/decompress.h"
#include "engine/error.h"
#include "engine/loader.h"
#include "engine/request.h"
#include "engine/response.h"
#include "engine/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/generator.h"

namespace clout {
namespace {

using ::testing::HasSubstr;

std::string Gzip(absl::string_view text, int level = 6) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY),
            Z_OK);
  std::string out(deflateBound(&z, text.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string Zstd(absl::string_view text, bool checksum = true) {
  ZSTD_CCtx* ctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(ctx, ZSTD_c_checksumFlag, checksum ? 1 : 0);
  std::string out(ZSTD_compressBound(text.size()), '\0');
  const size_t n =
      ZSTD_compress2(ctx, out.data(), out.size(), text.data(), text.size());
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  ZSTD_freeCCtx(ctx);
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string TempFile(absl::string_view name, absl::string_view bytes) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

// Every result of every job, as the API would page them all.
std::string Everything(const InfluencerStore& store) {
  std::vector<std::string> ids;
  const std::shared_ptr<const StoreVersion> current = store.Current();
  for (const auto& [id, job] : current->jobs) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  std::string out;
  for (const std::string& id : ids) {
    InfluencersRequest request;
    request.job_id = id;
    request.size = 10000;
    request.sort = "timestamp";
    absl::StatusOr<InfluencersPage> page = store.GetInfluencers(request);
    EXPECT_TRUE(page.ok());
    absl::StrAppend(&out, id, ":", InfluencersJson(*page), "\n");
  }
  return out;
}

const std::string& Sample() {
  static const std::string* text =
      new std::string(ReadFile("data/it_ops_new_kpi.ndjson"));
  return *text;
}

// A synthetic dump of several MiB (several decompressed chunks).
const std::string& Big() {
  static const std::string* text = [] {
    GeneratorOptions options;
    options.records = 40000;
    options.jobs = 3;
    options.seed = 7;
    return new std::string(GenerateDumpString(options));
  }();
  return *text;
}

std::string Plain(absl::string_view text) {
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = LoadString(store, text);
  EXPECT_TRUE(report.ok()) << report.status();
  return Everything(store);
}

TEST(CompressedDumpTest, GzipAndZstdLoadAsThePlainText) {
  for (const std::string* text : {&Sample(), &Big()}) {
    const std::string want = Plain(*text);
    for (const std::string& packed : {Gzip(*text), Zstd(*text)}) {
      // From memory, a file (one thread and parallel), and the report.
      InfluencerStore a;
      absl::StatusOr<LoadReport> report = LoadString(a, packed);
      ASSERT_TRUE(report.ok()) << report.status();
      EXPECT_TRUE(Everything(a) == want);
      EXPECT_EQ(report->bytes, text->size());
      EXPECT_EQ(report->compression, packed == Gzip(*text) ? "gzip" : "zstd");
      EXPECT_EQ(report->format, DumpFormat::kNdjson);
      const std::string path = TempFile("dump.compressed", packed);
      for (int threads : {1, 2}) {
        InfluencerStore b;
        LoadOptions options;
        options.threads = threads;
        report = LoadFile(b, path, options);
        ASSERT_TRUE(report.ok()) << report.status();
        EXPECT_TRUE(Everything(b) == want);
      }
    }
  }
}

TEST(CompressedDumpTest, MultiMemberGzipAndMultiFrameZstdConcatenate) {
  const std::string& text = Big();
  const size_t cut1 = text.find('\n', text.size() / 3) + 1;
  const size_t cut2 = text.size() / 3 * 2 + 17;  // inside a line
  std::vector<absl::string_view> parts = {
      absl::string_view(text).substr(0, cut1),
      absl::string_view(text).substr(cut1, cut2 - cut1),
      absl::string_view(text).substr(cut2)};
  std::string gz, zst;
  for (absl::string_view part : parts) {
    gz += Gzip(part);
    zst += Zstd(part);
  }
  gz += Gzip("");  // an empty member is still a member
  const std::string want = Plain(text);
  for (const std::string* packed : {&gz, &zst}) {
    InfluencerStore store;
    absl::StatusOr<LoadReport> report = LoadString(store, *packed);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_TRUE(Everything(store) == want);
  }
}

TEST(CompressedDumpTest, HighlyCompressedInputIsReadToTheEnd) {
  // A few KB that inflate to 24 MiB: the input is used up long before the
  // output, which the inflater still holds when the input ends.
  const std::string line = absl::StrCat(
      R"({"job_id":"r","result_type":"influencer","influencer_field_name":"f",)",
      R"("influencer_field_value":"v","influencer_score":1.5,"timestamp":1454943600000})",
      "\n");
  std::string text;
  while (text.size() < (size_t{24} << 20)) text += line;
  for (const std::string& packed : {Gzip(text, 9), Zstd(text)}) {
    ASSERT_LT(packed.size(), size_t{200} << 10);
    InfluencerStore store;
    absl::StatusOr<LoadReport> report = LoadString(store, packed);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->bytes, text.size());
    EXPECT_EQ(report->documents, text.size() / line.size());
  }
}

TEST(CompressedDumpTest, ABombOfDocumentsStopsAtTheMemoryBudget) {
  // A few KB of gzip that inflate to 24 MiB of documents: the rows it
  // stages pass the budget long before the decompression limits apply.
  const std::string line = absl::StrCat(
      R"({"job_id":"b","result_type":"influencer","influencer_field_name":"f",)",
      R"("influencer_field_value":"v","influencer_score":1.5,"timestamp":)");
  std::string text;
  for (int64_t i = 0; text.size() < (size_t{24} << 20); ++i) {
    absl::StrAppend(&text, line, 1454943600000 + i * 1000, "}\n");
  }
  const std::string packed = Gzip(text, 9);
  ASSERT_LT(packed.size(), size_t{4} << 20);
  InfluencerStore store;
  ASSERT_TRUE(LoadString(store, Sample()).ok());
  const std::string before = Everything(store);
  LoadOptions options;
  options.memory_budget_bytes = size_t{8} << 20;
  absl::StatusOr<LoadReport> report = LoadString(store, packed, options);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(HttpStatusOf(report.status()), 429);
  EXPECT_EQ(ErrorTypeOf(report.status()), "circuit_breaking_exception");
  EXPECT_TRUE(Everything(store) == before);
}

TEST(CompressedDumpTest, EveryTruncationFailsWholeNamingTheOffset) {
  const std::string gz = Gzip(Sample());
  const std::string zst = Zstd(Sample());
  for (const std::string* packed : {&gz, &zst}) {
    for (size_t keep = 4; keep < packed->size(); keep += 7) {
      InfluencerStore store;
      LoadOptions options;
      options.source_name = "cut.gz";
      options.lenient = true;  // even lenient loads refuse a broken stream
      absl::StatusOr<LoadReport> report =
          LoadString(store, packed->substr(0, keep), options);
      ASSERT_FALSE(report.ok()) << keep;
      EXPECT_EQ(HttpStatusOf(report.status()), 400);
      EXPECT_EQ(ErrorTypeOf(report.status()), "parse_exception");
      EXPECT_THAT(report.status().message(), HasSubstr("cut.gz: "));
      EXPECT_THAT(report.status().message(), HasSubstr("compressed byte "));
      EXPECT_TRUE(store.Current()->jobs.empty()) << keep;
    }
  }
  InfluencerStore store;
  absl::StatusOr<LoadReport> report =
      LoadString(store, gz.substr(0, gz.size() - 3));
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.status().message(),
              HasSubstr("the gzip stream ends inside a member at compressed "
                        "byte " + std::to_string(gz.size() - 3)));
}

TEST(CompressedDumpTest, BitFlipsAreCaughtByTheChecksums) {
  const std::string gz = Gzip(Sample());
  const std::string zst = Zstd(Sample(), /*checksum=*/true);
  std::mt19937 rng(11);
  for (const std::string* packed : {&gz, &zst}) {
    int refused = 0;
    for (int round = 0; round < 200; ++round) {
      std::string flipped = *packed;
      // Past the headers: flips there can change only flags or names.
      const size_t at = 20 + rng() % (flipped.size() - 20);
      flipped[at] = static_cast<char>(flipped[at] ^ (1 << (rng() % 8)));
      InfluencerStore store;
      LoadOptions options;
      options.lenient = true;
      absl::StatusOr<LoadReport> report = LoadString(store, flipped, options);
      if (!report.ok()) {
        ++refused;
        EXPECT_TRUE(store.Current()->jobs.empty());
      } else {
        // A flip the format cannot see must still give exactly the text.
        EXPECT_TRUE(Everything(store) == Plain(Sample())) << at;
      }
    }
    EXPECT_GT(refused, 190);
  }
}

TEST(CompressedDumpTest, DataAfterTheLastMemberIsRefused) {
  InfluencerStore store;
  absl::StatusOr<LoadReport> report =
      LoadString(store, Gzip(Sample()) + "trailing words\n");
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.status().message(),
              HasSubstr("data that is not a gzip member after 1 member"));
  EXPECT_TRUE(store.Current()->jobs.empty());
}

// The in-memory decoder (the server's gzip bodies) shares the loader's
// decoders: concatenation, truncation, trailing data and the output limit.
TEST(CompressedDumpTest, DecompressAllInMemory) {
  const std::string text = Sample();
  for (Compression c : {Compression::kGzip, Compression::kZstd}) {
    auto pack = [c](absl::string_view t) {
      return c == Compression::kGzip ? Gzip(t) : Zstd(t);
    };
    const std::string packed = pack(text) + pack("tail\n");
    std::string out;
    DecompressFailure failure;
    ASSERT_TRUE(DecompressAll(c, packed, 1 << 30, &out, &failure))
        << failure.what;
    EXPECT_EQ(out, text + "tail\n");
    for (size_t cut : {size_t{1}, packed.size() / 3, packed.size() - 1}) {
      EXPECT_FALSE(DecompressAll(c, packed.substr(0, cut), 1 << 30, &out,
                                 &failure)) << cut;
      EXPECT_EQ(failure.kind, DecompressFailure::kTruncated) << cut;
      EXPECT_EQ(failure.offset, cut);
    }
    ASSERT_FALSE(DecompressAll(c, packed, text.size(), &out, &failure));
    EXPECT_EQ(failure.kind, DecompressFailure::kTooLarge);
    EXPECT_EQ(out.size(), text.size());  // never past the limit
    ASSERT_FALSE(DecompressAll(c, pack(text) + "junk", 1 << 30, &out, &failure));
    EXPECT_EQ(failure.kind, DecompressFailure::kCorrupt);
    // No limit to speak of, and a limit of exactly the output.
    ASSERT_TRUE(DecompressAll(c, packed, UINT64_MAX, &out, &failure))
        << failure.what;
    EXPECT_EQ(out, text + "tail\n");
    ASSERT_TRUE(DecompressAll(c, packed, out.size(), &out, &failure));
    ASSERT_FALSE(DecompressAll(c, packed, 0, &out, &failure));
    EXPECT_EQ(failure.kind, DecompressFailure::kTooLarge);
    EXPECT_TRUE(out.empty());
  }
  std::string out;
  DecompressFailure failure;
  ASSERT_FALSE(DecompressAll(Compression::kGzip, Gzip(text).substr(0, 100),
                             1 << 30, &out, &failure));
  EXPECT_EQ(failure.kind, DecompressFailure::kTruncated);
  EXPECT_EQ(failure.offset, 100u);
}

TEST(CompressedDumpTest, BombsStopAtTheLimits) {
  // 300 MiB of blank lines as 300 gzip members of 1 MiB each: about 300 KB.
  const std::string member = Gzip(std::string(size_t{1} << 20, '\n'), 9);
  std::string bomb;
  for (int i = 0; i < 300; ++i) bomb += member;
  ASSERT_LT(bomb.size(), size_t{400} << 10);
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = LoadString(store, bomb);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(HttpStatusOf(report.status()), 413);
  EXPECT_EQ(ErrorTypeOf(report.status()), "content_too_long_exception");
  EXPECT_THAT(report.status().message(), HasSubstr("decompression bomb"));

  // The same file loads once the ratio is lifted (and holds nothing).
  LoadOptions unlimited;
  unlimited.max_expansion_ratio = 0;
  report = LoadString(store, bomb, unlimited);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->documents, 0u);

  // An absolute limit.
  LoadOptions small;
  small.max_decompressed_bytes = 1 << 20;
  report = LoadString(store, Gzip(Big()), small);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(HttpStatusOf(report.status()), 413);
  EXPECT_THAT(report.status().message(), HasSubstr("max_decompressed_bytes"));
}

TEST(CompressedDumpTest, ABadDocumentStopsTheLoadAndTheDecompressor) {
  // A strict load stops at line 1; the decompressing thread must stop
  // with it, not inflate the remaining megabytes (the test would hang or
  // take long).
  std::string text = "{\"job_id\":1}\n" + Big() + Big() + Big();
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = LoadString(store, Zstd(text));
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.status().message(), HasSubstr("<string>:1: "));
  // Line numbers count decompressed lines.
  report = LoadString(store, Gzip(Sample() + "{\"job_id\":1}\n"));
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.status().message(), HasSubstr("<string>:33: "));
}

TEST(CompressedDumpTest, OtherFormatsCompressToo) {
  std::string array = "[";
  size_t start = 0;
  bool first = true;
  const std::string& text = Sample();
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (!first) array += ",\n";
    array += text.substr(start, end - start);
    first = false;
    start = end + 1;
  }
  array += "]";
  InfluencerStore store;
  absl::StatusOr<LoadReport> report = LoadString(store, Gzip(array));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->format, DumpFormat::kJsonArray);
  EXPECT_TRUE(Everything(store) == Plain(Sample()));
}

TEST(CompressedDumpTest, ShortAndUncompressedSourcesAreUntouched) {
  // A file shorter than a magic, and one that starts like gzip's first
  // byte only.
  InfluencerStore store;
  EXPECT_TRUE(LoadString(store, "").ok());
  EXPECT_TRUE(LoadString(store, "\n").ok());
  absl::StatusOr<LoadReport> report = LoadString(store, "\x1f");
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(ErrorTypeOf(report.status()), "x_content_parse_exception");
  const std::string path = TempFile("tiny.ndjson", "\n\n");
  EXPECT_TRUE(LoadFile(store, path).ok());
}

}  // namespace
}  // namespace clout
