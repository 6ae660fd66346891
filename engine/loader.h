// The dump loader: result documents in, influencer rows into a store.
//
// Formats, detected from the first document (spec section 8 describes the
// documents themselves):
//   kNdjson               one result document per line
//   kJsonArray            [doc, doc, ...]
//   kInfluencersResponse  a saved Get Influencers response {"count":N,"influencers":[...]}
//   kSearchResponse       an _search response; documents are hits.hits[]._source
//   kSearchHitsNdjson     one search hit {"_index":..,"_id":..,"_source":{...}} per line
//   kBulk                 _bulk NDJSON: an action line, then (for index/create) the document
//   kJsonStream           result documents one after another, pretty-printed
//                         or not, separated by whitespace (as `jq` writes them)
//   kEsArchive            Kibana's esArchiver data.json: {"type":"doc","value":
//                         {"index":..,"id":..,"source":{...}}} entries, one per
//                         line or pretty-printed, separated by blank lines
//
// Only documents whose result_type is "influencer" become rows; other result
// types (and documents without a result_type, such as model snapshots) are
// skipped and counted per type, and their job ids become known jobs.
// Influencer documents need job_id, influencer_field_name,
// influencer_field_value (strings) and timestamp (epoch ms as a number or a
// numeric string, or an ISO 8601 string; a number with a fraction or an
// exponent is truncated towards zero, as Elasticsearch reads a long; a
// numeric string is epoch ms even with four digits, and its fraction is
// floored). influencer_score, initial_influencer_score and probability are
// numbers (missing or null read as 0.0, and are stored bit-exact, correctly
// rounded from their text whatever its length); bucket_span is a non-negative integer
// (missing: 0); is_interim a boolean (missing: false). Unknown keys are
// ignored.
//
// Any of them may be compressed with gzip or zstd (detected by magic
// bytes; see LoadOptions). A corrupt or truncated compressed source fails
// the load with 400 parse_exception naming the source and the compressed
// byte offset, even in lenient mode: nothing of it is loaded.
//
// NDJSON formats are read in bounded chunks (LoadOptions::chunk_bytes, grown
// only to hold a longer line), so a dump need not fit in memory; tolerated:
// a UTF-8 byte order mark, CRLF line ends, blank lines, no final newline.
// A JSON array of documents is read the same way, one element at a time.
// The response formats (whose size Elasticsearch's result window bounds)
// and a single pretty-printed document are read whole. LoadString parses
// NDJSON and arrays in place, copying only their last bytes (simdjson
// needs 64 readable bytes past a document); a source read whole (a saved
// response, a pretty-printed document) is copied once into a buffer of
// its size.
//
// A load is atomic: the parsed rows are applied to the store as one kLoad
// MutationBatch (InfluencerStore::Apply) after the whole source was read. In strict mode
// (the default) the first bad document fails the load and the store is left
// exactly as it was. In lenient mode bad documents are skipped and counted,
// and the first errors are reported; a source that cannot be read or parsed
// as a whole (an I/O error, malformed JSON in a single-document format)
// still fails the load.
//
// Errors are Statuses in Elasticsearch's shape (error.h): 400
// x_content_parse_exception for malformed JSON, 400 mapper_parsing_exception
// for a document with a missing or bad field, 500 io_exception for a file
// that cannot be read. Messages name the source, the line (NDJSON) or byte
// offset, the field and the problem, e.g.
//   "dump.ndjson:12: field [influencer_score]: expected a number, found a string"
//
// Thread safety: loads may run concurrently with queries and with each other
// (commits are serialised by the store); a query sees a load entirely or not
// at all.
#ifndef CLOUT_ENGINE_LOADER_H_
#define CLOUT_ENGINE_LOADER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/store.h"

namespace clout {

enum class DumpFormat {
  kUnknown,  // nothing but whitespace was read
  kNdjson,
  kJsonArray,
  kInfluencersResponse,
  kSearchResponse,
  kSearchHitsNdjson,
  kBulk,
  kJsonStream,
  kEsArchive,
  kSnapshot,  // a snapshot file (storage/snapshot.h), never sniffed here
};

// "ndjson", "json_array", "influencers_response", "search_response",
// "search_hits_ndjson", "bulk", "json_stream", "es_archive", "snapshot" or
// "unknown".
absl::string_view DumpFormatName(DumpFormat format);

struct LoadOptions {
  // Skip bad documents instead of failing the load.
  bool lenient = false;
  // Bytes read at a time from a file or stdin (NDJSON formats and JSON
  // arrays). The buffer grows beyond this only to hold one longer line or
  // array element.
  size_t chunk_bytes = size_t{16} << 20;
  // How many error messages a lenient load keeps in LoadReport::errors.
  size_t max_reported_errors = 10;
  // The longest NDJSON line or JSON array element (one document) accepted,
  // in bytes. A longer one fails the load (400 x_content_parse_exception
  // naming the line or byte offset) even in lenient mode, so one runaway
  // document cannot take all memory. (Sources read whole, responses and
  // pretty-printed documents, are bounded by memory_budget_bytes instead.)
  size_t max_document_bytes = size_t{512} << 20;
  // If not 0, the most memory the load may hold at once: its read buffer
  // (a whole response, or the current chunk) plus the rows it
  // has staged. Exceeding it fails the load with 429
  // circuit_breaking_exception, leaving the store unchanged. Checked when
  // the buffer grows, every 1024 documents and at the end of the load, so
  // the staged rows may pass it by up to 1024 documents' worth before the
  // load fails.
  size_t memory_budget_bytes = 0;
  // Name used for the source in messages; defaults to the path, "<stdin>"
  // or "<string>".
  std::string source_name;
  // Replace each job the source names: its stored results are dropped in
  // the same atomic batch that adds the source's (InfluencerStore::Apply,
  // MutationBatch::set_replace_jobs). Default: upsert by result identity.
  bool replace_jobs = false;
  // Compressed sources (gzip, including multi-member files, and zstd;
  // recognised by their magic bytes, never by a name) are decompressed on
  // a thread of their own while the text is parsed. Limits that stop a
  // decompression bomb (413 content_too_long_exception naming the source):
  // more than `max_decompressed_bytes` out (0: no limit), or, past the
  // first 256 MiB out, more than `max_expansion_ratio` bytes out per byte
  // in (0: no limit; real dumps compress 5 to 50 times, a file of blank
  // lines a thousand times).
  uint64_t max_decompressed_bytes = 0;
  double max_expansion_ratio = 500;
  // Threads that parse an NDJSON source (LoadString, LoadFile) at once:
  // the text is split at line boundaries into pieces of at least 4 MiB,
  // parsed in parallel and merged in source order, with exactly the result
  // of a one-thread load. A file is then memory-mapped rather than read in
  // chunks. Sources that are not plain NDJSON or NDJSON search hits (bulk,
  // arrays, responses), stdin, a memory budget, or any bad document make
  // the load fall back to one thread (which also reports the errors).
  // The commit then merges up to this many jobs at once.
  int threads = 1;
};

struct LoadReport {
  std::string source;
  DumpFormat format = DumpFormat::kUnknown;
  // "gzip" or "zstd" for a compressed source, else "".
  std::string compression;
  uint64_t bytes = 0;           // bytes read (decompressed)
  // JSON objects read as result documents, whatever became of them
  // (added, skipped for their result_type, or rejected for a field).
  // Excluded: bulk action lines, and lines or elements that never were an
  // object (malformed JSON, an array, a number), which lenient mode counts
  // in `rejected` only.
  uint64_t documents = 0;
  // After the commit (LoadString/LoadFile/LoadStdin): results new to the
  // store, stored results superseded (a result re-loaded with new values, or
  // repeated within the source), stored results dropped by replace_jobs, and
  // results re-loaded identical to what was stored. ParseFileInto, which does
  // not commit, counts every staged influencer as added.
  uint64_t influencers_added = 0;
  uint64_t replaced = 0;
  uint64_t deleted = 0;
  uint64_t unchanged = 0;
  // _bulk delete actions naming influencer results, and how many of them
  // matched no result (after the commit).
  uint64_t bulk_deletes = 0;
  uint64_t delete_misses = 0;
  // Documents of other result types, by result_type ("(none)" when absent).
  std::map<std::string, uint64_t, std::less<>> skipped;
  // Documents rejected in lenient mode, and the first error messages.
  uint64_t rejected = 0;
  std::vector<std::string> errors;
  // Jobs the load brought documents of, in first-seen order.
  std::vector<std::string> jobs;
  // Threads that parsed the source: more than 1 only when a parallel load
  // (LoadOptions::threads) did not fall back to one thread.
  int threads = 1;
  double seconds = 0;
};

// Loads `text` (any format above). On success the rows are visible in
// `store`, any merge the load started is published
// (InfluencerStore::WaitForMerges), and the report says what was read; on
// failure the store is unchanged.
absl::StatusOr<LoadReport> LoadString(InfluencerStore& store,
                                      absl::string_view text,
                                      const LoadOptions& options = {});

// Loads the file at `path`. A missing file, a directory or a read error is a
// 500 io_exception naming the path. Store unchanged on failure. With
// LoadOptions::threads > 1 a regular file is memory-mapped: it must not be
// truncated while it loads (the process would get SIGBUS; appending is
// harmless).
absl::StatusOr<LoadReport> LoadFile(InfluencerStore& store,
                                    const std::string& path,
                                    const LoadOptions& options = {});

// Loads standard input until end of file. Store unchanged on failure.
absl::StatusOr<LoadReport> LoadStdin(InfluencerStore& store,
                                     const LoadOptions& options = {});

// Parses the file at `path` (or stdin for "-") into `batch` without
// committing, so several sources can be committed together. On failure
// `batch` may hold part of the source's rows: discard it.
absl::StatusOr<LoadReport> ParseFileInto(const std::string& path,
                                         const LoadOptions& options,
                                         MutationBatch* batch);

}  // namespace clout

#endif  // CLOUT_ENGINE_LOADER_H_
