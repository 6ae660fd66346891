#include "engine/interner.h"

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace clout {
namespace {

// Codes against a std::map, over strings of every length up to 40 that
// differ from each other in a single byte (first, middle, last) or only in
// length, interned in random order many times over.
TEST(InternerTest, CodesAreDenseAndStable) {
  std::vector<std::string> distinct;
  for (size_t n = 0; n <= 40; ++n) {
    std::string base(n, 'a');
    for (size_t i = 0; i < n; ++i) base[i] = static_cast<char>('a' + i % 26);
    distinct.push_back(base);
    for (size_t at : {size_t{0}, n / 2, n - 1}) {
      if (n == 0) break;
      std::string other = base;
      other[at] = static_cast<char>(other[at] ^ 0x20);
      distinct.push_back(other);
    }
  }
  // Binary bytes too (a zero byte, high bytes).
  distinct.push_back(std::string("\0", 1));
  distinct.push_back(std::string("\0\0", 2));
  distinct.push_back("\xff\xfe\x80");
  // Sizes beyond what a slot records (65535 bytes and more).
  for (size_t n : {size_t{65534}, size_t{65535}, size_t{65536}, size_t{70000}}) {
    std::string a(n, 'L');
    distinct.push_back(a);
    a.back() = 'M';
    distinct.push_back(a);
  }
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::mt19937_64 random(7);
  std::vector<std::unique_ptr<std::string>> arena;
  std::vector<absl::string_view> strings;
  std::map<std::string, uint32_t> expected;
  StringInterner interner;
  for (int round = 0; round < 20000; ++round) {
    const std::string& s = distinct[random() % distinct.size()];
    // A copy, so that equal strings never share an address.
    std::string probe = s;
    const uint32_t code =
        interner.Intern(probe, strings, [&](absl::string_view t) {
          arena.push_back(std::make_unique<std::string>(t));
          return absl::string_view(*arena.back());
        });
    auto [it, inserted] =
        expected.emplace(s, static_cast<uint32_t>(expected.size()));
    ASSERT_EQ(code, it->second) << "round " << round;
    ASSERT_EQ(strings.size(), expected.size());
    ASSERT_EQ(strings[code], s);
  }
  EXPECT_EQ(expected.size(), distinct.size());
}

// Many distinct strings: the table grows and keeps every code.
TEST(InternerTest, GrowsWithoutLosingCodes) {
  std::vector<std::string> owned;
  for (int i = 0; i < 100000; ++i) owned.push_back("user_" + std::to_string(i));
  std::vector<absl::string_view> strings;
  StringInterner interner;
  auto keep = [](absl::string_view t) { return t; };
  for (int pass = 0; pass < 2; ++pass) {
    for (int i = 0; i < 100000; ++i) {
      ASSERT_EQ(interner.Intern(owned[i], strings, keep), static_cast<uint32_t>(i));
    }
  }
  EXPECT_EQ(strings.size(), 100000u);
  // An empty view with no data at all, twice: one new code.
  EXPECT_EQ(interner.Intern(absl::string_view(), strings, keep), 100000u);
  EXPECT_EQ(interner.Intern(absl::string_view(), strings, keep), 100000u);
  EXPECT_EQ(interner.Intern("", strings, keep), 100000u);
}

TEST(InternerTest, BytesEqualSeesEveryByte) {
  for (size_t n = 0; n <= 40; ++n) {
    std::string s(n, 'x');
    EXPECT_TRUE(BytesEqual(s, std::string(n, 'x')));
    EXPECT_FALSE(BytesEqual(s, std::string(n + 1, 'x')));
    for (size_t i = 0; i < n; ++i) {
      std::string t = s;
      t[i] = 'y';
      EXPECT_FALSE(BytesEqual(s, t)) << n << " " << i;
    }
  }
}

TEST(InternerTest, HashDependsOnEveryByteAndTheLength) {
  for (size_t n = 1; n <= 40; ++n) {
    std::string s(n, 'x');
    const uint64_t h = HashBytes(s.data(), n);
    for (size_t i = 0; i < n; ++i) {
      std::string t = s;
      t[i] = 'y';
      EXPECT_NE(HashBytes(t.data(), n), h) << n << " " << i;
    }
    EXPECT_NE(HashBytes(s.data(), n - 1), h) << n;
  }
}

}  // namespace
}  // namespace clout
