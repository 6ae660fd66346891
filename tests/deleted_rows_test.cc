// DeletedRows, the persistent set of a segment's deleted rows, against a
// std::set over random histories of writes that share earlier sets.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "engine/columns.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace clout {
namespace {

// The next `batch` rows of `order` from `used` on, sorted (as With takes
// them); advances `used`.
std::vector<uint32_t> TakeSorted(const std::vector<uint32_t>& order,
                                 size_t& used, size_t batch) {
  std::vector<uint32_t> rows(order.begin() + used,
                             order.begin() + used + batch);
  used += batch;
  std::sort(rows.begin(), rows.end());
  return rows;
}

// Checks every query of `rows` against `model` over rows [0, universe).
void ExpectSame(const DeletedRows& rows, const std::set<uint32_t>& model,
                uint32_t universe) {
  ASSERT_EQ(rows.size(), model.size());
  EXPECT_EQ(rows.Sorted(), std::vector<uint32_t>(model.begin(), model.end()));
  std::vector<uint32_t> unordered;
  rows.ForEachUnordered([&](uint32_t row) { unordered.push_back(row); });
  std::sort(unordered.begin(), unordered.end());
  EXPECT_EQ(unordered, std::vector<uint32_t>(model.begin(), model.end()));
  DeletedRows::Cursor cursor(&rows);
  const std::vector<uint64_t> bitmap = rows.Bitmap(universe);
  ASSERT_EQ(bitmap.size(), (universe + 63) / 64);
  size_t rank = 0;
  for (uint32_t row = 0; row < universe; ++row) {
    const bool in = model.contains(row);
    ASSERT_EQ(rows.Contains(row), in) << row;
    ASSERT_EQ((bitmap[row / 64] >> (row % 64)) & 1, in ? 1u : 0u) << row;
    ASSERT_EQ(rows.Rank(row), rank) << row;
    ASSERT_EQ(cursor.Contains(row), in) << row;
    rank += in;
  }
}

TEST(DeletedRowsTest, RandomHistoriesMatchASet) {
  std::mt19937 rng(20261206);
  for (int history = 0; history < 40; ++history) {
    const uint32_t universe = 1 + rng() % 3000;
    std::vector<uint32_t> order(universe);
    for (uint32_t i = 0; i < universe; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    // Versions kept alive, each with its model: a later write to an older
    // version must leave the newer ones as they are, and the reverse.
    std::vector<std::pair<std::shared_ptr<const DeletedRows>,
                          std::set<uint32_t>>> versions;
    size_t used = rng() % 50;
    std::vector<uint32_t> first(order.begin(),
                                order.begin() + std::min<size_t>(used, universe));
    std::sort(first.begin(), first.end());
    versions.push_back({std::make_shared<const DeletedRows>(first),
                        std::set<uint32_t>(first.begin(), first.end())});
    while (used < universe) {
      const size_t batch = std::min<size_t>(
          universe - used, 1 + rng() % (rng() % 4 == 0 ? 400 : 20));
      std::vector<uint32_t> added = TakeSorted(order, used, batch);
      // Usually the newest version, sometimes an older one (rows it lacks:
      // any not used yet are fresh for every version).
      const size_t from = rng() % 5 == 0 ? rng() % versions.size()
                                         : versions.size() - 1;
      auto next = versions[from].first->With(added);
      std::set<uint32_t> model = versions[from].second;
      model.insert(added.begin(), added.end());
      versions.push_back({next, std::move(model)});
    }
    for (const auto& [rows, model] : versions) {
      ExpectSame(*rows, model, universe + 2);
    }
  }
}

TEST(DeletedRowsTest, LevelsStayLogarithmicAndRowsAreCopiedFewTimes) {
  auto rows = std::make_shared<const DeletedRows>(std::vector<uint32_t>{});
  size_t max_levels = 0;
  for (uint32_t batch = 0; batch < 4096; ++batch) {
    std::vector<uint32_t> added;
    for (uint32_t i = 0; i < 10; ++i) added.push_back(i * 4096 + batch);
    rows = rows->With(std::move(added));
    max_levels = std::max(max_levels, rows->levels());
  }
  EXPECT_EQ(rows->size(), 40960u);
  // log2(40960 / 10) + 1 = 13.
  EXPECT_LE(max_levels, 13u);
  EXPECT_GE(max_levels, 2u);
}

// Levels of at least kBitmapLevelRows rows answer Contains from a bitmap
// built on first use, shared by the sets holding the level, and built once
// when threads ask at the same time; smaller levels are searched.
TEST(DeletedRowsTest, LargeLevelsAnswerFromSharedBitmaps) {
  std::mt19937 rng(7);
  const uint32_t universe = 5 * DeletedRows::kBitmapLevelRows;
  std::vector<uint32_t> order(universe);
  for (uint32_t i = 0; i < universe; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  std::set<uint32_t> model;
  auto take = [&](size_t from, size_t n) {
    std::vector<uint32_t> rows(order.begin() + from, order.begin() + from + n);
    std::sort(rows.begin(), rows.end());
    model.insert(rows.begin(), rows.end());
    return rows;
  };
  // A big first level, then small ones that stay apart from it.
  auto big = std::make_shared<const DeletedRows>(
      take(0, 2 * DeletedRows::kBitmapLevelRows));
  std::shared_ptr<const DeletedRows> rows = big;
  size_t next = 2 * DeletedRows::kBitmapLevelRows;
  for (int i = 0; i < 5; ++i) {
    rows = rows->With(take(next, 100));
    next += 100;
  }
  ASSERT_GE(rows->levels(), 2u);
  const size_t bytes_before = rows->bytes();
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint32_t row = t; row < universe; row += 4) {
        wrong[t] += rows->Contains(row) != model.contains(row);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong, std::vector<int>(4, 0));
  EXPECT_GT(rows->bytes(), bytes_before);  // the big level's bitmap
  // The earlier set shares the level, and so its bitmap.
  EXPECT_GT(big->bytes(), 2 * DeletedRows::kBitmapLevelRows * 4);
  // Rows past the last one deleted (past the bitmap's words) are not in it.
  for (uint32_t row = universe; row < 2 * universe; ++row) {
    ASSERT_FALSE(rows->Contains(row)) << row;
  }
  ExpectSame(*rows, model, universe);
  // A batch large enough to fold into the big level (whose bitmap is
  // built): the folded level gets a bitmap of its own.
  const std::set<uint32_t> model_before_fold = model;
  std::shared_ptr<const DeletedRows> folded =
      rows->With(take(next, 2 * DeletedRows::kBitmapLevelRows));
  next += 2 * DeletedRows::kBitmapLevelRows;
  EXPECT_EQ(folded->levels(), 1u);
  ExpectSame(*folded, model, universe);
  // The set before the fold still answers from its own levels.
  ExpectSame(*rows, model_before_fold, universe);
  // A branch from the first set, whose bitmap was built by the queries above.
  std::set<uint32_t> branch_model(model_before_fold.begin(),
                                  model_before_fold.end());
  std::vector<uint32_t> branch_rows;
  for (uint32_t row : model_before_fold) {
    if (big->Contains(row)) continue;
    branch_rows.push_back(row);
  }
  for (uint32_t row : branch_rows) branch_model.erase(row);
  std::vector<uint32_t> extra = take(next, 1000);
  for (uint32_t row : extra) branch_model.insert(row);
  std::shared_ptr<const DeletedRows> branch = big->With(extra);
  ExpectSame(*branch, branch_model, universe);
}

TEST(DeletedRowsTest, TheEmptySetAndANullCursor) {
  DeletedRows none(std::vector<uint32_t>{});
  EXPECT_EQ(none.size(), 0u);
  EXPECT_FALSE(none.Contains(0));
  EXPECT_EQ(none.Rank(UINT32_MAX), 0u);
  EXPECT_EQ(none.levels(), 0u);
  DeletedRows::Cursor null_cursor(nullptr);
  EXPECT_FALSE(null_cursor.Contains(0));
  EXPECT_FALSE(null_cursor.Contains(UINT32_MAX));
  DeletedRows top(std::vector<uint32_t>{UINT32_MAX - 1, UINT32_MAX});
  DeletedRows::Cursor cursor(&top);
  EXPECT_FALSE(cursor.Contains(5));
  EXPECT_TRUE(cursor.Contains(UINT32_MAX - 1));
  EXPECT_TRUE(cursor.Contains(UINT32_MAX));
  // The filters of small levels hash row + 1: the last row too.
  EXPECT_TRUE(top.Contains(UINT32_MAX));
  EXPECT_TRUE(top.Contains(UINT32_MAX - 1));
  EXPECT_FALSE(top.Contains(UINT32_MAX - 2));
}

// Levels under kBitmapLevelRows answer through a Bloom filter first, up
// to its largest size (2^19 bits): runs of neighbouring rows, as a
// rewritten bucket deletes them, and scattered rows, each row around
// them answered exactly.
TEST(DeletedRowsTest, SmallLevelFiltersNeverMissARow) {
  for (uint32_t size : {1u, 63u, 3000u, 9000u,
                        uint32_t{DeletedRows::kBitmapLevelRows} - 1}) {
    for (uint32_t stride : {1u, 7u}) {
      SCOPED_TRACE(absl::StrCat("size ", size, " stride ", stride));
      std::vector<uint32_t> rows;
      for (uint32_t i = 0; i < size; ++i) rows.push_back(1000 + i * stride);
      DeletedRows set(rows);
      ASSERT_EQ(set.levels(), 1u);
      const uint32_t end = 1000 + size * stride + 1000;
      size_t found = 0;
      for (uint32_t row = 0; row < end; ++row) {
        const bool in = row >= 1000 && (row - 1000) % stride == 0 &&
                        (row - 1000) / stride < size;
        ASSERT_EQ(set.Contains(row), in) << "row " << row;
        found += in;
      }
      EXPECT_EQ(found, size);
    }
  }
}

// The large levels share one bitmap, which a write keeps while it folds
// none of them. Random histories of small and large batches, branching
// from older sets, with bitmaps built (by Contains) at random points:
// a kept bitmap must hold exactly the new set's large levels.
TEST(DeletedRowsTest, LargeLevelsBitmapIsKeptOnlyWhileTheyStay) {
  constexpr uint32_t kLarge = DeletedRows::kBitmapLevelRows;
  std::mt19937 rng(20261207);
  for (int history = 0; history < 6; ++history) {
    SCOPED_TRACE(absl::StrCat("history ", history));
    const uint32_t universe = 8 * kLarge + rng() % kLarge;
    std::vector<uint32_t> order(universe);
    for (uint32_t i = 0; i < universe; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<std::pair<std::shared_ptr<const DeletedRows>,
                          std::set<uint32_t>>> versions;
    versions.push_back(
        {std::make_shared<const DeletedRows>(std::vector<uint32_t>{}), {}});
    size_t used = 0;
    while (used < universe * 3 / 4) {
      const uint32_t pick = rng() % 8;
      const size_t batch = std::min<size_t>(
          universe - used, pick == 0   ? kLarge + rng() % kLarge
                           : pick == 1 ? kLarge / 2 + rng() % kLarge
                                       : 1 + rng() % 2000);
      std::vector<uint32_t> added = TakeSorted(order, used, batch);
      const size_t from = rng() % 4 == 0 ? rng() % versions.size()
                                         : versions.size() - 1;
      // Build the bitmap of the set written to, or of a random one, first.
      for (uint32_t probe = 0; probe < 16; ++probe) {
        const auto& [rows, model] =
            versions[rng() % 2 == 0 ? from : rng() % versions.size()];
        const uint32_t row = order[rng() % used];
        ASSERT_EQ(rows->Contains(row), model.contains(row)) << row;
      }
      auto next = versions[from].first->With(added);
      std::set<uint32_t> model = versions[from].second;
      model.insert(added.begin(), added.end());
      versions.push_back({next, std::move(model)});
    }
    for (const auto& [rows, model] : versions) {
      size_t wrong = 0;
      for (uint32_t row = 0; row < universe; ++row) {
        wrong += rows->Contains(row) != model.contains(row);
      }
      ASSERT_EQ(wrong, 0u) << rows->levels() << " levels";
    }
    ExpectSame(*versions.back().first, versions.back().second, universe);
  }
}

// The three cases of a write to a set whose large levels' bitmap is
// built: a small level keeps the bitmap, a fold into the large levels and
// a new large level each get a new one.
TEST(DeletedRowsTest, LargeLevelsBitmapAfterEachKindOfWrite) {
  constexpr uint32_t kLarge = DeletedRows::kBitmapLevelRows;
  // A small write after a built bitmap keeps it: the new set holds the
  // bitmap's bytes before any query of its own.
  std::vector<uint32_t> big;
  for (uint32_t row = 0; row < 4 * kLarge; row += 2) big.push_back(row);
  auto rows = std::make_shared<const DeletedRows>(big);
  ASSERT_TRUE(rows->Contains(0));
  const size_t bitmap_bytes = 4 * kLarge / 8;
  auto kept = rows->With({1, 3, 5});
  EXPECT_GE(kept->bytes(), big.size() * 4 + bitmap_bytes);
  EXPECT_TRUE(kept->Contains(3));
  EXPECT_FALSE(kept->Contains(7));
  EXPECT_TRUE(kept->Contains(4 * kLarge - 2));
  // A write folded into the large level gets a bitmap of its own, built
  // on first use: none yet.
  std::vector<uint32_t> many;
  for (uint32_t row = 1; row < 4 * kLarge; row += 2) many.push_back(row);
  auto folded = rows->With(many);
  EXPECT_EQ(folded->levels(), 1u);
  EXPECT_LT(folded->bytes(), (big.size() + many.size()) * 4 + bitmap_bytes);
  EXPECT_TRUE(folded->Contains(7));
  EXPECT_FALSE(folded->Contains(4 * kLarge + 1));
  // A large write that folds nothing (the level before is more than twice
  // its size) adds a large level: the bitmap then must cover it too.
  std::vector<uint32_t> wide;
  for (uint32_t row = 0; row < 6 * kLarge; row += 2) wide.push_back(row);
  auto three = std::make_shared<const DeletedRows>(wide);
  ASSERT_TRUE(three->Contains(0));  // its bitmap built
  std::vector<uint32_t> beyond;
  for (uint32_t row = 0; row < kLarge; ++row) beyond.push_back(8 * kLarge + row);
  auto added = three->With(beyond);
  ASSERT_EQ(added->levels(), 2u);
  EXPECT_TRUE(added->Contains(8 * kLarge));
  EXPECT_TRUE(added->Contains(9 * kLarge - 1));
  EXPECT_TRUE(added->Contains(2));
  EXPECT_FALSE(added->Contains(3));
  EXPECT_FALSE(three->Contains(8 * kLarge));
  // Exactly sized: the derived bitmap's words, not a grown vector's.
  EXPECT_LE(added->bytes(), (wide.size() + beyond.size()) * 4 +
                                (9 * kLarge / 64 + 1) * 8 +
                                wide.size() / 8);

  // A fold into the newer of two large levels, the older one staying,
  // with a small level folded in too: the new bitmap starts from the old
  // one and adds the small level and the batch. Threads ask at once.
  std::vector<uint32_t> oldest;  // 12 x kLarge rows: 0, 2, 4, ...
  for (uint32_t row = 0; row < 24 * kLarge; row += 2) oldest.push_back(row);
  std::set<uint32_t> model(oldest.begin(), oldest.end());
  auto two = std::make_shared<const DeletedRows>(oldest);
  std::vector<uint32_t> newer;  // 2 x kLarge rows: 1, 5, 9, ...
  for (uint32_t row = 1; row < 16 * kLarge; row += 8) newer.push_back(row);
  model.insert(newer.begin(), newer.end());
  two = two->With(newer);
  std::vector<uint32_t> small;  // under kLarge / 2 rows: 3, 35, ...
  for (uint32_t row = 3; row < 16 * kLarge * 2 / 3; row += 32) {
    small.push_back(row);
  }
  model.insert(small.begin(), small.end());
  two = two->With(small);
  ASSERT_EQ(two->levels(), 3u);
  ASSERT_TRUE(two->Contains(0));  // its bitmap built
  std::vector<uint32_t> batch;  // 2 x kLarge rows past every other
  for (uint32_t row = 0; row < 2 * kLarge; ++row) {
    batch.push_back(24 * kLarge + 1 + 2 * row);
  }
  model.insert(batch.begin(), batch.end());
  auto folded_newer = two->With(batch);
  ASSERT_EQ(folded_newer->levels(), 2u);
  std::vector<size_t> wrong(4, 0);
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint32_t row = t; row < 30 * kLarge; row += 4) {
        wrong[t] += folded_newer->Contains(row) != model.contains(row);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong, std::vector<size_t>(4, 0));
}

// A sort key for the cache tests: many ties, broken by row.
uint64_t TestKey(uint32_t row) { return (uint64_t{row} * 2654435761u) % 97; }

// Checks that `runs` hold, per level of `rows`, that level's rows keyed by
// TestKey, in (key, row) order.
void ExpectRuns(const DeletedRowCache::OrderRuns& runs,
                const DeletedRows& rows) {
  ASSERT_EQ(runs.size(), rows.levels());
  for (size_t i = 0; i < runs.size(); ++i) {
    DeletedRowCache::OrderKeys want;
    for (uint32_t row : *rows.level_rows()[i]) want.push_back({TestKey(row), row});
    std::sort(want.begin(), want.end());
    EXPECT_EQ(*runs[i], want) << i;
  }
}

// Rows [0, n) in a random order.
std::vector<uint32_t> ShuffledRows(uint32_t n, uint32_t seed) {
  std::vector<uint32_t> order(n);
  for (uint32_t i = 0; i < n; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(seed));
  return order;
}

// The cache tests' state: a key function (TestKey) that counts its calls,
// rows to take deleted ones from, and a cache with its first list.
class DeletedRowCacheTest : public ::testing::Test {
 protected:
  // Rows [0, universe) to take from, shuffled by `seed`; `rows` the list
  // of the first `first` of them, and `cache` an empty cache.
  void Start(uint32_t universe, uint32_t seed, size_t first) {
    order_ = ShuffledRows(universe, seed);
    rows = std::make_shared<const DeletedRows>(Take(first));
  }
  // The next `count` rows of the shuffled order, sorted.
  std::vector<uint32_t> Take(size_t count) {
    return TakeSorted(order_, used_, count);
  }

  size_t calls = 0;  // of key_of
  std::function<uint64_t(uint32_t)> key_of = [this](uint32_t row) {
    ++calls;
    return TestKey(row);
  };
  InfluencerColumns columns;  // Extend reads it only for predicate counts
  std::shared_ptr<DeletedRowCache> cache = std::make_shared<DeletedRowCache>();
  std::shared_ptr<const DeletedRows> rows;

 private:
  std::vector<uint32_t> order_;
  size_t used_ = 0;
};

// DeletedRowCache::KeysInOrder: one sorted run of keys per level of the
// list; levels are keyed within the limit, smallest first, kept per order,
// and carried by Extend, so that a write's rows are keyed once.
TEST_F(DeletedRowCacheTest, KeysInOrderAreKeyedPerLevelAndCarried) {
  Start(200000, 7, 100);

  EXPECT_EQ(cache->KeysInOrder("a", *rows, key_of, 99), nullptr);
  EXPECT_EQ(calls, 0u);
  auto a = cache->KeysInOrder("a", *rows, key_of, 100);
  ASSERT_NE(a, nullptr);
  ExpectRuns(*a, *rows);
  EXPECT_EQ(calls, 100u);
  EXPECT_EQ(cache->KeysInOrder("a", *rows, key_of, 0), a);  // kept
  EXPECT_EQ(calls, 100u);
  EXPECT_EQ(cache->KeysInOrder("b", *rows, key_of, 0), nullptr);

  // Writes of 30 rows, then 10 (a level of its own each: the 100-row level
  // is more than twice as large), with no query between: only their rows
  // are keyed.
  for (size_t batch : {30, 10}) {
    std::vector<uint32_t> added = Take(batch);
    rows = rows->With(added);
    cache = cache->Extend(columns, added, *rows);
  }
  ASSERT_EQ(rows->levels(), 3u);
  calls = 0;
  a = cache->KeysInOrder("a", *rows, key_of, 40);
  ASSERT_NE(a, nullptr);
  ExpectRuns(*a, *rows);
  EXPECT_EQ(calls, 40u);

  // A write that folds levels: the level they fold into reuses their keys
  // and keys only the write's rows; a limit too small for those leaves the
  // keys unbuilt.
  std::vector<uint32_t> added = Take(40);
  rows = rows->With(added);
  cache = cache->Extend(columns, added, *rows);
  ASSERT_EQ(rows->levels(), 1u);
  calls = 0;
  EXPECT_EQ(cache->KeysInOrder("a", *rows, key_of, 39), nullptr);
  a = cache->KeysInOrder("a", *rows, key_of, rows->size());
  ASSERT_NE(a, nullptr);
  ExpectRuns(*a, *rows);
  EXPECT_EQ(calls, 40u);

  // Past kOrders orders, the least recently used one is dropped.
  for (const char* name : {"b", "c", "d"}) {
    ASSERT_NE(cache->KeysInOrder(name, *rows, key_of, rows->size()), nullptr);
  }
  EXPECT_EQ(cache->KeysInOrder("a", *rows, key_of, 0), a);  // used: kept
  ASSERT_NE(cache->KeysInOrder("e", *rows, key_of, rows->size()), nullptr);
  EXPECT_EQ(cache->KeysInOrder("b", *rows, key_of, 0), nullptr);  // dropped
  EXPECT_EQ(cache->KeysInOrder("a", *rows, key_of, 0), a);
}

// Two writes made from one list (versions that diverge, as a replaced
// batch's does): each cache keys only its own write's rows, reuses the
// shared list's keys, and leaves the first cache's keys as they were;
// bytes() counts the keys and the bitmap.
TEST_F(DeletedRowCacheTest, DivergentWritesShareTheKeysOfTheirCommonList) {
  Start(10000, 11, 100);
  EXPECT_EQ(cache->bytes(), 0u);
  auto keys = cache->KeysInOrder("a", *rows, key_of, rows->size());
  ASSERT_NE(keys, nullptr);
  EXPECT_GE(cache->bytes(), 100 * sizeof(DeletedRowCache::OrderKeys::value_type));
  const size_t keys_bytes = cache->bytes();
  cache->Bitmap(*rows, 10000);
  EXPECT_GE(cache->bytes(), keys_bytes + 10000 / 8);

  // Each write folds into one level with the shared list's rows.
  const std::vector<uint32_t> a = Take(60);
  const std::vector<uint32_t> b = Take(70);
  auto rows_a = rows->With(a);
  auto rows_b = rows->With(b);
  auto cache_a = cache->Extend(columns, a, *rows_a);
  auto cache_b = cache->Extend(columns, b, *rows_b);
  calls = 0;
  auto keys_b = cache_b->KeysInOrder("a", *rows_b, key_of, 70);
  ASSERT_NE(keys_b, nullptr);
  ExpectRuns(*keys_b, *rows_b);
  EXPECT_EQ(calls, 70u);
  calls = 0;
  auto keys_a = cache_a->KeysInOrder("a", *rows_a, key_of, 60);
  ASSERT_NE(keys_a, nullptr);
  ExpectRuns(*keys_a, *rows_a);
  EXPECT_EQ(calls, 60u);
  // The shared list's keys are still there: none keyed again.
  calls = 0;
  auto keys_again = cache->KeysInOrder("a", *rows, key_of, 0);
  ASSERT_NE(keys_again, nullptr);
  ExpectRuns(*keys_again, *rows);
  EXPECT_EQ(calls, 0u);
  ExpectRuns(*keys, *rows);
}


// Keys a query builds on a list's cache after a write has extended it
// (the query read the version before the write) serve the newer list too:
// the caches share a shelf, so only the write's rows are keyed again.
TEST_F(DeletedRowCacheTest, KeysBuiltOnAnOlderListServeTheNewerOne) {
  Start(10000, 5, 1000);
  const std::vector<uint32_t> added = Take(30);
  auto newer_rows = rows->With(added);
  auto newer = cache->Extend(columns, added, *newer_rows);
  ASSERT_EQ(newer_rows->levels(), 2u);
  auto old_keys = cache->KeysInOrder("a", *rows, key_of, rows->size());
  ASSERT_NE(old_keys, nullptr);
  ExpectRuns(*old_keys, *rows);
  EXPECT_EQ(calls, 1000u);
  calls = 0;
  auto keys = newer->KeysInOrder("a", *newer_rows, key_of, 30);
  ASSERT_NE(keys, nullptr);
  ExpectRuns(*keys, *newer_rows);
  EXPECT_EQ(calls, 30u);

  // Both lists' runs are kept: queries on the version before the write
  // and on the one after take turns without keying or copying.
  EXPECT_EQ(cache->KeysInOrder("a", *rows, key_of, 0), old_keys);
  EXPECT_EQ(newer->KeysInOrder("a", *newer_rows, key_of, 0), keys);
  EXPECT_EQ(cache->KeysInOrder("a", *rows, key_of, 0), old_keys);
  EXPECT_EQ(calls, 30u);

  // A successor made by With keeps the levels it holds keyed ...
  const size_t key_bytes = sizeof(DeletedRowCache::OrderKeys::value_type);
  const std::vector<uint32_t> more = Take(5);
  auto next_rows = newer_rows->With(more);
  auto next = newer->Extend(columns, more, *next_rows);
  EXPECT_GE(next->bytes(), 1030 * key_bytes);
  calls = 0;
  ASSERT_NE(next->KeysInOrder("a", *next_rows, key_of, 5), nullptr);
  EXPECT_EQ(calls, 5u);
  // ... and a list that neither holds a keyed level nor could have folded
  // it drops its keys (the two lists' kept runs hold them until replaced).
  const size_t with_all = next->bytes();
  auto other_rows = std::make_shared<const DeletedRows>(Take(5));
  auto other = next->Extend(columns, {}, *other_rows);
  EXPECT_LE(other->bytes() + 1030 * key_bytes, with_all);
}

// A chain of folds: each folded level holds the one keyed before it, which
// holds the one before that; only each write's rows are keyed.
TEST_F(DeletedRowCacheTest, FoldsOfFoldedLevelsKeyOnlyTheWritesRows) {
  Start(20000, 13, 100);
  ASSERT_NE(cache->KeysInOrder("a", *rows, key_of, 100), nullptr);
  size_t expected_levels = 1;
  for (size_t batch : {60, 100, 200, 400, 50, 30}) {
    std::vector<uint32_t> added = Take(batch);
    rows = rows->With(added);
    cache = cache->Extend(columns, added, *rows);
    calls = 0;
    auto keys = cache->KeysInOrder("a", *rows, key_of, batch);
    ASSERT_NE(keys, nullptr) << "after the write of " << batch;
    ExpectRuns(*keys, *rows);
    EXPECT_EQ(calls, batch);
    expected_levels = rows->levels();
    EXPECT_EQ(keys->size(), expected_levels);
  }
  EXPECT_GE(expected_levels, 2u);
}

// A list too large for any one call's limit is keyed once the calls that
// read positions instead have earned the credit (kPositionsPerKey
// positions a row), and the keying uses the credit up.
TEST_F(DeletedRowCacheTest, PositionsReadInsteadEarnTheKeysCredit) {
  Start(10000, 9, 1000);
  const size_t per_call = 250 * DeletedRowCache::kPositionsPerKey;
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(cache->KeysInOrder("a", *rows, key_of, 0, per_call), nullptr)
        << "call " << i;
  }
  EXPECT_EQ(calls, 0u);
  auto keys = cache->KeysInOrder("a", *rows, key_of, 0, per_call);
  ASSERT_NE(keys, nullptr);
  ExpectRuns(*keys, *rows);
  EXPECT_EQ(calls, 1000u);
  // Each order earns its own credit: "c" holds some, "b" has none.
  EXPECT_EQ(cache->KeysInOrder("c", *rows, key_of, 0, 4 * per_call),
            nullptr);
  EXPECT_EQ(cache->KeysInOrder("b", *rows, key_of, 0), nullptr);
  EXPECT_EQ(calls, 1000u);

  // The credit is used up: the next write's rows need a limit again.
  const std::vector<uint32_t> added = Take(10);
  rows = rows->With(added);
  cache = cache->Extend(columns, added, *rows);
  calls = 0;
  EXPECT_EQ(cache->KeysInOrder("a", *rows, key_of, 9), nullptr);
  keys = cache->KeysInOrder("a", *rows, key_of, 10);
  ASSERT_NE(keys, nullptr);
  ExpectRuns(*keys, *rows);
  EXPECT_EQ(calls, 10u);
}

}  // namespace
}  // namespace clout
