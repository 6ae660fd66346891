#include "engine/source_loader.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/document_reader.h"
#include "engine/error.h"

namespace clout {
namespace loader_internal {
namespace {

// A source: format detection, then line-by-line or whole-document parsing.

class SourceLoader {
 public:
  SourceLoader(ByteSource* source, const LoadOptions& options,
               MutationBatch* batch, LoadReport* report)
      : source_(source),
        options_(options),
        batch_(batch),
        report_(report),
        reader_(batch, report) {}

  absl::Status Run();

  // The format detected (kUnknown if nothing but whitespace was read).
  DumpFormat format() const { return format_; }
  // Whether the source was read line by line (an NDJSON format).
  bool read_lines() const { return read_lines_; }
  // LoadOptions::memory_budget_bytes against what the load holds after
  // Run() (the read buffer and every staged row).
  absl::Status CheckFinalBudget() {
    return CheckBudget(borrowing_ ? 0 : capacity_);
  }

 private:
  // Handles a bad document: an error in strict mode, counted in lenient.
  absl::Status Reject(const Location& where, const DocError& error) {
    std::string message = absl::StrCat(where.ToString(), ": ", error.message);
    if (!options_.lenient) {
      return EsError(400,
                     error.syntax ? "x_content_parse_exception"
                                  : "mapper_parsing_exception",
                     message);
    }
    ++report_->rejected;
    if (report_->errors.size() < options_.max_reported_errors) {
      report_->errors.push_back(std::move(message));
    }
    return absl::OkStatus();
  }

  // Reads a search hit's _source as a result document. Returns a JSON
  // syntax error of the hit itself; otherwise SUCCESS, with *ok false and
  // *error filled if the hit has no (or two) _source or a bad document.
  // Every key is visited, so that content after the hit is noticed.
  error_code ReadHit(od::object& hit, DocError* error, bool* ok);
  // Reads an esArchiver entry: a "doc" entry's value.source as a result
  // document (*document set); entries of other types (an index's mappings)
  // are skipped and counted. Returns a JSON syntax error of the entry
  // itself; otherwise SUCCESS, with *ok false and *error filled for a bad
  // entry or document. Every key is visited.
  error_code ReadArchiveEntry(od::object& entry, DocError* error, bool* ok,
                              bool* document);
  // Reads the member `name` of `object` as a result document, visiting
  // every key. Returns a JSON syntax error of the object; otherwise
  // SUCCESS, with *ok false and *error set to `duplicate` or `missing` when
  // the member is given twice or not at all, or to the document's error.
  error_code ReadOnlyMember(od::object& object, std::string_view name,
                            const char* duplicate, const char* missing,
                            DocError* error, bool* ok);
  // Reads more input after buf_[end_]; false at end of input.
  absl::StatusOr<bool> Fill();
  // The error for a line or array element (at begin_) longer than
  // LoadOptions::max_document_bytes.
  absl::Status TooLong() const;
  // An error if holding a buffer of `buffer_bytes` plus the staged rows
  // would exceed LoadOptions::memory_budget_bytes.
  absl::Status CheckBudget(size_t buffer_bytes);
  absl::Status RunLines();
  absl::Status RunWhole();
  // True if the lines after a first line left open, ending at the newline
  // at data_[line_end], show the source is NDJSON whose first line was cut
  // short: the next non-blank line holds one JSON object (IsObjectLine),
  // and so does the non-blank line after it, or there is none. A document
  // spanning lines cannot be read so: two values need a comma between them,
  // and the first line's bracket a line to close it. (A pretty-printed
  // response may well hold one element per line, the last without a comma.)
  // Reads more input as needed; false if that fails (the whole-document
  // reading then reports it).
  bool NdjsonCutShort(size_t line_end);
  // The next line holding more than whitespace at or after offset `from`
  // from begin_, reading more input as needed: sets [*start, *end) (offsets
  // from begin_; *end at its newline or the end of input) and returns
  // kFound; else kEnd (nothing but whitespace left) or kError.
  enum class Scan { kFound, kEnd, kError };
  Scan NextNonBlankLine(size_t from, size_t* start, size_t* end);
  absl::Status RunArray();
  // The length of the array element at data_[begin_] (0 if a ',' or ']'
  // is there instead), reading more input as needed.
  absl::Status ScanElement(size_t* length);
  absl::Status ArrayElement(size_t begin, size_t length);
  // A source whose first document spans lines: documents one after
  // another, separated by whitespace, read one at a time (only the current
  // one need be in memory). A pretty-printed response is read whole
  // instead (RunWhole).
  absl::Status RunStream();
  // One document of the stream, starting on line `line`.
  absl::Status StreamDocument(size_t begin, size_t length, uint64_t line,
                              DumpFormat* kind);
  // Skips whitespace; false at the end of input.
  absl::StatusOr<bool> SkipBlanks();
  // A malformed-JSON error at byte `offset` of the source.
  absl::Status Malformed(uint64_t offset, absl::string_view problem) const;
  absl::Status Line(const char* begin, size_t length, size_t capacity);
  DumpFormat DetectFromLine(const char* begin, size_t length, size_t capacity,
                            bool* complete);

  ByteSource* source_;
  const LoadOptions& options_;
  MutationBatch* batch_;
  LoadReport* report_;
  DocumentReader reader_;
  od::parser parser_;

  // Readable bytes from data_ + at: the document there may use them all.
  size_t Readable(size_t at) const {
    return (borrowing_ ? end_ : capacity_) + kPadding - at;
  }

  // The bytes being parsed, data_[begin_, end_): either buf_ or, while
  // borrowing_, the source's own memory lent in place (no copy).
  const char* data_ = nullptr;
  bool borrowing_ = false;
  std::unique_ptr<char[]> buf_;
  // Usable bytes of buf_ (kPadding more are allocated); while borrowing,
  // the size buf_ would have, which bounds lines the same way.
  size_t capacity_ = 0;
  size_t begin_ = 0;     // first unconsumed byte
  size_t end_ = 0;       // end of valid bytes
  bool eof_ = false;
  bool whole_document_ = false;  // reading a single-document source whole
  bool array_elements_ = false;  // RunArray() is reading a JSON array
  bool stream_ = false;          // RunStream() is reading documents
  bool read_lines_ = false;      // RunLines() ran
  uint64_t documents_at_budget_check_ = 0;
  uint64_t consumed_ = 0;  // bytes before buf_[0] in the source
  uint64_t line_ = 0;      // lines consumed so far
  DumpFormat format_ = DumpFormat::kUnknown;
  // Bulk: the action line said a document follows.
  bool bulk_expect_source_ = false;
  bool bulk_skip_source_ = false;
};

error_code SourceLoader::ReadOnlyMember(od::object& object,
                                        std::string_view name,
                                        const char* duplicate,
                                        const char* missing, DocError* error,
                                        bool* ok) {
  bool found = false;
  *ok = true;
  for (auto field_result : object) {
    if (auto e = field_result.error()) return e;
    od::field& field = field_result.value_unsafe();
    std::string_view key;
    if (auto e = FieldKey(field, &key)) return e;
    if (key != name) continue;
    if (found) {
      error->message = duplicate;
      *ok = false;
      return simdjson::SUCCESS;
    }
    found = true;
    if (!reader_.ReadValue(field.value(), error)) {
      *ok = false;
      return simdjson::SUCCESS;
    }
  }
  if (!found) {
    error->message = missing;
    *ok = false;
  }
  return simdjson::SUCCESS;
}

error_code SourceLoader::ReadHit(od::object& hit, DocError* error, bool* ok) {
  return ReadOnlyMember(hit, "_source", "duplicate field [_source]",
                        "search hit without _source", error, ok);
}

error_code SourceLoader::ReadArchiveEntry(od::object& entry, DocError* error,
                                          bool* ok, bool* document) {
  *ok = true;
  *document = false;
  std::string type;
  bool has_type = false, has_value = false;
  for (auto field_result : entry) {
    if (auto e = field_result.error()) return e;
    od::field& field = field_result.value_unsafe();
    std::string_view key;
    if (auto e = FieldKey(field, &key)) return e;
    if (key == "type") {
      std::string_view t;
      if (field.value().get_string().get(t) != simdjson::SUCCESS) {
        error->message = "esArchiver entry: [type] is not a string";
        *ok = false;
        return simdjson::SUCCESS;
      }
      type = std::string(t);
      has_type = true;
      continue;
    }
    if (key != "value") continue;
    has_value = true;
    if (has_type && type != "doc") continue;  // mappings, settings
    od::object value;
    if (field.value().get_object().get(value) != simdjson::SUCCESS) {
      error->message = "esArchiver entry: [value] is not an object";
      *ok = false;
      return simdjson::SUCCESS;
    }
    if (auto e = ReadOnlyMember(
            value, "source", "esArchiver entry: duplicate field [value.source]",
            "esArchiver doc entry without [value.source]", error, ok)) {
      return e;
    }
    if (!*ok) return simdjson::SUCCESS;
    *document = true;
  }
  if (!has_type || !has_value) {
    error->message = "esArchiver entry without [type] and [value]";
    *ok = false;
    *document = false;
  } else if (type != "doc") {
    // Not a document: the index's mappings or settings (mappings.json).
    *document = false;
    ++report_->skipped[absl::StrCat("(es_archive ", type, ")")];
  }
  return simdjson::SUCCESS;
}

absl::Status SourceLoader::CheckBudget(size_t buffer_bytes) {
  if (options_.memory_budget_bytes == 0) return absl::OkStatus();
  size_t used = buffer_bytes + batch_->MemoryUsage();
  if (used <= options_.memory_budget_bytes) return absl::OkStatus();
  return EsError(429, "circuit_breaking_exception",
                 absl::StrCat("[load] data for [", report_->source,
                              "] would be [", used,
                              "] bytes, which is larger than the limit of [",
                              options_.memory_budget_bytes, "] bytes"));
}

absl::Status SourceLoader::TooLong() const {
  Location where{report_->source, array_elements_ ? 0 : line_ + 1,
                 consumed_ + begin_};
  return EsError(400, "x_content_parse_exception",
                 absl::StrCat(where.ToString(),
                              ": document longer than max_document_bytes (",
                              options_.max_document_bytes, " bytes)"));
}

absl::StatusOr<bool> SourceLoader::Fill() {
  if (eof_) return false;
  if (begin_ > 0) {
    if (borrowing_) {
      data_ += begin_;
    } else {
      std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
    }
    consumed_ += begin_;
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == capacity_) {
    // One line (or a whole single-document source) longer than the buffer:
    // grow it, within the limits. (Lent bytes need no buffer, but obey the
    // same limits, so that a source loads the same from memory or a file.)
    if (!whole_document_ && capacity_ >= options_.max_document_bytes) {
      return TooLong();
    }
    size_t grown = capacity_ * 2;
    if (absl::Status s = CheckBudget(grown); !s.ok()) return s;
    if (!borrowing_) {
      std::unique_ptr<char[]> bigger(new char[grown + kPadding]);
      std::memcpy(bigger.get(), buf_.get(), end_);
      buf_ = std::move(bigger);
      data_ = buf_.get();
    }
    capacity_ = grown;
  }
  if (borrowing_) {
    absl::string_view lent = source_->Borrow(capacity_ - end_, kPadding);
    if (!lent.empty()) {
      data_ = lent.data() - end_;  // contiguous with the bytes lent before
      end_ += lent.size();
      report_->bytes += lent.size();
      return true;
    }
    // The last bytes lack padding: go on in a buffer of our own.
    borrowing_ = false;
    buf_.reset(new char[capacity_ + kPadding]);
    std::memcpy(buf_.get(), data_, end_);
    data_ = buf_.get();
  }
  absl::StatusOr<size_t> n = source_->Read(buf_.get() + end_, capacity_ - end_);
  if (!n.ok()) return n.status();
  if (*n == 0) {
    eof_ = true;
    // The memmove above may have left stale bytes after end_. simdjson reads
    // the padding after a document (and its verdict on a malformed one can
    // depend on it), so it must always be blank.
    std::memset(buf_.get() + end_, ' ', kPadding);
    return false;
  }
  end_ += *n;
  report_->bytes += *n;
  std::memset(buf_.get() + end_, ' ', kPadding);
  return true;
}

bool IsBlank(const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    char c = p[i];
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  }
  return true;
}

// True if `line` leaves an object or array open (outside any string): the
// first line of a pretty-printed document, rather than one (malformed) line
// of NDJSON.
bool OpensDocument(const char* p, size_t n) {
  int64_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (size_t i = 0; i < n; ++i) {
    char c = p[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '{': case '[': ++depth; break;
      case '}': case ']': --depth; break;
      default: break;
    }
  }
  return !in_string && depth > 0;
}

// True if `line` (less surrounding whitespace) is one JSON object on its
// own: it starts with '{' and its braces and brackets, counted outside
// strings, first close at its last character. (Not a validation: a hint
// that a source is NDJSON.)
bool IsObjectLine(const char* p, size_t n) {
  while (n > 0 && IsBlank(p, 1)) ++p, --n;
  while (n > 0 && IsBlank(p + n - 1, 1)) --n;
  return n >= 2 && p[0] == '{' && p[n - 1] == '}' && ValueEnd(p, n) == n - 1;
}

// The format of a source whose first document is `object`, from its keys:
// a result document has a job_id or result_type (a record result, for one,
// has an "influencers" array, so that alone does not make a Get Influencers
// response).
error_code DetectObject(od::object& object, DumpFormat* format) {
  bool has_source = false, has_influencers = false, has_hits = false;
  bool is_document = false, hit_metadata = false;
  bool archive_type = false, archive_value = false;
  size_t keys = 0, bulk_actions = 0;
  for (auto field_result : object) {
    if (auto e = field_result.error()) return e;
    od::field& field = field_result.value_unsafe();
    std::string_view key;
    if (auto e = FieldKey(field, &key)) return e;
    ++keys;
    od::json_type type;
    if (auto e = field.value().type().get(type)) return e;
    if (key == "job_id" || key == "result_type") is_document = true;
    if (key == "_source") has_source = true;
    // A hit's metadata: a hit without _source is a bad hit, not a document.
    if (key == "_index" || key == "_id") hit_metadata = true;
    if (key == "influencers" && type == od::json_type::array) {
      has_influencers = true;
    }
    if (key == "hits" && type == od::json_type::object) has_hits = true;
    if (key == "type" && type == od::json_type::string) archive_type = true;
    if (key == "value" && type == od::json_type::object) archive_value = true;
    if ((key == "index" || key == "create" || key == "delete" ||
         key == "update") &&
        type == od::json_type::object) {
      ++bulk_actions;
    }
  }
  if (archive_type && archive_value && keys == 2) {
    // {"type":"doc","value":{...}}: an esArchiver entry.
    *format = DumpFormat::kEsArchive;
  } else if (bulk_actions > 0 && bulk_actions == keys) {
    // One action (or, malformed, several: rejected as a bulk action line).
    *format = DumpFormat::kBulk;
  } else if (is_document) {
    *format = DumpFormat::kNdjson;
  } else if (has_influencers) {
    *format = DumpFormat::kInfluencersResponse;
  } else if (has_hits) {
    *format = DumpFormat::kSearchResponse;
  } else if (has_source || hit_metadata) {
    *format = DumpFormat::kSearchHitsNdjson;
  } else {
    *format = DumpFormat::kNdjson;
  }
  return simdjson::SUCCESS;
}

DumpFormat SourceLoader::DetectFromLine(const char* begin, size_t length,
                                        size_t capacity, bool* complete) {
  *complete = false;
  od::document doc;
  if (parser_.iterate(begin, length, capacity).get(doc)) {
    return DumpFormat::kUnknown;
  }
  od::object object;
  if (doc.get_object().get(object)) return DumpFormat::kUnknown;
  DumpFormat format = DumpFormat::kUnknown;
  if (DetectObject(object, &format)) return DumpFormat::kUnknown;
  if (!AtEnd(doc)) return DumpFormat::kUnknown;
  *complete = true;
  return format;
}

absl::Status SourceLoader::Run() {
  capacity_ = std::max<size_t>(options_.chunk_bytes, 4096);
  if (options_.memory_budget_bytes != 0) {
    // The read buffer must leave room for the rows in the budget.
    capacity_ = std::max<size_t>(
        4096, std::min(capacity_, options_.memory_budget_bytes / 4));
  }
  // Parse in place if the source lends its bytes (LoadString: no copy).
  borrowing_ = true;
  absl::string_view lent = source_->Borrow(capacity_, kPadding);
  if (lent.empty()) {
    borrowing_ = false;
    buf_.reset(new char[capacity_ + kPadding]);
    data_ = buf_.get();
  } else {
    data_ = lent.data();
    end_ = lent.size();
    report_->bytes += lent.size();
  }
  // Skip a UTF-8 byte order mark, then blank lines, to the first document.
  while (end_ < 3) {
    absl::StatusOr<bool> more = Fill();
    if (!more.ok()) return more.status();
    if (!*more) break;
  }
  if (end_ >= 3 && std::memcmp(data_, "\xEF\xBB\xBF", 3) == 0) begin_ = 3;
  while (true) {
    while (begin_ < end_ && IsBlank(data_ + begin_, 1)) {
      if (data_[begin_] == '\n') ++line_;
      ++begin_;
    }
    if (begin_ < end_) break;
    absl::StatusOr<bool> more = Fill();
    if (!more.ok()) return more.status();
    if (!*more) return absl::OkStatus();  // nothing but whitespace
  }
  if (data_[begin_] == '[') {
    format_ = DumpFormat::kJsonArray;
    return RunArray();
  }
  // Read until the first line is complete, then look at it.
  const char* newline = nullptr;
  while (true) {
    newline = static_cast<const char*>(
        std::memchr(data_ + begin_, '\n', end_ - begin_));
    if (newline != nullptr) break;
    absl::StatusOr<bool> more = Fill();
    if (!more.ok()) return more.status();
    if (!*more) break;
  }
  size_t line_end =
      newline != nullptr ? static_cast<size_t>(newline - data_) : end_;
  bool complete = false;
  DumpFormat detected =
      DetectFromLine(data_ + begin_, line_end - begin_,
                     Readable(begin_), &complete);
  if (!complete) {
    if (OpensDocument(data_ + begin_, line_end - begin_) &&
        !NdjsonCutShort(line_end)) {
      // A document spanning lines (pretty-printed): a response, read
      // whole, or the first of a stream of documents.
      return RunStream();
    }
    // (A first line left open but followed by lines no single document
    // could hold is NDJSON whose first line was cut short: reported as
    // line 1 below.)
    // A bad line: the format is that of the first good line, and the bad
    // one is reported with its line number (or skipped when lenient).
    format_ = DumpFormat::kUnknown;
    return RunLines();
  }
  format_ = detected;
  if (detected == DumpFormat::kInfluencersResponse ||
      detected == DumpFormat::kSearchResponse) {
    return RunWhole();
  }
  return RunLines();
}

SourceLoader::Scan SourceLoader::NextNonBlankLine(size_t from,
                                                   size_t* start,
                                                   size_t* end) {
  // Fill() moves the bytes from begin_ to the start: offsets are kept from
  // begin_.
  while (true) {
    size_t p = begin_ + from;
    while (p < end_ && IsBlank(data_ + p, 1)) ++p;
    if (p < end_) {
      const char* newline =
          static_cast<const char*>(std::memchr(data_ + p, '\n', end_ - p));
      if (newline != nullptr) {
        *start = p - begin_;
        *end = static_cast<size_t>(newline - data_) - begin_;
        return Scan::kFound;
      }
    }
    absl::StatusOr<bool> more = Fill();
    if (!more.ok()) return Scan::kError;
    if (!*more) {  // the end of input
      p = begin_ + from;
      while (p < end_ && IsBlank(data_ + p, 1)) ++p;
      if (p >= end_) return Scan::kEnd;
      *start = p - begin_;
      *end = end_ - begin_;
      return Scan::kFound;
    }
  }
}

bool SourceLoader::NdjsonCutShort(size_t line_end) {
  if (line_end >= end_) return false;  // no newline: a single line
  size_t start = 0, end = 0;
  if (NextNonBlankLine(line_end + 1 - begin_, &start, &end) != Scan::kFound ||
      !IsObjectLine(data_ + begin_ + start, end - start)) {
    return false;
  }
  switch (NextNonBlankLine(end + 1, &start, &end)) {
    case Scan::kEnd:
      return true;
    case Scan::kFound:
      return IsObjectLine(data_ + begin_ + start, end - start);
    case Scan::kError:
      return false;
  }
  return false;
}

absl::Status SourceLoader::RunLines() {
  read_lines_ = true;
  while (true) {
    const char* newline = static_cast<const char*>(
        std::memchr(data_ + begin_, '\n', end_ - begin_));
    if (newline == nullptr) {
      absl::StatusOr<bool> more = Fill();
      if (!more.ok()) return more.status();
      if (*more) continue;
      if (begin_ < end_) {  // last line without a final newline
        if (end_ - begin_ > options_.max_document_bytes) return TooLong();
        ++line_;
        size_t length = end_ - begin_;
        if (absl::Status s = Line(data_ + begin_, length,
                                  Readable(begin_));
            !s.ok()) {
          return s;
        }
        begin_ = end_;
      }
      break;
    }
    size_t line_end = static_cast<size_t>(newline - data_);
    if (line_end - begin_ > options_.max_document_bytes) return TooLong();
    ++line_;
    if (absl::Status s = Line(data_ + begin_, line_end - begin_,
                              Readable(begin_));
        !s.ok()) {
      return s;
    }
    begin_ = line_end + 1;
  }
  // Every line was bad (and skipped): still NDJSON.
  if (format_ == DumpFormat::kUnknown) format_ = DumpFormat::kNdjson;
  if (bulk_expect_source_) {
    Location where{report_->source, line_, 0};
    DocError error;
    error.message = "bulk action without its document line at the end";
    return Reject(where, error);
  }
  return absl::OkStatus();
}

absl::Status SourceLoader::Line(const char* begin, size_t length,
                                size_t capacity) {
  if (length > 0 && begin[length - 1] == '\r') --length;
  if (IsBlank(begin, length)) return absl::OkStatus();
  if (options_.memory_budget_bytes != 0 &&
      report_->documents >= documents_at_budget_check_ + 1024) {
    documents_at_budget_check_ = report_->documents;
    if (absl::Status s = CheckBudget(capacity_); !s.ok()) return s;
  }
  if (format_ == DumpFormat::kUnknown) {
    // Lines so far were bad: this one may tell the format.
    bool complete = false;
    DumpFormat detected = DetectFromLine(begin, length, capacity, &complete);
    if (complete) {
      format_ = detected == DumpFormat::kInfluencersResponse ||
                        detected == DumpFormat::kSearchResponse
                    ? DumpFormat::kNdjson
                    : detected;
    }
  }
  Location where{report_->source, line_, 0};
  DocError error;
  auto reject_syntax = [&](error_code e) {
    DocumentReader::Syntax(e, &error);
    ExplainTrailingContent(begin, length, &error);
    return Reject(where, error);
  };
  od::document doc;
  if (auto e = parser_.iterate(begin, length, capacity).get(doc)) {
    return reject_syntax(e);
  }
  od::json_type type;
  if (auto e = doc.type().get(type)) return reject_syntax(e);
  if (type != od::json_type::object) {
    error.message =
        absl::StrCat("line is ", JsonTypeName(type), ", not a JSON object");
    return Reject(where, error);
  }
  od::object object;
  if (auto e = doc.get_object().get(object)) return reject_syntax(e);

  bool ok = true;
  bool document = false;  // a document was read (not a bulk action line)
  switch (format_) {
    case DumpFormat::kSearchHitsNdjson: {
      if (auto e = ReadHit(object, &error, &ok)) return reject_syntax(e);
      document = ok;
      break;
    }
    case DumpFormat::kEsArchive: {
      if (auto e = ReadArchiveEntry(object, &error, &ok, &document)) {
        return reject_syntax(e);
      }
      break;
    }
    case DumpFormat::kBulk: {
      if (bulk_expect_source_) {
        bulk_expect_source_ = false;
        if (bulk_skip_source_) return absl::OkStatus();
        ok = document = reader_.Read(object, &error);
        break;
      }
      std::string_view action;
      size_t keys = 0;
      std::string delete_id;
      bool has_delete_id = false;
      for (auto field_result : object) {
        if (auto e = field_result.error()) return reject_syntax(e);
        od::field& field = field_result.value_unsafe();
        std::string_view key;
        if (auto e = FieldKey(field, &key)) return reject_syntax(e);
        action = key;
        ++keys;
        if (key != "delete") continue;
        // The deleted document is named by the action's _id.
        od::object meta;
        if (field.value().get_object().get(meta)) continue;
        for (auto meta_result : meta) {
          od::field meta_field;
          if (auto e = std::move(meta_result).get(meta_field)) {
            return reject_syntax(e);
          }
          std::string_view meta_key;
          if (auto e = FieldKey(meta_field, &meta_key)) return reject_syntax(e);
          if (meta_key != "_id") continue;
          std::string_view id;
          if (meta_field.value().get_string().get(id) == simdjson::SUCCESS) {
            delete_id = std::string(id);
            has_delete_id = true;
          }
        }
      }
      if (keys != 1 || (action != "index" && action != "create" &&
                        action != "delete" && action != "update")) {
        error.message =
            "expected a bulk action line ({\"index\":{...}}, create, "
            "update or delete)";
        ok = false;
        break;
      }
      if (action == "delete") {
        std::optional<InfluencerResultId> id;
        if (has_delete_id) id = ParseInfluencerResultId(delete_id);
        if (id.has_value()) {
          batch_->DeleteInfluencer(*id);
          ++report_->bulk_deletes;
        } else {
          // Not an influencer result (a bucket, a record, ...).
          ++report_->skipped["(bulk delete)"];
        }
        return absl::OkStatus();
      }
      bulk_expect_source_ = true;
      bulk_skip_source_ = action == "update";
      if (action == "update") {
        error.message =
            "bulk update actions are not supported: partial documents "
            "cannot be applied to a dump";
        ok = false;
      }
      break;
    }
    default:
      ok = document = reader_.Read(object, &error);
      break;
  }
  if (ok && !AtEnd(doc)) {
    error.syntax = true;
    error.message = "malformed JSON: more than one JSON value on the line";
    ok = false;
  }
  if (!ok) {
    ExplainTrailingContent(begin, length, &error);
    return Reject(where, error);
  }
  if (document) reader_.Accept();
  return absl::OkStatus();
}

absl::Status SourceLoader::Malformed(uint64_t offset,
                                     absl::string_view problem) const {
  Location where{report_->source, 0, offset};
  return EsError(400, "x_content_parse_exception",
                 absl::StrCat(where.ToString(), ": malformed JSON: ", problem));
}

absl::StatusOr<bool> SourceLoader::SkipBlanks() {
  while (true) {
    while (begin_ < end_ && IsBlank(data_ + begin_, 1)) ++begin_;
    if (begin_ < end_) return true;
    absl::StatusOr<bool> more = Fill();
    if (!more.ok()) return more.status();
    if (!*more) return false;
  }
}

absl::Status SourceLoader::ScanElement(size_t* length) {
  // Offsets are from begin_, which Fill() keeps at the element's start.
  size_t i = 0;
  int64_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  while (true) {
    for (; begin_ + i < end_; ++i) {
      const char c = data_[begin_ + i];
      if (in_string) {
        if (escaped) {
          escaped = false;
        } else if (c == '\\') {
          escaped = true;
        } else if (c == '"') {
          in_string = false;
          if (depth == 0) {  // a string element
            *length = i + 1;
            return absl::OkStatus();
          }
        }
        continue;
      }
      switch (c) {
        case '"':
          in_string = true;
          break;
        case '{':
        case '[':
          ++depth;
          break;
        case '}':
        case ']':
          if (depth == 0) {
            *length = i;
            return absl::OkStatus();
          }
          if (--depth == 0) {
            *length = i + 1;
            return absl::OkStatus();
          }
          break;
        case ',':
        case ' ':
        case '\t':
        case '\n':
        case '\r':
          if (depth == 0) {
            *length = i;
            return absl::OkStatus();
          }
          break;
        default:
          break;
      }
    }
    absl::StatusOr<bool> more = Fill();
    if (!more.ok()) return more.status();
    if (!*more) {
      return Malformed(consumed_ + begin_,
                       stream_ ? "the document is not closed at the end of "
                                 "the input"
                               : "the array is not closed at the end of the "
                                 "input");
    }
  }
}

absl::Status SourceLoader::ArrayElement(size_t begin, size_t length) {
  if (options_.memory_budget_bytes != 0 &&
      report_->documents >= documents_at_budget_check_ + 1024) {
    documents_at_budget_check_ = report_->documents;
    if (absl::Status s = CheckBudget(capacity_); !s.ok()) return s;
  }
  Location where{report_->source, 0, consumed_ + begin};
  DocError error;
  auto syntax = [&](error_code e) {
    DocumentReader::Syntax(e, &error);
    // A broken element cannot be skipped: fail the load.
    return EsError(400, "x_content_parse_exception",
                   absl::StrCat(where.ToString(), ": ", error.message));
  };
  od::document doc;
  if (auto e = parser_.iterate(data_ + begin, length, Readable(begin)).get(doc)) {
    return syntax(e);
  }
  od::json_type type;
  if (auto e = CheckedType(doc, &type)) return syntax(e);
  if (type != od::json_type::object) {
    error.message =
        absl::StrCat("document is ", JsonTypeName(type), ", not a JSON object");
    return Reject(where, error);
  }
  od::object object;
  if (auto e = doc.get_object().get(object)) return syntax(e);
  if (!reader_.Read(object, &error)) {
    if (error.syntax) {
      return EsError(400, "x_content_parse_exception",
                     absl::StrCat(where.ToString(), ": ", error.message));
    }
    return Reject(where, error);
  }
  if (!AtEnd(doc)) return syntax(simdjson::TAPE_ERROR);
  reader_.Accept();
  return absl::OkStatus();
}

absl::Status SourceLoader::RunStream() {
  stream_ = true;
  DumpFormat kind = DumpFormat::kUnknown;  // of the first document
  for (bool first = true;; first = false) {
    // To the next document, counting lines.
    while (true) {
      while (begin_ < end_ && IsBlank(data_ + begin_, 1)) {
        if (data_[begin_] == '\n') ++line_;
        ++begin_;
      }
      if (begin_ < end_) break;
      absl::StatusOr<bool> more = Fill();
      if (!more.ok()) return more.status();
      if (!*more) return absl::OkStatus();
    }
    if (data_[begin_] != '{') {
      const char c = data_[begin_];
      return EsError(
          400, "x_content_parse_exception",
          absl::StrCat(report_->source, ":", line_ + 1,
                       ": malformed JSON: expected the next JSON object of "
                       "the stream, found ",
                       c >= 0x20 && c < 0x7F ? absl::StrCat("'", std::string(1, c), "'")
                                             : "a control byte"));
    }
    size_t length = 0;
    if (absl::Status s = ScanElement(&length); !s.ok()) return s;
    if (length > options_.max_document_bytes) return TooLong();
    if (first) {
      // A pretty-printed response is read whole, as a response.
      od::document doc;
      od::object probe;
      DumpFormat detected = DumpFormat::kNdjson;
      if (parser_.iterate(data_ + begin_, length, Readable(begin_)).get(doc) ==
              simdjson::SUCCESS &&
          doc.get_object().get(probe) == simdjson::SUCCESS &&
          DetectObject(probe, &detected) == simdjson::SUCCESS &&
          (detected == DumpFormat::kInfluencersResponse ||
           detected == DumpFormat::kSearchResponse)) {
        stream_ = false;
        format_ = detected;
        return RunWhole();
      }
      kind = detected == DumpFormat::kBulk ? DumpFormat::kNdjson : detected;
      format_ = kind == DumpFormat::kNdjson ? DumpFormat::kJsonStream : kind;
    }
    const uint64_t line = line_ + 1;
    // The document's own lines.
    for (const char* p = data_ + begin_; (p = static_cast<const char*>(std::memchr(
             p, '\n', static_cast<size_t>(data_ + begin_ + length - p)))) !=
         nullptr;
         ++p) {
      ++line_;
    }
    if (absl::Status s = StreamDocument(begin_, length, line, &kind); !s.ok()) {
      return s;
    }
    begin_ += length;
  }
}

absl::Status SourceLoader::StreamDocument(size_t begin, size_t length,
                                          uint64_t line, DumpFormat* kind) {
  if (options_.memory_budget_bytes != 0 &&
      report_->documents >= documents_at_budget_check_ + 1024) {
    documents_at_budget_check_ = report_->documents;
    if (absl::Status s = CheckBudget(capacity_); !s.ok()) return s;
  }
  Location where{report_->source, line, 0};
  DocError error;
  auto syntax = [&](error_code e) {
    DocumentReader::Syntax(e, &error);
    return EsError(400, "x_content_parse_exception",
                   absl::StrCat(where.ToString(), ": ", error.message));
  };
  od::document doc;
  if (auto e = parser_.iterate(data_ + begin, length, Readable(begin))
                   .get(doc)) {
    return syntax(e);
  }
  od::object object;
  if (auto e = doc.get_object().get(object)) return syntax(e);
  bool ok = true;
  bool document = false;
  if (*kind == DumpFormat::kSearchHitsNdjson) {
    if (auto e = ReadHit(object, &error, &ok)) return syntax(e);
    document = ok;
  } else if (*kind == DumpFormat::kEsArchive) {
    if (auto e = ReadArchiveEntry(object, &error, &ok, &document)) {
      return syntax(e);
    }
  } else {
    ok = document = reader_.Read(object, &error);
  }
  if (!ok) {
    if (error.syntax) {
      return EsError(400, "x_content_parse_exception",
                     absl::StrCat(where.ToString(), ": ", error.message));
    }
    return Reject(where, error);
  }
  if (!AtEnd(doc)) return syntax(simdjson::TAPE_ERROR);
  if (document) reader_.Accept();
  return absl::OkStatus();
}

absl::Status SourceLoader::RunArray() {
  // Element by element: only the current element need be in memory.
  array_elements_ = true;
  ++begin_;  // the '['
  for (bool first = true;; first = false) {
    absl::StatusOr<bool> more = SkipBlanks();
    if (!more.ok()) return more.status();
    if (!*more) {
      return Malformed(consumed_ + begin_,
                       "the array is not closed at the end of the input");
    }
    if (first && data_[begin_] == ']') {
      ++begin_;
      break;
    }
    size_t length = 0;
    if (absl::Status s = ScanElement(&length); !s.ok()) return s;
    if (length == 0) {
      return Malformed(consumed_ + begin_, "expected an array element");
    }
    if (length > options_.max_document_bytes) return TooLong();
    if (absl::Status s = ArrayElement(begin_, length); !s.ok()) return s;
    begin_ += length;
    more = SkipBlanks();
    if (!more.ok()) return more.status();
    if (!*more) {
      return Malformed(consumed_ + begin_,
                       "the array is not closed at the end of the input");
    }
    const char c = data_[begin_++];
    if (c == ']') break;
    if (c != ',') {
      return Malformed(consumed_ + begin_ - 1,
                       "expected ',' or ']' after an array element");
    }
  }
  absl::StatusOr<bool> more = SkipBlanks();
  if (!more.ok()) return more.status();
  if (*more) {
    return Malformed(consumed_ + begin_,
                     "content after the end of the document");
  }
  return absl::OkStatus();
}

absl::Status SourceLoader::RunWhole() {
  // Read everything that is left.
  whole_document_ = true;
  while (true) {
    absl::StatusOr<bool> more = Fill();
    if (!more.ok()) return more.status();
    if (!*more) break;
    if (absl::Status s = CheckBudget(end_); !s.ok()) return s;
    if (end_ == capacity_) {
      // Fill() grows the buffer when it is full.
      continue;
    }
  }
  const char* base = data_ + begin_;
  size_t length = end_ - begin_;
  uint64_t base_offset = consumed_ + begin_;
  auto location_of = [&](const char* p) {
    Location where{report_->source, 0, base_offset};
    if (p != nullptr && p >= base && p <= base + length) {
      where.byte_offset = base_offset + static_cast<uint64_t>(p - base);
    }
    return where;
  };
  DocError error;
  auto fail_syntax = [&](error_code e, const char* at) {
    DocumentReader::Syntax(e, &error);
    // A broken whole document cannot be skipped piecewise: fail the load.
    return EsError(400, "x_content_parse_exception",
                   absl::StrCat(location_of(at).ToString(), ": ",
                                error.message));
  };
  // A syntax error the document reader found inside an element.
  auto fatal = [&](const char* at) {
    return EsError(400, "x_content_parse_exception",
                   absl::StrCat(location_of(at).ToString(), ": ",
                                error.message));
  };
  od::document doc;
  if (auto e = parser_.iterate(base, length, Readable(begin_))
                   .get(doc)) {
    return fail_syntax(e, base);
  }
  // Reads the _source of one search hit; every key of the hit is visited.
  // Sets *accepted if a document is waiting for reader_.Accept().
  auto read_hit = [&](od::object& hit, const char* at,
                      bool* accepted) -> absl::Status {
    *accepted = false;
    bool ok = true;
    if (auto e = ReadHit(hit, &error, &ok)) return fail_syntax(e, at);
    if (!ok && error.syntax) return fatal(at);
    if (!ok) return Reject(location_of(at), error);
    *accepted = true;
    return absl::OkStatus();
  };
  auto read_documents = [&](od::array array) -> absl::Status {
    for (auto element_result : array) {
      od::value element;
      if (auto e = std::move(element_result).get(element)) {
        return fail_syntax(e, nullptr);
      }
      const char* at = nullptr;
      if (element.current_location().get(at)) at = nullptr;
      error = DocError();
      if (format_ == DumpFormat::kSearchResponse) {
        od::object hit;
        if (auto e = element.get_object().get(hit)) {
          if (e != simdjson::INCORRECT_TYPE) return fail_syntax(e, at);
          error.message = "search hit is not a JSON object";
          if (absl::Status s = Reject(location_of(at), error); !s.ok()) {
            return s;
          }
          continue;
        }
        bool accepted = false;
        if (absl::Status s = read_hit(hit, at, &accepted); !s.ok()) return s;
        if (accepted) reader_.Accept();
        continue;
      }
      if (!reader_.ReadValue(element, &error)) {
        if (error.syntax) return fatal(at);
        if (absl::Status s = Reject(location_of(at), error); !s.ok()) return s;
        continue;
      }
      reader_.Accept();
    }
    return absl::OkStatus();
  };

  od::json_type type;
  if (auto e = doc.type().get(type)) return fail_syntax(e, base);
  // A single document waiting for the end-of-input check.
  bool single_document = false;
  // (A source starting with '[' is read by RunArray().)
  if (type == od::json_type::object) {
    if (format_ == DumpFormat::kNdjson) {
      // The first line did not hold a whole document: a pretty-printed
      // response or document. Look at its keys, then start over.
      od::object probe;
      DumpFormat detected = DumpFormat::kNdjson;
      if (doc.get_object().get(probe) == simdjson::SUCCESS &&
          DetectObject(probe, &detected) == simdjson::SUCCESS) {
        if (detected != DumpFormat::kBulk) format_ = detected;
        doc.rewind();
      } else {
        // simdjson abandons a document after a syntax error (rewind() is
        // then unsafe): parse it again, to report the error below.
        if (auto e = parser_.iterate(base, length,
                                     Readable(begin_))
                         .get(doc)) {
          return fail_syntax(e, base);
        }
      }
    }
    od::object object;
    if (auto e = doc.get_object().get(object)) return fail_syntax(e, base);
    if (format_ == DumpFormat::kInfluencersResponse ||
        format_ == DumpFormat::kSearchResponse) {
      bool found = false;
      for (auto field_result : object) {
        if (auto e = field_result.error()) return fail_syntax(e, nullptr);
        od::field& field = field_result.value_unsafe();
        std::string_view key;
        if (auto e = FieldKey(field, &key)) return fail_syntax(e, nullptr);
        if (format_ == DumpFormat::kInfluencersResponse &&
            key == "influencers") {
          od::array array;
          if (auto e = field.value().get_array().get(array)) {
            return fail_syntax(e, nullptr);
          }
          found = true;
          if (absl::Status s = read_documents(array); !s.ok()) return s;
        } else if (format_ == DumpFormat::kSearchResponse && key == "hits") {
          od::object hits;
          if (auto e = field.value().get_object().get(hits)) {
            return fail_syntax(e, nullptr);
          }
          for (auto inner_result : hits) {
            if (auto e = inner_result.error()) return fail_syntax(e, nullptr);
            od::field& inner = inner_result.value_unsafe();
            std::string_view inner_key;
            if (auto e = FieldKey(inner, &inner_key)) {
              return fail_syntax(e, nullptr);
            }
            if (inner_key != "hits") continue;
            od::array array;
            if (auto e = inner.value().get_array().get(array)) {
              return fail_syntax(e, nullptr);
            }
            found = true;
            if (absl::Status s = read_documents(array); !s.ok()) return s;
          }
        }
      }
      if (!found) {
        return EsError(400, "x_content_parse_exception",
                       absl::StrCat(report_->source, ": response has no ",
                                    format_ == DumpFormat::kSearchResponse
                                        ? "hits.hits array"
                                        : "influencers array"));
      }
    } else if (format_ == DumpFormat::kSearchHitsNdjson) {
      // One (pretty-printed) search hit.
      if (absl::Status s = read_hit(object, base, &single_document); !s.ok()) {
        return s;
      }
    } else {
      // One (pretty-printed) result document.
      if (!reader_.Read(object, &error)) {
        if (error.syntax) return fatal(base);
        // Lenient: skipped, and the rest of it with it.
        return Reject(location_of(base), error);
      }
      single_document = true;
    }
  } else {
    return EsError(400, "x_content_parse_exception",
                   absl::StrCat(report_->source,
                                ": expected a JSON object or array, found ",
                                JsonTypeName(type)));
  }
  if (!AtEnd(doc)) {
    const char* at = nullptr;
    if (doc.current_location().get(at)) at = nullptr;
    return EsError(400, "x_content_parse_exception",
                   absl::StrCat(location_of(at).ToString(),
                                ": malformed JSON: content after the end of "
                                "the document"));
  }
  if (single_document) reader_.Accept();
  return absl::OkStatus();
}

}  // namespace

absl::Status RunSource(ByteSource* source, const LoadOptions& options,
                       MutationBatch* batch, LoadReport* report,
                       bool final_budget_check, SourceOutcome* outcome) {
  SourceLoader loader(source, options, batch, report);
  absl::Status status = loader.Run();
  if (status.ok() && final_budget_check) status = loader.CheckFinalBudget();
  outcome->format = loader.format();
  outcome->read_lines = loader.read_lines();
  return status;
}

}  // namespace loader_internal
}  // namespace clout
