// The loader's fast number paths against simdjson, which they stand in
// for: whenever a fast path accepts a token, its value must be simdjson's,
// bit for bit; it may decline anything, but must take the common forms.
#include "engine/fast_number.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "simdjson.h"

namespace clout {
namespace {

namespace od = simdjson::ondemand;

// What may follow a field's number, up to the end of the object.
const char* const kAfters[] = {",\"x\":1}", "}", " }", "\n}", "\r\n}",
                               "\t}", " ,\"x\":1}"};

struct Simdjson {
  bool ok = false;
  double d = 0;
  int64_t i = 0;
};

// simdjson's reading of `token` as the value of a field, followed by
// `after`, which closes the object (kAfters).
Simdjson ReadWithSimdjson(const std::string& token, const std::string& after,
                          bool as_int) {
  static od::parser parser;
  simdjson::padded_string json("{\"v\":" + token + after);
  Simdjson result;
  od::document doc;
  if (parser.iterate(json).get(doc)) return result;
  od::object object;
  if (doc.get_object().get(object)) return result;
  od::value value;
  if (object.find_field("v").get(value)) return result;
  if (as_int) {
    result.ok = value.get_int64().get(result.i) == simdjson::SUCCESS;
  } else {
    result.ok = value.get_double().get(result.d) == simdjson::SUCCESS;
  }
  return result;
}

// The token followed by `after`, with simdjson's padding behind it.
simdjson::padded_string Padded(const std::string& token,
                               const std::string& after) {
  return simdjson::padded_string(token + after);
}

uint64_t Bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, sizeof(b));
  return b;
}

// Checks one token both ways; returns whether the fast double path took it.
bool CheckToken(const std::string& token, const std::string& after) {
  simdjson::padded_string text = Padded(token, after);
  double fast = -12345.0;
  const bool took = FastParseDouble(text.data(), &fast);
  if (took) {
    Simdjson slow = ReadWithSimdjson(token, after, false);
    EXPECT_TRUE(slow.ok) << "fast path accepted what simdjson rejects: "
                         << token << after;
    EXPECT_EQ(Bits(fast), Bits(slow.d))
        << token << ": fast " << fast << " simdjson " << slow.d;
  } else {
    EXPECT_EQ(fast, -12345.0) << "declined but wrote: " << token;
  }
  int64_t fast_int = -777;
  if (FastParseInt64(text.data(), &fast_int)) {
    Simdjson slow = ReadWithSimdjson(token, after, true);
    EXPECT_TRUE(slow.ok) << "int fast path accepted what simdjson rejects: "
                         << token << after;
    EXPECT_EQ(fast_int, slow.i) << token;
  } else {
    EXPECT_EQ(fast_int, -777) << "declined but wrote: " << token;
  }
  return took;
}

TEST(FastNumberTest, TakesTheFormsDumpsAreMadeOf) {
  const std::vector<std::pair<std::string, double>> common = {
      {"0.1678", 0.1678},       {"94.1386", 94.1386},
      {"1.6325E-7", 1.6325e-7}, {"5.82005E-7", 5.82005e-7},
      {"0.00124956", 0.00124956}, {"0.0", 0.0},
      {"100", 100.0},           {"-3.5", -3.5},
      {"1e22", 1e22},           {"1E-22", 1e-22},
      {"123456789012345", 123456789012345.0}};
  for (const auto& [token, expected] : common) {
    for (const char* after : kAfters) {
      simdjson::padded_string text = Padded(token, after);
      double d = 0;
      ASSERT_TRUE(FastParseDouble(text.data(), &d)) << token << after;
      EXPECT_EQ(Bits(d), Bits(expected)) << token;
      EXPECT_TRUE(CheckToken(token, after));
    }
  }
  double negative_zero = 1;
  simdjson::padded_string text = Padded("-0.0", "}");
  ASSERT_TRUE(FastParseDouble(text.data(), &negative_zero));
  EXPECT_TRUE(std::signbit(negative_zero));

  for (const auto& [token, expected] :
       std::vector<std::pair<std::string, int64_t>>{
           {"1454943600000", 1454943600000},
           {"600", 600},
           {"0", 0},
           {"-86400000", -86400000},
           {"123456789012345", 123456789012345}}) {
    simdjson::padded_string t = Padded(token, "}");
    int64_t i = -1;
    ASSERT_TRUE(FastParseInt64(t.data(), &i)) << token;
    EXPECT_EQ(i, expected);
  }
}

TEST(FastNumberTest, DeclinesWhatItCannotReadExactly) {
  // Not JSON, or outside the fast path: left to simdjson (which reads the
  // valid ones and words the errors).
  for (const std::string token :
       {"01", "-01", "00.5", "1.", "1.e5", ".5", "-", "+1", "1e", "1e+",
        "1e-", "1.5.2", "0x10", "1e400", "1e1000", "1e23", "1e-23",
        "123456789012345678901", "0.12345678901234567890",
        "9007199254740993", "1234567890123456", "12345678901234567",
        "NaN", "Infinity", "-Infinity", "true", "null", "\"1.5\"",
        "1.5x", "1.5:", "1.5{", "2a", "--1", "1e5.5", "1E0005"}) {
    simdjson::padded_string text = Padded(token, "}");
    double d = -12345.0;
    const bool took = FastParseDouble(text.data(), &d);
    // Some of these are valid JSON the fast path may still decline; none
    // that it takes may differ from simdjson.
    CheckToken(token, "}");
    if (token == "1e23" || token == "01" || token == "1." || token == ".5" ||
        token == "9007199254740993" || token == "1e400" || token == "NaN" ||
        token == "1.5x" || token == "0.12345678901234567890") {
      EXPECT_FALSE(took) << token;
    }
  }
  for (const std::string token :
       {"1.0", "1e3", "01", "-", "1234567890123456", "12345678901234567890",
        "1.5", "-0.0"}) {
    simdjson::padded_string text = Padded(token, "}");
    int64_t i = -777;
    EXPECT_FALSE(FastParseInt64(text.data(), &i)) << token;
    EXPECT_EQ(i, -777);
  }
}

// Random tokens of every shape the grammar allows, and some it does not.
TEST(FastNumberTest, AgreesWithSimdjsonOnRandomTokens) {
  std::mt19937_64 rng(20261129);
  auto digits = [&](int n, bool leading_nonzero) {
    std::string s;
    for (int i = 0; i < n; ++i) {
      int d = static_cast<int>(rng() % 10);
      if (i == 0 && leading_nonzero && d == 0) d = 1 + static_cast<int>(rng() % 9);
      s.push_back(static_cast<char>('0' + d));
    }
    return s;
  };
  int taken = 0;
  const int kTokens = 200000;
  for (int n = 0; n < kTokens; ++n) {
    std::string token;
    if (rng() % 4 == 0) token += "-";
    const int whole = static_cast<int>(rng() % 18);
    if (whole == 0 || rng() % 3 == 0) {
      token += "0";
    } else {
      token += digits(whole, true);
    }
    if (rng() % 4 != 0) token += "." + digits(1 + static_cast<int>(rng() % 18), false);
    if (rng() % 3 == 0) {
      token += (rng() % 2) ? "e" : "E";
      const int sign = static_cast<int>(rng() % 3);
      if (sign == 1) token += "-";
      if (sign == 2) token += "+";
      token += digits(1 + static_cast<int>(rng() % 3), false);
    }
    if (rng() % 50 == 0) {  // corrupt one byte
      token[rng() % token.size()] = "0.eE-+x9"[rng() % 8];
    }
    if (CheckToken(token, kAfters[rng() % (sizeof(kAfters) / sizeof(kAfters[0]))])) ++taken;
    if (::testing::Test::HasFailure()) break;
  }
  // Most tokens are in the fast path's range: a fast path that declined
  // everything would pass the checks above, so count what it took.
  EXPECT_GT(taken, kTokens / 3) << taken;
}

}  // namespace
}  // namespace clout
