// The read-only view of a job's segments (engine/column_view.h): its live
// rows are the job's rows in ingest order, whatever writes and merges left
// it as, and it keeps them alive on its own.
#include "engine/column_view.h"

#include <algorithm>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/columns.h"
#include "engine/mutation.h"
#include "engine/store.h"
#include "gtest/gtest.h"

namespace clout {
namespace {

InfluencerFields Row(absl::string_view value, int64_t timestamp,
                     double score) {
  InfluencerFields row;
  row.field_name = value.size() % 2 == 0 ? "host" : "user";
  row.field_value = value;
  row.timestamp = timestamp;
  row.bucket_span = 600 + 300 * (timestamp % 2);
  row.influencer_score = score;
  row.is_interim = timestamp % 3 == 0;
  return row;
}

// One live row as the view shows it.
struct Shown {
  std::string name, value;
  int64_t timestamp, span;
  double score;
  bool interim;
  uint32_t version;
  bool operator==(const Shown&) const = default;
};

std::vector<Shown> ThroughView(const JobColumnView& view) {
  std::vector<Shown> rows;
  for (const SegmentColumnView& s : view.segments()) {
    EXPECT_EQ(s.timestamp.size(), s.rows);
    EXPECT_EQ(s.field_value_code.size(), s.rows);
    EXPECT_EQ(s.version.size(), s.rows);
    std::vector<uint32_t> deleted = s.DeletedSorted();
    EXPECT_EQ(deleted.size(), s.deleted_rows);
    for (uint32_t r = 0; r < s.rows; ++r) {
      const bool listed = std::binary_search(deleted.begin(), deleted.end(), r);
      EXPECT_EQ(s.IsDeleted(r), listed);
      if (listed) continue;
      rows.push_back({std::string(s.strings[s.field_name_code[r]]),
                      std::string(s.strings[s.field_value_code[r]]),
                      s.timestamp[r], s.bucket_spans[s.bucket_span_code[r]],
                      s.influencer_score[r], s.is_interim[r] != 0,
                      s.version[r]});
    }
  }
  return rows;
}

std::vector<Shown> ThroughPlainJob(const StoreVersion& version) {
  std::vector<Shown> rows;
  std::shared_ptr<const JobResults> job = version.PlainJob("j");
  for (size_t r = 0; r < job->size(); ++r) {
    const InfluencerColumns& c = job->columns;
    rows.push_back({std::string(job->field_name(r)),
                    std::string(job->field_value(r)), c.timestamp[r],
                    job->bucket_span(r), c.influencer_score[r],
                    c.is_interim[r] != 0, c.version[r]});
  }
  return rows;
}

TEST(ColumnViewTest, UnknownJobHasNoView) {
  InfluencerStore store;
  EXPECT_FALSE(JobColumnView::Of(*store.Current(), "j").has_value());
}

TEST(ColumnViewTest, APlainJobIsOneSegment) {
  InfluencerStore store;
  MutationBatch batch(MutationMode::kLoad);
  for (int i = 0; i < 5; ++i) {
    batch.AddInfluencer("j", Row(std::string(1 + i, 'v'), 1000 + i, i));
  }
  ASSERT_TRUE(store.Apply(std::move(batch)).ok());
  std::optional<JobColumnView> view = JobColumnView::Of(*store.Current(), "j");
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->job_id(), "j");
  EXPECT_EQ(view->size(), 5u);
  ASSERT_EQ(view->segments().size(), 1u);
  EXPECT_EQ(view->segments()[0].deleted_rows, 0u);
  EXPECT_EQ(view->TimestampRange(), std::make_pair(int64_t{1000}, int64_t{1004}));
  EXPECT_EQ(ThroughView(*view), ThroughPlainJob(*store.Current()));
  std::vector<std::string> names(view->field_names().begin(),
                                 view->field_names().end());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"host", "user"}));
}

// Random upserts (some moving rows to the end), deletions at the ends of
// the time order and in the middle, with or without merges: the view's
// live rows are the job's, and its range is theirs.
TEST(ColumnViewTest, LiveRowsAndRangeMatchTheJobAfterRandomWrites) {
  int segmented = 0;
  int with_deleted = 0;
  for (int seed = 0; seed < 60; ++seed) {
    std::mt19937_64 random(seed);
    StoreOptions options;
    options.max_delta_segments = 1 + random() % 6;
    options.merge_growing_deltas = random() % 2 == 0;
    options.merge_ratio = random() % 3 == 0 ? 0.5 : 1e9;
    InfluencerStore store(options);
    // The rows stored, whose views point into `values` (a deque: its
    // strings never move).
    std::vector<InfluencerFields> live;
    std::deque<std::string> values;
    for (int b = 0; b < 12; ++b) {
      MutationBatch batch(b == 0 ? MutationMode::kLoad : MutationMode::kBulk);
      if (b > 0) {
        // Delete the earliest or the latest row of the time-ordered load
        // (while it has any), or any row.
        for (int d = static_cast<int>(random() % 3); d > 0 && !live.empty(); --d) {
          size_t at = random() % live.size();
          if (random() % 2 == 0) {
            const bool latest = random() % 2 == 0;
            for (size_t k = 0; k < live.size(); ++k) {
              const int64_t ts = live[k].timestamp;
              if (ts < 1000) continue;  // not of the load
              if (at >= live.size() || live[at].timestamp < 1000 ||
                  (latest ? ts > live[at].timestamp : ts < live[at].timestamp)) {
                at = k;
              }
            }
          }
          batch.DeleteInfluencer(
              *ParseInfluencerResultId(InfluencerDocumentId("j", live[at])));
          live.erase(live.begin() + at);
        }
      }
      const int n = b == 0 ? 40 : static_cast<int>(random() % 6);
      for (int i = 0; i < n; ++i) {
        // Time order in the first load, at 1000 on; then before it.
        const int64_t ts =
            b == 0 ? 1000 + i : 600 + static_cast<int64_t>(random() % 300);
        values.push_back(absl::StrCat("v", b, "-", i));
        live.push_back(Row(values.back(), ts, random() % 100));
        batch.AddInfluencer("j", live.back());
      }
      ASSERT_TRUE(store.Apply(std::move(batch)).ok());
      store.WaitForMerges();
      std::shared_ptr<const StoreVersion> version = store.Current();
      std::optional<JobColumnView> view = JobColumnView::Of(*version, "j");
      ASSERT_TRUE(view.has_value());
      segmented += view->segments().size() > 1;
      for (const SegmentColumnView& s : view->segments()) {
        with_deleted += s.deleted_rows > 0;
      }
      const std::vector<Shown> expected = ThroughPlainJob(*version);
      ASSERT_EQ(ThroughView(*view), expected) << "seed " << seed;
      ASSERT_EQ(view->size(), live.size()) << "seed " << seed;
      ASSERT_EQ(expected.size(), live.size()) << "seed " << seed;
      std::optional<std::pair<int64_t, int64_t>> range;
      for (const Shown& row : expected) {
        if (!range) range.emplace(row.timestamp, row.timestamp);
        range->first = std::min(range->first, row.timestamp);
        range->second = std::max(range->second, row.timestamp);
      }
      ASSERT_EQ(view->TimestampRange(), range) << "seed " << seed;
    }
  }
  EXPECT_GT(segmented, 200);
  EXPECT_GT(with_deleted, 200);
}

TEST(ColumnViewTest, AJobWhoseRowsAreAllDeletedHasNoRange) {
  StoreOptions options;
  options.merge_ratio = 1e9;
  InfluencerStore store(options);
  std::deque<std::string> values;
  std::vector<InfluencerFields> rows;
  MutationBatch load(MutationMode::kLoad);
  for (int i = 0; i < 10; ++i) {
    values.push_back(absl::StrCat("v", i));
    rows.push_back(Row(values.back(), 1000 + i, i));
    load.AddInfluencer("j", rows.back());
  }
  ASSERT_TRUE(store.Apply(std::move(load)).ok());
  // The ends of the time order first: the range narrows from both sides.
  const std::pair<int, int> steps[] = {{0, 9}, {8, 1}, {2, 3}};
  for (auto [a, b] : steps) {
    MutationBatch batch(MutationMode::kBulk);
    for (int k : {a, b}) {
      batch.DeleteInfluencer(
          *ParseInfluencerResultId(InfluencerDocumentId("j", rows[k])));
    }
    ASSERT_TRUE(store.Apply(std::move(batch)).ok());
  }
  std::optional<JobColumnView> view = JobColumnView::Of(*store.Current(), "j");
  ASSERT_TRUE(view.has_value());
  ASSERT_TRUE(view->segments()[0].time_ordered);
  EXPECT_EQ(view->TimestampRange(), std::make_pair(int64_t{1004}, int64_t{1007}));
  MutationBatch rest(MutationMode::kBulk);
  for (int k : {4, 5, 6, 7}) {
    rest.DeleteInfluencer(
        *ParseInfluencerResultId(InfluencerDocumentId("j", rows[k])));
  }
  ASSERT_TRUE(store.Apply(std::move(rest)).ok());
  view = JobColumnView::Of(*store.Current(), "j");
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->size(), 0u);
  EXPECT_EQ(view->TimestampRange(), std::nullopt);
}

// The view holds the segments, not the store: it outlives both (ASan
// would see a use after free).
TEST(ColumnViewTest, TheViewOutlivesTheStore) {
  std::optional<JobColumnView> view;
  std::vector<Shown> expected;
  {
    StoreOptions options;
    options.merge_ratio = 1e9;
    options.merge_growing_deltas = false;  // three deltas as written
    InfluencerStore store(options);
    for (const char* value : {"v0", "v1", "v2"}) {
      MutationBatch batch(MutationMode::kBulk);
      batch.AddInfluencer("j", Row(value, 1000, 1));
      batch.AddInfluencer("j", Row(value, 2000, 1));
      ASSERT_TRUE(store.Apply(std::move(batch)).ok());
    }
    // One row deleted from the first segment.
    MutationBatch batch(MutationMode::kBulk);
    batch.DeleteInfluencer(*ParseInfluencerResultId(
        InfluencerDocumentId("j", Row("v0", 1000, 1))));
    ASSERT_TRUE(store.Apply(std::move(batch)).ok());
    expected = ThroughPlainJob(*store.Current());
    view = JobColumnView::Of(*store.Current(), "j");
    ASSERT_EQ(view->segments().size(), 3u);
    ASSERT_EQ(view->segments()[0].deleted_rows, 1u);
  }
  EXPECT_EQ(ThroughView(*view), expected);
  // A segment's view kept alone keeps its rows and deleted rows.
  SegmentColumnView first = view->segments()[0];
  view.reset();
  EXPECT_TRUE(first.IsDeleted(0));
  EXPECT_EQ(first.DeletedSorted(), std::vector<uint32_t>{0});
  EXPECT_EQ(first.timestamp[0], 1000);
}

}  // namespace
}  // namespace clout
