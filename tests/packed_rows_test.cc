// PackedRows: 3-byte entries up to 2^24 rows, 4-byte past them, each
// entry read back as written, views from any entry on.
#include "engine/packed_rows.h"

#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace clout {
namespace {

TEST(PackedRowsTest, ThreeBytesUpToTwoToTheTwentyFourRows) {
  EXPECT_EQ(PackedRows::WidthFor(0), 3u);
  EXPECT_EQ(PackedRows::WidthFor(size_t{1} << 24), 3u);
  EXPECT_EQ(PackedRows::WidthFor((size_t{1} << 24) + 1), 4u);
  PackedRows rows;
  rows.Assign(1000, 1000);
  EXPECT_EQ(rows.width(), 3u);
  EXPECT_EQ(rows.size(), 1000u);
  // 3 bytes an entry, one spare for the last entry's 4-byte read.
  EXPECT_GE(rows.bytes(), 3001u);
  EXPECT_LE(rows.bytes(), 3100u);
}

TEST(PackedRowsTest, EntriesReadBackAsWritten) {
  std::mt19937_64 random(11);
  for (size_t limit : {size_t{1} << 24, (size_t{1} << 32) - 1}) {
    PackedRows rows;
    const size_t n = 4099;
    rows.Assign(n, limit);
    ASSERT_EQ(rows.width(), limit <= (size_t{1} << 24) ? 3u : 4u);
    std::vector<uint32_t> want(n);
    for (size_t i = 0; i < n; ++i) {
      // The extremes, and random values with every byte in use.
      want[i] = i == 0   ? 0
                : i == 1 ? static_cast<uint32_t>(limit - 1)
                         : static_cast<uint32_t>(random() % limit);
    }
    // Written in a scattered order: a write must not touch its
    // neighbours' bytes.
    for (size_t k = 0; k < n; ++k) {
      const size_t i = (k * 2029) % n;
      rows.Set(i, want[i]);
    }
    EXPECT_EQ(rows.ToVector(), want) << limit;
    for (size_t from : {size_t{0}, size_t{1}, size_t{2}, size_t{4098}}) {
      const PackedRowsView view = rows.view().Skip(from);
      for (size_t i = from; i < n; ++i) {
        ASSERT_EQ(view[i - from], want[i]) << limit << " " << from;
      }
    }
  }
}

}  // namespace
}  // namespace clout
