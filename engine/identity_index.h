// IdentityIndex: one plain segment's rows by result identity (internal to
// the engine: the store finds the stored rows a batch touches through it).
#ifndef CLOUT_ENGINE_IDENTITY_INDEX_H_
#define CLOUT_ENGINE_IDENTITY_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/hash/hash.h"
#include "engine/columns.h"

namespace clout {

// One segment's rows by identity, in the segment's codes: a hash table of
// row numbers (the rows are the keys), about 4-8 bytes per row. Immutable
// once built; cached with the segment.
class IdentityIndex {
 public:
  static constexpr uint32_t kEmpty = UINT32_MAX;

  explicit IdentityIndex(const JobResults& job) {
    const size_t n = job.columns.size();
    size_t capacity = 16;
    while (capacity < n + n / 2) capacity *= 2;
    slots_.assign(capacity, kEmpty);
    mask_ = capacity - 1;
    const InfluencerColumns& c = job.columns;
    for (size_t r = 0; r < n; ++r) {
      size_t i = Hash(c.timestamp[r], c.bucket_span_code[r],
                      c.field_name_code[r], c.field_value_code[r]) & mask_;
      while (slots_[i] != kEmpty) i = (i + 1) & mask_;
      slots_[i] = static_cast<uint32_t>(r);
    }
  }

  // Calls on_row(row) for each row with this identity (a segment holds one
  // per identity, plus any it has since deleted).
  template <typename OnRow>
  void ForEach(const InfluencerColumns& c, int64_t timestamp, uint32_t span,
               uint32_t name, uint32_t value, OnRow on_row) const {
    for (size_t i = Hash(timestamp, span, name, value) & mask_;
         slots_[i] != kEmpty; i = (i + 1) & mask_) {
      const uint32_t r = slots_[i];
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
    return Hash(timestamp, span, name, value) & mask_;
  }
  void PrefetchSlot(size_t slot) const { __builtin_prefetch(&slots_[slot]); }
  void PrefetchRow(const InfluencerColumns& c, size_t slot) const {
    const uint32_t r = slots_[slot];
    if (r == kEmpty) return;
    __builtin_prefetch(&c.timestamp[r]);
    __builtin_prefetch(&c.bucket_span_code[r]);
    __builtin_prefetch(&c.field_name_code[r]);
    __builtin_prefetch(&c.field_value_code[r]);
  }

  size_t bytes() const { return slots_.capacity() * sizeof(uint32_t); }

 private:
  static size_t Hash(int64_t timestamp, uint32_t span, uint32_t name,
                     uint32_t value) {
    return absl::HashOf(timestamp, span, name, value);
  }
  std::vector<uint32_t> slots_;
  size_t mask_ = 0;
};

}  // namespace clout

#endif  // CLOUT_ENGINE_IDENTITY_INDEX_H_
