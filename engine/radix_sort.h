// Sorting rows by a 64-bit key, for building sort orders and time orders.
// Internal to the engine. Pure functions; thread-safe.
#ifndef CLOUT_ENGINE_RADIX_SORT_H_
#define CLOUT_ENGINE_RADIX_SORT_H_

#include <cstdint>
#include <vector>

#include "engine/columns.h"

namespace clout {

// A row with its sort key: ascending (key, row) is the order wanted.
struct KeyedRow {
  uint64_t key;
  uint32_t row;
  friend bool operator<(const KeyedRow& a, const KeyedRow& b) {
    return a.key != b.key ? a.key < b.key : a.row < b.row;
  }
};

// Large, so backed by huge pages (ColumnAllocator): a scatter over hundreds
// of megabytes of 4 KiB pages spends its time in page faults and TLB misses.
using KeyedRows = std::vector<KeyedRow, ColumnAllocator<KeyedRow>>;

// Sorts `v` by key, stably, so pairs given in ascending row order end in
// ascending (key, row) order: a least-significant-digit radix sort on
// 11-bit digits that skips the digits all keys share; O(n) per digit.
// Small inputs use std::sort.
void RadixSortByKey(KeyedRows* v);

}  // namespace clout

#endif  // CLOUT_ENGINE_RADIX_SORT_H_
