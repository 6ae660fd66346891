// IdentityIndex: one plain segment's rows by result identity, and
// IdentityFilter: which identities it may hold (internal to the engine:
// the store finds the stored rows a batch touches through them).
#ifndef CLOUT_ENGINE_IDENTITY_INDEX_H_
#define CLOUT_ENGINE_IDENTITY_INDEX_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"
#include "engine/columns.h"
#include "engine/packed_rows.h"

namespace clout {

// One segment's rows by identity, in the segment's codes: a hash table of
// row numbers (the rows are the keys) with linear probing, 1.6 slots per
// row. A slot takes 2 bytes when the segment has fewer than 2^16 rows (3.2
// bytes per row), 3 below 2^24 (4.8), else 4 (6.4): PackedRows. The slot
// is the hash scaled to the table, so the table need not be a power of two
// and never doubles past what the rows need. Immutable once built; cached with the segment.
class IdentityIndex {
 public:
  // The bytes of a slot for a segment of `rows` rows: 2 below 2^16 rows,
  // 3 below 2^24, else 4 (PackedRows entries below rows + 1). A slot of
  // all ones marks it empty, which no row number then is.
  static constexpr size_t SlotBytesFor(size_t rows) {
    return PackedRows::WidthFor(rows + 1);
  }

  // Builds the index of `job`'s rows with slots of SlotBytesFor(rows)
  // bytes, or of `slot_bytes` if wider (tests; wider slots work the same,
  // and more than 4 means 4).
  explicit IdentityIndex(const JobResults& job, size_t slot_bytes = 0) {
    const size_t n = job.columns.size();
    // Entries below n + 1, or below a limit that needs `slot_bytes`.
    size_t limit = n + 1;
    if (slot_bytes > 2) {
      limit = std::max(
          limit, (size_t{1} << (8 * (std::min<size_t>(slot_bytes, 4) - 1))) + 1);
    }
    // Every slot empty: all bytes set.
    slots_.Assign(std::max<size_t>(16, n + n * 3 / 5 + 1), limit, 0xFF);
    empty_ = slots_.all_ones();
    const InfluencerColumns& c = job.columns;
    for (size_t r = 0; r < n; ++r) {
      size_t i = Slot(c.timestamp[r], c.bucket_span_code[r],
                      c.field_name_code[r], c.field_value_code[r]);
      while (slots_[i] != empty_) i = Next(i);
      slots_.Set(i, static_cast<uint32_t>(r));
    }
  }

  // Calls on_row(row) for each row with this identity (a segment holds one
  // per identity, plus any it has since deleted).
  template <typename OnRow>
  void ForEach(const InfluencerColumns& c, int64_t timestamp, uint32_t span,
               uint32_t name, uint32_t value, OnRow on_row) const {
    for (size_t i = Slot(timestamp, span, name, value);; i = Next(i)) {
      const uint32_t r = slots_[i];
      if (r == empty_) return;
      if (c.timestamp[r] == timestamp && c.bucket_span_code[r] == span &&
          c.field_name_code[r] == name && c.field_value_code[r] == value) {
        on_row(r);
      }
    }
  }

  // Hints with no observable effect, for a caller that looks up many
  // identities in turn and wants their cache misses to overlap: the slot
  // where ForEach of this identity starts (Slot), a prefetch of that slot
  // (PrefetchSlot), and, once the slot is likely cached, of the columns of
  // the row it holds (PrefetchRow). Thread-safe (reads only).
  size_t Slot(int64_t timestamp, uint32_t span, uint32_t name,
              uint32_t value) const {
    // The hash's high bits scaled to the table (Lemire's fast range).
    return static_cast<size_t>(
        (static_cast<unsigned __int128>(Hash(timestamp, span, name, value)) *
         slots_.size()) >>
        64);
  }
  void PrefetchSlot(size_t slot) const { slots_.Prefetch(slot); }
  void PrefetchRow(const InfluencerColumns& c, size_t slot) const {
    const uint32_t r = slots_[slot];
    if (r == empty_) return;
    __builtin_prefetch(&c.timestamp[r]);
    __builtin_prefetch(&c.bucket_span_code[r]);
    __builtin_prefetch(&c.field_name_code[r]);
    __builtin_prefetch(&c.field_value_code[r]);
  }

  // The bytes of a slot (SlotBytesFor the segment's rows, unless built
  // wider), and the heap bytes the table holds.
  size_t slot_bytes() const { return slots_.width(); }
  size_t bytes() const { return slots_.bytes(); }

 private:
  static uint64_t Hash(int64_t timestamp, uint32_t span, uint32_t name,
                       uint32_t value) {
    return absl::HashOf(timestamp, span, name, value);
  }
  size_t Next(size_t i) const { return i + 1 == slots_.size() ? 0 : i + 1; }
  PackedRows slots_;  // row numbers; at least one empty slot: probes end
  uint32_t empty_ = 0;  // slots_.all_ones()
};

// The hash of a result identity in text form (timestamp, bucket span in
// seconds, field name, field value): the same for a staged row and a
// stored one, whatever their dictionaries' codes. Stable within a process
// only.
inline uint64_t TextIdentityHash(int64_t timestamp, int64_t bucket_span,
                                 absl::string_view name,
                                 absl::string_view value) {
  return absl::HashOf(timestamp, bucket_span, name, value);
}

// Which identities one plain segment may hold (a job of segments has no
// rows of its own: its filter would say no to everything): a blocked Bloom
// filter of its rows' TextIdentityHash, 16 to 32 bits per row (a power of
// two of 64-bit blocks), 3 bits set per identity (about 1% false
// positives or fewer). A write asks it before looking an
// identity up in the segment's dictionary and IdentityIndex, which a
// delta that does not hold it would cost. Immutable once built; cached
// with the segment.
class IdentityFilter {
 public:
  explicit IdentityFilter(const JobResults& job) {
    const size_t n = job.columns.size();
    size_t blocks = 1;
    while (blocks * 64 < n * 16) blocks *= 2;
    blocks_.assign(blocks, 0);
    mask_ = blocks - 1;
    const InfluencerColumns& c = job.columns;
    for (size_t r = 0; r < n; ++r) {
      const uint64_t hash =
          TextIdentityHash(c.timestamp[r], job.bucket_span(r),
                           job.field_name(r), job.field_value(r));
      blocks_[hash & mask_] |= Bits(hash);
    }
  }

  // False if the segment holds no row with this identity (deleted rows
  // included); true if it may.
  bool MayContain(uint64_t hash) const {
    const uint64_t bits = Bits(hash);
    return (blocks_[hash & mask_] & bits) == bits;
  }

  size_t bytes() const { return blocks_.capacity() * sizeof(uint64_t); }

 private:
  // Three bits of a block, from the hash's high bits (the low ones chose
  // the block).
  static uint64_t Bits(uint64_t hash) {
    return (uint64_t{1} << ((hash >> 40) & 63)) |
           (uint64_t{1} << ((hash >> 46) & 63)) |
           (uint64_t{1} << ((hash >> 52) & 63));
  }
  std::vector<uint64_t> blocks_;
  size_t mask_ = 0;
};

}  // namespace clout

#endif  // CLOUT_ENGINE_IDENTITY_INDEX_H_
