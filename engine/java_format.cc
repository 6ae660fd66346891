#include "engine/java_format.h"

#include <array>

#include <charconv>
#include <cmath>
#include <cstring>
#include <system_error>

#include "simdjson.h"

namespace clout {
namespace {

// The decimal digits (no leading zeros, at least one digit) and the exponent
// of the first digit: value = 0.d1d2d3... * 10^(exponent + 1).
struct Decimal {
  char digits[32];
  int length = 0;
  int exponent = 0;
};

// Splits to_chars' scientific output "d.dddde[+-]xx" into a Decimal,
// dropping trailing zeros of the digits.
Decimal FromScientific(const char* begin, const char* end) {
  Decimal d;
  const char* e = static_cast<const char*>(std::memchr(begin, 'e', end - begin));
  for (const char* p = begin; p < e; ++p) {
    if (*p != '.') d.digits[d.length++] = *p;
  }
  while (d.length > 1 && d.digits[d.length - 1] == '0') --d.length;
  const char* exp = e + 1;
  if (*exp == '+') ++exp;
  std::from_chars(exp, end, d.exponent);
  return d;
}

Decimal ShortestDecimal(double value) {
  char buf[64];
  auto shortest = std::to_chars(buf, buf + sizeof buf, value,
                                std::chars_format::scientific);
  Decimal d = FromScientific(buf, shortest.ptr);
  if (d.length != 1) return d;
  // Java picks, among decimals of length 1 or 2 that round to the value, the
  // one closest to it: the value rounded to two digits, if it rounds back.
  char buf2[64];
  auto two = std::to_chars(buf2, buf2 + sizeof buf2, value,
                           std::chars_format::scientific, 1);
  double back = 0;
  std::from_chars(buf2, two.ptr, back);
  if (back == value) return FromScientific(buf2, two.ptr);
  return d;
}

}  // namespace

void AppendJavaDouble(double value, std::string* out) {
  if (std::isnan(value)) {
    out->append("NaN");
    return;
  }
  if (std::isinf(value)) {
    out->append(value > 0 ? "Infinity" : "-Infinity");
    return;
  }
  if (value == 0) {
    out->append(std::signbit(value) ? "-0.0" : "0.0");
    return;
  }
  if (value < 0) {
    out->push_back('-');
    value = -value;
  }
  Decimal d = ShortestDecimal(value);
  if (value >= 1e-3 && value < 1e7) {
    if (d.exponent >= 0) {
      // Integer part: digits[0..exponent], padded with zeros.
      for (int i = 0; i <= d.exponent; ++i) {
        out->push_back(i < d.length ? d.digits[i] : '0');
      }
      out->push_back('.');
      if (d.length > d.exponent + 1) {
        out->append(d.digits + d.exponent + 1, d.length - d.exponent - 1);
      } else {
        out->push_back('0');
      }
    } else {
      out->append("0.");
      out->append(static_cast<size_t>(-d.exponent - 1), '0');
      out->append(d.digits, d.length);
    }
    return;
  }
  out->push_back(d.digits[0]);
  out->push_back('.');
  if (d.length > 1) {
    out->append(d.digits + 1, d.length - 1);
  } else {
    out->push_back('0');
  }
  out->push_back('E');
  char exp[16];
  auto r = std::to_chars(exp, exp + sizeof exp, d.exponent);
  out->append(exp, r.ptr);
}

std::string JavaDoubleToString(double value) {
  std::string out;
  AppendJavaDouble(value, &out);
  return out;
}

std::string ValidUtf8(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    unsigned char c = *p;
    int extra = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2
                             : (c >> 3) == 0x1E ? 3 : -1;
    bool ok = extra >= 0 && end - p > extra;
    uint32_t cp = ok && extra > 0 ? c & (0x3F >> extra) : c;
    for (int k = 1; ok && k <= extra; ++k) {
      ok = (p[k] & 0xC0) == 0x80;
      cp = (cp << 6) | (p[k] & 0x3F);
    }
    // Overlong forms, surrogates and values beyond U+10FFFF are invalid.
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (ok && extra > 0 &&
        (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) {
      ok = false;
    }
    if (!ok) {
      out.append("\xEF\xBF\xBD");
      ++p;
      continue;
    }
    out.append(reinterpret_cast<const char*>(p), extra + 1);
    p += extra + 1;
  }
  return out;
}

namespace {

// The bytes a JSON string cannot hold as they are (control characters, '"'
// and '\\'), and the non-ASCII ones, which need UTF-8 validation.
constexpr std::array<bool, 256> SpecialBytes() {
  std::array<bool, 256> special{};
  for (int c = 0; c < 256; ++c) {
    special[c] = c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
  }
  return special;
}
constexpr std::array<bool, 256> kSpecialByte = SpecialBytes();

}  // namespace

void AppendJsonString(absl::string_view text, std::string* out) {
  // The common case, plain ASCII with nothing to escape (job ids, field
  // names, most values), is copied as it is: validating a short string's
  // UTF-8 took a quarter of writing a response.
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  size_t plain = 0;
  while (plain < text.size() && !kSpecialByte[bytes[plain]]) ++plain;
  if (plain == text.size()) {
    out->push_back('"');
    out->append(text.data(), text.size());
    out->push_back('"');
    return;
  }
  if (!simdjson::validate_utf8(text.data(), text.size())) {
    // Only error messages quoting raw input can get here: loaded strings
    // were validated by the parser.
    std::string valid = ValidUtf8(text);
    AppendJsonString(valid, out);
    return;
  }
  static constexpr char kHex[] = "0123456789ABCDEF";
  out->push_back('"');
  size_t run_start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(text.data() + run_start, i - run_start);
    run_start = i + 1;
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\b': out->append("\\b"); break;
      case '\t': out->append("\\t"); break;
      case '\n': out->append("\\n"); break;
      case '\f': out->append("\\f"); break;
      case '\r': out->append("\\r"); break;
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xf]);
    }
  }
  out->append(text.data() + run_start, text.size() - run_start);
  out->push_back('"');
}

}  // namespace clout
