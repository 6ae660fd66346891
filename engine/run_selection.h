// PassInStrides: passes over the first rows of several sorted runs taken
// together, without merging them; LongestFit, the galloping search it and
// the executor's merge use (internal to the engine: the executor pages a
// job of segments with them; tests check them against a brute force).
#ifndef CLOUT_ENGINE_RUN_SELECTION_H_
#define CLOUT_ENGINE_RUN_SELECTION_H_

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

namespace clout {

// For `fits(count)` true for counts 1..k and false past k (k <= cap, and
// fits(good) true unless good is 0): returns k, by a doubling from `good`
// then a binary search, in O(log k) calls of fits.
template <typename Fits>
size_t LongestFit(size_t good, size_t cap, Fits fits) {
  size_t bad = 0;  // a count that does not fit (0: none found yet)
  while (good < cap) {
    const size_t probe = std::min(std::max<size_t>(2 * good, 1), cap);
    if (!fits(probe)) {
      bad = probe;
      break;
    }
    good = probe;
  }
  while (bad != 0 && bad - good > 1) {
    const size_t mid = good + (bad - good) / 2;
    (fits(mid) ? good : bad) = mid;
  }
  return good;
}

// `runs` are m sorted runs: run s holds the positions [runs[s].lo,
// runs[s].last), in order. Their union is ordered by `before(a, b)` over
// the values `at(s, position)` returns: a strict total order, so it must
// break ties between runs (by run index, say). Advances the runs' `lo`
// past positions that are all among the next `need` of that union, and
// returns how many it passed: all but at most `keep` of the `need`, or all
// the runs hold if fewer. A run's other members are left unchanged.
//
// With a stride d such that m * (d - 1) < left (the positions still to
// pass), each run's position d places on is its candidate, and the least
// candidate, of run u, has fewer than d positions of every other run
// before it (their candidates come after it), so fewer than
// m * (d - 1) + 1 <= left come before it and with it: run u's first d
// positions are all among the `left`. A heap keeps the candidates; each
// stride starts at half the largest allowed, so that it serves until about
// half the rows left are passed. About 2m log2(need / keep) values read,
// each O(log m) heap steps.
//
// Before the strides, blocks: the run with the least next position (its
// head) has a block of positions before every other run's head, found by
// a doubling then binary search; those are exactly the union's next
// positions, and the block is passed whole (up to the `left`) while it is
// at least a stride long, or ends its run or the `left`. Runs that hold
// the first rows one after another (fresh writes in their own range of
// keys) then cost O(log block) values a block, not a stride each. The
// first shorter block hands over to the strides; the m heads read then
// are the blocks' cost when runs interleave.
// Not thread-safe on the same runs.
template <typename Runs, typename At, typename Before>
size_t PassInStrides(Runs& runs, size_t need, size_t keep, At at,
                     Before before) {
  using Value = decltype(at(size_t{0}, size_t{0}));
  const size_t m = runs.size();
  size_t left = need;
  std::vector<std::pair<Value, size_t>> heap;  // (candidate or head, run)
  auto after = [&](const std::pair<Value, size_t>& a,
                   const std::pair<Value, size_t>& b) {
    return before(b.first, a.first);
  };
  // The stride chosen for `left` positions still to pass: half the largest
  // the bound allows.
  auto first_stride = [m](size_t left) {
    return std::max<size_t>(1, ((left - 1) / m + 1) / 2);
  };
  // Blocks: the heap holds each run's head.
  for (size_t s = 0; s < m && left > keep; ++s) {
    if (runs[s].lo < runs[s].last) heap.emplace_back(at(s, runs[s].lo), s);
  }
  std::make_heap(heap.begin(), heap.end(), after);
  while (left > keep && !heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), after);
    const size_t u = heap.back().second;
    heap.pop_back();
    const size_t cap = std::min(runs[u].last - runs[u].lo, left);
    // good: positions [lo, lo + good) of u all come before the least other
    // head (the head itself does).
    size_t good = cap;
    if (!heap.empty()) {
      const Value& second = heap.front().first;
      good = LongestFit(1, cap, [&](size_t count) {
        return before(at(u, runs[u].lo + count - 1), second);
      });
    }
    // A block shorter than the stride the strides would start with: the
    // strides pass more a step from here on.
    if (good < cap && good < first_stride(left)) break;
    runs[u].lo += good;
    left -= good;
    if (runs[u].lo < runs[u].last) {
      heap.emplace_back(at(u, runs[u].lo), u);
      std::push_heap(heap.begin(), heap.end(), after);
    }
  }
  heap.clear();
  size_t stride = 0;  // 0: choose one and take the candidates
  auto offer = [&](size_t s) {
    if (runs[s].last - runs[s].lo < stride) return;
    heap.emplace_back(at(s, runs[s].lo + stride - 1), s);
    std::push_heap(heap.begin(), heap.end(), after);
  };
  while (left > keep) {
    if (stride == 0 || m * (stride - 1) >= left) {
      stride = first_stride(left);
      size_t most = 0;  // the most positions any run has left
      for (size_t s = 0; s < m; ++s) {
        most = std::max(most, runs[s].last - runs[s].lo);
      }
      if (most == 0) break;
      stride = std::min(stride, most);
      heap.clear();
      for (size_t s = 0; s < m; ++s) offer(s);
    }
    if (heap.empty()) {  // every run has fewer than `stride` left
      stride = 0;
      continue;
    }
    std::pop_heap(heap.begin(), heap.end(), after);
    const size_t u = heap.back().second;
    heap.pop_back();
    runs[u].lo += stride;
    left -= stride;
    offer(u);
  }
  return need - left;
}

}  // namespace clout

#endif  // CLOUT_ENGINE_RUN_SELECTION_H_
