// IdentityIndex against brute force: every identity finds exactly the rows
// that hold it (a segment may hold several: rows deleted since), absent
// identities find none, with 2-, 3- and 4-byte slots.
#include "engine/identity_index.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <tuple>
#include <vector>

#include "engine/columns.h"
#include "gtest/gtest.h"

namespace clout {
namespace {

using Identity = std::tuple<int64_t, uint32_t, uint32_t, uint32_t>;

// A job of `rows` rows whose identities come from small ranges, so that
// many repeat; only the identity columns are filled (all the index reads).
JobResults MakeRows(std::mt19937_64& random, size_t rows) {
  JobResults job;
  InfluencerColumns& c = job.columns;
  const uint64_t spread = std::max<uint64_t>(4, rows / 3);
  for (size_t r = 0; r < rows; ++r) {
    c.timestamp.push_back(static_cast<int64_t>(random() % spread) * 1000 -
                          5000);
    c.bucket_span_code.push_back(static_cast<uint32_t>(random() % 2));
    c.field_name_code.push_back(static_cast<uint32_t>(random() % 3));
    c.field_value_code.push_back(static_cast<uint32_t>(random() % 5));
  }
  return job;
}

std::vector<uint32_t> Found(const IdentityIndex& index,
                            const InfluencerColumns& c, const Identity& id) {
  std::vector<uint32_t> rows;
  index.ForEach(c, std::get<0>(id), std::get<1>(id), std::get<2>(id),
                std::get<3>(id), [&](uint32_t row) { rows.push_back(row); });
  std::sort(rows.begin(), rows.end());
  return rows;
}

TEST(IdentityIndexTest, FindsExactlyTheRowsOfEachIdentity) {
  std::mt19937_64 random(17);
  // 65,535 rows: 2-byte slots, the last row one below the empty slot's
  // value; 65,536 and 70,000: 3-byte slots, row numbers in the third byte.
  for (size_t rows : {size_t{0}, size_t{1}, size_t{15}, size_t{1000},
                      size_t{65535}, size_t{65536}, size_t{70000}}) {
    const JobResults job = MakeRows(random, rows);
    const InfluencerColumns& c = job.columns;
    std::map<Identity, std::vector<uint32_t>> expected;
    for (size_t r = 0; r < rows; ++r) {
      expected[{c.timestamp[r], c.bucket_span_code[r], c.field_name_code[r],
                c.field_value_code[r]}]
          .push_back(static_cast<uint32_t>(r));
    }
    ASSERT_EQ(IdentityIndex(job).slot_bytes(),
              rows < 65536 ? 2u : 3u);
    for (size_t slot_bytes : {size_t{0}, size_t{2}, size_t{3}, size_t{4}}) {
      const IdentityIndex index(job, slot_bytes);
      ASSERT_EQ(index.slot_bytes(),
                std::max(slot_bytes, IdentityIndex::SlotBytesFor(rows)));
      for (const auto& [id, want] : expected) {
        ASSERT_EQ(Found(index, c, id), want) << rows << " " << slot_bytes;
      }
      // Absent: a timestamp no row has, and codes no row has.
      for (int k = 0; k < 200; ++k) {
        const int64_t ts = static_cast<int64_t>(random() % 1000) * 1000 + 7;
        EXPECT_TRUE(Found(index, c, {ts, 0, 0, 0}).empty());
        EXPECT_TRUE(Found(index, c, {-5000, 2, 0, 0}).empty());
        EXPECT_TRUE(Found(index, c, {-5000, 0, 0, 5}).empty());
      }
    }
  }
}

TEST(IdentityIndexTest, TheFewestSlotBytesThatHoldTheRows) {
  EXPECT_EQ(IdentityIndex::SlotBytesFor(0), 2u);
  EXPECT_EQ(IdentityIndex::SlotBytesFor(65535), 2u);
  EXPECT_EQ(IdentityIndex::SlotBytesFor(65536), 3u);
  EXPECT_EQ(IdentityIndex::SlotBytesFor((size_t{1} << 24) - 1), 3u);
  EXPECT_EQ(IdentityIndex::SlotBytesFor(size_t{1} << 24), 4u);
  std::mt19937_64 random(5);
  const size_t rows = 100000;
  const JobResults job = MakeRows(random, rows);
  const IdentityIndex narrow(job);
  const IdentityIndex wide(job, 4);
  EXPECT_EQ(narrow.slot_bytes(), 3u);
  // 1.6 slots per row: 4.8 bytes a row, 6.4 with 4-byte slots.
  EXPECT_LE(narrow.bytes(), rows * 48 / 10 + 8);
  EXPECT_GE(narrow.bytes(), rows * 48 / 10);
  EXPECT_LE(wide.bytes(), rows * 64 / 10 + 8);
  const JobResults small = MakeRows(random, 50000);
  EXPECT_EQ(IdentityIndex(small).slot_bytes(), 2u);
  EXPECT_LE(IdentityIndex(small).bytes(), 50000 * 32 / 10 + 8);
}

}  // namespace
}  // namespace clout
