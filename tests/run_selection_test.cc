// PassInStrides against a brute force: over random sorted runs with many
// ties, every position it passes is among the first `need` of the runs'
// union (ordered by value, then run), and it passes all but at most `keep`;
// and its count of comparisons when the runs hold the first rows in turn.
#include "engine/run_selection.h"

#include <algorithm>
#include <cstddef>
#include <random>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace clout {
namespace {

struct SortedRun {
  std::vector<int> values;  // sorted
  size_t lo = 0;
  size_t last = 0;
};

struct Trial {
  size_t passed = 0;
  size_t expected_at_least = 0;
  bool all_among_first = true;
};

// Runs PassInStrides on `runs` and checks it against the union's order.
Trial Check(std::vector<SortedRun>& runs, size_t need, size_t keep) {
  // The union after the runs' `lo`, as (value, run, position), sorted.
  std::vector<std::tuple<int, size_t, size_t>> all;
  for (size_t s = 0; s < runs.size(); ++s) {
    for (size_t p = runs[s].lo; p < runs[s].last; ++p) {
      all.emplace_back(runs[s].values[p], s, p);
    }
  }
  std::sort(all.begin(), all.end());
  std::set<std::pair<size_t, size_t>> first;
  for (size_t i = 0; i < std::min(need, all.size()); ++i) {
    first.emplace(std::get<1>(all[i]), std::get<2>(all[i]));
  }
  std::vector<size_t> before(runs.size());
  for (size_t s = 0; s < runs.size(); ++s) before[s] = runs[s].lo;
  Trial trial;
  trial.passed = PassInStrides(
      runs, need, keep,
      [&](size_t s, size_t p) { return std::make_pair(runs[s].values[p], s); },
      [](const std::pair<int, size_t>& a, const std::pair<int, size_t>& b) {
        return a < b;
      });
  size_t moved = 0;
  for (size_t s = 0; s < runs.size(); ++s) {
    for (size_t p = before[s]; p < runs[s].lo; ++p) {
      trial.all_among_first &= first.count({s, p}) == 1;
    }
    moved += runs[s].lo - before[s];
  }
  EXPECT_EQ(moved, trial.passed);
  const size_t reachable = std::min(need, all.size());
  trial.expected_at_least = reachable > keep ? reachable - keep : 0;
  return trial;
}

TEST(RunSelectionTest, PassesOnlyRowsAmongTheFirstNeed) {
  std::mt19937_64 random(7);
  auto pick = [&](size_t n) { return static_cast<size_t>(random() % n); };
  int trials = 0;
  for (int t = 0; t < 6000; ++t) {
    const size_t m = 1 + pick(pick(2) ? 4 : 24);
    const int distinct = 1 + static_cast<int>(pick(pick(2) ? 3 : 1000));
    std::vector<SortedRun> runs(m);
    size_t total = 0;
    for (SortedRun& run : runs) {
      const size_t n = pick(pick(4) == 0 ? 2000 : 120);
      for (size_t i = 0; i < n; ++i) {
        run.values.push_back(static_cast<int>(pick(distinct)));
      }
      std::sort(run.values.begin(), run.values.end());
      run.last = n;
      run.lo = pick(3) == 0 && n > 0 ? pick(n) : 0;  // some already passed
      total += run.last - run.lo;
    }
    const size_t need = pick(total + 40);
    const size_t keep = pick(3) == 0 ? 0 : 1 + pick(64);
    const Trial trial = Check(runs, need, keep);
    ASSERT_TRUE(trial.all_among_first) << "trial " << t;
    ASSERT_LE(trial.passed, need) << "trial " << t;
    ASSERT_GE(trial.passed, trial.expected_at_least)
        << "trial " << t << ": m " << m << " total " << total << " need "
        << need << " keep " << keep;
    ++trials;
  }
  EXPECT_EQ(trials, 6000);
}

// The bound's worst case: every run has d - 1 values below the least
// candidate, for each stride the rows left allow.
TEST(RunSelectionTest, TightLayoutsPassNothingPastNeed) {
  for (size_t m = 1; m <= 10; ++m) {
    for (size_t below = 0; below <= 24; ++below) {
      for (size_t need = 1; need <= m * (below + 2) + 2; ++need) {
        std::vector<SortedRun> runs(m);
        for (SortedRun& run : runs) {
          run.values.assign(below, 0);
          run.values.resize(below + 30, 1);
          run.last = run.values.size();
        }
        const Trial trial = Check(runs, need, 0);
        ASSERT_TRUE(trial.all_among_first)
            << "m " << m << " below " << below << " need " << need;
        ASSERT_EQ(trial.passed, need);
      }
    }
  }
}

// Runs that hold the first rows one after another, each in its own range
// of values (fresh writes ahead of a large base), are passed a block at a
// time: exactly, and with far fewer comparisons than strides need.
TEST(RunSelectionTest, RunsInTurnArePassedABlockAtATime) {
  constexpr size_t kDeltas = 16;
  std::vector<SortedRun> runs(kDeltas + 1);
  for (int v = 0; v < 100000; ++v) runs[0].values.push_back(1000000 + v);
  for (size_t s = 1; s <= kDeltas; ++s) {
    // Delta s: 500 values of its own, the newest (highest s) first, then
    // 500 spread over the base's range.
    const int own = static_cast<int>(kDeltas - s) * 1000;
    for (int v = 0; v < 500; ++v) runs[s].values.push_back(own + v);
    for (int v = 0; v < 500; ++v) runs[s].values.push_back(1000000 + v * 200);
  }
  for (SortedRun& run : runs) run.last = run.values.size();
  std::vector<SortedRun> copy = runs;
  const Trial trial = Check(copy, 5000, 64);
  ASSERT_TRUE(trial.all_among_first);
  EXPECT_EQ(trial.passed, 5000u);  // ten deltas' own blocks
  size_t comparisons = 0;
  const size_t passed = PassInStrides(
      runs, 5000, 64,
      [&](size_t s, size_t p) { return std::make_pair(runs[s].values[p], s); },
      [&](const std::pair<int, size_t>& a, const std::pair<int, size_t>& b) {
        ++comparisons;
        return a < b;
      });
  EXPECT_EQ(passed, 5000u);
  // Ten blocks of 500, each about 2 log2(500) comparisons to find and a
  // few heap steps: 239 when written; strides alone take 1,014 (and pass
  // 4,936).
  EXPECT_LT(comparisons, 400u);
}

// LongestFit against every answer k <= cap and every known start good <= k
// (good 0 as the merge uses it, 1 as PassInStrides does): it finds k, asks
// only counts in [1, cap], and asks O(log k) of them.
TEST(RunSelectionTest, LongestFitFindsEveryPrefixInLogarithmicCalls) {
  for (size_t cap = 0; cap <= 70; ++cap) {
    for (size_t k = 0; k <= cap; ++k) {
      for (size_t good = 0; good <= k; ++good) {
        size_t calls = 0;
        bool out_of_range = false;
        const size_t found = LongestFit(good, cap, [&](size_t count) {
          ++calls;
          if (count == 0 || count > cap) out_of_range = true;
          return count <= k;
        });
        ASSERT_EQ(found, k) << "cap " << cap << " good " << good;
        ASSERT_FALSE(out_of_range) << "cap " << cap << " k " << k;
        size_t log2 = 0;
        while ((size_t{1} << log2) < k + 1) ++log2;
        ASSERT_LE(calls, 2 * log2 + 2) << "cap " << cap << " k " << k;
      }
    }
  }
}

}  // namespace
}  // namespace clout
