// Fast paths for the JSON numbers that dumps are made of: short decimals
// ("0.1678", "1.6325E-7") and epoch-millisecond integers. Digits are found
// and converted eight at a time, without a branch per digit.
//
// Each Fast* function either returns the correctly rounded value, or
// declines (returns false) and leaves *out unchanged; the caller then asks
// simdjson, which also words any error. No function ever accepts text that
// simdjson rejects.
//
// Why the doubles are exact: a fast path result is one IEEE operation on
// two exactly representable operands (an integer of at most 2^53 and a power
// of ten of at most 10^22), so it is the correctly rounded value of the
// decimal.
//
// Also here, for every reader of JSON numbers: IsJsonNumber (the grammar
// check simdjson's on-demand API leaves to its callers) and
// FixLongJsonDouble (the correction for numbers of more than 19 digits,
// which the simdjson of Debian 12 can misread).
//
// Reads: `p` must have at least 8 readable bytes past the end of any run
// of digits it holds (simdjson's padding guarantees that inside a document).
// All functions are pure and thread-safe.
#ifndef CLOUT_ENGINE_FAST_NUMBER_H_
#define CLOUT_ENGINE_FAST_NUMBER_H_

#include <cstdint>
#include <cstring>
#include <system_error>

#include "absl/strings/charconv.h"
#include "absl/strings/string_view.h"

namespace clout {
namespace fast_number_internal {

inline uint64_t Load8(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// The number of ASCII digits at the start of the 8 bytes of `v` (0..8).
// A byte is a digit iff its high nibble is 3 and adding 6 keeps it so; a
// carry out of a non-digit byte only disturbs bytes after it.
inline int LeadingDigits(uint64_t v) {
  constexpr uint64_t kHigh = 0xF0F0F0F0F0F0F0F0ULL;
  constexpr uint64_t kThrees = 0x3030303030303030ULL;
  const uint64_t bad = ((v & kHigh) ^ kThrees) |
                       (((v + 0x0606060606060606ULL) & kHigh) ^ kThrees);
  return bad == 0 ? 8 : __builtin_ctzll(bad) / 8;
}

// The value of the first `n` (1..8) digits of `v`.
inline uint64_t DigitsValue(uint64_t v, int n) {
  // Digits to 0..9, the first n kept as the high bytes (leading zeros below).
  uint64_t d = (v - 0x3030303030303030ULL) << (8 * (8 - n));
  d = d * 10 + (d >> 8);
  d = (((d & 0x000000FF000000FFULL) * (100 + (1000000ULL << 32))) +
       (((d >> 16) & 0x000000FF000000FFULL) * (1 + (10000ULL << 32)))) >>
      32;
  return d;
}

inline constexpr uint64_t kPow10[] = {
    1ULL,
    10ULL,
    100ULL,
    1000ULL,
    10000ULL,
    100000ULL,
    1000000ULL,
    10000000ULL,
    100000000ULL,
};

inline constexpr double kExactPow10[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

// What may follow a number in valid JSON: a structural character or
// whitespace. (Anything else is left to simdjson.)
inline bool EndsNumber(char c) {
  return c == ',' || c == '}' || c == ']' || c == ' ' || c == '\n' ||
         c == '\r' || c == '\t';
}

// Appends a run of 1..15 digits to *value (in decimal) and
// advances *p. Returns the number of digits, 0 if none, or -1 if 16 or
// more (declined).
inline int ReadDigitRun(const char** p, uint64_t* value) {
  uint64_t v = Load8(*p);
  int n = LeadingDigits(v);
  if (n == 0) return 0;
  *value = *value * kPow10[n] + DigitsValue(v, n);
  *p += n;
  if (n < 8) return n;
  v = Load8(*p);
  const int more = LeadingDigits(v);
  if (more == 8) return -1;
  if (more > 0) {
    *value = *value * kPow10[more] + DigitsValue(v, more);
    *p += more;
  }
  return 8 + more;
}

// Reads -?(0|[1-9][0-9]*) of 1..15 digits at *p: sets *negative, appends
// the digits to *value and advances *p. Returns the number of digits, or 0
// if the text is not of that form.
inline int ReadIntegerPart(const char** p, bool* negative, uint64_t* value) {
  *negative = **p == '-';
  *p += *negative;
  const char first = **p;
  const int n = ReadDigitRun(p, value);
  if (n <= 0 || (first == '0' && n > 1)) return 0;  // none, or a leading zero
  return n;
}

}  // namespace fast_number_internal

// A JSON number of the form -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
// with at most 19 significant digits, whose value is digits * 10^k with
// digits <= 2^53 and |k| <= 22, followed by a structural character or
// whitespace. Returns true and sets *out to that double; otherwise false.
inline bool FastParseDouble(const char* p, double* out) {
  using namespace fast_number_internal;
  bool negative = false;
  uint64_t digits = 0;
  const int whole = ReadIntegerPart(&p, &negative, &digits);
  if (whole == 0) return false;
  int power = 0;
  int total = whole;
  if (*p == '.') {
    ++p;
    const int fraction = ReadDigitRun(&p, &digits);
    if (fraction <= 0) return false;
    power = -fraction;
    total += fraction;
  }
  if (total > 19) return false;  // `digits` may have wrapped
  if ((*p | 0x20) == 'e') {
    ++p;
    const bool exponent_negative = *p == '-';
    p += (*p == '-' || *p == '+');
    const uint64_t v = Load8(p);
    const int n = LeadingDigits(v);
    if (n == 0 || n > 3) return false;
    const int exponent = static_cast<int>(DigitsValue(v, n));
    p += n;
    power += exponent_negative ? -exponent : exponent;
  }
  if (!EndsNumber(*p)) return false;
  if (power < -22 || power > 22 || digits > (uint64_t{1} << 53)) return false;
  double d = static_cast<double>(digits);
  d = power < 0 ? d / kExactPow10[-power] : d * kExactPow10[power];
  *out = negative ? -d : d;
  return true;
}

// A JSON integer -?(0|[1-9][0-9]*) of at most 15 digits followed by a
// structural character or whitespace. Returns true and sets *out;
// otherwise false (a fraction, an exponent, more digits: ask simdjson).
inline bool FastParseInt64(const char* p, int64_t* out) {
  using namespace fast_number_internal;
  bool negative = false;
  uint64_t value = 0;
  if (ReadIntegerPart(&p, &negative, &value) == 0 || !EndsNumber(*p)) {
    return false;
  }
  *out = negative ? -static_cast<int64_t>(value) : static_cast<int64_t>(value);
  return true;
}

// True if `text` is exactly one number by JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
inline bool IsJsonNumber(absl::string_view text) {
  size_t i = 0;
  const size_t n = text.size();
  auto digits = [&] {
    const size_t start = i;
    while (i < n && text[i] >= '0' && text[i] <= '9') ++i;
    return i > start;
  };
  if (i < n && text[i] == '-') ++i;
  if (i < n && text[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < n && text[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < n && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < n && (text[i] == '+' || text[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == n;
}

// Corrects `*value`, the double simdjson's get_double() read from the JSON
// number `text` (its token, without trailing whitespace), when the number
// has more than 19 digits before its exponent: simdjson 3.0 (Debian 12's)
// can misread those (its issue #2093: "0.95000000000000000000" wraps its
// 64-bit digit accumulator unnoticed and reads as 0.0276...). Such a number
// is re-read, correctly rounded, with absl::from_chars. Leaves `*value`
// unchanged for shorter numbers (which simdjson reads exactly), for text
// that is not a JSON number, and for numbers out of double's range.
inline void FixLongJsonDouble(absl::string_view text, double* value) {
  if (text.size() < 20) return;  // at most 19 digits
  int digits = 0;
  for (char c : text) {
    if (c == 'e' || c == 'E') break;
    digits += c >= '0' && c <= '9';
  }
  if (digits <= 19 || !IsJsonNumber(text)) return;
  double exact = 0;
  const absl::from_chars_result result =
      absl::from_chars(text.data(), text.data() + text.size(), exact);
  if (result.ec == std::errc() && result.ptr == text.data() + text.size()) {
    *value = exact;
  }
}

}  // namespace clout

#endif  // CLOUT_ENGINE_FAST_NUMBER_H_
