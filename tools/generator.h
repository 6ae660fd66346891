// A deterministic generator of synthetic result dumps, for tests,
// benchmarks and `clout generate`.
//
// The same options always produce the same bytes (on any platform: the
// generator uses its own random number generator and formatting). The dump
// is NDJSON of result documents as Elasticsearch stores them:
//   - each job has its own bucket span (300, 600, 900 or 3600 s) and a few
//     influencer fields of different cardinalities (kpi_indicator: 8 values,
//     host: 64, client.ip: 512, user: 4096);
//   - timestamps sit on bucket boundaries; each bucket holds a handful of
//     influencer results with distinct field/value pairs;
//   - scores are skewed low with rare high ones; initial_influencer_score is
//     near influencer_score; probabilities are small;
//   - only a job's latest bucket holds interim results;
//   - jobs are interleaved bucket by bucket;
//   - with `mixed`, bucket and record results are interleaved and about one
//     influencer in twenty has an ISO 8601 timestamp string.
//
// Thread-safe (no shared state).
#ifndef CLOUT_TOOLS_GENERATOR_H_
#define CLOUT_TOOLS_GENERATOR_H_

#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"

namespace clout {

struct GeneratorOptions {
  uint64_t records = 1000;  // influencer results, over all jobs
  // Jobs "job-0", "job-1", ...; must be >= 1. Jobs beyond `records` would
  // get no result and are left out (at most `records` jobs are written).
  int jobs = 1;
  uint64_t seed = 1;
  bool mixed = false;
  // Time of every job's first bucket, epoch ms. The timestamps run from
  // here for at most records * 3600 s (spans are at most an hour): keep
  // them within the loader's range (dates.h kMaxEpochMillis).
  int64_t start_millis = 1451606400000;  // 2016-01-01T00:00:00Z
};

// Writes the dump to `sink` in pieces of at most about 1 MiB.
void GenerateDump(const GeneratorOptions& options,
                  absl::FunctionRef<void(absl::string_view)> sink);

// Returns the whole dump as one string.
std::string GenerateDumpString(const GeneratorOptions& options);

}  // namespace clout

#endif  // CLOUT_TOOLS_GENERATOR_H_
