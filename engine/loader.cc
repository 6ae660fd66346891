#include "engine/loader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/bulk.h"
#include "engine/byte_source.h"
#include "engine/dates.h"
#include "engine/decompress.h"
#include "engine/error.h"
#include "engine/json_names.h"
#include "engine/fast_number.h"
#include "engine/interner.h"
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
    case DumpFormat::kJsonStream: return "json_stream";
    case DumpFormat::kEsArchive: return "es_archive";
    case DumpFormat::kSnapshot: return "snapshot";
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

class StringSource : public ByteSource {
 public:
  explicit StringSource(absl::string_view text) : text_(text) {}
  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    size_t k = std::min(n, text_.size());
    std::memcpy(buf, text_.data(), k);
    text_.remove_prefix(k);
    return k;
  }
  absl::string_view Borrow(size_t n, size_t padding) override {
    if (text_.size() <= padding) return {};
    absl::string_view lent = text_.substr(0, std::min(n, text_.size() - padding));
    text_.remove_prefix(lent.size());
    return lent;
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

// True if the key at `raw` (just after its opening quote) is exactly
// `literal`. The compare has a constant size, so it compiles to a few
// loads. Reads sizeof(literal) bytes: within the document and its padding,
// as a key is followed at least by `":` and a value.
template <size_t N>
bool RawKeyIs(const char* raw, const char (&literal)[N]) {
  return std::memcmp(raw, literal, N - 1) == 0 && raw[N - 1] == '"';
}

// The known key at `raw` written without escapes (the common case), read
// in place; kOther for any other key, which KeyOf() then judges after
// finding its end and unescaping it.
Key MatchRawKey(const char* raw) {
  switch (raw[0]) {
    case 'j':
      if (RawKeyIs(raw, "job_id")) return kJobId;
      break;
    case 'r':
      if (RawKeyIs(raw, "result_type")) return kResultType;
      break;
    case 'i':
      if (std::memcmp(raw, "influencer_", 11) == 0) {
        if (RawKeyIs(raw, "influencer_field_value")) return kFieldValue;
        if (RawKeyIs(raw, "influencer_field_name")) return kFieldName;
        if (RawKeyIs(raw, "influencer_score")) return kInfluencerScore;
      } else if (RawKeyIs(raw, "initial_influencer_score")) {
        return kInitialInfluencerScore;
      } else if (RawKeyIs(raw, "is_interim")) {
        return kIsInterim;
      }
      break;
    case 'p':
      if (RawKeyIs(raw, "probability")) return kProbability;
      break;
    case 'b':
      if (RawKeyIs(raw, "bucket_span")) return kBucketSpan;
      break;
    case 't':
      if (RawKeyIs(raw, "timestamp")) return kTimestamp;
      break;
    default:
      break;
  }
  return kOther;
}

// False if a key starting with `c` (unescaped) can be neither a known key
// nor one that marks another format (_source): it can be skipped unread.
bool MayMatter(char c) {
  switch (c) {
    case 'j': case 'r': case 'i': case 'p': case 'b': case 't':
    case '_': case '\\':
      return true;
    default:
      return false;
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



// The type of `value` for a message about a value of the wrong type or out
// of range. On demand, simdjson judges the type from the first character
// only; this also checks that a null, boolean or number is well formed, so
// that `tru`, `nul` or `1.2.3` are reported as malformed JSON rather than as
// a boolean, null or number of the wrong kind. May consume a null or boolean:
// call it only when done with the value (a valid null counts as missing).
// The raw token of a value or of a document (whose accessor can fail).
std::string_view RawToken(od::value& value) { return value.raw_json_token(); }
std::string_view RawToken(od::document& doc) {
  std::string_view token;
  if (doc.raw_json_token().get(token) != simdjson::SUCCESS) return {};
  return token;
}

// The text of a number token (raw_json_token() includes trailing
// whitespace).
template <typename Json>
absl::string_view NumberToken(Json& json) {
  return absl::StripTrailingAsciiWhitespace(ToAbsl(RawToken(json)));
}

// For an od::value, or an od::document (an array element parsed on its own).
template <typename Json>
error_code CheckedType(Json& json, od::json_type* type) {
  if (auto e = json.type().get(*type)) return e;
  switch (*type) {
    case od::json_type::null: {
      bool is_null = false;
      if (json.is_null().get(is_null) != simdjson::SUCCESS || !is_null) {
        return simdjson::N_ATOM_ERROR;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::boolean: {
      bool b = false;
      if (json.get_bool().get(b) != simdjson::SUCCESS) {
        std::string_view token = RawToken(json);
        return !token.empty() && token[0] == 'f' ? simdjson::F_ATOM_ERROR
                                                 : simdjson::T_ATOM_ERROR;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::number:
      return IsJsonNumber(NumberToken(json)) ? simdjson::SUCCESS
                                             : simdjson::NUMBER_ERROR;
    default:
      return simdjson::SUCCESS;
  }
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

// The index of the bracket that closes the object or array opening at
// p[0] ('{' or '['), brackets counted outside strings; n if none of the n
// bytes does. A scan for messages and format hints, not a validation.
size_t ValueEnd(const char* p, size_t n) {
  int64_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < n; ++i) {
    const char c = p[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      return i;
    }
  }
  return n;
}

// Words the syntax error of an NDJSON line whose first JSON value is
// complete but followed by more than whitespace ({...} x, {...}]): simdjson
// reports most such lines as ending early in an object, which misleads.
// Leaves `error` alone for any other line.
void ExplainTrailingContent(const char* line, size_t length, DocError* error) {
  if (!error->syntax) return;
  size_t i = 0;
  while (i < length && (line[i] == ' ' || line[i] == '\t')) ++i;
  if (i == length || (line[i] != '{' && line[i] != '[')) return;
  i += ValueEnd(line + i, length - i);
  if (i >= length) return;  // the value does not end on the line
  size_t rest = i + 1;
  while (rest < length && (line[rest] == ' ' || line[rest] == '\t')) ++rest;
  if (rest == length) return;
  // The first bytes of what follows, printable ASCII kept and any other
  // byte written \xNN (a NUL, a control character, a cut UTF-8 sequence):
  // the message stays valid UTF-8 and shows what is there.
  constexpr size_t kExcerpt = 32;
  std::string shown;
  for (size_t j = rest; j < length && j < rest + kExcerpt; ++j) {
    const unsigned char c = static_cast<unsigned char>(line[j]);
    if (c >= 0x20 && c < 0x7F) {
      shown.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&shown, "\\x", absl::Hex(c, absl::kZeroPad2));
    }
  }
  error->message = absl::StrCat(
      "malformed JSON: content after the document, at column ", rest + 1, ": ",
      shown, length - rest > kExcerpt ? "..." : "");
}

class DocumentReader {
 public:
  DocumentReader(MutationBatch* batch, LoadReport* report)
      : batch_(batch), report_(report) {}

  // Reads one result document. Returns false and fills *error if it is bad.
  // A good document is held until Accept() stores it, so that the caller can
  // still reject it (for content after it on its line); the next Read()
  // discards it.
  bool Read(od::object object, DocError* error) {
    if (ABSL_PREDICT_TRUE(ReadFields(object, error))) return true;
    NameFieldOfSyntaxError(error);
    return false;
  }

  // Reads `value` as a document (it must be an object).
  bool ReadValue(od::value value, DocError* error) {
    od::object object;
    od::json_type type;
    if (auto e = CheckedType(value, &type)) return Syntax(e, error);
    if (type != od::json_type::object) {
      error->message = absl::StrCat("document is ", JsonTypeName(type),
                                    ", not a JSON object");
      return false;
    }
    if (auto e = value.get_object().get(object)) return Syntax(e, error);
    return Read(object, error);
  }

  // Stores the document of the last successful Read(): its row (an
  // influencer result) or its job and result type (any other document).
  // Must be called before the parser moves to the next document.
  void Accept();

  // The document of the last successful Read(), until Accept() or the next
  // Read(): whether it is an influencer result, its row, its job.
  bool pending_is_row() const { return pending_row_; }
  const InfluencerFields& pending_row() const { return row_; }
  bool pending_has_job() const { return has_job_id_; }
  absl::string_view pending_job() const { return ToAbsl(job_id_); }
  // Whether Accept() stages an influencer row as a create (a `_bulk`
  // create action) rather than an upsert.
  void set_create(bool create) { create_ = create; }

  // A syntax error met while reading a known field's value names the
  // field ("malformed JSON in field [influencer_field_value]: ...").
  void NameFieldOfSyntaxError(DocError* error) {
    constexpr absl::string_view kPrefix = "malformed JSON: ";
    if (error->syntax && reading_ != kOther &&
        absl::StartsWith(error->message, kPrefix)) {
      error->message =
          absl::StrCat("malformed JSON in field [", kKeyNames[reading_], "]: ",
                       absl::string_view(error->message).substr(kPrefix.size()));
    }
    reading_ = kOther;
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
  // Each returns false (with *error) on a syntax error, and sets *present to
  // false for a null (which counts as missing) or a value of the wrong type
  // (recorded with FieldProblem).
  bool ReadString(od::value& value, Key key, std::string_view* out,
                  bool* present, DocError* error);
  // The common case (a number that fits a double) inline; the rest in
  // ReadDoubleSlow, given the error get_double() returned.
  bool ReadDouble(od::value& value, Key key, double* out, DocError* error) {
    if (FastParseDouble(value.raw_json_token().data(), out)) return true;
    error_code e = value.get_double().get(*out);
    if (ABSL_PREDICT_TRUE(e == simdjson::SUCCESS)) {
      FixLongJsonDouble(NumberToken(value), out);
      return true;
    }
    return ReadDoubleSlow(value, key, e, out, error);
  }
  ABSL_ATTRIBUTE_NOINLINE bool ReadDoubleSlow(od::value& value, Key key,
                                              error_code e, double* out,
                                              DocError* error);
  bool ReadTimestamp(od::value& value, bool* present, DocError* error);
  bool ReadBucketSpan(od::value& value, DocError* error);
  bool ReadInterim(od::value& value, DocError* error);
  // A job seen lately: its id and its staged rows (null until it has an
  // influencer row here). Unused while `used` is false (an empty id is a
  // job id like any other).
  struct RecentJob {
    bool used = false;
    std::string id;
    MutationBatch::JobRows* rows = nullptr;
    bool Holds(std::string_view job_id) const {
      return used && BytesEqual(ToAbsl(job_id), id);
    }
  };
  // The entry `job_id` maps to among the recent jobs (it may hold another).
  RecentJob& RecentSlot(std::string_view job_id) {
    return recent_jobs_[HashBytes(job_id.data(), job_id.size()) &
                        (kRecentJobs - 1)];
  }
  // The entry of `job_id` once an accepted document names it: adds the job
  // to LoadReport::jobs if this source had not brought it yet.
  RecentJob& NoteJob(std::string_view job_id);

  bool ReadFields(od::object object, DocError* error);

  MutationBatch* batch_;
  LoadReport* report_;
  // The known field whose value is being read, else kOther.
  Key reading_ = kOther;
  InfluencerFields row_;
  std::string field_problem_;
  bool create_ = false;
  // The document held for Accept(): valid until the parser moves on.
  bool pending_ = false;
  bool pending_row_ = false;  // an influencer row, else a skipped document
  bool has_job_id_ = false;
  std::string_view job_id_;
  std::string_view skipped_type_;
  // Jobs of this source, for LoadReport::jobs.
  absl::flat_hash_set<std::string> jobs_seen_;
  // Jobs of recent documents (dumps interleave a few), direct-mapped by a
  // hash of the id: a document's job is found with one compare and no
  // branch on which entry holds it. Every entry's job was noted.
  static constexpr size_t kRecentJobs = 16;
  RecentJob recent_jobs_[kRecentJobs];
  // The current document's entry, if it held its job when the job id was
  // read; else null.
  RecentJob* job_entry_ = nullptr;
};

DocumentReader::RecentJob& DocumentReader::NoteJob(std::string_view job_id) {
  RecentJob& entry = RecentSlot(job_id);
  if (entry.Holds(job_id)) return entry;
  if (jobs_seen_.insert(std::string(job_id)).second) {
    report_->jobs.emplace_back(job_id);
  }
  entry.used = true;
  entry.id.assign(job_id.data(), job_id.size());
  entry.rows = nullptr;
  return entry;
}

void DocumentReader::Accept() {
  if (!pending_) return;
  pending_ = false;
  RecentJob* job = nullptr;
  if (has_job_id_) job = job_entry_ != nullptr ? job_entry_ : &NoteJob(job_id_);
  if (pending_row_) {  // Read() accepts no row without a job id: job is set
    if (job->rows == nullptr) job->rows = batch_->Rows(ToAbsl(job_id_));
    if (ABSL_PREDICT_FALSE(create_)) {
      batch_->CreateInfluencer(ToAbsl(job_id_), row_);
    } else {
      batch_->AddInfluencer(job->rows, row_);
    }
    ++report_->influencers_added;
    return;
  }
  if (has_job_id_) batch_->RegisterJob(ToAbsl(job_id_));
  auto it = report_->skipped.find(skipped_type_);
  if (it == report_->skipped.end()) {
    report_->skipped.emplace(std::string(skipped_type_), 1);
  } else {
    ++it->second;
  }
}

bool DocumentReader::ReadString(od::value& value, Key key,
                                std::string_view* out, bool* present,
                                DocError* error) {
  error_code e = value.get_string().get(*out);
  if (e == simdjson::SUCCESS) {
    *present = true;
    return true;
  }
  *present = false;
  if (e != simdjson::INCORRECT_TYPE) return Syntax(e, error);
  od::json_type type;
  if (auto t = CheckedType(value, &type)) return Syntax(t, error);
  if (type == od::json_type::null) return true;  // counts as missing
  FieldProblem(key, absl::StrCat("expected a string, found ",
                                 JsonTypeName(type)));
  return true;
}

bool DocumentReader::ReadDoubleSlow(od::value& value, Key key, error_code e,
                                    double* out, DocError* error) {
  od::json_type type;
  if (auto t = CheckedType(value, &type)) return Syntax(t, error);
  if (type == od::json_type::null) {
    *out = MissingDouble();  // as Elasticsearch indexes a null: no value
    return true;
  }
  if (type == od::json_type::number) {
    FieldProblem(key, absl::StrCat("number ", NumberToken(value),
                                   " is out of range for a double"));
  } else if (e != simdjson::INCORRECT_TYPE) {
    return Syntax(e, error);
  } else {
    FieldProblem(key, absl::StrCat("expected a number, found ",
                                   JsonTypeName(type)));
  }
  return true;
}

bool DocumentReader::ReadTimestamp(od::value& value, bool* present,
                                   DocError* error) {
  *present = false;
  // The common case first: an integer of epoch milliseconds.
  int64_t fast = 0;
  if ((FastParseInt64(value.raw_json_token().data(), &fast) ||
       value.get_int64().get(fast) == simdjson::SUCCESS) &&
      fast >= kMinEpochMillis && fast <= kMaxEpochMillis) {
    row_.timestamp = fast;
    *present = true;
    return true;
  }
  od::json_type type;
  if (auto t = CheckedType(value, &type)) return Syntax(t, error);
  switch (type) {
    case od::json_type::null:
      return true;  // counts as missing
    case od::json_type::number: {
      int64_t millis = 0;
      error_code e = value.get_int64().get(millis);
      double number = 0;
      if (e != simdjson::SUCCESS &&
          value.get_double().get(number) == simdjson::SUCCESS) {
        // A fraction or an exponent (1454943600000.5, 1.4549436E12), or
        // beyond int64: Elasticsearch reads the number as a double and
        // truncates it towards zero to a long, as this does within range.
        FixLongJsonDouble(NumberToken(value), &number);
        if (std::abs(number) <= static_cast<double>(kMaxEpochMillis)) {
          millis = static_cast<int64_t>(number);
          e = simdjson::SUCCESS;
        }
      }
      if (e != simdjson::SUCCESS || millis < kMinEpochMillis ||
          millis > kMaxEpochMillis) {
        FieldProblem(kTimestamp,
                     absl::StrCat("number ", NumberToken(value),
                                  " is not epoch milliseconds within +/-",
                                  kMaxEpochMillis));
        return true;
      }
      row_.timestamp = millis;
      *present = true;
      return true;
    }
    case od::json_type::string: {
      std::string_view text;
      if (auto e = value.get_string().get(text)) return Syntax(e, error);
      // A numeric string is epoch milliseconds ("1000" is 1000 ms, not the
      // year 1000: spec section 8), anything else ISO 8601.
      absl::StatusOr<int64_t> millis = ParseEpochMillis(ToAbsl(text));
      if (!millis.ok()) millis = ParseIsoDate(ToAbsl(text));
      if (!millis.ok()) {
        FieldProblem(kTimestamp,
                     absl::StrCat("\"", ToAbsl(text),
                                  "\" is neither epoch milliseconds nor an "
                                  "ISO 8601 date"));
        return true;
      }
      row_.timestamp = *millis;
      *present = true;
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
  // The common case first: a non-negative integer (get_int64 accepts only
  // a well-formed JSON integer).
  int64_t fast = 0;
  if ((FastParseInt64(value.raw_json_token().data(), &fast) ||
       value.get_int64().get(fast) == simdjson::SUCCESS) &&
      fast >= 0) {
    row_.bucket_span = fast;
    return true;
  }
  od::json_type type;
  if (auto t = CheckedType(value, &type)) return Syntax(t, error);
  if (type == od::json_type::null) return true;
  if (type != od::json_type::number) {
    FieldProblem(kBucketSpan,
                 absl::StrCat("expected a number, found ", JsonTypeName(type)));
    return true;
  }
  int64_t span = 0;
  if (value.get_int64().get(span) != simdjson::SUCCESS || span < 0) {
    FieldProblem(kBucketSpan,
                 absl::StrCat("number ", NumberToken(value),
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
  if (e != simdjson::INCORRECT_TYPE) return Syntax(e, error);
  od::json_type type;
  if (auto t = CheckedType(value, &type)) return Syntax(t, error);
  if (type == od::json_type::null) return true;
  FieldProblem(kIsInterim,
               absl::StrCat("expected a boolean, found ", JsonTypeName(type)));
  return true;
}

bool DocumentReader::ReadFields(od::object object, DocError* error) {
  pending_ = false;
  job_entry_ = nullptr;
  row_ = InfluencerFields();
  // A double the document does not have is missing (sorts last).
  row_.influencer_score = MissingDouble();
  row_.initial_influencer_score = MissingDouble();
  row_.probability = MissingDouble();
  field_problem_.clear();
  std::string_view job_id;
  std::string_view result_type;
  uint32_t seen = 0;
  bool has_job_id = false;
  bool has_result_type = false;
  size_t keys = 0;
  const char* foreign = nullptr;
  bool action_key = false;
  for (auto field_result : object) {
    // The field in place (get() would copy it, which costs a stall).
    if (auto e = field_result.error()) return Syntax(e, error);
    od::field& field = field_result.value_unsafe();
    ++keys;
    const char* raw = field.key().raw();
    Key k = MatchRawKey(raw);
    if (k == kOther) {
      if (keys > 1 && !MayMatter(raw[0])) continue;
      // An escaped known key, or an unknown key: unknown keys are skipped
      // unread, but a search hit's or a bulk action's keys mean the line is
      // in another format than the file.
      std::string_view key;
      if (auto e = FieldKey(field, &key)) return Syntax(e, error);
      k = KeyOf(key);
      if (k == kOther) {
        if (key == "_source") foreign = "a search hit";
        if (keys == 1 && (key == "index" || key == "create" ||
                          key == "delete" || key == "update")) {
          action_key = true;
        }
        continue;
      }
    }
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
    reading_ = k;
    switch (k) {
      case kJobId:
      case kResultType: {
        std::string_view* out = k == kJobId ? &job_id : &result_type;
        error_code e = value.get_string().get(*out);
        if (e != simdjson::SUCCESS) {
          if (e != simdjson::INCORRECT_TYPE) return Syntax(e, error);
          od::json_type type;
          if (auto t = CheckedType(value, &type)) return Syntax(t, error);
          if (type == od::json_type::null) break;
          error->message =
              absl::StrCat("field [", kKeyNames[k], "]: expected a string, found ",
                           JsonTypeName(type));
          return false;
        }
        (k == kJobId ? has_job_id : has_result_type) = true;
        if (k == kJobId) {
          RecentJob& entry = RecentSlot(job_id);
          if (entry.Holds(job_id)) job_entry_ = &entry;
        }
        break;
      }
      case kFieldName:
      case kFieldValue: {
        std::string_view text;
        bool present = false;
        if (!ReadString(value, k, &text, &present, error)) return false;
        if (!present) {
          seen &= ~(1u << k);  // null or a wrong type: not present
        } else {
          (k == kFieldName ? row_.field_name : row_.field_value) = ToAbsl(text);
          // The value's interner slot is a likely cache miss: start it now,
          // while the rest of the document is read.
          if (k == kFieldValue && job_entry_ != nullptr &&
              job_entry_->rows != nullptr) {
            batch_->PrefetchFieldValue(job_entry_->rows, row_.field_value);
          }
        }
        break;
      }
      case kInfluencerScore:
      case kInitialInfluencerScore:
      case kProbability: {
        // One inlined number parser for the three.
        double* out = k == kInfluencerScore ? &row_.influencer_score
                      : k == kProbability   ? &row_.probability
                                            : &row_.initial_influencer_score;
        if (!ReadDouble(value, k, out, error)) return false;
        break;
      }
      case kBucketSpan:
        if (!ReadBucketSpan(value, error)) return false;
        break;
      case kIsInterim:
        if (!ReadInterim(value, error)) return false;
        break;
      case kTimestamp: {
        bool present = false;
        if (!ReadTimestamp(value, &present, error)) return false;
        // A null counts as missing; so does a bad value, whose problem is
        // reported first.
        if (!present && field_problem_.empty()) seen &= ~(1u << k);
        break;
      }
      case kOther:
        break;
    }
    reading_ = kOther;
  }

  ++report_->documents;
  has_job_id_ = has_job_id;
  job_id_ = job_id;
  if (!has_result_type && (foreign != nullptr || (action_key && keys == 1))) {
    error->message = absl::StrCat(
        "this is ", foreign != nullptr ? foreign : "a bulk action line",
        ", not a result document: a file holds one format, taken from its "
        "first document");
    return false;
  }
  constexpr std::string_view kInfluencer = "influencer";
  if (!has_result_type || result_type.size() != kInfluencer.size() ||
      std::memcmp(result_type.data(), kInfluencer.data(),
                  kInfluencer.size()) != 0) {
    pending_ = true;
    pending_row_ = false;
    skipped_type_ = has_result_type ? result_type : "(none)";
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
  pending_ = true;
  pending_row_ = true;
  return true;
}

// ---------------------------------------------------------------------------
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

error_code SourceLoader::ReadHit(od::object& hit, DocError* error, bool* ok) {
  bool found = false;
  *ok = true;
  for (auto field_result : hit) {
    if (auto e = field_result.error()) return e;
    od::field& field = field_result.value_unsafe();
    std::string_view key;
    if (auto e = FieldKey(field, &key)) return e;
    if (key != "_source") continue;
    if (found) {
      error->message = "duplicate field [_source]";
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
    error->message = "search hit without _source";
    *ok = false;
  }
  return simdjson::SUCCESS;
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
    bool found = false;
    for (auto inner_result : value) {
      if (auto e = inner_result.error()) return e;
      od::field& inner = inner_result.value_unsafe();
      std::string_view inner_key;
      if (auto e = FieldKey(inner, &inner_key)) return e;
      if (inner_key != "source") continue;
      if (found) {
        error->message = "esArchiver entry: duplicate field [value.source]";
        *ok = false;
        return simdjson::SUCCESS;
      }
      found = true;
      if (!reader_.ReadValue(inner.value(), error)) {
        *ok = false;
        return simdjson::SUCCESS;
      }
    }
    if (!found) {
      error->message = "esArchiver doc entry without [value.source]";
      *ok = false;
      return simdjson::SUCCESS;
    }
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

absl::StatusOr<LoadReport> Parse(ByteSource* source, std::string source_name,
                                 const LoadOptions& options,
                                 MutationBatch* batch) {
  absl::Time start = absl::Now();
  LoadReport report;
  report.source =
      options.source_name.empty() ? std::move(source_name) : options.source_name;
  SourceLoader loader(source, options, batch, &report);
  if (absl::Status s = loader.Run(); !s.ok()) return s;
  // The budget is checked every 1024 documents while reading: once more
  // for the last ones.
  if (absl::Status s = loader.CheckFinalBudget(); !s.ok()) return s;
  // The reader counted this source's rows and jobs (a batch may hold
  // several sources').
  report.format = loader.format();
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
    StringSource source(pieces[i]);
    SourceLoader loader(&source, options, &piece.batch, &piece.report);
    piece.status = loader.Run();
    piece.format = loader.format();
    piece.read_lines = loader.read_lines();
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
    return ParseSource(std::make_unique<StringSource>(text),
                       std::move(source_name), options, batch);
  }
  std::string name =
      options.source_name.empty() ? source_name : options.source_name;
  if (std::optional<LoadReport> report =
          ParseParallel(text, name, options, batch)) {
    report->seconds = absl::ToDoubleSeconds(absl::Now() - start);
    return *std::move(report);
  }
  StringSource source(text);
  return Parse(&source, std::move(source_name), options, batch);
}

// A file mapped read-only into memory, for parsing it in parallel pieces
// (the kernel pages it in and out; it need not fit in memory).
class MappedFile {
 public:
  // Maps the regular file at `path`; nullopt if it cannot be mapped (a
  // pipe, an empty file, an error), in which case it is read sequentially.
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
    return ParseSource(std::make_unique<FdSource>(0, "<stdin>", false),
                       "<stdin>", options, batch);
  }
  absl::StatusOr<std::unique_ptr<ByteSource>> source = OpenFile(path);
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
  absl::StatusOr<std::unique_ptr<ByteSource>> source = OpenFile(path);
  if (!source.ok()) return source.status();
  return LoadWith(store, options, [&](MutationBatch* batch) {
    return ParseSource(*std::move(source), path, options, batch);
  });
}

absl::StatusOr<LoadReport> LoadStdin(InfluencerStore& store,
                                     const LoadOptions& options) {
  return LoadWith(store, options, [&](MutationBatch* batch) {
    return ParseSource(std::make_unique<FdSource>(0, "<stdin>", false),
                       "<stdin>", options, batch);
  });
}

// ---------------------------------------------------------------------------
// _bulk requests.

namespace {

absl::Status MalformedAction(size_t line, absl::string_view detail) {
  return EsError(400, "illegal_argument_exception",
                 absl::StrCat("Malformed action/metadata line [", line, "], ",
                              detail));
}

// The action metadata parameters Elasticsearch's bulk parser knows; Clout
// reads `_index`, `_id` and `op_type` and accepts the rest unused.
bool KnownActionParameter(std::string_view key) {
  static constexpr std::string_view kKnown[] = {
      "_index",          "_id",           "routing",
      "op_type",         "version",       "version_type",
      "if_seq_no",       "if_primary_term", "retry_on_conflict",
      "pipeline",        "_source",       "require_alias",
      "require_data_stream", "dynamic_templates", "list_executed_pipelines"};
  for (std::string_view known : kKnown) {
    if (key == known) return true;
  }
  return false;
}

// One parsed action line.
struct BulkAction {
  std::string name;  // index, create, delete, update
  std::string index;
  std::string id;
  bool has_id = false;
  bool create = false;  // create, or index with op_type create
};

absl::Status ParseActionLine(od::parser& parser, const char* data,
                             size_t length, size_t capacity, size_t line,
                             BulkAction* action) {
  auto syntax = [&](error_code e) {
    return MalformedAction(line, absl::StrCat("malformed JSON: ",
                                              simdjson::error_message(e)));
  };
  od::document doc;
  if (auto e = parser.iterate(data, length, capacity).get(doc)) return syntax(e);
  od::json_type type;
  if (auto e = doc.type().get(type)) return syntax(e);
  if (type != od::json_type::object) {
    return MalformedAction(
        line, absl::StrCat("expected START_OBJECT but found [", TokenName(type), "]"));
  }
  od::object object;
  if (auto e = doc.get_object().get(object)) return syntax(e);
  size_t fields = 0;
  for (auto field_result : object) {
    od::field field;
    if (auto e = std::move(field_result).get(field)) return syntax(e);
    if (++fields > 1) {
      return MalformedAction(line, "expected END_OBJECT but found [FIELD_NAME]");
    }
    std::string_view key;
    if (auto e = FieldKey(field, &key)) return syntax(e);
    if (key != "index" && key != "create" && key != "delete" && key != "update") {
      return MalformedAction(
          line, absl::StrCat("expected field [create], [delete], [index] or "
                             "[update] but found [", ToAbsl(key), "]"));
    }
    action->name = std::string(key);
    action->create = key == "create";
    od::value meta_value = field.value();
    od::json_type meta_type;
    if (auto e = meta_value.type().get(meta_type)) return syntax(e);
    if (meta_type != od::json_type::object) {
      return MalformedAction(
          line, absl::StrCat("expected START_OBJECT or END_OBJECT but found [",
                             TokenName(meta_type), "]"));
    }
    od::object meta;
    if (auto e = meta_value.get_object().get(meta)) return syntax(e);
    for (auto meta_result : meta) {
      od::field param;
      if (auto e = std::move(meta_result).get(param)) return syntax(e);
      std::string_view name;
      if (auto e = FieldKey(param, &name)) return syntax(e);
      std::string param_name(name);  // the key's bytes may be reused
      od::value value = param.value();
      od::json_type value_type;
      if (auto e = value.type().get(value_type)) return syntax(e);
      if (!KnownActionParameter(param_name)) {
        return EsError(400, "illegal_argument_exception",
                       absl::StrCat("Action/metadata line [", line,
                                    "] contains an unknown parameter [",
                                    param_name, "]"));
      }
      const bool object_allowed =
          param_name == "_source" || param_name == "dynamic_templates";
      if ((value_type == od::json_type::array ||
           value_type == od::json_type::object) && !object_allowed) {
        return MalformedAction(
            line, absl::StrCat("expected a simple value for field [", param_name,
                               "] but found [", TokenName(value_type), "]"));
      }
      if (value_type == od::json_type::null) continue;
      std::string text;
      if (value_type == od::json_type::string) {
        std::string_view sv;
        if (auto e = value.get_string().get(sv)) return syntax(e);
        text = std::string(sv);
      } else if (value_type == od::json_type::array ||
                 value_type == od::json_type::object) {
        continue;  // _source or dynamic_templates: not used
      } else {
        text = std::string(absl::StripTrailingAsciiWhitespace(
            ToAbsl(value.raw_json_token())));
      }
      if (param_name == "_index") {
        action->index = std::move(text);
      } else if (param_name == "_id") {
        action->id = std::move(text);
        action->has_id = true;
      } else if (param_name == "op_type") {
        action->create = action->create || text == "create";
      }
    }
  }
  if (fields == 0) {
    return MalformedAction(line, "expected FIELD_NAME but found [END_OBJECT]");
  }
  if (!AtEnd(doc)) {
    return MalformedAction(line,
                           "malformed JSON: content after the end of the line's object");
  }
  return absl::OkStatus();
}

// An id for a document written without one, unique within the process,
// in the shape of Elasticsearch's generated ids (20 URL-safe base64
// characters).
std::string GeneratedId() {
  static std::atomic<uint64_t> counter{0};
  const uint64_t n = counter.fetch_add(1) ^
                     (static_cast<uint64_t>(absl::ToUnixMicros(absl::Now())) << 20);
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string id(20, 'A');
  uint64_t bits = n;
  uint64_t mix = n * 0x9E3779B97F4A7C15ULL;
  for (size_t i = 0; i < id.size(); ++i) {
    id[i] = kAlphabet[(i < 10 ? bits : mix) & 63];
    if (i < 10) bits >>= 6; else mix >>= 6;
  }
  return id;
}

// The index an item answers as `_index` (see BulkItem::index).
std::string ConcreteIndex(absl::string_view index) {
  constexpr absl::string_view kPrefix = ".ml-anomalies-";
  if (index == ".ml-anomalies-shared" ||
      absl::StartsWith(index, ".ml-anomalies-custom-")) {
    return std::string(index);
  }
  if (absl::StartsWith(index, kPrefix)) return ".ml-anomalies-shared";
  return std::string(index);
}

}  // namespace

bool IsResultsIndex(absl::string_view index) {
  constexpr absl::string_view kPrefix = ".ml-anomalies-";
  return absl::StartsWith(index, kPrefix) && index.size() > kPrefix.size();
}

absl::StatusOr<BulkRequest> ParseBulkRequest(absl::string_view body,
                                             const BulkOptions& options) {
  if (body.empty()) {
    return EsError(400, "parse_exception", "request body is required");
  }
  if (body.back() != '\n') {
    return EsError(400, "illegal_argument_exception",
                   "The bulk request must be terminated by a newline [\\n]");
  }
  simdjson::padded_string padded(body.data(), body.size());
  const char* data = padded.data();
  od::parser parser;
  BulkRequest request;
  LoadReport report;
  report.source = "<bulk>";
  DocumentReader reader(&request.batch, &report);
  size_t line = 0;
  size_t pos = 0;
  // The next line's [begin, end), or false at the end of the body.
  auto next_line = [&](size_t* begin, size_t* end) {
    if (pos >= body.size()) return false;
    const size_t newline = body.find('\n', pos);  // the body ends with one
    *begin = pos;
    *end = newline;
    pos = newline + 1;
    ++line;
    return true;
  };
  auto blank = [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      if (!absl::ascii_isspace(static_cast<unsigned char>(body[i]))) return false;
    }
    return true;
  };
  auto validation = [](absl::string_view what) {
    return EsError(400, "action_request_validation_exception",
                   absl::StrCat("Validation Failed: 1: ", what, ";"));
  };
  size_t begin = 0;
  size_t end = 0;
  while (next_line(&begin, &end)) {
    if (blank(begin, end)) continue;
    const size_t action_line = line;
    BulkAction action;
    if (absl::Status s = ParseActionLine(parser, data + begin, end - begin,
                                         padded.size() - begin + kPadding,
                                         action_line, &action);
        !s.ok()) {
      return s;
    }
    if (action.index.empty()) action.index = options.default_index;
    if (action.index.empty()) return validation("index is missing");
    BulkItem item{action.name, ConcreteIndex(action.index), action.id};
    const bool served = IsResultsIndex(action.index);
    auto not_served = [&] {
      return EsError(404, "index_not_found_exception",
                     absl::StrCat("no such index [", action.index, "]"));
    };
    absl::Status denied = options.authorize
                              ? options.authorize(action.name, action.index)
                              : absl::OkStatus();
    if (action.name == "delete") {
      if (!action.has_id) return validation("id is missing");
      if (!denied.ok()) {
        request.batch.AddError(std::move(denied));
      } else if (!served) {
        request.batch.AddError(not_served());
      } else if (std::optional<InfluencerResultId> id =
                     ParseInfluencerResultId(action.id)) {
        request.batch.DeleteInfluencer(*id);
      } else {
        request.batch.DeleteOtherResult(action.id);
      }
      request.items.push_back(std::move(item));
      continue;
    }
    size_t doc_begin = 0;
    size_t doc_end = 0;
    if (!next_line(&doc_begin, &doc_end)) {
      return MalformedAction(action_line,
                             absl::StrCat("the [", action.name,
                                          "] action has no document line"));
    }
    if (!denied.ok()) {
      request.batch.AddError(std::move(denied));
      request.items.push_back(std::move(item));
      continue;
    }
    if (action.name == "update") {
      request.batch.AddError(EsError(
          400, "illegal_argument_exception",
          "update actions are not supported for results: send the whole "
          "document with an index action"));
      request.items.push_back(std::move(item));
      continue;
    }
    if (!served) {
      request.batch.AddError(not_served());
      request.items.push_back(std::move(item));
      continue;
    }
    DocError error;
    od::document doc;
    bool ok = false;
    if (auto e = parser.iterate(data + doc_begin, doc_end - doc_begin,
                                padded.size() - doc_begin + kPadding)
                     .get(doc)) {
      DocumentReader::Syntax(e, &error);
    } else {
      od::json_type type;
      od::object object;
      if (auto e = doc.type().get(type)) {
        DocumentReader::Syntax(e, &error);
      } else if (type != od::json_type::object) {
        error.message = absl::StrCat("document is ", JsonTypeName(type),
                                     ", not a JSON object");
      } else if (auto e = doc.get_object().get(object)) {
        DocumentReader::Syntax(e, &error);
      } else {
        ok = reader.Read(object, &error);
        if (ok && !AtEnd(doc)) {
          error.message = "malformed JSON: more than one JSON value on the line";
          ok = false;
        }
      }
    }
    if (!ok) {
      request.batch.AddError(EsError(
          400, "mapper_parsing_exception",
          absl::StrCat("failed to parse document at line [", line, "]: ",
                       error.message)));
      request.items.push_back(std::move(item));
      continue;
    }
    if (reader.pending_is_row()) {
      std::string computed =
          InfluencerDocumentId(reader.pending_job(), reader.pending_row());
      if (action.has_id && action.id != computed) {
        request.batch.AddError(EsError(
            400, "illegal_argument_exception",
            absl::StrCat("[_id] [", action.id, "] does not name the influencer "
                         "result of its document, whose _id is [", computed,
                         "]")));
        request.items.push_back(std::move(item));
        continue;
      }
      item.id = std::move(computed);
      reader.set_create(action.create);
      reader.Accept();
      reader.set_create(false);
    } else {
      const std::string job(reader.pending_job());
      const bool has_job = reader.pending_has_job();
      reader.Accept();  // counts the result type and registers the job
      if (!action.has_id) item.id = GeneratedId();
      request.batch.AddOtherResult(has_job ? job : std::string(), item.id);
    }
    request.items.push_back(std::move(item));
  }
  request.other_results = std::move(report.skipped);
  return request;
}

}  // namespace clout
