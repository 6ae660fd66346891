// The query shapes of the indexes issue (Q1-Q7), shared by the benchmarks.
#ifndef CLOUT_BENCH_SHAPES_H_
#define CLOUT_BENCH_SHAPES_H_

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "engine/request.h"

namespace clout {

// WINDOW is replaced by a start/end pair covering the middle 10% of the
// job's time range.
inline constexpr const char* kShapes[] = {
    R"({})",
    R"({WINDOW,"exclude_interim":true})",
    R"({"influencer_score":50})",
    R"({"sort":"timestamp","page":{"from":5000,"size":100}})",
    R"({"sort":"influencer_field_value","desc":false})",
    R"({"page":{"from":9900,"size":100}})",
    R"({WINDOW,"influencer_score":30,"sort":"probability","desc":false})",
};
inline constexpr const char* kShapeNames[] = {
    "Q1 default",         "Q2 window+final",  "Q3 score>=50",
    "Q4 timestamp@5000",  "Q5 value asc",     "Q6 from 9900",
    "Q7 window+score>=30 by probability"};
inline constexpr int kLastShape = 6;

// Shape `shape` as a request to `job_id`, whose timestamps span [lo, hi].
inline InfluencersRequest ShapeRequest(int shape, const std::string& job_id,
                                       int64_t lo, int64_t hi) {
  const int64_t span = hi - lo;
  const std::string window = absl::StrCat(
      R"("start":)", lo + span / 100 * 45, R"(,"end":)", lo + span / 100 * 55);
  const std::string body =
      absl::StrReplaceAll(kShapes[shape], {{"WINDOW", window}});
  absl::StatusOr<InfluencersRequest> request = ParseBodyRequest(job_id, body);
  if (!request.ok()) std::abort();
  return *request;
}

}  // namespace clout

#endif  // CLOUT_BENCH_SHAPES_H_
