#include "engine/loader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/dates.h"
#include "engine/error.h"
#include "simdjson.h"

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
  }
  return "unknown";
}

namespace {

namespace od = simdjson::ondemand;
using simdjson::error_code;

constexpr size_t kPadding = simdjson::SIMDJSON_PADDING;

// True if nothing but whitespace follows the parsed part of `doc`: at the
// end, simdjson reports no current location.
bool AtEnd(od::document& doc) {
  const char* location = nullptr;
  return doc.current_location().get(location) != simdjson::SUCCESS;
}

absl::string_view ToAbsl(std::string_view sv) {
  return absl::string_view(sv.data(), sv.size());
}

// ---------------------------------------------------------------------------
// Byte sources.

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to `n` bytes into `buf`; returns 0 at end of input.
  virtual absl::StatusOr<size_t> Read(char* buf, size_t n) = 0;
};

class StringSource : public ByteSource {
 public:
  explicit StringSource(absl::string_view text) : text_(text) {}
  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    size_t k = std::min(n, text_.size());
    std::memcpy(buf, text_.data(), k);
    text_.remove_prefix(k);
    return k;
  }

 private:
  absl::string_view text_;
};

absl::Status IoError(absl::string_view source, absl::string_view problem) {
  return EsError(500, "io_exception", absl::StrCat(source, ": ", problem));
}

class FdSource : public ByteSource {
 public:
  FdSource(int fd, std::string name, bool owned)
      : fd_(fd), name_(std::move(name)), owned_(owned) {}
  ~FdSource() override {
    if (owned_) close(fd_);
  }
  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    size_t total = 0;
    while (total < n) {
      ssize_t r = read(fd_, buf + total, n - total);
      if (r < 0) {
        if (errno == EINTR) continue;
        return IoError(name_, std::strerror(errno));
      }
      if (r == 0) break;
      total += static_cast<size_t>(r);
    }
    return total;
  }

 private:
  int fd_;
  std::string name_;
  bool owned_;
};

absl::StatusOr<std::unique_ptr<ByteSource>> OpenFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError(path, std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    close(fd);
    return IoError(path, "is a directory, not a dump file");
  }
  return std::unique_ptr<ByteSource>(new FdSource(fd, path, true));
}

// ---------------------------------------------------------------------------
// One result document.

enum Key : uint32_t {
  kJobId,
  kResultType,
  kFieldName,
  kFieldValue,
  kInfluencerScore,
  kInitialInfluencerScore,
  kProbability,
  kBucketSpan,
  kIsInterim,
  kTimestamp,
  kOther,
};

constexpr const char* kKeyNames[] = {
    "job_id",           "result_type",
    "influencer_field_name", "influencer_field_value",
    "influencer_score", "initial_influencer_score",
    "probability",      "bucket_span",
    "is_interim",       "timestamp",
};

Key KeyOf(std::string_view key) {
  switch (key.size()) {
    case 6:
      return key == "job_id" ? kJobId : kOther;
    case 9:
      return key == "timestamp" ? kTimestamp : kOther;
    case 10:
      return key == "is_interim" ? kIsInterim : kOther;
    case 11:
      if (key == "result_type") return kResultType;
      if (key == "probability") return kProbability;
      if (key == "bucket_span") return kBucketSpan;
      return kOther;
    case 16:
      return key == "influencer_score" ? kInfluencerScore : kOther;
    case 21:
      return key == "influencer_field_name" ? kFieldName : kOther;
    case 22:
      return key == "influencer_field_value" ? kFieldValue : kOther;
    case 24:
      return key == "initial_influencer_score" ? kInitialInfluencerScore
                                               : kOther;
    default:
      return kOther;
  }
}

// The key of `field` without copying when it has no escapes.
error_code FieldKey(od::field& field, std::string_view* key) {
  const char* raw = field.key().raw();
  // Keys were validated by stage 1: a closing quote exists.
  const char* quote = static_cast<const char*>(std::strchr(raw, '"'));
  if (quote != nullptr &&
      std::memchr(raw, '\\', static_cast<size_t>(quote - raw)) == nullptr) {
    *key = std::string_view(raw, static_cast<size_t>(quote - raw));
    return simdjson::SUCCESS;
  }
  return field.unescaped_key().get(*key);
}

const char* JsonTypeName(od::json_type type) {
  switch (type) {
    case od::json_type::array: return "an array";
    case od::json_type::object: return "an object";
    case od::json_type::number: return "a number";
    case od::json_type::string: return "a string";
    case od::json_type::boolean: return "a boolean";
    case od::json_type::null: return "null";
  }
  return "an unknown value";
}

// Where a document came from, for messages.
struct Location {
  absl::string_view source;
  uint64_t line = 0;         // 1-based line (NDJSON), or 0
  uint64_t byte_offset = 0;  // offset of the document in the source
  std::string ToString() const {
    if (line > 0) return absl::StrCat(source, ":", line);
    return absl::StrCat(source, ": at byte ", byte_offset);
  }
};

// What went wrong with a document: a syntax error or a field problem.
struct DocError {
  bool syntax = false;
  std::string message;  // without the location
};

class DocumentReader {
 public:
  DocumentReader(IngestBatch* batch, LoadReport* report)
      : batch_(batch), report_(report) {}

  // Reads one result document. Returns false and fills *error if it is bad.
  bool Read(od::object object, DocError* error);

  // Reads `value` as a document (it must be an object).
  bool ReadValue(od::value value, DocError* error) {
    od::object object;
    od::json_type type;
    if (auto e = value.type().get(type)) return Syntax(e, error);
    if (type != od::json_type::object) {
      error->message = absl::StrCat("document is ", JsonTypeName(type),
                                    ", not a JSON object");
      return false;
    }
    if (auto e = value.get_object().get(object)) return Syntax(e, error);
    return Read(object, error);
  }

  static bool Syntax(error_code e, DocError* error) {
    error->syntax = true;
    error->message =
        absl::StrCat("malformed JSON: ", simdjson::error_message(e));
    return false;
  }

 private:
  // Records the first problem with an influencer field; reported only if
  // the document turns out to be an influencer result.
  void FieldProblem(Key key, std::string problem) {
    if (field_problem_.empty()) {
      field_problem_ =
          absl::StrCat("field [", kKeyNames[key], "]: ", std::move(problem));
    }
  }
  bool ReadString(od::value& value, Key key, std::string_view* out,
                  DocError* error);
  bool ReadDouble(od::value& value, Key key, double* out, DocError* error);
  bool ReadTimestamp(od::value& value, DocError* error);
  bool ReadBucketSpan(od::value& value, DocError* error);
  bool ReadInterim(od::value& value, DocError* error);

  IngestBatch* batch_;
  LoadReport* report_;
  InfluencerFields row_;
  std::string field_problem_;
};

bool DocumentReader::ReadString(od::value& value, Key key,
                                std::string_view* out, DocError* error) {
  error_code e = value.get_string().get(*out);
  if (e == simdjson::SUCCESS) return true;
  od::json_type type;
  if (auto t = value.type().get(type)) return Syntax(t, error);
  if (e != simdjson::INCORRECT_TYPE) return Syntax(e, error);
  if (type == od::json_type::null) return true;  // counts as missing
  FieldProblem(key, absl::StrCat("expected a string, found ",
                                 JsonTypeName(type)));
  return true;
}

bool DocumentReader::ReadDouble(od::value& value, Key key, double* out,
                                DocError* error) {
  error_code e = value.get_double().get(*out);
  if (e == simdjson::SUCCESS) return true;
  od::json_type type;
  if (auto t = value.type().get(type)) return Syntax(t, error);
  if (type == od::json_type::null) {
    *out = 0.0;
    return true;
  }
  if (type == od::json_type::number) {
    FieldProblem(key, absl::StrCat("number ", ToAbsl(value.raw_json_token()),
                                   " is out of range for a double"));
  } else if (e != simdjson::INCORRECT_TYPE) {
    return Syntax(e, error);
  } else {
    FieldProblem(key, absl::StrCat("expected a number, found ",
                                   JsonTypeName(type)));
  }
  return true;
}

bool DocumentReader::ReadTimestamp(od::value& value, DocError* error) {
  od::json_type type;
  if (auto t = value.type().get(type)) return Syntax(t, error);
  switch (type) {
    case od::json_type::number: {
      int64_t millis = 0;
      error_code e = value.get_int64().get(millis);
      if (e != simdjson::SUCCESS || millis < kMinEpochMillis ||
          millis > kMaxEpochMillis) {
        FieldProblem(kTimestamp,
                     absl::StrCat("number ", ToAbsl(value.raw_json_token()),
                                  " is not epoch milliseconds within +/-",
                                  kMaxEpochMillis));
        return true;
      }
      row_.timestamp = millis;
      return true;
    }
    case od::json_type::string: {
      std::string_view text;
      if (auto e = value.get_string().get(text)) return Syntax(e, error);
      absl::StatusOr<int64_t> millis = ParseIsoDate(ToAbsl(text));
      if (!millis.ok()) millis = ParseEpochMillis(ToAbsl(text));
      if (!millis.ok()) {
        FieldProblem(kTimestamp,
                     absl::StrCat("\"", ToAbsl(text),
                                  "\" is neither epoch milliseconds nor an "
                                  "ISO 8601 date"));
        return true;
      }
      row_.timestamp = *millis;
      return true;
    }
    default:
      FieldProblem(kTimestamp, absl::StrCat("expected a number or a string, "
                                            "found ",
                                            JsonTypeName(type)));
      return true;
  }
}

bool DocumentReader::ReadBucketSpan(od::value& value, DocError* error) {
  od::json_type type;
  if (auto t = value.type().get(type)) return Syntax(t, error);
  if (type == od::json_type::null) return true;
  if (type != od::json_type::number) {
    FieldProblem(kBucketSpan,
                 absl::StrCat("expected a number, found ", JsonTypeName(type)));
    return true;
  }
  int64_t span = 0;
  if (value.get_int64().get(span) != simdjson::SUCCESS || span < 0) {
    FieldProblem(kBucketSpan,
                 absl::StrCat("number ", ToAbsl(value.raw_json_token()),
                              " is not a non-negative integer"));
    return true;
  }
  row_.bucket_span = span;
  return true;
}

bool DocumentReader::ReadInterim(od::value& value, DocError* error) {
  bool interim = false;
  error_code e = value.get_bool().get(interim);
  if (e == simdjson::SUCCESS) {
    row_.is_interim = interim;
    return true;
  }
  od::json_type type;
  if (auto t = value.type().get(type)) return Syntax(t, error);
  if (type == od::json_type::null) return true;
  if (e != simdjson::INCORRECT_TYPE) return Syntax(e, error);
  FieldProblem(kIsInterim,
               absl::StrCat("expected a boolean, found ", JsonTypeName(type)));
  return true;
}

bool DocumentReader::Read(od::object object, DocError* error) {
  row_ = InfluencerFields();
  field_problem_.clear();
  std::string_view job_id;
  std::string_view result_type;
  uint32_t seen = 0;
  bool has_job_id = false;
  bool has_result_type = false;
  for (auto field_result : object) {
    od::field field;
    if (auto e = std::move(field_result).get(field)) return Syntax(e, error);
    std::string_view key;
    if (auto e = FieldKey(field, &key)) return Syntax(e, error);
    Key k = KeyOf(key);
    if (k == kOther) continue;  // unknown keys are skipped unread
    od::value& value = field.value();
    if (seen & (1u << k)) {
      if (k == kJobId || k == kResultType) {
        error->message = absl::StrCat("duplicate field [", kKeyNames[k], "]");
        return false;
      }
      FieldProblem(k, "appears more than once");
      continue;
    }
    seen |= 1u << k;
    switch (k) {
      case kJobId:
      case kResultType: {
        std::string_view* out = k == kJobId ? &job_id : &result_type;
        error_code e = value.get_string().get(*out);
        if (e != simdjson::SUCCESS) {
          od::json_type type;
          if (auto t = value.type().get(type)) return Syntax(t, error);
          if (e != simdjson::INCORRECT_TYPE) return Syntax(e, error);
          if (type == od::json_type::null) break;
          error->message =
              absl::StrCat("field [", kKeyNames[k], "]: expected a string, found ",
                           JsonTypeName(type));
          return false;
        }
        (k == kJobId ? has_job_id : has_result_type) = true;
        break;
      }
      case kFieldName:
      case kFieldValue: {
        std::string_view text;
        if (!ReadString(value, k, &text, error)) return false;
        if (text.data() == nullptr) {
          seen &= ~(1u << k);  // null or a wrong type: not present
        } else {
          (k == kFieldName ? row_.field_name : row_.field_value) = ToAbsl(text);
        }
        break;
      }
      case kInfluencerScore:
        if (!ReadDouble(value, k, &row_.influencer_score, error)) return false;
        break;
      case kInitialInfluencerScore:
        if (!ReadDouble(value, k, &row_.initial_influencer_score, error)) {
          return false;
        }
        break;
      case kProbability:
        if (!ReadDouble(value, k, &row_.probability, error)) return false;
        break;
      case kBucketSpan:
        if (!ReadBucketSpan(value, error)) return false;
        break;
      case kIsInterim:
        if (!ReadInterim(value, error)) return false;
        break;
      case kTimestamp: {
        // null counts as missing.
        od::json_type type;
        if (auto t = value.type().get(type)) return Syntax(t, error);
        if (type == od::json_type::null) {
          seen &= ~(1u << k);
          break;
        }
        if (!ReadTimestamp(value, error)) return false;
        break;
      }
      case kOther:
        break;
    }
  }

  ++report_->documents;
  if (!has_result_type || result_type != "influencer") {
    if (has_job_id) batch_->RegisterJob(ToAbsl(job_id));
    std::string_view type = has_result_type ? result_type : "(none)";
    auto it = report_->skipped.find(type);
    if (it == report_->skipped.end()) {
      report_->skipped.emplace(std::string(type), 1);
    } else {
      ++it->second;
    }
    return true;
  }
  if (!has_job_id) {
    error->message = "missing required field [job_id]";
    return false;
  }
  if (!field_problem_.empty()) {
    error->message = std::move(field_problem_);
    return false;
  }
  for (Key k : {kFieldName, kFieldValue, kTimestamp}) {
    if (!(seen & (1u << k))) {
      error->message =
          absl::StrCat("missing required field [", kKeyNames[k], "]");
      return false;
    }
  }
  batch_->AddInfluencer(ToAbsl(job_id), row_);
  return true;
}

// ---------------------------------------------------------------------------
// A source: format detection, then line-by-line or whole-document parsing.

class SourceLoader {
 public:
  SourceLoader(ByteSource* source, const LoadOptions& options,
               IngestBatch* batch, LoadReport* report)
      : source_(source),
        options_(options),
        report_(report),
        reader_(batch, report) {}

  absl::Status Run();

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

  // Reads more input after buf_[end_]; false at end of input.
  absl::StatusOr<bool> Fill();
  absl::Status RunLines();
  absl::Status RunWhole();
  absl::Status Line(const char* begin, size_t length, size_t capacity);
  DumpFormat DetectFromLine(const char* begin, size_t length, size_t capacity,
                            bool* complete);

  ByteSource* source_;
  const LoadOptions& options_;
  LoadReport* report_;
  DocumentReader reader_;
  od::parser parser_;

  std::unique_ptr<char[]> buf_;
  size_t capacity_ = 0;  // usable bytes; kPadding more are allocated
  size_t begin_ = 0;     // first unconsumed byte
  size_t end_ = 0;       // end of valid bytes
  bool eof_ = false;
  uint64_t consumed_ = 0;  // bytes before buf_[0] in the source
  uint64_t line_ = 0;      // lines consumed so far
  DumpFormat format_ = DumpFormat::kUnknown;
  // Bulk: the action line said a document follows.
  bool bulk_expect_source_ = false;
  bool bulk_skip_source_ = false;
};

absl::StatusOr<bool> SourceLoader::Fill() {
  if (eof_) return false;
  if (begin_ > 0) {
    std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
    consumed_ += begin_;
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == capacity_) {
    // One line longer than the buffer: grow it.
    size_t grown = capacity_ * 2;
    auto bigger = std::make_unique<char[]>(grown + kPadding);
    std::memcpy(bigger.get(), buf_.get(), end_);
    buf_ = std::move(bigger);
    capacity_ = grown;
  }
  absl::StatusOr<size_t> n = source_->Read(buf_.get() + end_, capacity_ - end_);
  if (!n.ok()) return n.status();
  if (*n == 0) {
    eof_ = true;
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

DumpFormat SourceLoader::DetectFromLine(const char* begin, size_t length,
                                        size_t capacity, bool* complete) {
  *complete = false;
  od::document doc;
  if (parser_.iterate(begin, length, capacity).get(doc)) {
    return DumpFormat::kUnknown;
  }
  od::object object;
  if (doc.get_object().get(object)) return DumpFormat::kUnknown;
  bool has_source = false, has_influencers = false, has_hits = false;
  size_t keys = 0;
  bool bulk_action = false;
  for (auto field_result : object) {
    od::field field;
    if (std::move(field_result).get(field)) return DumpFormat::kUnknown;
    std::string_view key;
    if (FieldKey(field, &key)) return DumpFormat::kUnknown;
    ++keys;
    od::json_type type;
    if (field.value().type().get(type)) return DumpFormat::kUnknown;
    if (key == "_source") has_source = true;
    if (key == "influencers" && type == od::json_type::array) {
      has_influencers = true;
    }
    if (key == "hits" && type == od::json_type::object) has_hits = true;
    if ((key == "index" || key == "create" || key == "delete" ||
         key == "update") &&
        type == od::json_type::object) {
      bulk_action = true;
    }
  }
  if (!AtEnd(doc)) return DumpFormat::kUnknown;
  *complete = true;
  if (has_influencers) return DumpFormat::kInfluencersResponse;
  if (has_hits) return DumpFormat::kSearchResponse;
  if (has_source) return DumpFormat::kSearchHitsNdjson;
  if (keys == 1 && bulk_action) return DumpFormat::kBulk;
  return DumpFormat::kNdjson;
}

absl::Status SourceLoader::Run() {
  capacity_ = std::max<size_t>(options_.chunk_bytes, 4096);
  buf_ = std::make_unique<char[]>(capacity_ + kPadding);
  // Skip a UTF-8 byte order mark, then blank lines, to the first document.
  while (end_ < 3) {
    absl::StatusOr<bool> more = Fill();
    if (!more.ok()) return more.status();
    if (!*more) break;
  }
  if (end_ >= 3 && std::memcmp(buf_.get(), "\xEF\xBB\xBF", 3) == 0) begin_ = 3;
  while (true) {
    while (begin_ < end_ && IsBlank(buf_.get() + begin_, 1)) {
      if (buf_[begin_] == '\n') ++line_;
      ++begin_;
    }
    if (begin_ < end_) break;
    absl::StatusOr<bool> more = Fill();
    if (!more.ok()) return more.status();
    if (!*more) return absl::OkStatus();  // nothing but whitespace
  }
  if (buf_[begin_] == '[') {
    format_ = DumpFormat::kJsonArray;
    return RunWhole();
  }
  // Read until the first line is complete, then look at it.
  const char* newline = nullptr;
  while (true) {
    newline = static_cast<const char*>(
        std::memchr(buf_.get() + begin_, '\n', end_ - begin_));
    if (newline != nullptr) break;
    absl::StatusOr<bool> more = Fill();
    if (!more.ok()) return more.status();
    if (!*more) break;
  }
  size_t line_end =
      newline != nullptr ? static_cast<size_t>(newline - buf_.get()) : end_;
  bool complete = false;
  DumpFormat detected =
      DetectFromLine(buf_.get() + begin_, line_end - begin_,
                     capacity_ + kPadding - begin_, &complete);
  if (!complete || detected == DumpFormat::kInfluencersResponse ||
      detected == DumpFormat::kSearchResponse) {
    // A document spanning lines (pretty-printed) or a response object.
    format_ = detected == DumpFormat::kUnknown ? DumpFormat::kNdjson : detected;
    return RunWhole();
  }
  format_ = detected;
  return RunLines();
}

absl::Status SourceLoader::RunLines() {
  while (true) {
    const char* newline = static_cast<const char*>(
        std::memchr(buf_.get() + begin_, '\n', end_ - begin_));
    if (newline == nullptr) {
      absl::StatusOr<bool> more = Fill();
      if (!more.ok()) return more.status();
      if (*more) continue;
      if (begin_ < end_) {  // last line without a final newline
        ++line_;
        size_t length = end_ - begin_;
        if (absl::Status s = Line(buf_.get() + begin_, length,
                                  capacity_ + kPadding - begin_);
            !s.ok()) {
          return s;
        }
        begin_ = end_;
      }
      break;
    }
    ++line_;
    size_t line_end = static_cast<size_t>(newline - buf_.get());
    if (absl::Status s = Line(buf_.get() + begin_, line_end - begin_,
                              capacity_ + kPadding - begin_);
        !s.ok()) {
      return s;
    }
    begin_ = line_end + 1;
  }
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
  Location where{report_->source, line_, 0};
  DocError error;
  od::document doc;
  if (auto e = parser_.iterate(begin, length, capacity).get(doc)) {
    DocumentReader::Syntax(e, &error);
    return Reject(where, error);
  }
  od::value root;
  auto reject_syntax = [&](error_code e) {
    DocumentReader::Syntax(e, &error);
    return Reject(where, error);
  };
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
  switch (format_) {
    case DumpFormat::kNdjson:
      ok = reader_.Read(object, &error);
      break;
    case DumpFormat::kSearchHitsNdjson: {
      bool found = false;
      for (auto field_result : object) {
        od::field field;
        if (auto e = std::move(field_result).get(field)) return reject_syntax(e);
        std::string_view key;
        if (auto e = FieldKey(field, &key)) return reject_syntax(e);
        if (key != "_source") continue;
        found = true;
        ok = reader_.ReadValue(field.value(), &error);
        break;
      }
      if (!found) {
        error.message = "search hit without _source";
        ok = false;
      }
      break;
    }
    case DumpFormat::kBulk: {
      if (bulk_expect_source_) {
        bulk_expect_source_ = false;
        if (bulk_skip_source_) return absl::OkStatus();
        ok = reader_.Read(object, &error);
        break;
      }
      std::string_view action;
      size_t keys = 0;
      for (auto field_result : object) {
        od::field field;
        if (auto e = std::move(field_result).get(field)) return reject_syntax(e);
        std::string_view key;
        if (auto e = FieldKey(field, &key)) return reject_syntax(e);
        action = key;
        ++keys;
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
        ++report_->skipped["(bulk delete)"];
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
      ok = reader_.Read(object, &error);
      break;
  }
  if (ok && !AtEnd(doc)) {
    error.syntax = true;
    error.message = "malformed JSON: more than one JSON value on the line";
    ok = false;
  }
  if (!ok) return Reject(where, error);
  return absl::OkStatus();
}

absl::Status SourceLoader::RunWhole() {
  // Read everything that is left.
  while (true) {
    absl::StatusOr<bool> more = Fill();
    if (!more.ok()) return more.status();
    if (!*more) break;
    if (end_ == capacity_) {
      // Fill() grows the buffer when it is full.
      continue;
    }
  }
  const char* base = buf_.get() + begin_;
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
  if (auto e = parser_.iterate(base, length, capacity_ + kPadding - begin_)
                   .get(doc)) {
    return fail_syntax(e, base);
  }
  auto read_documents = [&](od::array array) -> absl::Status {
    for (auto element_result : array) {
      od::value element;
      if (auto e = std::move(element_result).get(element)) return fail_syntax(e, nullptr);
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
        bool found = false;
        for (auto field_result : hit) {
          od::field field;
          if (auto e = std::move(field_result).get(field)) return fail_syntax(e, at);
          std::string_view key;
          if (auto e = FieldKey(field, &key)) return fail_syntax(e, at);
          if (key != "_source") continue;
          found = true;
          if (!reader_.ReadValue(field.value(), &error)) {
            if (error.syntax) return fatal(at);
            if (absl::Status s = Reject(location_of(at), error); !s.ok()) {
              return s;
            }
          }
          break;
        }
        if (!found) {
          error.message = "search hit without _source";
          if (absl::Status s = Reject(location_of(at), error); !s.ok()) {
            return s;
          }
        }
        continue;
      }
      if (!reader_.ReadValue(element, &error)) {
        if (error.syntax) return fatal(at);
        if (absl::Status s = Reject(location_of(at), error); !s.ok()) return s;
      }
    }
    return absl::OkStatus();
  };

  od::json_type type;
  if (auto e = doc.type().get(type)) return fail_syntax(e, base);
  if (type == od::json_type::array) {
    od::array array;
    if (auto e = doc.get_array().get(array)) return fail_syntax(e, base);
    if (absl::Status s = read_documents(array); !s.ok()) return s;
  } else if (type == od::json_type::object) {
    od::object object;
    if (auto e = doc.get_object().get(object)) return fail_syntax(e, base);
    if (format_ == DumpFormat::kInfluencersResponse ||
        format_ == DumpFormat::kSearchResponse) {
      bool found = false;
      for (auto field_result : object) {
        od::field field;
        if (auto e = std::move(field_result).get(field)) return fail_syntax(e, nullptr);
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
            od::field inner;
            if (auto e = std::move(inner_result).get(inner)) return fail_syntax(e, nullptr);
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
    } else {
      // One (pretty-printed) result document.
      if (!reader_.Read(object, &error)) {
        if (error.syntax) return fatal(base);
        if (absl::Status s = Reject(location_of(base), error); !s.ok()) return s;
      }
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
  return absl::OkStatus();
}

absl::StatusOr<LoadReport> Parse(ByteSource* source, std::string source_name,
                                 const LoadOptions& options,
                                 IngestBatch* batch) {
  absl::Time start = absl::Now();
  LoadReport report;
  report.source =
      options.source_name.empty() ? std::move(source_name) : options.source_name;
  SourceLoader loader(source, options, batch, &report);
  if (absl::Status s = loader.Run(); !s.ok()) return s;
  report.jobs = batch->job_ids();
  report.influencers_added = batch->influencers();
  report.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return report;
}

absl::StatusOr<LoadReport> LoadFrom(InfluencerStore& store, ByteSource* source,
                                    std::string source_name,
                                    const LoadOptions& options) {
  absl::Time start = absl::Now();
  IngestBatch batch;
  absl::StatusOr<LoadReport> report =
      Parse(source, std::move(source_name), options, &batch);
  if (!report.ok()) return report.status();
  store.Commit(std::move(batch));
  report->seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return report;
}

}  // namespace

absl::StatusOr<LoadReport> ParseFileInto(const std::string& path,
                                         const LoadOptions& options,
                                         IngestBatch* batch) {
  if (path == "-") {
    FdSource source(0, "<stdin>", false);
    return Parse(&source, "<stdin>", options, batch);
  }
  absl::StatusOr<std::unique_ptr<ByteSource>> source = OpenFile(path);
  if (!source.ok()) return source.status();
  return Parse(source->get(), path, options, batch);
}

absl::StatusOr<LoadReport> LoadString(InfluencerStore& store,
                                      absl::string_view text,
                                      const LoadOptions& options) {
  StringSource source(text);
  return LoadFrom(store, &source, "<string>", options);
}

absl::StatusOr<LoadReport> LoadFile(InfluencerStore& store,
                                    const std::string& path,
                                    const LoadOptions& options) {
  absl::StatusOr<std::unique_ptr<ByteSource>> source = OpenFile(path);
  if (!source.ok()) return source.status();
  return LoadFrom(store, source->get(), path, options);
}

absl::StatusOr<LoadReport> LoadStdin(InfluencerStore& store,
                                     const LoadOptions& options) {
  FdSource source(0, "<stdin>", false);
  return LoadFrom(store, &source, "<stdin>", options);
}

}  // namespace clout
