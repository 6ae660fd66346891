#include "engine/java_format.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "gtest/gtest.h"

namespace clout {
namespace {

TEST(JavaDoubleTest, MatchesJavaDoubleToString) {
  // Expected strings are what Java 19+'s Double.toString prints.
  EXPECT_EQ(JavaDoubleToString(80.0), "80.0");
  EXPECT_EQ(JavaDoubleToString(94.1386), "94.1386");
  EXPECT_EQ(JavaDoubleToString(0.000111612), "1.11612E-4");
  EXPECT_EQ(JavaDoubleToString(0.0), "0.0");
  EXPECT_EQ(JavaDoubleToString(-0.0), "-0.0");
  EXPECT_EQ(JavaDoubleToString(1.0), "1.0");
  EXPECT_EQ(JavaDoubleToString(0.001), "0.001");
  EXPECT_EQ(JavaDoubleToString(0.0009999), "9.999E-4");
  EXPECT_EQ(JavaDoubleToString(1e7), "1.0E7");
  EXPECT_EQ(JavaDoubleToString(9999999.0), "9999999.0");
  EXPECT_EQ(JavaDoubleToString(12345678.9), "1.23456789E7");
  EXPECT_EQ(JavaDoubleToString(100.0), "100.0");
  EXPECT_EQ(JavaDoubleToString(-2.5), "-2.5");
  EXPECT_EQ(JavaDoubleToString(0.1), "0.1");
  EXPECT_EQ(JavaDoubleToString(0.3), "0.3");
  EXPECT_EQ(JavaDoubleToString(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(JavaDoubleToString(1e-5), "1.0E-5");
  EXPECT_EQ(JavaDoubleToString(1e23), "1.0E23");
  EXPECT_EQ(JavaDoubleToString(2e22), "2.0E22");
  EXPECT_EQ(JavaDoubleToString(std::numeric_limits<double>::max()),
            "1.7976931348623157E308");
  EXPECT_EQ(JavaDoubleToString(std::numeric_limits<double>::min()),
            "2.2250738585072014E-308");
  // Java prints the closest of the one- and two-digit decimals.
  EXPECT_EQ(JavaDoubleToString(std::numeric_limits<double>::denorm_min()),
            "4.9E-324");
  EXPECT_EQ(JavaDoubleToString(1.0E-322), "9.9E-323");
  EXPECT_EQ(JavaDoubleToString(std::nan("")), "NaN");
  EXPECT_EQ(JavaDoubleToString(INFINITY), "Infinity");
  EXPECT_EQ(JavaDoubleToString(-INFINITY), "-Infinity");
}

TEST(JavaDoubleTest, RoundTripsBitExactly) {
  std::mt19937_64 random(42);
  for (int i = 0; i < 200000; ++i) {
    uint64_t bits = random();
    double value;
    std::memcpy(&value, &bits, sizeof value);
    if (!std::isfinite(value)) continue;
    std::string text = JavaDoubleToString(value);
    double back = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(),
                                     back);
    ASSERT_EQ(ec, std::errc()) << text;
    ASSERT_EQ(ptr, text.data() + text.size()) << text;
    uint64_t back_bits;
    std::memcpy(&back_bits, &back, sizeof back);
    ASSERT_EQ(back_bits, bits) << text;
  }
}

TEST(JavaDoubleTest, PlainAndScientificRanges) {
  std::mt19937_64 random(7);
  std::uniform_real_distribution<double> exponent(-12, 12);
  for (int i = 0; i < 20000; ++i) {
    double value = std::pow(10.0, exponent(random));
    std::string text = JavaDoubleToString(value);
    bool scientific = text.find('E') != std::string::npos;
    EXPECT_EQ(scientific, !(value >= 1e-3 && value < 1e7)) << text;
    // At least one digit after the point, never a '+' exponent.
    size_t dot = text.find('.');
    ASSERT_NE(dot, std::string::npos) << text;
    EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(text[dot + 1])))
        << text;
    EXPECT_EQ(text.find('+'), std::string::npos) << text;
  }
}

TEST(JsonStringTest, EscapesAsJackson) {
  std::string out;
  AppendJsonString("a\"b\\c\nd\te\x01\x1f/\xc3\xa9", &out);
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\nd\\te\\u0001\\u001F/\xc3\xa9\"");
  out.clear();
  AppendJsonString("", &out);
  EXPECT_EQ(out, "\"\"");
  out.clear();
  AppendJsonString(std::string("x\0y", 3), &out);
  EXPECT_EQ(out, "\"x\\u0000y\"");
}

TEST(JsonStringTest, InvalidUtf8BecomesReplacementCharacters) {
  std::string out;
  // A lone 0xFF, a truncated sequence, an overlong '/', a surrogate.
  AppendJsonString("a\xff b\xc3 c\xc0\xaf d\xed\xa0\x80 \xc3\xa9", &out);
  EXPECT_EQ(out,
            "\"a\xEF\xBF\xBD b\xEF\xBF\xBD c\xEF\xBF\xBD\xEF\xBF\xBD "
            "d\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD \xc3\xa9\"");
}

}  // namespace
}  // namespace clout
