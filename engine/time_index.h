// A per-job index that counts the rows matching a Get Influencers filter
// (time window, score threshold, exclude_interim, in any combination) in
// polylogarithmic time, and lists the rows of a time window in time order.
//
// Layout: the job's rows in (timestamp, row) order, split into blocks of
// `block_rows()` consecutive positions. For each block the index keeps the
// sorted *score ranks* of its rows, where a row's score rank is its position
// in the influencer_score-descending page order (ties in ingest order). The
// rows with influencer_score >= t are exactly the rows of rank < k for the
// k found by one binary search of that order, so "window and threshold"
// becomes a count of ranks below k over the window's blocks: one binary
// search per whole block plus a check of at most two partial blocks. The
// positions of interim rows are kept apart (they are few: the latest bucket)
// and subtracted.
//
// When the rows are already in time order (the usual dump), the time order
// is the identity and takes no memory. When they are in time order but for
// a tail of at most seven eighths of them (a job merged after updates keeps
// its older rows in order and the rewritten ones after them, and each such
// merge adds the rows rewritten since to the tail), the index keeps the
// tail's rows in time order (an entry per tail row) and a bit per position
// saying whether it holds a tail row, with a count of the tail rows before
// every 64 positions (0.25 bytes per row): the ordered rows' positions
// follow from those counts. Otherwise the time order takes an entry per
// row. Always an entry per row for the block ranks, 4 bytes per block for
// each block's least rank, 4 per interim row. An entry (PackedRows) takes
// 2 bytes in a job of at most 2^16 rows, 3 up to 2^24, else 4.
//
// A TimeIndex is immutable once built: any number of threads may use it.
// It refers to no job; callers pass the JobResults it was built from.
#ifndef CLOUT_ENGINE_TIME_INDEX_H_
#define CLOUT_ENGINE_TIME_INDEX_H_

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "engine/columns.h"
#include "engine/packed_rows.h"

namespace clout {

class TimeIndex {
 public:
  // The most rows after the ordered ones, in eighths of the job, for which
  // the index keeps their order and marks (an entry per tail row plus 0.25
  // bytes per row) rather than the whole time order (an entry per row).
  static constexpr size_t kMaxTailEighths = 7;

  // Builds the index of `job`. `score_order` must hold every row of the job
  // in influencer_score-descending page order (ties in ingest order).
  TimeIndex(const JobResults& job, const RowOrder& score_order);

  TimeIndex(const TimeIndex&) = delete;
  TimeIndex& operator=(const TimeIndex&) = delete;

  size_t size() const { return size_; }
  size_t block_rows() const { return block_rows_; }
  // True when the job's rows are already in (timestamp, row) order.
  bool identity() const { return order_.empty() && tail_marks_.empty(); }

  // The rows in time order (the row at each position) when the index keeps
  // them as a list; empty when identity() or when it keeps only the
  // tail's (tail_order() is then not empty: use RowAt).
  const PackedRows& order() const { return order_; }

  // The number of leading rows already in time order: rows [0,
  // ordered_rows()) have non-decreasing timestamps (size() when
  // identity()). A job merged after updates keeps its older rows in order
  // and the rewritten ones after them.
  size_t ordered_rows() const { return ordered_rows_; }

  // The rows after the ordered ones (ordered_rows() on), in (timestamp,
  // row) order, when they are at most kMaxTailEighths eighths of the job;
  // else empty. A window's scan reads its ordered
  // rows as one stretch and these through TailWindow, not the whole time
  // order.
  const PackedRows& tail_order() const { return tail_order_; }
  // The rows of tail_order() with start <= timestamp < end (an absent
  // bound is open), as the range [first, last) of its entries; empty
  // (first == last) if tail_order() is.
  std::pair<size_t, size_t> TailWindow(
      const JobResults& job, std::optional<int64_t> start,
      std::optional<int64_t> end) const;

  // The row at `position` of the time order (O(1): one list read, or a
  // count read with its bits and a popcount).
  uint32_t RowAt(size_t position) const {
    if (!order_.empty()) return order_[position];
    if (tail_marks_.empty()) return static_cast<uint32_t>(position);
    const TailMarks& marks = tail_marks_[position / 64];
    const uint64_t bit = uint64_t{1} << (position % 64);
    const uint64_t tail_before =
        marks.tail_before +
        static_cast<uint64_t>(std::popcount(marks.bits & (bit - 1)));
    return (marks.bits & bit) != 0
               ? tail_order_[tail_before]
               : static_cast<uint32_t>(position - tail_before);
  }

  // The positions [first, last) of the rows with start <= timestamp < end
  // (an absent bound is open). Empty (first == last) if none.
  std::pair<size_t, size_t> Window(const JobResults& job,
                                    std::optional<int64_t> start,
                                    std::optional<int64_t> end) const;

  // The number of positions in [first, last) whose row has score rank
  // < `rank_limit`, i.e. influencer_score >= `min_score` where `rank_limit`
  // is the number of rows of the job with influencer_score >= `min_score`.
  size_t CountTopRanks(const JobResults& job, size_t first, size_t last,
                       size_t rank_limit, double min_score) const;

  // The score ranks of the rows of block `block` (the positions
  // [block * block_rows(), min(size(), (block + 1) * block_rows()))),
  // ascending, and how many there are. Requires block < number of blocks.
  std::pair<PackedRowsView, size_t> BlockRanks(size_t block) const {
    const size_t begin = block * block_rows_;
    const size_t end = std::min(size_, begin + block_rows_);
    return {block_ranks_.view().Skip(begin), end - begin};
  }

  // The least score rank of each block's rows (BlockRanks(block).first[0]),
  // one entry per block, contiguous: a scan of many blocks' least ranks
  // reads 4 bytes per block, not a cache line.
  const std::vector<uint32_t>& BlockFirstRanks() const {
    return block_first_ranks_;
  }

  // The positions of interim rows within [first, last), ascending.
  std::pair<const uint32_t*, const uint32_t*> InterimPositions(
      size_t first, size_t last) const;

  // Heap bytes held by the index.
  size_t bytes() const;

 private:
  size_t size_ = 0;
  size_t block_rows_ = 0;
  size_t ordered_rows_ = 0;
  // Positions [64 i, 64 i + 64): which hold a tail row (bit j for 64 i +
  // j), and how many tail rows the positions before 64 i hold.
  struct TailMarks {
    uint64_t bits;
    uint64_t tail_before;
  };
  PackedRows order_;        // empty: identity, or tail_marks_ say
  PackedRows tail_order_;   // see tail_order()
  std::vector<TailMarks> tail_marks_;  // with tail_order_ when order_ is empty
  PackedRows block_ranks_;  // size_ entries, sorted per block
  std::vector<uint32_t> block_first_ranks_;  // one per block
  std::vector<uint32_t> interim_positions_;
};

}  // namespace clout

#endif  // CLOUT_ENGINE_TIME_INDEX_H_
