#include "engine/loader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/byte_source.h"
#include "engine/decompress.h"
#include "engine/error.h"
#include "engine/source_loader.h"

namespace clout {

absl::string_view DumpFormatName(DumpFormat format) {
  switch (format) {
    case DumpFormat::kUnknown: return "unknown";
    case DumpFormat::kNdjson: return "ndjson";
    case DumpFormat::kJsonArray: return "json_array";
    case DumpFormat::kInfluencersResponse: return "influencers_response";
    case DumpFormat::kSearchResponse: return "search_response";
    case DumpFormat::kSearchHitsNdjson: return "search_hits_ndjson";
    case DumpFormat::kBulk: return "bulk";
    case DumpFormat::kJsonStream: return "json_stream";
    case DumpFormat::kEsArchive: return "es_archive";
    case DumpFormat::kSnapshot: return "snapshot";
  }
  return "unknown";
}

namespace {


absl::StatusOr<LoadReport> Parse(ByteSource* source, std::string source_name,
                                 const LoadOptions& options,
                                 MutationBatch* batch) {
  absl::Time start = absl::Now();
  LoadReport report;
  report.source =
      options.source_name.empty() ? std::move(source_name) : options.source_name;
  loader_internal::SourceOutcome outcome;
  if (absl::Status s = loader_internal::RunSource(
          source, options, batch, &report, /*final_budget_check=*/true,
          &outcome);
      !s.ok()) {
    return s;
  }
  // The reader counted this source's rows and jobs (a batch may hold
  // several sources').
  report.format = outcome.format;
  report.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return report;
}

DecompressLimits LimitsOf(const LoadOptions& options) {
  DecompressLimits limits;
  limits.max_decompressed_bytes = options.max_decompressed_bytes;
  limits.max_expansion_ratio = options.max_expansion_ratio;
  return limits;
}

// Parses a source that may be compressed (detected from its first bytes).
absl::StatusOr<LoadReport> ParseSource(std::unique_ptr<ByteSource> source,
                                       std::string source_name,
                                       const LoadOptions& options,
                                       MutationBatch* batch) {
  const std::string& name =
      options.source_name.empty() ? source_name : options.source_name;
  Compression compression = Compression::kNone;
  absl::StatusOr<std::unique_ptr<ByteSource>> content = DetectAndDecompress(
      std::move(source), name, LimitsOf(options), &compression);
  if (!content.ok()) return content.status();
  absl::StatusOr<LoadReport> report =
      Parse(content->get(), std::move(source_name), options, batch);
  if (report.ok()) report->compression = std::string(CompressionName(compression));
  return report;
}

// Splits `text` into at most `parts` pieces, each but the last ending just
// after a newline, of roughly equal size.
std::vector<absl::string_view> SplitAtLines(absl::string_view text,
                                            size_t parts) {
  std::vector<absl::string_view> pieces;
  size_t begin = 0;
  for (size_t i = 1; i <= parts && begin < text.size(); ++i) {
    size_t end = text.size();
    if (i < parts) {
      size_t target = std::max(begin, text.size() / parts * i);
      size_t newline = text.find('\n', target);
      if (newline != absl::string_view::npos) end = newline + 1;
    }
    pieces.push_back(text.substr(begin, end - begin));
    begin = end;
  }
  return pieces;
}

// The smallest piece worth a thread of its own.
constexpr size_t kMinParallelPiece = size_t{4} << 20;

// Parses an NDJSON `text` in LoadOptions::threads pieces at once, split at
// line boundaries, and merges the pieces' rows into `batch` in source
// order. Returns nullopt, leaving `batch` untouched, whenever the pieces
// might not read exactly as the whole would, so that the caller parses the
// text sequentially instead (which then also words any error with the right
// line number): a format other than NDJSON or NDJSON search hits, any
// rejected document or error, a piece that starts with a byte order mark.
std::optional<LoadReport> ParseParallel(absl::string_view text,
                                        const std::string& source_name,
                                        const LoadOptions& options,
                                        MutationBatch* batch) {
  const size_t threads = static_cast<size_t>(std::max(options.threads, 1));
  if (threads < 2 || options.memory_budget_bytes != 0) return std::nullopt;
  std::vector<absl::string_view> pieces = SplitAtLines(
      text, std::min(threads, text.size() / kMinParallelPiece));
  if (pieces.size() < 2) return std::nullopt;
  struct Piece {
    MutationBatch batch;
    LoadReport report;
    absl::Status status;
    DumpFormat format = DumpFormat::kUnknown;
    bool read_lines = false;
  };
  std::vector<Piece> parsed(pieces.size());
  auto parse = [&](size_t i) {
    Piece& piece = parsed[i];
    piece.report.source = source_name;
    if (i > 0 && absl::StartsWith(pieces[i], "\xEF\xBB\xBF")) {
      piece.status = absl::InternalError("byte order mark inside the source");
      return;
    }
    std::unique_ptr<ByteSource> source = NewStringSource(pieces[i]);
    loader_internal::SourceOutcome outcome;
    piece.status = loader_internal::RunSource(
        source.get(), options, &piece.batch, &piece.report,
        /*final_budget_check=*/false, &outcome);
    piece.format = outcome.format;
    piece.read_lines = outcome.read_lines;
  };
  std::vector<std::thread> workers;
  for (size_t i = 1; i < pieces.size(); ++i) workers.emplace_back(parse, i);
  parse(0);
  for (std::thread& worker : workers) worker.join();

  const DumpFormat format = parsed[0].format;
  if (format != DumpFormat::kNdjson && format != DumpFormat::kSearchHitsNdjson) {
    return std::nullopt;
  }
  for (const Piece& piece : parsed) {
    const bool empty = piece.format == DumpFormat::kUnknown &&
                       piece.report.documents == 0 && piece.status.ok();
    if (empty) continue;
    if (!piece.status.ok() || piece.report.rejected != 0 ||
        piece.format != format || !piece.read_lines) {
      return std::nullopt;
    }
  }
  LoadReport report;
  report.source = source_name;
  report.format = format;
  report.threads = static_cast<int>(parsed.size());
  absl::flat_hash_set<absl::string_view> jobs;
  for (Piece& piece : parsed) {
    report.bytes += piece.report.bytes;
    report.documents += piece.report.documents;
    report.influencers_added += piece.report.influencers_added;
    for (const auto& [type, count] : piece.report.skipped) {
      report.skipped[type] += count;
    }
    for (const std::string& job : piece.report.jobs) {
      if (jobs.insert(job).second) report.jobs.push_back(job);
    }
  }
  const bool replace = batch->replace_jobs();
  *batch = std::move(parsed[0].batch);
  batch->set_replace_jobs(replace);
  for (size_t i = 1; i < parsed.size(); ++i) {
    batch->Append(std::move(parsed[i].batch));
  }
  return report;
}

// Parses `text`, in parallel pieces when LoadOptions::threads allows and
// the text is NDJSON, else sequentially.
absl::StatusOr<LoadReport> ParseText(absl::string_view text,
                                     std::string source_name,
                                     const LoadOptions& options,
                                     MutationBatch* batch) {
  absl::Time start = absl::Now();
  if (DetectCompression(text.substr(0, 4)) != Compression::kNone) {
    return ParseSource(NewStringSource(text),
                       std::move(source_name), options, batch);
  }
  std::string name =
      options.source_name.empty() ? source_name : options.source_name;
  if (std::optional<LoadReport> report =
          ParseParallel(text, name, options, batch)) {
    report->seconds = absl::ToDoubleSeconds(absl::Now() - start);
    return *std::move(report);
  }
  std::unique_ptr<ByteSource> source = NewStringSource(text);
  return Parse(source.get(), std::move(source_name), options, batch);
}

// A file mapped read-only into memory, for parsing it in parallel pieces
// (the kernel pages it in and out; it need not fit in memory).
class MappedFile {
 public:
  // Maps the regular file at `path`; null if it cannot be mapped (a pipe,
  // an empty file, an error), in which case it is read sequentially.
  static std::unique_ptr<MappedFile> Open(const std::string& path) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return nullptr;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
      close(fd);
      return nullptr;
    }
    size_t size = static_cast<size_t>(st.st_size);
    void* data = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (data == MAP_FAILED) return nullptr;
    madvise(data, size, MADV_SEQUENTIAL);
    return std::unique_ptr<MappedFile>(new MappedFile(data, size));
  }
  ~MappedFile() { munmap(data_, size_); }
  absl::string_view text() const {
    return absl::string_view(static_cast<const char*>(data_), size_);
  }

 private:
  MappedFile(void* data, size_t size) : data_(data), size_(size) {}
  void* data_;
  size_t size_;
};

absl::StatusOr<LoadReport> Finish(InfluencerStore& store,
                                  absl::StatusOr<LoadReport> report,
                                  MutationBatch batch, absl::Time start,
                                  const LoadOptions& options) {
  if (!report.ok()) return report.status();
  ApplyOptions apply;
  apply.threads = options.threads;
  absl::StatusOr<MutationResult> result = store.Apply(std::move(batch), apply);
  if (!result.ok()) return result.status();
  // A load leaves the store merged, as it would be queried offline.
  store.WaitForMerges();
  const CommitStats& stats = result->stats;
  report->influencers_added = stats.added;
  report->replaced = stats.replaced;
  report->deleted = stats.deleted;
  report->unchanged = stats.unchanged;
  report->delete_misses = stats.delete_misses;
  report->seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return report;
}

// A load: `parse` stages the source into a fresh batch, which is then
// committed (nothing is committed if parsing fails).
template <typename Parse>
absl::StatusOr<LoadReport> LoadWith(InfluencerStore& store,
                                    const LoadOptions& options, Parse parse) {
  absl::Time start = absl::Now();
  MutationBatch batch;
  batch.set_replace_jobs(options.replace_jobs);
  absl::StatusOr<LoadReport> report = parse(&batch);
  return Finish(store, std::move(report), std::move(batch), start, options);
}


}  // namespace


absl::StatusOr<LoadReport> ParseFileInto(const std::string& path,
                                         const LoadOptions& options,
                                         MutationBatch* batch) {
  if (path == "-") {
    return ParseSource(NewFdSource(0, "<stdin>", false),
                       "<stdin>", options, batch);
  }
  absl::StatusOr<std::unique_ptr<ByteSource>> source = OpenFileSource(path);
  if (!source.ok()) return source.status();
  return ParseSource(*std::move(source), path, options, batch);
}

absl::StatusOr<LoadReport> LoadString(InfluencerStore& store,
                                      absl::string_view text,
                                      const LoadOptions& options) {
  return LoadWith(store, options, [&](MutationBatch* batch) {
    return ParseText(text, "<string>", options, batch);
  });
}

absl::StatusOr<LoadReport> LoadFile(InfluencerStore& store,
                                    const std::string& path,
                                    const LoadOptions& options) {
  if (options.threads > 1 && options.memory_budget_bytes == 0) {
    if (std::unique_ptr<MappedFile> mapped = MappedFile::Open(path)) {
      return LoadWith(store, options, [&](MutationBatch* batch) {
        return ParseText(mapped->text(), path, options, batch);
      });
    }
  }
  absl::StatusOr<std::unique_ptr<ByteSource>> source = OpenFileSource(path);
  if (!source.ok()) return source.status();
  return LoadWith(store, options, [&](MutationBatch* batch) {
    return ParseSource(*std::move(source), path, options, batch);
  });
}

absl::StatusOr<LoadReport> LoadStdin(InfluencerStore& store,
                                     const LoadOptions& options) {
  return LoadWith(store, options, [&](MutationBatch* batch) {
    return ParseSource(NewFdSource(0, "<stdin>", false),
                       "<stdin>", options, batch);
  });
}


}  // namespace clout
