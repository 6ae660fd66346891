#include "engine/column_view.h"

#include <algorithm>

#include "engine/columns.h"
#include "engine/executor.h"

namespace clout {

bool SegmentColumnView::IsDeleted(uint32_t row) const {
  return deleted_ != nullptr && deleted_->Contains(row);
}

std::vector<uint32_t> SegmentColumnView::DeletedSorted() const {
  return deleted_ == nullptr ? std::vector<uint32_t>{} : deleted_->Sorted();
}

std::optional<JobColumnView> JobColumnView::Of(const StoreVersion& version,
                                               absl::string_view job_id) {
  auto it = version.jobs.find(job_id);
  if (it == version.jobs.end()) return std::nullopt;
  JobColumnView view;
  view.job_ = it->second;
  auto add = [&](const std::shared_ptr<const JobResults>& rows,
                 const std::shared_ptr<const DeletedRows>& deleted) {
    const JobResults& j = *rows;
    const InfluencerColumns& c = j.columns;
    SegmentColumnView s;
    s.rows = c.size();
    s.timestamp = c.timestamp;
    s.influencer_score = c.influencer_score;
    s.initial_influencer_score = c.initial_influencer_score;
    s.probability = c.probability;
    s.bucket_span_code = c.bucket_span_code;
    s.is_interim = c.is_interim;
    s.field_name_code = c.field_name_code;
    s.field_value_code = c.field_value_code;
    s.version = c.version;
    s.strings = j.strings;
    s.bucket_spans = j.bucket_spans;
    s.field_names = j.field_names;
    s.interim_rows = j.interim_rows;
    s.time_ordered = j.time_ordered;
    s.min_timestamp = j.min_timestamp;
    s.max_timestamp = j.max_timestamp;
    s.deleted_rows = deleted == nullptr ? 0 : deleted->size();
    if (std::shared_ptr<const RowOrder> order = BuiltScoreOrder(rows)) {
      s.score_order = absl::MakeConstSpan(order->data(), order->size());
      s.score_order_ = std::move(order);
    }
    s.id = rows.get();
    s.handle = rows;
    s.deleted_ = deleted;
    view.segments_.push_back(std::move(s));
  };
  const JobResults& job = *view.job_;
  if (job.segments.empty()) {
    add(view.job_, nullptr);
  } else {
    for (const JobResults::Segment& segment : job.segments) {
      add(segment.rows, segment.deleted);
    }
  }
  return view;
}

const std::string& JobColumnView::job_id() const { return job_->job_id; }

size_t JobColumnView::size() const { return job_->size(); }

absl::Span<const absl::string_view> JobColumnView::field_names() const {
  return job_->field_names;
}

std::optional<std::pair<int64_t, int64_t>> JobColumnView::TimestampRange()
    const {
  std::optional<std::pair<int64_t, int64_t>> range;
  auto add = [&](int64_t lo, int64_t hi) {
    if (!range) {
      range.emplace(lo, hi);
    } else {
      range->first = std::min(range->first, lo);
      range->second = std::max(range->second, hi);
    }
  };
  for (const SegmentColumnView& s : segments_) {
    if (s.deleted_rows == s.rows) continue;
    if (s.deleted_rows == 0) {
      add(s.min_timestamp, s.max_timestamp);
    } else if (s.time_ordered) {
      // The first and last live rows (there is one).
      uint32_t first = 0;
      while (s.IsDeleted(first)) ++first;
      uint32_t last = static_cast<uint32_t>(s.rows - 1);
      while (s.IsDeleted(last)) --last;
      add(s.timestamp[first], s.timestamp[last]);
    } else {
      DeletedRows::Cursor cursor(s.deleted_.get());
      for (uint32_t row = 0; row < s.rows; ++row) {
        if (!cursor.Contains(row)) add(s.timestamp[row], s.timestamp[row]);
      }
    }
  }
  return range;
}

}  // namespace clout
