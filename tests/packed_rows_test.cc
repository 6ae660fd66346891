// PackedRows: 2-byte entries up to 2^16 rows, 3-byte up to 2^24, 4-byte
// past them; each entry read back as written, views from any entry on,
// CountBelow against a count.
#include "engine/packed_rows.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace clout {
namespace {

TEST(PackedRowsTest, TheFewestBytesThatHoldTheLimit) {
  EXPECT_EQ(PackedRows::WidthFor(0), 2u);
  EXPECT_EQ(PackedRows::WidthFor(size_t{1} << 16), 2u);
  EXPECT_EQ(PackedRows::WidthFor((size_t{1} << 16) + 1), 3u);
  EXPECT_EQ(PackedRows::WidthFor(size_t{1} << 24), 3u);
  EXPECT_EQ(PackedRows::WidthFor((size_t{1} << 24) + 1), 4u);
  PackedRows rows;
  rows.Assign(1000, 100000);
  EXPECT_EQ(rows.width(), 3u);
  EXPECT_EQ(rows.size(), 1000u);
  // 3 bytes an entry, one spare for the last entry's 4-byte read.
  EXPECT_GE(rows.bytes(), 3001u);
  EXPECT_LE(rows.bytes(), 3100u);
  // Filled with 0xFF, every entry is all_ones(): the width's greatest.
  for (auto [limit, ones] : {std::pair<size_t, uint32_t>{10, 0xFFFF},
                             {size_t{1} << 20, 0xFFFFFF},
                             {size_t{1} << 30, 0xFFFFFFFF}}) {
    PackedRows full;
    full.Assign(7, limit, 0xFF);
    EXPECT_EQ(full.all_ones(), ones);
    EXPECT_EQ(full.ToVector(), std::vector<uint32_t>(7, ones));
  }
  // Empty lists, of every width: nothing to read, views past the end.
  for (size_t limit : {size_t{10}, size_t{1} << 20, size_t{1} << 30}) {
    PackedRows none;
    none.Assign(0, limit);
    EXPECT_TRUE(none.empty());
    EXPECT_TRUE(none.ToVector().empty());
  }
}

TEST(PackedRowsTest, EntriesReadBackAsWritten) {
  std::mt19937_64 random(11);
  for (size_t limit :
       {size_t{1} << 16, size_t{1} << 24, (size_t{1} << 32) - 1}) {
    PackedRows rows;
    const size_t n = 4099;
    rows.Assign(n, limit);
    ASSERT_EQ(rows.width(), PackedRows::WidthFor(limit));
    std::vector<uint32_t> want(n);
    for (size_t i = 0; i < n; ++i) {
      // The extremes, and random values with every byte in use.
      want[i] = i == 0   ? 0
                : i == 1 ? static_cast<uint32_t>(limit - 1)
                         : static_cast<uint32_t>(random() % limit);
    }
    // Written in a scattered order, each twice (the greatest value
    // first): a write must not touch its neighbours' bytes.
    for (size_t k = 0; k < n; ++k) {
      const size_t i = (k * 2029) % n;
      rows.Set(i, static_cast<uint32_t>(limit - 1));
      rows.Set(i, want[i]);
    }
    EXPECT_EQ(rows.ToVector(), want) << limit;
    // At<W>, with the width a constant, reads what operator[] reads.
    rows.view().WithWidth([&](auto width) {
      constexpr size_t W = width;
      EXPECT_EQ(W, rows.width());
      for (size_t i = 0; i < n; ++i) {
        ASSERT_EQ(rows.view().At<W>(i), want[i]) << limit << " " << i;
      }
    });
    // A value past the width loses its high bytes, not the neighbour's.
    if (rows.width() < 4) {
      rows.Set(5, UINT32_MAX);
      EXPECT_EQ(rows[5], static_cast<uint32_t>(limit - 1));
      EXPECT_EQ(rows[6], want[6]);
      EXPECT_EQ(rows[4], want[4]);
      rows.Set(5, want[5]);
    }
    for (size_t from : {size_t{0}, size_t{1}, size_t{2}, size_t{4098}}) {
      const PackedRowsView view = rows.view().Skip(from);
      for (size_t i = from; i < n; ++i) {
        ASSERT_EQ(view[i - from], want[i]) << limit << " " << from;
      }
    }
  }
}

TEST(PackedRowsTest, CountBelowCountsAscendingEntries) {
  std::mt19937_64 random(12);
  for (size_t n : {size_t{1}, size_t{2}, size_t{3}, size_t{64}, size_t{1000},
                   size_t{1024}}) {
    std::vector<uint32_t> values(n);
    for (uint32_t& v : values) v = static_cast<uint32_t>(random() % 3000);
    std::sort(values.begin(), values.end());
    PackedRows rows;
    rows.Assign(n + 2, 100000);
    rows.Set(0, 99999);  // before the view: not counted
    for (size_t i = 0; i < n; ++i) rows.Set(i + 1, values[i]);
    rows.Set(n + 1, 0);  // after the n entries: not counted
    const PackedRowsView view = rows.view().Skip(1);
    for (uint32_t value = 0; value <= 3001; value += 7) {
      const size_t want = static_cast<size_t>(
          std::lower_bound(values.begin(), values.end(), value) -
          values.begin());
      ASSERT_EQ(view.CountBelow(n, value), want) << n << " " << value;
    }
    ASSERT_EQ(view.CountBelow(n, 0), 0u);
    ASSERT_EQ(view.CountBelow(n, UINT32_MAX), n);
  }
}

}  // namespace
}  // namespace clout
