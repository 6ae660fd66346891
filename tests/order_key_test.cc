#include "engine/order_key.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace clout {
namespace {

constexpr uint64_t kAsc = 0;
constexpr uint64_t kDesc = ~uint64_t{0};

double FromBits(uint64_t bits) { return std::bit_cast<double>(bits); }

// Every value a stored double can hold, in Java's Double.compare order.
std::vector<double> OrderedValues() {
  const double inf = std::numeric_limits<double>::infinity();
  const double max = std::numeric_limits<double>::max();
  const double denorm = std::numeric_limits<double>::denorm_min();
  const double tiny = std::numeric_limits<double>::min();
  return {-inf, -max, -1.5, -1.0, -tiny, -denorm, -0.0, 0.0,
          denorm, tiny, 1e-300, 0.5, 1.0, 94.1386, 100.0, max, inf};
}

// The NaNs a column may meet: the canonical quiet NaN, a negative one, a
// signalling one, and payloads.
std::vector<double> NaNs() {
  return {std::numeric_limits<double>::quiet_NaN(),
          -std::numeric_limits<double>::quiet_NaN(),
          std::numeric_limits<double>::signaling_NaN(),
          FromBits(0x7FF0000000000001), FromBits(0xFFF0000000000001),
          FromBits(0x7FFFFFFFFFFFFFFF), FromBits(0xFFFFFFFFFFFFFFFF)};
}

TEST(OrderKeyTest, DoublesFollowJavaOrderBothWays) {
  const std::vector<double> values = OrderedValues();
  for (size_t i = 0; i + 1 < values.size(); ++i) {
    EXPECT_LT(DoubleOrderKey(values[i], kAsc), DoubleOrderKey(values[i + 1], kAsc))
        << values[i] << " < " << values[i + 1];
    EXPECT_GT(DoubleOrderKey(values[i], kDesc),
              DoubleOrderKey(values[i + 1], kDesc))
        << values[i] << " > " << values[i + 1] << " descending";
    EXPECT_LT(OrderKey(values[i]), OrderKey(values[i + 1]));
  }
}

TEST(OrderKeyTest, EveryNaNIsMissingAndLastBothWays) {
  const std::vector<double> values = OrderedValues();
  for (double nan : NaNs()) {
    ASSERT_TRUE(std::isnan(nan));
    for (uint64_t flip : {kAsc, kDesc}) {
      EXPECT_EQ(DoubleOrderKey(nan, flip), std::numeric_limits<uint64_t>::max())
          << std::bit_cast<uint64_t>(nan);
      for (double value : values) {
        EXPECT_LT(DoubleOrderKey(value, flip), DoubleOrderKey(nan, flip))
            << value << " flip " << flip;
      }
    }
  }
}

TEST(OrderKeyTest, InfinitiesStayBelowMissing) {
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(DoubleOrderKey(inf, kAsc), 0xFFF0000000000000u);
  EXPECT_EQ(DoubleOrderKey(-inf, kDesc), 0xFFF0000000000000u);
}

TEST(OrderKeyTest, IntegersFollowSignedOrder) {
  const std::vector<int64_t> values = {std::numeric_limits<int64_t>::min(), -1,
                                       0, 1, 1454943600000,
                                       std::numeric_limits<int64_t>::max()};
  for (size_t i = 0; i + 1 < values.size(); ++i) {
    EXPECT_LT(OrderKey(values[i]), OrderKey(values[i + 1])) << values[i];
  }
}

}  // namespace
}  // namespace clout
