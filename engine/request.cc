#include "engine/request.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/charconv.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engine/dates.h"
#include "engine/error.h"
#include "engine/json_names.h"
#include "engine/fast_number.h"
#include "engine/java_format.h"
#include "simdjson.h"

namespace clout {
namespace {

namespace od = simdjson::ondemand;

// True if nothing but whitespace follows the parsed part of `doc`: at the
// end, simdjson reports no current location.
bool AtEnd(od::document& doc) {
  const char* location = nullptr;
  return doc.current_location().get(location) != simdjson::SUCCESS;
}

absl::string_view ToAbsl(std::string_view sv) {
  return absl::string_view(sv.data(), sv.size());
}

absl::Status ParseError(absl::string_view reason) {
  return EsError(400, "x_content_parse_exception", reason);
}

}  // namespace

std::vector<std::string> SimilarNames(absl::string_view unknown,
                                      const std::vector<std::string>& candidates);

namespace {

// " did you mean [y]?", " did you mean any of [y, z]?", or "" (no similar
// candidate), as Elasticsearch appends it to an unknown name.
std::string DidYouMean(absl::string_view unknown,
                       const std::vector<std::string>& candidates) {
  const std::vector<std::string> names = SimilarNames(unknown, candidates);
  if (names.empty()) return "";
  if (names.size() == 1) return absl::StrCat(" did you mean [", names[0], "]?");
  return absl::StrCat(" did you mean any of [", absl::StrJoin(names, ", "),
                      "]?");
}

absl::Status BadBoolean(absl::string_view text) {
  return EsError(400, "illegal_argument_exception",
                 absl::StrCat("Failed to parse value [", text,
                              "] as only [true] or [false] are allowed."));
}

absl::Status BadInt(absl::string_view name, absl::string_view text) {
  return EsError(400, "illegal_argument_exception",
                 absl::StrCat("Failed to parse int parameter [", name,
                              "] with value [", text, "]"));
}

absl::Status Negative(absl::string_view name) {
  return EsError(400, "illegal_argument_exception",
                 absl::StrCat("Parameter [", name, "] cannot be < 0"));
}

// Boolean text as Elasticsearch's Booleans.parseBoolean: exactly "true" or
// "false".
absl::Status ParseBooleanText(absl::string_view text, bool* out) {
  if (text == "true") {
    *out = true;
  } else if (text == "false") {
    *out = false;
  } else {
    return BadBoolean(text);
  }
  return absl::OkStatus();
}

// Integer text as Java's Integer.parseInt: optional sign, decimal digits,
// within int32.
absl::Status ParseIntText(absl::string_view name, absl::string_view text,
                          int64_t* out) {
  absl::string_view digits = text;
  bool negative = false;
  if (!digits.empty() && (digits[0] == '+' || digits[0] == '-')) {
    negative = digits[0] == '-';
    digits.remove_prefix(1);
  }
  // Leading zeros do not count against the length ("00000000005" is 5).
  while (digits.size() > 1 && digits[0] == '0') digits.remove_prefix(1);
  if (digits.empty() || digits.size() > 10 ||
      !std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit)) {
    return BadInt(name, text);
  }
  int64_t value = 0;
  for (char c : digits) value = value * 10 + (c - '0');
  if (negative) value = -value;
  if (value > std::numeric_limits<int32_t>::max() ||
      value < std::numeric_limits<int32_t>::min()) {
    return BadInt(name, text);
  }
  *out = value;
  return absl::OkStatus();
}

absl::Status CheckNotNegative(absl::string_view name, int64_t value) {
  return value < 0 ? Negative(name) : absl::OkStatus();
}

// Double text as Java's Double.parseDouble: surrounding whitespace (chars
// <= ' ') ignored; optional sign; "NaN", "Infinity", or a decimal with an
// optional exponent and an optional f/F/d/D suffix.
absl::Status ParseDoubleText(absl::string_view text, double* out) {
  absl::string_view t = text;
  // Java words its error with the trimmed text (FloatingDecimal trims
  // first): "  " is an empty String, " ten " is "ten".
  auto failure = [&] {
    return EsError(400, "number_format_exception",
                   t.empty() ? std::string("empty String")
                             : absl::StrCat("For input string: \"", t, "\""));
  };
  while (!t.empty() && static_cast<unsigned char>(t.front()) <= ' ') {
    t.remove_prefix(1);
  }
  while (!t.empty() && static_cast<unsigned char>(t.back()) <= ' ') {
    t.remove_suffix(1);
  }
  if (t.empty()) return failure();
  bool negative = false;
  absl::string_view body = t;
  if (body[0] == '+' || body[0] == '-') {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  if (body == "NaN") {
    *out = std::numeric_limits<double>::quiet_NaN();
    return absl::OkStatus();
  }
  if (body == "Infinity") {
    *out = negative ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::infinity();
    return absl::OkStatus();
  }
  if (!body.empty() && std::string_view("fFdD").find(body.back()) !=
                           std::string_view::npos) {
    body.remove_suffix(1);
  }
  // Decimal: digits with at most one '.', at least one digit, an optional
  // exponent (e). Hexadecimal: 0x, hex digits likewise, then a required
  // binary exponent (p), e.g. 0x1p6 or 0x1.8P-1.
  const bool hex =
      body.size() > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X');
  if (hex) body.remove_prefix(2);
  auto is_digit = [hex](char c) {
    return hex ? absl::ascii_isxdigit(c) : absl::ascii_isdigit(c);
  };
  const char exponent_letter = hex ? 'p' : 'e';
  size_t i = 0;
  size_t digits = 0;
  while (i < body.size() && is_digit(body[i])) ++i, ++digits;
  if (i < body.size() && body[i] == '.') {
    ++i;
    while (i < body.size() && is_digit(body[i])) ++i, ++digits;
  }
  if (digits == 0) return failure();
  size_t exponent = absl::string_view::npos;  // where its sign or digits start
  if (i < body.size() && absl::ascii_tolower(body[i]) == exponent_letter) {
    exponent = ++i;
    if (i < body.size() && (body[i] == '+' || body[i] == '-')) ++i;
    const size_t exponent_digits = i;
    while (i < body.size() && absl::ascii_isdigit(body[i])) ++i;
    if (i == exponent_digits) return failure();
  } else if (hex) {
    return failure();
  }
  if (i != body.size()) return failure();
  double value = 0;
  auto [ptr, ec] = absl::from_chars(
      body.data(), body.data() + body.size(), value,
      hex ? absl::chars_format::hex : absl::chars_format::general);
  if (ec == std::errc::result_out_of_range) {
    // Java rounds overflow to infinity and underflow to zero.
    const bool tiny =
        exponent != absl::string_view::npos && body[exponent] == '-';
    value = tiny ? 0.0 : std::numeric_limits<double>::infinity();
  } else if (ec != std::errc() || ptr != body.data() + body.size()) {
    return failure();
  }
  *out = negative ? -value : value;
  return absl::OkStatus();
}

absl::Status WrongType(absl::string_view key, absl::string_view expected,
                       od::json_type found) {
  return ParseError(absl::StrCat("[get_influencers] failed to parse field [",
                                 key, "]: expected ", expected, " but found ",
                                 JsonTypeName(found)));
}

absl::Status Malformed(simdjson::error_code error) {
  return ParseError(absl::StrCat("failed to parse request body: ",
                                 simdjson::error_message(error)));
}

// Reads the type of `value`, mapping a syntax error to the request error.
absl::Status TypeOf(od::value& value, od::json_type* type) {
  if (auto error = value.type().get(*type)) return Malformed(error);
  return absl::OkStatus();
}

absl::Status ReadString(od::value& value, absl::string_view key,
                        std::string* out) {
  od::json_type type;
  if (absl::Status s = TypeOf(value, &type); !s.ok()) return s;
  if (type != od::json_type::string) return WrongType(key, "a string", type);
  std::string_view sv;
  if (auto error = value.get_string().get(sv)) return Malformed(error);
  *out = std::string(sv);
  return absl::OkStatus();
}

absl::Status ReadBoolean(od::value& value, absl::string_view key, bool* out) {
  od::json_type type;
  if (absl::Status s = TypeOf(value, &type); !s.ok()) return s;
  if (type == od::json_type::boolean) {
    if (auto error = value.get_bool().get(*out)) return Malformed(error);
    return absl::OkStatus();
  }
  if (type == od::json_type::string) {
    std::string_view sv;
    if (auto error = value.get_string().get(sv)) return Malformed(error);
    return ParseBooleanText(ToAbsl(sv), out);
  }
  return WrongType(key, "a boolean", type);
}

// The raw text of a number token, without trailing whitespace. On demand,
// simdjson judges a value a number from its first character only: text
// that is not a JSON number (01, 1., 1.5.5, -) is malformed JSON, as
// Elasticsearch's parser reports it, not a number to read leniently.
absl::Status NumberText(od::value& value, absl::string_view* out) {
  std::string_view raw = value.raw_json_token();
  absl::string_view text = ToAbsl(raw);
  while (!text.empty() && absl::ascii_isspace(text.back())) {
    text.remove_suffix(1);
  }
  if (!IsJsonNumber(text)) {
    return ParseError(absl::StrCat("failed to parse request body: malformed number [",
                                   text.substr(0, 64), "]"));
  }
  *out = text;
  return absl::OkStatus();
}

// A page value as PageParams' declareInt reads it (x-content's
// intValue()): a JSON number as Jackson's getIntValue reads it, truncated
// toward zero (1.9 is 1) and an error past int's range; a string through
// Double.parseDouble, an error past int's range, then truncated (NaN is 0).
// Signs are checked later, when the page is built. `end` receives where
// the number ends (for the location of Jackson's range error).
absl::Status ReadPageInt(od::value& value, absl::string_view name,
                         const char** end, int64_t* out) {
  constexpr double kMin = std::numeric_limits<int32_t>::min();
  constexpr double kMax = std::numeric_limits<int32_t>::max();
  od::json_type type;
  if (absl::Status s = TypeOf(value, &type); !s.ok()) return s;
  if (type == od::json_type::number) {
    absl::string_view text;
    if (absl::Status s = NumberText(value, &text); !s.ok()) return s;
    *end = text.data() + text.size();
    // Jackson's InputCoercionException, which x-content wraps (the
    // caller adds the location).
    auto out_of_range = [&] {
      const std::string message =
          absl::StrCat("Numeric value (", text,
                       ") out of range of int (-2147483648 - 2147483647)");
      return EsErrorCausedBy(
          400, "x_content_parse_exception", message,
          EsError(400, "input_coercion_exception", message));
    };
    if (text.find_first_of(".eE") == absl::string_view::npos) {
      int64_t n = 0;
      if (!absl::SimpleAtoi(text, &n) || n < kMin || n > kMax) {
        return out_of_range();
      }
      *out = n;
      return absl::OkStatus();
    }
    double d = 0;
    auto [ptr, ec] = absl::from_chars(text.data(), text.data() + text.size(), d);
    if (ec == std::errc::result_out_of_range) {
      // Overflow is infinite (out of range); underflow is zero.
      d = text.find_first_of("eE") != absl::string_view::npos &&
                  text.find("-", text.find_first_of("eE")) !=
                      absl::string_view::npos
              ? 0.0
              : std::numeric_limits<double>::infinity();
    }
    if (d < kMin || d > kMax) return out_of_range();
    *out = static_cast<int64_t>(std::trunc(d));
    return absl::OkStatus();
  }
  if (type == od::json_type::string) {
    std::string_view sv;
    if (auto error = value.get_string().get(sv)) return Malformed(error);
    double d = 0;
    if (absl::Status s = ParseDoubleText(ToAbsl(sv), &d); !s.ok()) return s;
    if (d < kMin || d > kMax) {
      return EsError(400, "illegal_argument_exception",
                     absl::StrCat("Value [", ToAbsl(sv),
                                  "] is out of range for an integer"));
    }
    *out = std::isnan(d) ? 0 : static_cast<int64_t>(std::trunc(d));
    return absl::OkStatus();
  }
  return WrongType(name, "an integer", type);
}

absl::Status ReadDouble(od::value& value, absl::string_view key, double* out) {
  od::json_type type;
  if (absl::Status s = TypeOf(value, &type); !s.ok()) return s;
  if (type == od::json_type::number) {
    absl::string_view text;
    if (absl::Status s = NumberText(value, &text); !s.ok()) return s;
    if (value.get_double().get(*out) != simdjson::SUCCESS) {
      // Beyond double's range: Java's parser gives infinity.
      return ParseDoubleText(text, out);
    }
    FixLongJsonDouble(text, out);
    return absl::OkStatus();
  }
  if (type == od::json_type::string) {
    std::string_view sv;
    if (auto error = value.get_string().get(sv)) return Malformed(error);
    return ParseDoubleText(ToAbsl(sv), out);
  }
  return WrongType(key, "a number", type);
}

// The epoch milliseconds of a JSON number `text` as integer text: as given
// if it is an integer, else floored (1.4549436E12 is 1454943600000). Text
// out of range is returned as given, to fail when the date is resolved.
std::string EpochMillisText(absl::string_view text) {
  if (text.find_first_of(".eE") == absl::string_view::npos) {
    return std::string(text);
  }
  double value = 0;
  auto [ptr, ec] = absl::from_chars(text.data(), text.data() + text.size(), value);
  // 2^62 ms is far beyond every date's range and exact as a double.
  constexpr double kLimit = 4611686018427387904.0;
  if (ec != std::errc() || !(std::abs(value) < kLimit)) return std::string(text);
  return absl::StrCat(static_cast<int64_t>(std::floor(value)));
}

// start/end: a string, a number (epoch ms) or null (unset).
absl::Status ReadDate(od::value& value, absl::string_view key,
                      std::optional<std::string>* out, bool* is_number) {
  od::json_type type;
  if (absl::Status s = TypeOf(value, &type); !s.ok()) return s;
  switch (type) {
    case od::json_type::null:
      if (auto error = value.is_null().error()) return Malformed(error);
      out->reset();
      *is_number = false;
      return absl::OkStatus();
    case od::json_type::number: {
      absl::string_view text;
      if (absl::Status s = NumberText(value, &text); !s.ok()) return s;
      *out = EpochMillisText(text);
      *is_number = true;
      return absl::OkStatus();
    }
    case od::json_type::string: {
      std::string text;
      if (absl::Status s = ReadString(value, key, &text); !s.ok()) return s;
      *out = std::move(text);
      *is_number = false;
      return absl::OkStatus();
    }
    default:
      return WrongType(key, "a string or a number", type);
  }
}

// Tracks keys seen in one object to reject duplicates, as Elasticsearch's
// strict duplicate detection does.
class KeySet {
 public:
  absl::Status Add(absl::string_view key) {
    for (const std::string& seen : keys_) {
      if (seen == key) {
        return ParseError(absl::StrCat("Duplicate field '", key, "'"));
      }
    }
    keys_.emplace_back(key);
    return absl::OkStatus();
  }

 private:
  std::vector<std::string> keys_;
};

// Where a body's tokens are, to name them as Elasticsearch does: Jackson's
// "[line:column]" of a token, both 1-based, the column counting bytes (as
// its UTF-8 parser does) from the start of the line; "\r\n", "\r" and
// "\n" each end a line.
class BodyLocations {
 public:
  BodyLocations(absl::string_view body, const char* base)
      : body_(body), base_(base) {}

  // The location of the token starting at `at`, a pointer into the parsed
  // copy of the body.
  std::string At(const char* at) const {
    size_t offset = static_cast<size_t>(at - base_);
    if (offset > body_.size()) offset = body_.size();
    size_t line = 1;
    size_t line_start = 0;
    for (size_t i = 0; i < offset; ++i) {
      if (body_[i] == '\n' ||
          (body_[i] == '\r' && (i + 1 >= body_.size() || body_[i + 1] != '\n'))) {
        ++line;
        line_start = i + 1;
      }
    }
    return absl::StrCat("[", line, ":", offset - line_start + 1, "]");
  }
  // The end of the body (in the padded copy At reads).
  const char* End() const { return base_ + body_.size(); }
  // Where `value`'s first token starts (for At, once there is an error).
  static const char* Start(od::value& value) {
    return value.raw_json_token().data();
  }
  // The location of `value`'s first token.
  std::string Of(od::value& value) const { return At(Start(value)); }
  // Where a field's key starts (its opening quote); call before the key is
  // unescaped, which consumes it.
  static const char* KeyStart(od::field& field) { return field.key().raw() - 1; }

 private:
  absl::string_view body_;
  const char* base_;
};

// A field of a body object, as Elasticsearch's ObjectParser declares it:
// the tokens its value may start with (ValueType's supported tokens).
struct DeclaredField {
  absl::string_view name;
  unsigned tokens;  // the bits Tokens() sets
};

// The bit set of JSON value types `types`.
constexpr unsigned Tokens(std::initializer_list<od::json_type> types) {
  unsigned bits = 0;
  for (od::json_type type : types) bits |= 1u << static_cast<unsigned>(type);
  return bits;
}

// The request's ObjectParser (GetInfluencersAction.Request.PARSER) is named
// after the action.
constexpr absl::string_view kRequestParser =
    "cluster:monitor/xpack/ml/job/results/influencers/get";

// Syntax errors are reported as they are, never wrapped as a field's.
constexpr absl::string_view kMalformedPrefix = "failed to parse request body";
bool IsMalformed(const absl::Status& s) {
  return absl::StartsWith(s.message(), kMalformedPrefix);
}

// Elasticsearch's errors of one object of the body, parsed by the
// ObjectParser `parser` with these `fields`:
//   "[l:c] [parser] unknown field [x] did you mean [y]?" (at the key),
//   "[l:c] [parser] x doesn't support values of type: VALUE_NUMBER",
//   "[l:c] [parser] failed to parse field [x]" caused by the value's error
//   (both at the value).
class ObjectFields {
 public:
  ObjectFields(absl::string_view parser,
               const std::vector<DeclaredField>& fields,
               const BodyLocations& locations)
      : parser_(parser), fields_(fields), locations_(locations) {}

  // OK if `key` is declared and `value` starts with a token it supports.
  // `key_at` is BodyLocations::KeyStart of the field.
  absl::Status Check(const char* key_at, absl::string_view key,
                     od::value& value) const {
    for (const DeclaredField& declared : fields_) {
      if (declared.name != key) continue;
      od::json_type type;
      if (absl::Status s = TypeOf(value, &type); !s.ok()) return s;
      if (declared.tokens & (1u << static_cast<unsigned>(type))) {
        return absl::OkStatus();
      }
      return ParseError(absl::StrCat(locations_.Of(value), " [", parser_,
                                     "] ", key,
                                     " doesn't support values of type: ",
                                     TokenName(type)));
    }
    std::vector<std::string> names;
    for (const DeclaredField& declared : fields_) {
      names.emplace_back(declared.name);
    }
    return ParseError(absl::StrCat(locations_.At(key_at), " [", parser_,
                                   "] unknown field [", key, "]",
                                   DidYouMean(key, names)));
  }

  // The error of a value that failed to parse where the parser stopped
  // (`where`, a BodyLocations::Start): `cause` wrapped.
  absl::Status Failed(const char* where, absl::string_view key,
                      const absl::Status& cause) const {
    if (IsMalformed(cause)) return cause;
    return EsErrorCausedBy(400, "x_content_parse_exception",
                           absl::StrCat(locations_.At(where), " [", parser_,
                                        "] failed to parse field [", key, "]"),
                           cause);
  }

 private:
  absl::string_view parser_;
  const std::vector<DeclaredField>& fields_;
  const BodyLocations& locations_;
};

// PageParams' constructor, as its ConstructingObjectParser calls it:
// negative values fail there, wrapped as a failed build (its location is
// null, so the reason has no [l:c]).
absl::Status BuildPage(int64_t from, int64_t size) {
  absl::Status s = CheckNotNegative("from", from);
  if (s.ok()) s = CheckNotNegative("size", size);
  if (s.ok()) return s;
  return EsErrorCausedBy(
      400, "x_content_parse_exception",
      "Failed to build [page] after last required field arrived", s);
}

// The body's "page" object (Elasticsearch's PageParams parser, "page"),
// read from the document `doc`. On failure, *stop is where Elasticsearch's
// parser stood: at the value being read, or at the page's closing brace
// when the page is built after its last field.
absl::Status ReadPage(od::value& value, od::document& doc,
                      const BodyLocations& locations,
                      InfluencersRequest* request, const char** stop) {
  *stop = BodyLocations::Start(value);
  od::object page;
  if (auto error = value.get_object().get(page)) return Malformed(error);
  using T = od::json_type;
  static const std::vector<DeclaredField>* const kPageFields =
      new std::vector<DeclaredField>{
          {"from", Tokens({T::number, T::string})},
          {"size", Tokens({T::number, T::string})}};
  const ObjectFields fields("page", *kPageFields, locations);
  KeySet keys;
  int64_t from = 0;    // PageParams.DEFAULT_FROM
  int64_t size = 100;  // PageParams.DEFAULT_SIZE
  int arrived = 0;
  for (auto field_result : page) {
    od::field field;
    if (auto error = std::move(field_result).get(field)) return Malformed(error);
    const char* key_at = BodyLocations::KeyStart(field);
    std::string_view raw_key;
    if (auto error = field.unescaped_key().get(raw_key)) return Malformed(error);
    const std::string key(raw_key);
    *stop = key_at;  // Jackson stops at a duplicate key
    if (absl::Status s = keys.Add(key); !s.ok()) return s;
    od::value& v = field.value();
    *stop = BodyLocations::Start(v);
    if (absl::Status s = fields.Check(key_at, key, v); !s.ok()) return s;
    const char* number_end = *stop;
    absl::Status s = ReadPageInt(v, key, &number_end,
                                 key == "from" ? &from : &size);
    if (!s.ok()) {
      if (IsMalformed(s)) return s;
      // Jackson's range error stands where the number ends.
      if (ErrorTypeOf(s) == "x_content_parse_exception") {
        s = WithCausesOf(s, EsError(400, "x_content_parse_exception",
                                    absl::StrCat(locations.At(number_end), " ",
                                                 s.message())));
      }
      return fields.Failed(*stop, key, s);
    }
    // With both arguments in, the page is built as the last one arrives.
    if (++arrived == 2) {
      if (absl::Status built = BuildPage(from, size); !built.ok()) {
        return fields.Failed(*stop, key, built);
      }
    }
  }
  if (arrived < 2) {
    if (absl::Status built = BuildPage(from, size); !built.ok()) {
      // Built at the end of the object: the parser stands on its '}'.
      // (At the end of a truncated body, simdjson has no location: the
      // brace is then the last one of the body.)
      const char* next = nullptr;
      if (doc.current_location().get(next) != simdjson::SUCCESS) {
        next = locations.End();
      }
      while (next > *stop && absl::ascii_isspace(next[-1])) --next;
      if (next > *stop && next[-1] == '}') *stop = next - 1;
      return built;
    }
  }
  request->from = from;
  request->size = size;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<InfluencersRequest> ParseBodyRequest(
    absl::string_view path_job_id, absl::string_view body,
    size_t max_body_bytes) {
  if (body.size() > max_body_bytes) {
    return EsError(413, "content_too_long_exception",
                   absl::StrCat("request body of [", body.size(),
                                "] bytes is larger than the limit of [",
                                max_body_bytes, "] bytes"));
  }
  InfluencersRequest request;
  absl::string_view trimmed = absl::StripAsciiWhitespace(body);
  if (trimmed.empty()) {
    return ParseError("request body is required but was empty");
  }
  simdjson::padded_string padded(body.data(), body.size());
  thread_local od::parser parser;
  od::document doc;
  if (auto error = parser.iterate(padded).get(doc)) return Malformed(error);
  od::json_type type;
  if (auto error = doc.type().get(type)) return Malformed(error);
  if (type != od::json_type::object) {
    return ParseError(absl::StrCat(
        "request body must be a JSON object but found ", JsonTypeName(type)));
  }
  od::object object;
  if (auto error = doc.get_object().get(object)) return Malformed(error);
  const BodyLocations locations(body, padded.data());
  using T = od::json_type;
  static const std::vector<DeclaredField>* const kRequestFields =
      new std::vector<DeclaredField>{
      {"job_id", Tokens({T::string})},
       // Elasticsearch declares start and end string-or-null; the spec
       // also takes numbers (epoch milliseconds).
       {"start", Tokens({T::string, T::null, T::number})},
       {"end", Tokens({T::string, T::null, T::number})},
       {"exclude_interim", Tokens({T::boolean, T::string})},
       {"page", Tokens({T::object})},
       {"influencer_score", Tokens({T::number, T::string})},
       {"sort", Tokens({T::string})},
       {"desc", Tokens({T::boolean, T::string})}};
  const ObjectFields fields(kRequestParser, *kRequestFields, locations);
  KeySet keys;
  std::string body_job_id;
  for (auto field_result : object) {
    od::field field;
    if (auto error = std::move(field_result).get(field)) return Malformed(error);
    const char* key_at = BodyLocations::KeyStart(field);
    std::string_view raw_key;
    if (auto error = field.unescaped_key().get(raw_key)) return Malformed(error);
    std::string key(raw_key);
    if (absl::Status s = keys.Add(key); !s.ok()) return s;
    od::value& value = field.value();
    if (absl::Status s = fields.Check(key_at, key, value); !s.ok()) return s;
    const char* where = BodyLocations::Start(value);
    absl::Status s;
    if (key == "job_id") {
      s = ReadString(value, key, &body_job_id);
    } else if (key == "start") {
      s = ReadDate(value, key, &request.start, &request.start_is_number);
    } else if (key == "end") {
      s = ReadDate(value, key, &request.end, &request.end_is_number);
    } else if (key == "exclude_interim") {
      s = ReadBoolean(value, key, &request.exclude_interim);
    } else if (key == "influencer_score") {
      s = ReadDouble(value, key, &request.influencer_score);
    } else if (key == "sort") {
      s = ReadString(value, key, &request.sort);
    } else if (key == "desc") {
      s = ReadBoolean(value, key, &request.desc);
    } else {  // page
      s = ReadPage(value, doc, locations, &request, &where);
    }
    if (!s.ok()) return fields.Failed(where, key, s);
  }
  if (!AtEnd(doc)) {
    return ParseError("failed to parse request body: unexpected content after "
                      "the JSON object");
  }
  request.job_id = path_job_id.empty() ? body_job_id : std::string(path_job_id);
  return request;
}

absl::StatusOr<InfluencersRequest> ParseParamRequest(
    absl::string_view job_id, const std::vector<RequestParam>& params,
    OutputOptions* output, absl::string_view path) {
  InfluencersRequest request;
  request.job_id = std::string(job_id);
  OutputOptions read;  // copied to *output on success only
  // Each known parameter's value (the last, when one is given twice, as
  // Elasticsearch's query-string map keeps it), then the checks in the
  // order Elasticsearch makes them: pretty and human when the response
  // channel is made, then RestGetInfluencersAction's exclude_interim, from,
  // size, their signs, influencer_score and desc, then unknown names.
  enum Slot { kStart, kEnd, kExcludeInterim, kFrom, kSize, kScore, kSort,
              kDesc, kPretty, kHuman, kSlots };
  constexpr absl::string_view kNames[kSlots] = {
      "start", "end", "exclude_interim", "from", "size", "influencer_score",
      "sort", "desc", "pretty", "human"};
  const std::string* values[kSlots] = {};
  std::vector<std::string> unknown;
  for (const RequestParam& param : params) {
    const auto* known = std::find(std::begin(kNames), std::end(kNames),
                                  param.first);
    if (known == std::end(kNames)) {
      unknown.push_back(param.first);
    } else {
      values[known - std::begin(kNames)] = &param.second;
    }
  }
  // A present but empty boolean means true.
  auto boolean = [&](Slot slot, bool* out) {
    if (values[slot] == nullptr) return absl::OkStatus();
    if (values[slot]->empty()) {
      *out = true;
      return absl::OkStatus();
    }
    return ParseBooleanText(*values[slot], out);
  };
  auto integer = [&](Slot slot, int64_t* out) {
    if (values[slot] == nullptr) return absl::OkStatus();
    return ParseIntText(kNames[slot], *values[slot], out);
  };
  if (absl::Status s = boolean(kPretty, &read.pretty); !s.ok()) return s;
  if (absl::Status s = boolean(kHuman, &read.human); !s.ok()) return s;
  if (values[kStart] != nullptr) request.start = *values[kStart];
  if (values[kEnd] != nullptr) request.end = *values[kEnd];
  if (absl::Status s = boolean(kExcludeInterim, &request.exclude_interim);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = integer(kFrom, &request.from); !s.ok()) return s;
  if (absl::Status s = integer(kSize, &request.size); !s.ok()) return s;
  if (absl::Status s = CheckNotNegative("from", request.from); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckNotNegative("size", request.size); !s.ok()) {
    return s;
  }
  if (values[kScore] != nullptr) {
    if (absl::Status s =
            ParseDoubleText(*values[kScore], &request.influencer_score);
        !s.ok()) {
      return s;
    }
  }
  if (values[kSort] != nullptr) request.sort = *values[kSort];
  if (absl::Status s = boolean(kDesc, &request.desc); !s.ok()) return s;
  if (!unknown.empty()) {
    static const std::vector<std::string> kCandidates = {
        "job_id", "start", "end", "exclude_interim", "from", "size",
        "influencer_score", "sort", "desc", "pretty", "human", "error_trace",
        "filter_path", "format"};
    return EsError(
        400, "illegal_argument_exception",
        UnrecognizedParametersReason(
            path.empty() ? absl::StrCat("/_ml/anomaly_detectors/", job_id,
                                        "/results/influencers")
                         : std::string(path),
            std::move(unknown), kCandidates));
  }
  if (output != nullptr) *output = read;
  return request;
}

namespace {

std::string UrlDecode(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%' && i + 2 < s.size() &&
               absl::ascii_isxdigit(s[i + 1]) &&
               absl::ascii_isxdigit(s[i + 2])) {
      auto hex = [](char h) {
        return absl::ascii_isdigit(h) ? h - '0'
                                      : absl::ascii_tolower(h) - 'a' + 10;
      };
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

float LevenshteinSimilarity(absl::string_view a, absl::string_view b) {
  auto code_points = [](absl::string_view s) {
    std::vector<uint32_t> out;
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* end = p + s.size();
    while (p < end) {
      const uint32_t c = *p;
      const int extra = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1
                                 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : -1;
      bool valid = extra >= 0 && end - p > extra;
      for (int k = 1; valid && k <= extra; ++k) valid = (p[k] & 0xC0) == 0x80;
      if (!valid) {
        out.push_back(c | 0x80000000u);  // a byte of its own, unlike any code point
        ++p;
        continue;
      }
      uint32_t cp = extra == 0 ? c : c & (0x3Fu >> extra);
      for (int k = 1; k <= extra; ++k) cp = (cp << 6) | (p[k] & 0x3F);
      out.push_back(cp);
      p += extra + 1;
    }
    return out;
  };
  const std::vector<uint32_t> x = code_points(a);
  const std::vector<uint32_t> y = code_points(b);
  if (x.empty() || y.empty()) return x.size() == y.size() ? 1.0f : 0.0f;
  std::vector<size_t> previous(y.size() + 1);
  std::vector<size_t> current(y.size() + 1);
  for (size_t j = 0; j <= y.size(); ++j) previous[j] = j;
  for (size_t i = 1; i <= x.size(); ++i) {
    current[0] = i;
    for (size_t j = 1; j <= y.size(); ++j) {
      const size_t cost = x[i - 1] == y[j - 1] ? 0 : 1;
      current[j] = std::min({current[j - 1] + 1, previous[j] + 1,
                             previous[j - 1] + cost});
    }
    std::swap(previous, current);
  }
  // As Java computes it: float division.
  return 1.0f - static_cast<float>(previous[y.size()]) /
                    static_cast<float>(std::max(x.size(), y.size()));
}

std::string UnrecognizedParametersReason(
    absl::string_view path, std::vector<std::string> unknown,
    const std::vector<std::string>& candidates) {
  std::sort(unknown.begin(), unknown.end());
  unknown.erase(std::unique(unknown.begin(), unknown.end()), unknown.end());
  std::string reason =
      absl::StrCat("request [", path, "] contains unrecognized parameter",
                   unknown.size() > 1 ? "s" : "", ": ");
  for (size_t i = 0; i < unknown.size(); ++i) {
    if (i > 0) reason.append(", ");
    absl::StrAppend(&reason, "[", unknown[i], "]");
    const std::string suggestion = DidYouMean(unknown[i], candidates);
    if (!suggestion.empty()) absl::StrAppend(&reason, " ->", suggestion);
  }
  return reason;
}

std::vector<std::string> SimilarNames(
    absl::string_view unknown, const std::vector<std::string>& candidates) {
  std::vector<std::pair<float, std::string>> scored;
  for (const std::string& candidate : candidates) {
    const float similarity = LevenshteinSimilarity(unknown, candidate);
    if (similarity > 0.5f) scored.emplace_back(similarity, candidate);
  }
  std::sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::vector<std::string> names;
  for (auto& [similarity, name] : scored) names.push_back(std::move(name));
  return names;
}

absl::Status ParseBooleanParam(absl::string_view text, bool* out) {
  if (text.empty()) {
    *out = true;
    return absl::OkStatus();
  }
  return ParseBooleanText(text, out);
}

std::vector<RequestParam> SplitQueryString(absl::string_view query) {
  std::vector<RequestParam> params;
  if (!query.empty() && query[0] == '?') query.remove_prefix(1);
  for (absl::string_view part : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    size_t eq = part.find('=');
    if (eq == absl::string_view::npos) {
      params.emplace_back(UrlDecode(part), "");
    } else {
      params.emplace_back(UrlDecode(part.substr(0, eq)),
                          UrlDecode(part.substr(eq + 1)));
    }
  }
  return params;
}

std::string RequestToJson(const InfluencersRequest& request) {
  std::string out = "{\"job_id\":";
  AppendJsonString(request.job_id, &out);
  auto date = [&](const char* key, const std::optional<std::string>& value,
                  bool is_number) {
    absl::StrAppend(&out, ",\"", key, "\":");
    if (!value.has_value()) {
      out.append("null");
    } else if (is_number && ParseEpochMillis(*value).ok()) {
      // A number in range stays one (a string of four digits is a year).
      // One out of range fails alike as a string, which also keeps numbers
      // beyond 64 bits out of the output.
      out.append(*value);
    } else {
      AppendJsonString(*value, &out);
    }
  };
  date("start", request.start, request.start_is_number);
  date("end", request.end, request.end_is_number);
  absl::StrAppend(&out, ",\"exclude_interim\":",
                  request.exclude_interim ? "true" : "false",
                  ",\"influencer_score\":");
  if (std::isfinite(request.influencer_score)) {
    AppendJavaDouble(request.influencer_score, &out);
  } else {
    out.push_back('"');
    AppendJavaDouble(request.influencer_score, &out);
    out.push_back('"');
  }
  out.append(",\"sort\":");
  AppendJsonString(request.sort, &out);
  absl::StrAppend(&out, ",\"desc\":", request.desc ? "true" : "false",
                  ",\"page\":{\"from\":", request.from,
                  ",\"size\":", request.size, "}}");
  return out;
}

}  // namespace clout
