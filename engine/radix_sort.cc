#include "engine/radix_sort.h"

#include <algorithm>
#include <array>
#include <cstddef>

namespace clout {

void RadixSortByKey(KeyedRows* v) {
  constexpr int kBits = 11;
  constexpr int kDigits = (64 + kBits - 1) / kBits;
  constexpr size_t kBuckets = size_t{1} << kBits;
  const size_t n = v->size();
  if (n < 2) return;
  if (n < 256) {
    std::sort(v->begin(), v->end());
    return;
  }
  std::vector<std::array<size_t, kBuckets>> counts(kDigits);
  for (auto& c : counts) c.fill(0);
  for (const KeyedRow& kr : *v) {
    for (int d = 0; d < kDigits; ++d) {
      ++counts[d][(kr.key >> (d * kBits)) & (kBuckets - 1)];
    }
  }
  KeyedRows scratch(n);
  for (int d = 0; d < kDigits; ++d) {
    std::array<size_t, kBuckets>& c = counts[d];
    // A digit every key shares leaves the order as it is.
    if (std::find(c.begin(), c.end(), n) != c.end()) continue;
    size_t sum = 0;
    for (size_t& b : c) {
      size_t k = b;
      b = sum;
      sum += k;
    }
    const int shift = d * kBits;
    for (const KeyedRow& kr : *v) {
      scratch[c[(kr.key >> shift) & (kBuckets - 1)]++] = kr;
    }
    v->swap(scratch);
  }
}


}  // namespace clout
