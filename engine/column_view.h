// A read-only columnar view of one job's results as a store version holds
// them: spans over each segment's columns and dictionaries, and the rows
// deleted from it since, with a handle that keeps them alive.
//
// This is the engine's layout, shown as it is so that a reader copies
// nothing: visible only to //storage (which writes snapshot files from it)
// and //python (which makes NumPy arrays of it). Users see results through
// the store, the loader and the query API instead.
#ifndef CLOUT_ENGINE_COLUMN_VIEW_H_
#define CLOUT_ENGINE_COLUMN_VIEW_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace clout {

class DeletedRows;  // columns.h
struct JobResults;
struct StoreVersion;

// One segment of a job: rows in ingest order, each row i of every column
// one result. Strings are codes into `strings`, bucket spans codes into
// `bucket_spans`. The spans stay valid for as long as `handle` (or the
// JobColumnView it came from) is held; the deleted rows are the view's
// own. Thread-safe: nothing in it changes.
struct SegmentColumnView {
  size_t rows = 0;
  absl::Span<const int64_t> timestamp;  // epoch milliseconds
  // MissingDouble() (a quiet NaN, columns.h) where the document had none;
  // shown as 0.0.
  absl::Span<const double> influencer_score;
  absl::Span<const double> initial_influencer_score;
  absl::Span<const double> probability;
  absl::Span<const uint32_t> bucket_span_code;
  absl::Span<const uint8_t> is_interim;  // 0 or 1
  absl::Span<const uint32_t> field_name_code;
  absl::Span<const uint32_t> field_value_code;
  absl::Span<const uint32_t> version;  // Elasticsearch's _version, >= 1
  absl::Span<const absl::string_view> strings;  // code -> string
  absl::Span<const int64_t> bucket_spans;       // code -> seconds
  // The distinct influencer field names of its rows.
  absl::Span<const absl::string_view> field_names;
  size_t interim_rows = 0;   // rows (deleted ones included) that are interim
  bool time_ordered = false;  // rows in ascending timestamp order
  // Least and greatest timestamp of its rows, deleted ones included;
  // min > max when it has none.
  int64_t min_timestamp = 0;
  int64_t max_timestamp = 0;
  // Rows replaced or removed since the segment was built (they are not
  // the job's results any more).
  size_t deleted_rows = 0;
  // Every row (deleted ones included) in influencer_score-descending page
  // order, ties in ingest order, if the engine had built that index when
  // the view was made (WarmIndexes, or a query); else empty. Valid while
  // the view is held.
  absl::Span<const uint32_t> score_order;
  // The segment's identity: the same for as long as any version holds
  // this segment, unlike in any other segment alive meanwhile. Snapshot
  // files write a segment once and name it by this.
  const void* id = nullptr;
  // Keeps the segment's rows alive (not the rest of the job), and, held
  // weakly, tells a cache of what was done with a segment whether `id`
  // still means it.
  std::shared_ptr<const void> handle;

  // Whether `row` (< rows) is deleted. O(levels * log deleted): a few
  // binary searches (DeletedRows, columns.h).
  bool IsDeleted(uint32_t row) const;
  // The deleted rows, ascending (a copy). O(deleted log deleted).
  std::vector<uint32_t> DeletedSorted() const;

 private:
  friend class JobColumnView;
  std::shared_ptr<const DeletedRows> deleted_;  // null: none
  std::shared_ptr<const void> score_order_;  // keeps score_order alive
};

// One job of a version. Copies share the handle; thread-safe (the version
// never changes).
class JobColumnView {
 public:
  // The job `job_id` of `version`, or nullopt if the version does not
  // know it. The view keeps the job's segments alive, not the version.
  // O(segments).
  static std::optional<JobColumnView> Of(const StoreVersion& version,
                                         absl::string_view job_id);

  const std::string& job_id() const;
  // Its results: the segments' rows that are not deleted.
  size_t size() const;
  // The distinct influencer field names of the job (a name may stay
  // listed after its last row was replaced away).
  absl::Span<const absl::string_view> field_names() const;
  // Least and greatest timestamp of its results (nullopt when it has
  // none). O(segments) plus, for each segment with deleted rows, the rows
  // its ends pass in time order, or all its rows out of time order.
  std::optional<std::pair<int64_t, int64_t>> TimestampRange() const;
  // In ingest order: the job's results are each segment's rows that are
  // not deleted, segment after segment.
  const std::vector<SegmentColumnView>& segments() const { return segments_; }

 private:
  JobColumnView() = default;  // Of() makes views
  std::shared_ptr<const JobResults> job_;  // the lifetime handle
  std::vector<SegmentColumnView> segments_;
};

}  // namespace clout

#endif  // CLOUT_ENGINE_COLUMN_VIEW_H_
