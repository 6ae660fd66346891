// TimeIndex against brute force over jobs large enough to have many whole
// blocks, stored in time order (identity), shuffled (a permutation) and
// in time order but for a tail (the tail's order and marks), with many
// equal timestamps and scores so windows and thresholds cut through ties.
#include "engine/time_index.h"

#include <cstdlib>
#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "engine/executor.h"
#include "engine/store.h"
#include "gtest/gtest.h"

namespace clout {
namespace {

// How MakeJob stores the rows: in time order, shuffled, or in time order
// but for a tail of up to seven eighths of them in any order (as a job
// merged after updates keeps them).
enum class Layout { kOrdered, kShuffled, kOrderedWithTail };

std::shared_ptr<const JobResults> MakeJob(std::mt19937_64& random, int rows,
                                          Layout layout) {
  std::vector<InfluencerFields> pending;
  std::vector<std::string> values(rows);  // InfluencerFields holds views
  for (int r = 0; r < rows; ++r) {
    InfluencerFields row;
    row.field_name = "host";
    values[r] = "h" + std::to_string(r);  // distinct: no upserts
    row.field_value = values[r];
    row.timestamp = 1000 * static_cast<int64_t>(random() % 50);
    row.influencer_score = static_cast<double>(random() % 40) / 2;
    row.bucket_span = 600;
    row.is_interim = random() % 10 == 0;
    pending.push_back(row);
  }
  if (layout != Layout::kShuffled) {
    const int tail = layout == Layout::kOrderedWithTail
                         ? static_cast<int>(random() % (rows * 7 / 8 + 1))
                         : 0;
    std::stable_sort(pending.begin(), pending.end() - tail,
                     [](const auto& a, const auto& b) {
                       return a.timestamp < b.timestamp;
                     });
  }
  InfluencerStore store;
  MutationBatch batch;
  for (const InfluencerFields& row : pending) batch.AddInfluencer("j", row);
  if (!store.Apply(std::move(batch)).ok()) std::abort();
  return store.Current()->jobs.at("j");
}

RowOrder ScoreDescOrder(const JobResults& job) {
  RowOrder order(job.size());
  for (size_t r = 0; r < order.size(); ++r) order[r] = static_cast<uint32_t>(r);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return job.columns.influencer_score[a] > job.columns.influencer_score[b];
  });
  return order;
}

TEST(TimeIndexTest, MatchesBruteForce) {
  int with_tail_list = 0;  // jobs whose index kept the tail's order alone
  // The last three jobs (one per layout) have more than 2^16 rows: the
  // index's entries take 3 bytes there, 2 in the others.
  for (int seed = 0; seed < 21; ++seed) {
    std::mt19937_64 random(seed);
    const Layout layout = static_cast<Layout>(seed % 3);
    const int rows = (seed < 18 ? 1 : 66000) + static_cast<int>(random() % 5000);
    std::shared_ptr<const JobResults> job = MakeJob(random, rows, layout);
    const InfluencerColumns& c = job->columns;
    RowOrder score_order = ScoreDescOrder(*job);
    ASSERT_EQ(job->size(), static_cast<size_t>(rows));
    TimeIndex index(*job, score_order);
    const bool sorted = std::is_sorted(c.timestamp.begin(), c.timestamp.end());
    ASSERT_EQ(index.identity(), sorted) << seed;
    ASSERT_EQ(index.size(), job->size());
    with_tail_list += !sorted && index.order().empty();
    // The time order is (timestamp, row) order: strictly ascending pairs
    // of rows of the job, so every row once.
    for (size_t p = 0; p < index.size(); ++p) {
      ASSERT_LT(index.RowAt(p), job->size()) << seed;
    }
    for (size_t p = 1; p < index.size(); ++p) {
      uint32_t a = index.RowAt(p - 1);
      uint32_t b = index.RowAt(p);
      ASSERT_TRUE(c.timestamp[a] < c.timestamp[b] ||
                  (c.timestamp[a] == c.timestamp[b] && a < b))
          << seed << " " << p;
    }
    for (int q = 0; q < 200; ++q) {
      std::optional<int64_t> start;
      std::optional<int64_t> end;
      if (random() % 4) start = 1000 * static_cast<int64_t>(random() % 52) - 1 + random() % 3;
      if (random() % 4) end = 1000 * static_cast<int64_t>(random() % 52) - 1 + random() % 3;
      const double t = static_cast<double>(random() % 42) / 2;
      auto [first, last] = index.Window(*job, start, end);
      size_t in_window = 0;
      size_t scoring = 0;
      size_t interim = 0;
      for (size_t r = 0; r < job->size(); ++r) {
        const int64_t ts = c.timestamp[r];
        if ((start && ts < *start) || (end && ts >= *end)) continue;
        ++in_window;
        scoring += c.influencer_score[r] >= t;
        interim += c.is_interim[r];
      }
      ASSERT_EQ(last - first, in_window) << seed;
      const size_t rank_limit = static_cast<size_t>(
          std::count_if(c.influencer_score.begin(), c.influencer_score.end(),
                        [&](double s) { return s >= t; }));
      ASSERT_EQ(index.CountTopRanks(*job, first, last, rank_limit, t), scoring)
          << "seed " << seed << " t " << t;
      auto [lo, hi] = index.InterimPositions(first, last);
      ASSERT_EQ(static_cast<size_t>(hi - lo), interim);
      for (const uint32_t* p = lo; p != hi; ++p) {
        ASSERT_TRUE(c.is_interim[index.RowAt(*p)]);
      }
    }
  }
  EXPECT_GE(with_tail_list, 4);  // of the 7 jobs with a tail
}

TEST(TimeIndexTest, IdentityTakesNoOrderMemory) {
  std::mt19937_64 random(1);
  std::shared_ptr<const JobResults> ordered =
      MakeJob(random, 4096, Layout::kOrdered);
  std::shared_ptr<const JobResults> shuffled =
      MakeJob(random, 4096, Layout::kShuffled);
  TimeIndex a(*ordered, ScoreDescOrder(*ordered));
  TimeIndex b(*shuffled, ScoreDescOrder(*shuffled));
  // Block ranks (2 B per row in a job this small) and interim positions.
  EXPECT_LT(a.bytes(), 4096 * 3);
  EXPECT_GE(a.bytes(), 4096 * 2);
  EXPECT_GE(b.bytes(), 4096 * 4);  // plus the time order
  EXPECT_LT(b.bytes(), 4096 * 5);
}

// A job in time order but for a tail keeps the tail's order and a bit per
// position, not the whole time order: 2 B per tail row (in a job this
// small) and 0.25 per row.
TEST(TimeIndexTest, ATailTakesOrderMemoryForItsRowsOnly) {
  std::mt19937_64 random(3);
  for (int tail : {1, 64, 1000, 3500}) {
    std::vector<InfluencerFields> pending;
    std::vector<std::string> values(4096);
    for (int r = 0; r < 4096; ++r) {
      InfluencerFields row;
      row.field_name = "host";
      values[r] = "h" + std::to_string(r);
      row.field_value = values[r];
      // The tail's first row goes back to the start: the tail is exactly
      // `tail` rows.
      row.timestamp = r < 4096 - tail   ? 1000 * static_cast<int64_t>(r / 3)
                      : r == 4096 - tail ? 0
                                         : 1000 * static_cast<int64_t>(random() % 1400);
      row.influencer_score = static_cast<double>(r % 7);
      pending.push_back(row);
    }
    InfluencerStore store;
    MutationBatch batch;
    for (const InfluencerFields& row : pending) batch.AddInfluencer("j", row);
    ASSERT_TRUE(store.Apply(std::move(batch)).ok());
    std::shared_ptr<const JobResults> job = store.Current()->jobs.at("j");
    const TimeIndex index(*job, ScoreDescOrder(*job));
    ASSERT_FALSE(index.identity()) << tail;
    EXPECT_TRUE(index.order().empty()) << tail;
    EXPECT_EQ(index.ordered_rows(), 4096u - tail);
    EXPECT_EQ(index.tail_order().size(), static_cast<size_t>(tail)) << tail;
    // Block ranks, the tail's order, the marks, the blocks' least ranks.
    EXPECT_LE(index.bytes(), 4096 * 2 + tail * 2 + 4096 / 4 + 64 * 4 + 4)
        << tail;
  }
}

TEST(TimeIndexTest, OrderedRowsIsTheLongestPrefixInTimeOrder) {
  std::mt19937_64 random(2);
  for (bool time_ordered : {true, false}) {
    std::shared_ptr<const JobResults> job = MakeJob(
        random, 3000, time_ordered ? Layout::kOrdered : Layout::kShuffled);
    const TimeIndex index(*job, ScoreDescOrder(*job));
    const auto& ts = job->columns.timestamp;
    size_t prefix = 1;
    while (prefix < ts.size() && ts[prefix - 1] <= ts[prefix]) ++prefix;
    EXPECT_EQ(index.ordered_rows(), prefix);
    EXPECT_EQ(index.identity(), prefix == ts.size());
    if (!time_ordered) EXPECT_LT(prefix, ts.size());
  }
  // A long ordered prefix, equal timestamps where it ends, then a row
  // that goes back in time: the prefix ends before that row.
  InfluencerStore store;
  MutationBatch batch;
  std::vector<std::string> values;
  for (int r = 0; r < 1000; ++r) values.push_back("h" + std::to_string(r));
  for (int r = 0; r < 1000; ++r) {
    InfluencerFields row;
    row.field_name = "host";
    row.field_value = values[r];
    row.timestamp = r < 900 ? 1000 * static_cast<int64_t>(std::min(r, 800))
                            : 1000 * static_cast<int64_t>(r % 50);
    row.bucket_span = 600;
    batch.AddInfluencer("j", row);
  }
  ASSERT_TRUE(store.Apply(std::move(batch)).ok());
  std::shared_ptr<const JobResults> job = store.Current()->jobs.at("j");
  const TimeIndex index(*job, ScoreDescOrder(*job));
  EXPECT_EQ(index.ordered_rows(), 900u);
  EXPECT_FALSE(index.identity());
}

// tail_order() lists the rows after the ordered prefix in (timestamp, row)
// order when they are at most seven eighths of the job, and TailWindow finds a
// window's among them; against a brute force.
TEST(TimeIndexTest, TailOrderHoldsTheRowsAfterTheOrderedOnes) {
  for (int tail : {0, 1, 100, 250, 875, 876}) {
    InfluencerStore store;
    MutationBatch batch;
    std::vector<std::string> values;
    for (int r = 0; r < 1000; ++r) values.push_back("h" + std::to_string(r));
    const int ordered = 1000 - tail;
    for (int r = 0; r < 1000; ++r) {
      InfluencerFields row;
      row.field_name = "host";
      row.field_value = values[r];
      // The ordered rows' timestamps repeat in pairs; the tail's go back
      // to any of them, or past them, the first to the start (so that the
      // tail is exactly `tail` rows).
      row.timestamp = r < ordered    ? 1000 * static_cast<int64_t>(r / 2)
                      : r == ordered ? -1000
                                     : 1000 * static_cast<int64_t>((r * 37) % 520);
      row.bucket_span = 600;
      batch.AddInfluencer("j", row);
    }
    ASSERT_TRUE(store.Apply(std::move(batch)).ok());
    std::shared_ptr<const JobResults> job = store.Current()->jobs.at("j");
    const TimeIndex index(*job, ScoreDescOrder(*job));
    const auto& ts = job->columns.timestamp;
    std::vector<uint32_t> expected;
    if (index.ordered_rows() < 1000 && 1000 - index.ordered_rows() <= 875) {
      for (uint32_t r = static_cast<uint32_t>(index.ordered_rows()); r < 1000;
           ++r) {
        expected.push_back(r);
      }
      std::stable_sort(expected.begin(), expected.end(),
                       [&](uint32_t a, uint32_t b) { return ts[a] < ts[b]; });
    }
    EXPECT_EQ(index.tail_order().ToVector(), expected) << tail;
    EXPECT_EQ(index.ordered_rows(), static_cast<size_t>(1000 - tail));
    EXPECT_EQ(!expected.empty(), tail > 0 && tail <= 875) << tail;
    for (std::optional<int64_t> start :
         {std::optional<int64_t>(), std::optional<int64_t>(0),
          std::optional<int64_t>(37000), std::optional<int64_t>(37001),
          std::optional<int64_t>(600000)}) {
      for (std::optional<int64_t> end :
           {std::optional<int64_t>(), std::optional<int64_t>(0),
            std::optional<int64_t>(37000), std::optional<int64_t>(200000),
            std::optional<int64_t>(519000)}) {
        std::vector<uint32_t> want;
        for (uint32_t r : expected) {
          if ((!start || ts[r] >= *start) && (!end || ts[r] < *end)) {
            want.push_back(r);
          }
        }
        const auto [first, last] = index.TailWindow(*job, start, end);
        const std::vector<uint32_t> tail_rows = index.tail_order().ToVector();
        ASSERT_LE(first, last);
        ASSERT_LE(last, tail_rows.size());
        EXPECT_EQ(std::vector<uint32_t>(tail_rows.begin() + first,
                                        tail_rows.begin() + last),
                  want)
            << tail << " " << start.value_or(-1) << " " << end.value_or(-1);
      }
    }
  }
}

TEST(TimeIndexTest, WarmIndexesBuildsOnceAndReportsBytes) {
  std::mt19937_64 random(2);
  std::shared_ptr<const JobResults> job = MakeJob(random, 3000, Layout::kOrdered);
  EXPECT_EQ(IndexBytes(*job), 0u);
  WarmIndexes(job);
  const size_t bytes = IndexBytes(*job);
  // The score order (4 B/row) and the block ranks (2 B/row here).
  EXPECT_GE(bytes, 3000u * 6);
  WarmIndexes(job);
  EXPECT_EQ(IndexBytes(*job), bytes);
}

TEST(TimeIndexTest, WarmIndexesOfASnapshotWarmsEveryJob) {
  InfluencerStore store;
  MutationBatch batch;
  std::vector<std::string> values(300);
  for (int r = 0; r < 300; ++r) {
    InfluencerFields row;
    row.field_name = "host";
    values[r] = "h" + std::to_string(r);
    row.field_value = values[r];
    row.timestamp = 1000 * r;
    row.influencer_score = r % 17;
    batch.AddInfluencer("job" + std::to_string(r % 3), row);
  }
  if (!store.Apply(std::move(batch)).ok()) std::abort();
  store.RegisterJob("empty");
  std::shared_ptr<const StoreVersion> snapshot = store.Current();
  for (const auto& [id, job] : snapshot->jobs) EXPECT_EQ(IndexBytes(*job), 0u);
  WarmIndexes(*snapshot, 2);
  for (const auto& [id, job] : snapshot->jobs) {
    // The score order (4 B/row) and the block ranks (2 B/row here).
    EXPECT_GE(IndexBytes(*job), job->size() * 6) << id;
    EXPECT_NE(job->sort_orders->time_index, nullptr) << id;
  }
}

TEST(TimeIndexTest, EmptyJob) {
  InfluencerStore store;
  store.RegisterJob("empty");
  std::shared_ptr<const JobResults> job = store.Current()->jobs.at("empty");
  TimeIndex index(*job, {});
  auto [first, last] = index.Window(*job, int64_t{0}, int64_t{10});
  EXPECT_EQ(first, last);
  EXPECT_EQ(index.CountTopRanks(*job, 0, 0, 0, 1.0), 0u);
}

}  // namespace
}  // namespace clout
