// Shared helpers of the libFuzzer targets in fuzz/: invariant checks that
// abort (so libFuzzer records a crash), a query runner that checks the fast
// executor against the reference one and writes every response, and a
// canonical dump of a store's contents for comparing two loads.
//
// Header-only: each fuzzer is its own binary (see fuzz/run.sh).
#ifndef CLOUT_FUZZ_FUZZ_UTIL_H_
#define CLOUT_FUZZ_FUZZ_UTIL_H_

#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "engine/executor.h"
#include "engine/reference_executor.h"
#include "engine/request.h"
#include "engine/response.h"
#include "engine/columns.h"
#include "engine/store.h"
#include "simdjson.h"

namespace clout_fuzz {

// "now" of every fuzzed query: 2016-02-09T00:00:00Z, as tests/golden.
inline constexpr int64_t kNowMillis = 1454976000000;

[[noreturn]] inline void Fail(const char* format, ...) {
  std::fprintf(stderr, "\n==== clout fuzz invariant failed: ");
  va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  va_end(args);
  std::fprintf(stderr, "\n");
  std::fflush(stderr);
  std::abort();
}

#define CLOUT_FUZZ_CHECK(cond, ...)                                         \
  do {                                                                      \
    if (!(cond)) {                                                          \
      ::clout_fuzz::Fail("%s:%d: CHECK(%s): %s", __FILE__, __LINE__, #cond, \
                         ::absl::StrCat(__VA_ARGS__).c_str());              \
    }                                                                       \
  } while (0)

inline bool IsValidUtf8(absl::string_view s) {
  return simdjson::validate_utf8(s.data(), s.size());
}

// Checks that `json` is one well-formed JSON value (simdjson's DOM parser
// validates all of it, UTF-8 included).
inline void CheckValidJson(absl::string_view json, const char* what) {
  static simdjson::dom::parser* parser = new simdjson::dom::parser();
  simdjson::padded_string padded(json.data(), json.size());
  simdjson::dom::element element;
  auto error = parser->parse(padded).get(element);
  CLOUT_FUZZ_CHECK(error == simdjson::SUCCESS, what, " is not valid JSON (",
                   simdjson::error_message(error), "): ", json.substr(0, 2000));
}

// Writes the error envelope of a failed status and checks it. `utf8_input`:
// everything the status may quote was valid UTF-8, so the envelope must be
// valid JSON.
inline void CheckErrorJson(const absl::Status& status, bool utf8_input) {
  CLOUT_FUZZ_CHECK(!status.ok(), "CheckErrorJson on an OK status");
  for (bool pretty : {false, true}) {
    std::string json = clout::ErrorJson(status, pretty);
    if (utf8_input) CheckValidJson(json, "ErrorJson");
  }
}

inline uint64_t Bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, sizeof b);
  return b;
}

inline std::string Describe(const clout::Influencer& r) {
  return absl::StrCat("{", r.job_id, " ", r.influencer_field_name, "=",
                      r.influencer_field_value, " ts=", r.timestamp,
                      " span=", r.bucket_span, " score=", r.influencer_score,
                      " init=", r.initial_influencer_score,
                      " p=", r.probability, " interim=", r.is_interim, "}");
}

inline bool SameInfluencer(const clout::Influencer& a,
                           const clout::Influencer& b) {
  return a.job_id == b.job_id &&
         a.influencer_field_name == b.influencer_field_name &&
         a.influencer_field_value == b.influencer_field_value &&
         Bits(a.influencer_score) == Bits(b.influencer_score) &&
         Bits(a.initial_influencer_score) == Bits(b.initial_influencer_score) &&
         Bits(a.probability) == Bits(b.probability) &&
         a.bucket_span == b.bucket_span && a.is_interim == b.is_interim &&
         a.timestamp == b.timestamp;
}

inline void CheckSamePage(const clout::InfluencersPage& a,
                          const clout::InfluencersPage& b, const char* what) {
  CLOUT_FUZZ_CHECK(a.count == b.count, what, ": count ", a.count, " vs ",
                   b.count);
  CLOUT_FUZZ_CHECK(a.influencers.size() == b.influencers.size(), what,
                   ": page size ", a.influencers.size(), " vs ",
                   b.influencers.size());
  for (size_t i = 0; i < a.influencers.size(); ++i) {
    CLOUT_FUZZ_CHECK(SameInfluencer(a.influencers[i], b.influencers[i]), what,
                     ": row ", i, " differs: ", Describe(a.influencers[i]),
                     " vs ", Describe(b.influencers[i]));
  }
}

// Runs `request` on `store` several ways (InfluencerStore::GetInfluencers,
// and ResolveQuery followed by ExecuteQuery with each IndexUse and by
// ReferenceExecuteQuery), checks that they agree and that the page is
// consistent with the request, and writes the response (or the error) in every
// output mode. `utf8_input`: the request's strings are valid UTF-8 (see
// CheckErrorJson).
inline void RunQuery(const clout::InfluencerStore& store,
                     const clout::InfluencersRequest& request,
                     bool utf8_input) {
  absl::StatusOr<clout::InfluencersPage> page = store.GetInfluencers(request);

  std::shared_ptr<const clout::StoreVersion> snapshot = store.Current();
  clout::QueryContext context;
  context.max_result_window = store.options().max_result_window;
  context.now_millis = [] { return kNowMillis; };
  absl::StatusOr<clout::ResolvedQuery> query =
      clout::ResolveQuery(*snapshot, request, context);
  CLOUT_FUZZ_CHECK(page.ok() == query.ok(), "GetInfluencers ",
                   page.status().ToString(), " vs ResolveQuery ",
                   query.status().ToString());
  if (!page.ok()) {
    CLOUT_FUZZ_CHECK(page.status() == query.status(),
                     "errors differ: ", page.status().ToString(), " vs ",
                     query.status().ToString());
    CheckErrorJson(page.status(), utf8_input);
    return;
  }
  // Every strategy of the fast executor (scan, cached sort order built now
  // or on reuse, each way of paging a filtered query) agrees with the naive
  // one.
  clout::InfluencersPage reference = clout::ReferenceExecuteQuery(*query);
  CheckSamePage(*page, reference, "GetInfluencers vs ReferenceExecuteQuery");
  CheckSamePage(clout::ExecuteQuery(*query, clout::IndexUse::kNever), reference,
                "ExecuteQuery(kNever) vs ReferenceExecuteQuery");
  CheckSamePage(clout::ExecuteQuery(*query, clout::IndexUse::kAuto), reference,
                "ExecuteQuery(kAuto) vs ReferenceExecuteQuery");
  CheckSamePage(clout::ExecuteQuery(*query, clout::IndexUse::kAlways),
                reference, "ExecuteQuery(kAlways) vs ReferenceExecuteQuery");
  CheckSamePage(clout::ExecuteQuery(*query, clout::IndexUse::kAlwaysWalk),
                reference, "ExecuteQuery(kAlwaysWalk) vs ReferenceExecuteQuery");
  CheckSamePage(clout::ExecuteQuery(*query, clout::IndexUse::kAlwaysScanWindow),
                reference,
                "ExecuteQuery(kAlwaysScanWindow) vs ReferenceExecuteQuery");
  CheckSamePage(clout::ExecuteQuery(*query, clout::IndexUse::kAlwaysBlocks),
                reference, "ExecuteQuery(kAlwaysBlocks) vs ReferenceExecuteQuery");
  CheckSamePage(clout::ExecuteQuery(*query, clout::IndexUse::kAlwaysShortWalk),
                reference,
                "ExecuteQuery(kAlwaysShortWalk) vs ReferenceExecuteQuery");

  // The page is the requested slice of the matches, and every row matches.
  const int64_t expected_rows = std::max<int64_t>(
      0, std::min<int64_t>(request.size, page->count - request.from));
  CLOUT_FUZZ_CHECK(
      static_cast<int64_t>(page->influencers.size()) == expected_rows,
      "page has ", page->influencers.size(), " rows, expected ", expected_rows,
      " (count ", page->count, ")");
  for (const clout::Influencer& row : page->influencers) {
    CLOUT_FUZZ_CHECK(row.job_id == request.job_id, "row of another job");
    if (query->start) CLOUT_FUZZ_CHECK(row.timestamp >= *query->start, "start");
    if (query->end) CLOUT_FUZZ_CHECK(row.timestamp < *query->end, "end");
    if (query->min_score) {
      CLOUT_FUZZ_CHECK(row.influencer_score >= *query->min_score, "score");
    }
    if (query->exclude_interim) CLOUT_FUZZ_CHECK(!row.is_interim, "interim");
  }

  for (int mode = 0; mode < 4; ++mode) {
    clout::OutputOptions options;
    options.pretty = mode & 1;
    options.human = mode & 2;
    std::string json = clout::InfluencersJson(*page, options);
    CheckValidJson(json, "InfluencersJson");
  }
}

// A canonical text of everything a store holds: jobs (sorted), each job's
// rows in ingest order, and the sortable field names (sorted). Two stores
// with the same dump answer every query the same way.
inline std::string DumpStore(const clout::InfluencerStore& store) {
  std::shared_ptr<const clout::StoreVersion> snapshot = store.Current();
  std::vector<std::string> ids;
  for (const auto& entry : snapshot->jobs) ids.push_back(entry.first);
  std::sort(ids.begin(), ids.end());
  std::string out;
  for (const std::string& id : ids) {
    const std::shared_ptr<const clout::JobResults> plain =
        clout::MaterializeJob(snapshot->jobs.at(id));
    const clout::JobResults& job = *plain;
    absl::StrAppend(&out, "job ", id.size(), ":", id, " rows ", job.size(),
                    "\n");
    size_t interim = 0;
    for (size_t i = 0; i < job.size(); ++i) {
      const clout::InfluencerColumns& c = job.columns;
      absl::StrAppend(&out, "  ", job.field_name(i).size(), ":",
                      job.field_name(i), " ", job.field_value(i).size(), ":",
                      job.field_value(i), " ts=", c.timestamp[i],
                      " span=", job.bucket_span(i),
                      " s=", Bits(c.influencer_score[i]),
                      " i=", Bits(c.initial_influencer_score[i]),
                      " p=", Bits(c.probability[i]),
                      " interim=", static_cast<int>(c.is_interim[i]), "\n");
      interim += c.is_interim[i] != 0;
    }
    CLOUT_FUZZ_CHECK(interim == job.interim_rows, "job ", id, ": interim_rows ",
                     job.interim_rows, " but ", interim, " interim rows");
  }
  std::vector<std::string> names(snapshot->influencer_field_names.begin(),
                                 snapshot->influencer_field_names.end());
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    absl::StrAppend(&out, "field ", name.size(), ":", name, "\n");
  }
  return out;
}

}  // namespace clout_fuzz

#endif  // CLOUT_FUZZ_FUZZ_UTIL_H_
