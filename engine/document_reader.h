// The loader's inside: reading one result document (an influencer result
// or a document of another result type) from simdjson's On-Demand parser
// into a MutationBatch, with the JSON helpers the loader's drivers and the
// _bulk parser share. Internal to the engine: users see loader.h and
// bulk.h. A DocumentReader is for one thread at a time.
#ifndef CLOUT_ENGINE_DOCUMENT_READER_H_
#define CLOUT_ENGINE_DOCUMENT_READER_H_

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/base/optimization.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/dates.h"
#include "engine/error.h"
#include "engine/fast_number.h"
#include "engine/interner.h"
#include "engine/json_names.h"
#include "engine/loader.h"
#include "engine/mutation.h"
#include "simdjson.h"

namespace clout {
namespace loader_internal {

namespace od = simdjson::ondemand;
using simdjson::error_code;

inline constexpr size_t kPadding = simdjson::SIMDJSON_PADDING;

// True if nothing but whitespace follows the parsed part of `doc`: at the
// end, simdjson reports no current location.
inline bool AtEnd(od::document& doc) {
  const char* location = nullptr;
  return doc.current_location().get(location) != simdjson::SUCCESS;
}

inline absl::string_view ToAbsl(std::string_view sv) {
  return absl::string_view(sv.data(), sv.size());
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

inline constexpr const char* kKeyNames[] = {
    "job_id",           "result_type",
    "influencer_field_name", "influencer_field_value",
    "influencer_score", "initial_influencer_score",
    "probability",      "bucket_span",
    "is_interim",       "timestamp",
};

inline Key KeyOf(std::string_view key) {
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
inline Key MatchRawKey(const char* raw) {
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
inline bool MayMatter(char c) {
  switch (c) {
    case 'j': case 'r': case 'i': case 'p': case 'b': case 't':
    case '_': case '\\':
      return true;
    default:
      return false;
  }
}

// The key of `field` without copying when it has no escapes.
inline error_code FieldKey(od::field& field, std::string_view* key) {
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



// The raw token of a value or of a document (whose accessor can fail).
inline std::string_view RawToken(od::value& value) { return value.raw_json_token(); }
inline std::string_view RawToken(od::document& doc) {
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

// The type of `json` for a message about a value of the wrong type or out
// of range. On demand, simdjson judges the type from the first character
// only; this also checks that a null, boolean or number is well formed, so
// that `tru`, `nul` or `1.2.3` are reported as malformed JSON rather than as
// a boolean, null or number of the wrong kind. May consume a null or boolean:
// call it only when done with the value (a valid null counts as missing).
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
inline size_t ValueEnd(const char* p, size_t n) {
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
inline void ExplainTrailingContent(const char* line, size_t length, DocError* error) {
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
  bool ReadDoubleSlow(od::value& value, Key key,
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

// DocumentReader's methods are defined here, inline, rather than in a .cc
// file: the drivers' per-document loops (source_loader.cc) lose about 10%
// of their throughput when Read() and Accept() are calls into another
// translation unit.

inline DocumentReader::RecentJob& DocumentReader::NoteJob(std::string_view job_id) {
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

inline void DocumentReader::Accept() {
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

inline bool DocumentReader::ReadString(od::value& value, Key key,
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

// Not inlined: the slow path stays out of ReadDouble's callers.
ABSL_ATTRIBUTE_NOINLINE inline bool DocumentReader::ReadDoubleSlow(
    od::value& value, Key key, error_code e, double* out, DocError* error) {
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

inline bool DocumentReader::ReadTimestamp(od::value& value, bool* present,
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

inline bool DocumentReader::ReadBucketSpan(od::value& value, DocError* error) {
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

inline bool DocumentReader::ReadInterim(od::value& value, DocError* error) {
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

inline bool DocumentReader::ReadFields(od::object object, DocError* error) {
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


}  // namespace loader_internal
}  // namespace clout

#endif  // CLOUT_ENGINE_DOCUMENT_READER_H_
