#include "engine/time_index.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "engine/radix_sort.h"

namespace clout {

namespace {

// Blocks of about sqrt(n) rows, a power of two in [4, 1024]: a count then
// costs (window / B) binary searches of log2(B) steps plus at most 2B row
// checks, and small jobs (tests) still have several whole blocks.
size_t BlockRowsFor(size_t n) {
  size_t root = static_cast<size_t>(std::sqrt(static_cast<double>(n)));
  return std::clamp<size_t>(std::bit_ceil(std::max<size_t>(root, 1)), 4, 1024);
}

}  // namespace

TimeIndex::TimeIndex(const JobResults& job,
                     const RowOrder& score_order)
    : size_(job.size()), block_rows_(BlockRowsFor(job.size())) {
  const Column<int64_t>& ts = job.columns.timestamp;
  const size_t n = size_;
  ordered_rows_ = static_cast<size_t>(
      std::is_sorted_until(ts.begin(), ts.begin() + static_cast<ptrdiff_t>(n)) -
      ts.begin());
  const bool sorted = ordered_rows_ == n;
  RowOrder position_of;  // row -> time position (if permuted)
  if (!sorted && n - ordered_rows_ <= n / 8 * kMaxTailEighths) {
    // The tail sorted alone, then merged with the ordered rows (a tie puts
    // the ordered row, the earlier one, first): positions, marks and
    // position_of in one pass.
    const size_t tail = n - ordered_rows_;
    KeyedRows keyed(tail);
    for (size_t i = 0; i < tail; ++i) {
      const size_t r = ordered_rows_ + i;
      keyed[i] = {static_cast<uint64_t>(ts[r]) ^ (uint64_t{1} << 63),
                  static_cast<uint32_t>(r)};
    }
    RadixSortByKey(&keyed);
    tail_order_.Assign(tail, n);
    for (size_t i = 0; i < tail; ++i) tail_order_.Set(i, keyed[i].row);
    tail_marks_.assign((n + 63) / 64, TailMarks{0, 0});
    position_of.resize(n);
    size_t head = 0;
    size_t next = 0;  // of tail_order_
    for (size_t p = 0; p < n; ++p) {
      if (p % 64 == 0) tail_marks_[p / 64].tail_before = next;
      const bool from_tail =
          next < tail &&
          (head == ordered_rows_ || ts[keyed[next].row] < ts[head]);
      if (from_tail) {
        tail_marks_[p / 64].bits |= uint64_t{1} << (p % 64);
        position_of[keyed[next++].row] = static_cast<uint32_t>(p);
      } else {
        position_of[head++] = static_cast<uint32_t>(p);
      }
    }
  } else if (!sorted) {
    KeyedRows keyed(n);
    for (size_t r = 0; r < n; ++r) {
      keyed[r] = {static_cast<uint64_t>(ts[r]) ^ (uint64_t{1} << 63),
                  static_cast<uint32_t>(r)};
    }
    RadixSortByKey(&keyed);
    order_.Assign(n, n);
    position_of.resize(n);
    for (size_t p = 0; p < n; ++p) {
      order_.Set(p, keyed[p].row);
      position_of[keyed[p].row] = static_cast<uint32_t>(p);
    }
  }
  // Walking ranks upwards appends to each block in ascending rank order, so
  // every block comes out sorted without sorting it.
  block_ranks_.Assign(n, n);
  std::vector<uint32_t> fill((n + block_rows_ - 1) / block_rows_, 0);
  for (size_t rank = 0; rank < n; ++rank) {
    uint32_t row = score_order[rank];
    size_t position = sorted ? row : position_of[row];
    size_t block = position / block_rows_;
    block_ranks_.Set(block * block_rows_ + fill[block]++,
                     static_cast<uint32_t>(rank));
  }
  block_first_ranks_.resize(fill.size());
  for (size_t block = 0; block < fill.size(); ++block) {
    block_first_ranks_[block] = block_ranks_[block * block_rows_];
  }
  const Column<uint8_t>& interim = job.columns.is_interim;
  for (size_t p = 0; p < n && interim_positions_.size() < job.interim_rows;
       ++p) {
    if (interim[RowAt(p)]) interim_positions_.push_back(static_cast<uint32_t>(p));
  }
}

std::pair<size_t, size_t> TimeIndex::Window(const JobResults& job,
                                            std::optional<int64_t> start,
                                            std::optional<int64_t> end) const {
  const Column<int64_t>& ts = job.columns.timestamp;
  // partition_point over positions [0, n) with the predicate ts < bound.
  auto first_not_below = [&](int64_t bound) {
    size_t lo = 0;
    size_t hi = size_;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (ts[RowAt(mid)] < bound) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  };
  size_t first = start.has_value() ? first_not_below(*start) : 0;
  size_t last = end.has_value() ? first_not_below(*end) : size_;
  if (last < first) last = first;
  return {first, last};
}

std::pair<size_t, size_t> TimeIndex::TailWindow(
    const JobResults& job, std::optional<int64_t> start,
    std::optional<int64_t> end) const {
  const Column<int64_t>& ts = job.columns.timestamp;
  const PackedRowsView rows = tail_order_.view();
  const size_t finish = tail_order_.size();
  // The first entry from `lo` on whose row's timestamp is not below
  // `bound` (the entries' timestamps ascend).
  auto first_not_below = [&](size_t lo, int64_t bound) {
    size_t hi = finish;
    while (lo < hi) {
      const size_t mid = lo + (hi - lo) / 2;
      if (ts[rows[mid]] < bound) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  };
  const size_t first = start.has_value() ? first_not_below(0, *start) : 0;
  const size_t last = end.has_value() ? first_not_below(first, *end) : finish;
  return {first, std::max(first, last)};
}

size_t TimeIndex::CountTopRanks(const JobResults& job, size_t first,
                                size_t last, size_t rank_limit,
                                double min_score) const {
  if (first >= last || rank_limit == 0) return 0;
  if (rank_limit >= size_) return last - first;
  const Column<double>& score = job.columns.influencer_score;
  auto count_checked = [&](size_t from, size_t to) {
    size_t count = 0;
    for (size_t p = from; p < to; ++p) count += score[RowAt(p)] >= min_score;
    return count;
  };
  const size_t b = block_rows_;
  const size_t first_whole = (first + b - 1) / b;
  const size_t last_whole = last / b;  // whole blocks end before `last`
  if (first_whole >= last_whole) return count_checked(first, last);
  size_t count = count_checked(first, first_whole * b) +
                 count_checked(last_whole * b, last);
  const uint32_t limit = static_cast<uint32_t>(rank_limit);
  const PackedRowsView ranks = block_ranks_.view();
  return count + ranks.WithWidth([&](auto width) {
    constexpr size_t W = width;
    // Per whole block, the number of its (ascending) ranks below `limit`:
    // binary searches without branches on the data, sixteen blocks in
    // step so that their loads' cache misses overlap (one search alone
    // waits for each load in turn).
    constexpr size_t kLanes = 16;
    size_t below = 0;
    size_t block = first_whole;
    for (; block + kLanes <= last_whole; block += kLanes) {
      size_t at[kLanes];  // each lane's least entry not known to be below
      for (size_t k = 0; k < kLanes; ++k) at[k] = (block + k) * b;
      // As CountBelow: at[k] stays within the block's first `left`
      // entries from it.
      for (size_t left = b; left > 1;) {
        const size_t half = left / 2;
        for (size_t k = 0; k < kLanes; ++k) {
          at[k] = ranks.At<W>(at[k] + half - 1) < limit ? at[k] + half : at[k];
        }
        left -= half;
      }
      for (size_t k = 0; k < kLanes; ++k) {
        below += at[k] - (block + k) * b + (ranks.At<W>(at[k]) < limit ? 1 : 0);
      }
    }
    for (; block < last_whole; ++block) {
      below += ranks.Skip(block * b).CountBelow(b, limit);
    }
    return below;
  });
}

std::pair<const uint32_t*, const uint32_t*> TimeIndex::InterimPositions(
    size_t first, size_t last) const {
  const uint32_t* begin = interim_positions_.data();
  const uint32_t* end = begin + interim_positions_.size();
  const uint32_t* lo = std::lower_bound(begin, end, first);
  const uint32_t* hi = std::lower_bound(lo, end, last);
  return {lo, hi};
}

size_t TimeIndex::bytes() const {
  return order_.bytes() + tail_order_.bytes() + block_ranks_.bytes() +
         (block_first_ranks_.capacity() + interim_positions_.capacity()) *
             sizeof(uint32_t) +
         tail_marks_.capacity() * sizeof(TailMarks);
}

}  // namespace clout
