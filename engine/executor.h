// The Get Influencers executor: filter, sort and page one job's results.
//
// A query runs in two steps. ResolveQuery() checks a request against a
// snapshot (job exists, dates parse, sort field exists, result window) and
// fixes everything that depends on the moment the query runs. Then an
// executor produces the page: ExecuteQuery() is the fast one used by
// InfluencerStore; ReferenceExecuteQuery() (reference_executor.h) is a
// deliberately naive one that tests compare it against.
//
// All functions are thread-safe: they read the immutable snapshot, and the
// only state they write, each job's SortOrderCache of lazily built orders,
// is guarded by that cache's mutex.
#ifndef CLOUT_ENGINE_EXECUTOR_H_
#define CLOUT_ENGINE_EXECUTOR_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/request.h"
#include "engine/columns.h"

namespace clout {

// One influencer result of a page. The string views point into the
// JobResults that the page holds, so they stay valid as long as the page.
struct Influencer {
  absl::string_view job_id;
  absl::string_view influencer_field_name;
  absl::string_view influencer_field_value;
  double influencer_score = 0.0;
  double initial_influencer_score = 0.0;
  double probability = 0.0;
  int64_t bucket_span = 0;
  bool is_interim = false;
  int64_t timestamp = 0;  // epoch milliseconds
};

// The answer to a Get Influencers request.
struct InfluencersPage {
  // Number of results that match the filters, before paging (exact).
  int64_t count = 0;
  // The requested page, in sort order.
  std::vector<Influencer> influencers;
  // Keeps the strings of `influencers` alive; null when the page is empty.
  std::shared_ptr<const JobResults> job;
};

// What a query sorts on.
enum class SortField {
  kInfluencerScore,
  kInitialInfluencerScore,
  kProbability,
  kBucketSpan,
  kTimestamp,
  kIsInterim,
  kInfluencerFieldName,
  kInfluencerFieldValue,
  kJobId,       // constant within a job: ingest order
  kResultType,  // constant ("influencer"): ingest order
  // A per-influencer field such as `kpi_indicator`: the row's
  // influencer_field_value where its influencer_field_name equals the field,
  // otherwise missing (missing values sort last in both directions).
  kInfluencerField,
};

// A request checked against a snapshot, ready to execute.
struct ResolvedQuery {
  std::shared_ptr<const JobResults> job;
  std::optional<int64_t> start;  // inclusive, epoch ms
  std::optional<int64_t> end;    // exclusive, epoch ms
  std::optional<double> min_score;  // set only when the request's is > 0
  bool exclude_interim = false;
  SortField sort = SortField::kInfluencerScore;
  std::string sort_field_name;  // for kInfluencerField
  bool desc = true;
  int64_t from = 0;
  int64_t size = 100;
};

struct QueryContext {
  int64_t max_result_window = 10000;
  // "now" for date math, epoch ms; called at most once per query. Empty:
  // "now" is 0, the epoch (InfluencerStore sets the real clock).
  std::function<int64_t()> now_millis;
};

// Checks `request` against `snapshot`, in Elasticsearch's order: unknown job
// (404 resource_not_found_exception "No known job with id '<id>'"), then
// start/end (400, root cause parse_exception), then the sort field (400, root
// cause query_shard_exception "No mapping found for [f] in order to sort
// on"), then from + size against the result window (400, root cause
// illegal_argument_exception).
absl::StatusOr<ResolvedQuery> ResolveQuery(const StoreVersion& snapshot,
                                           const InfluencersRequest& request,
                                           const QueryContext& context);

// Whether ExecuteQuery may use (and build) the job's cached indexes: a sort
// order per sort, and the TimeIndex (time_index.h) that counts filtered
// queries.
enum class IndexUse {
  kAuto,    // use an order once a sort has been asked for twice
  kNever,   // always scan and partially sort (tests)
  kAlways,  // build the order on first use (tests, benchmarks)
  // As kAlways, but force one way of producing a filtered page instead of
  // choosing by estimated cost (tests compare all of them).
  kAlwaysWalk,
  kAlwaysScanWindow,
  // A score-descending sort with a time window: merge the TimeIndex's
  // blocks of the window (other queries choose as kAlways does).
  kAlwaysBlocks,
  // A page whose count comes from the TimeIndex (a window or threshold)
  // walks the order with a budget of a quarter of the job's rows, then
  // scans the window afresh if the walk runs out (kAuto's fallback, with a
  // budget tests meet often); no blocks, no scan chosen up front. Other
  // queries as kAlways.
  kAlwaysShortWalk,
};

// Runs a resolved query and returns the page (never fails). Ties keep
// ingest order in both directions.
//
// Two strategies, with identical results:
//   - scan: one pass over the job's rows applying the filters, then a
//     bounded partial sort of the matches (never a full sort);
//   - order: once a sort has been asked for again, the job's rows are
//     sorted in that page order once and cached with the job (thread-safe);
//     timestamp sorts use the TimeIndex's time order instead (read
//     backwards group by group when descending), which costs no memory.
//     When the matches are one run of that order (no filter, a threshold
//     on a score order, a window on a timestamp order) the page is read off
//     directly. Otherwise the count comes from the job's TimeIndex, built
//     on first need (window, threshold and exclude_interim in any
//     combination, in polylogarithmic time), and the page either from a
//     walk of the order skipping non-matches or from a scan of the window's
//     rows in time order plus a bounded partial sort, whichever is
//     estimated cheaper. An influencer_score-descending sort with a window
//     can also merge the TimeIndex's blocks of the window (their rows'
//     score ranks, sorted per block), whose cost does not depend on how
//     scores follow time; a walk estimated close to it is tried first with
//     a budget of rows, and the blocks finish a walk that runs out. Other
//     walks chosen over the window's scan also get a budget (four times
//     their estimate plus 1,024 rows, and at least a sixth of the scan's
//     cost, at most the job), and the scan starts afresh after one that
//     runs out: at most about 3x the walk it replaces.
//
// A job of segments (a base plus deltas) runs the query on each segment
// and merges the pages, ties to the earlier segment, skipping deleted rows.
// When every segment's matches are one run of its cached order (no filter,
// a threshold on an influencer_score sort, a window on a timestamp sort),
// the rows before `from` are passed over in strides across the segments
// (about 2 * segments * log2(from / 64) rows compared, plus a check of each
// passed row of a segment with deleted rows) and only the page is merged
// (a run that leads it takes its block before the other runs' next rows
// in O(log block) comparisons); otherwise each segment gives its first
// from + size live matches to the merge, and under a numeric sort a
// segment whose least key cannot reach the page is only counted.
InfluencersPage ExecuteQuery(const ResolvedQuery& query,
                             IndexUse index_use = IndexUse::kAuto);

// Builds, if not built yet, the indexes every query of `job` can use: the
// influencer_score-descending order and the TimeIndex. Loading then
// warming is what a query server does before taking traffic; queries build
// the same indexes lazily otherwise. Thread-safe.
void WarmIndexes(const std::shared_ptr<const JobResults>& job);

// The influencer_score-descending page order of `rows` (a plain segment:
// a JobResults without segments of its own) if a query or WarmIndexes has
// built it, else the one offered by OfferScoreOrder and not yet checked,
// else null. For snapshot files, which keep it. Thread-safe.
std::shared_ptr<const RowOrder> BuiltScoreOrder(
    const std::shared_ptr<const JobResults>& rows);

// Offers `order` (read from a snapshot file) as the influencer_score-
// descending page order of `rows` (a plain segment; else, or if its size
// is not the rows', nothing happens). It is not trusted: the first time a
// query or WarmIndexes needs that order, it is checked (IsScoreOrder: a
// pass, cheaper than the sort) and used if it is the order, else the order
// is built as if none had been offered. O(1); thread-safe.
void OfferScoreOrder(const std::shared_ptr<const JobResults>& rows,
                     std::shared_ptr<const RowOrder> order);

// Whether `order` is the influencer_score-descending page order of `rows`
// (a plain segment): each row once, sorted as the executor sorts, ties in
// ingest order. O(rows), reading each row's score at random (prefetched).
// Pure; thread-safe.
bool IsScoreOrder(const std::shared_ptr<const JobResults>& rows,
                  const RowOrder& order);

// Calls on_match(segment, row) for every live row of `query.job` that
// passes its filters (the time window, the score threshold,
// exclude_interim; the sort and the page are ignored), in ingest order:
// the order in which a sort on job_id pages them. `segment` indexes the
// job's segments as JobColumnView (column_view.h) shows them (0 for a
// plain job), `row` that segment's rows (its deleted rows are skipped).
// Reads only; thread-safe.
void ForEachMatchInIngestOrder(
    const ResolvedQuery& query,
    absl::FunctionRef<void(size_t segment, uint32_t row)> on_match);

// WarmIndexes for every job of `snapshot`, up to `threads` jobs at once.
void WarmIndexes(const StoreVersion& snapshot, int threads = 1);

// Calls on_row(row) for every row of the plain job `job` (no segments)
// whose timestamp is `timestamp`, in ingest order. Reads the rows directly
// when they are stored in time order, else through the job's TimeIndex
// (built and cached on first need). Thread-safe.
void ForEachRowAt(const std::shared_ptr<const JobResults>& job,
                  int64_t timestamp,
                  const std::function<void(uint32_t)>& on_row);

// Heap bytes of the indexes currently cached for `job` (sort orders, the
// TimeIndex, the identity index and filter the store builds for writes,
// and a job of segments' deleted-row sets), excluding the columns.
// Thread-safe.
size_t IndexBytes(const JobResults& job);

// IndexBytes by part, summed over a job's segments.
struct IndexMemory {
  size_t warm = 0;          // what WarmIndexes builds: the score order, the
                            // TimeIndex
  size_t identity = 0;      // identity indexes and filters (for writes)
  size_t other_orders = 0;  // sort orders, string ranks and (a job of
                            // segments) records of its segments' orders
                            // that queries built
  size_t deleted = 0;       // deleted-row sets of a job of segments, and
                            // their caches' bitmaps and keys
  size_t total() const { return warm + identity + other_orders + deleted; }
};
// The parts of IndexBytes(job); total() equals it. Thread-safe.
IndexMemory IndexMemoryOf(const JobResults& job);

// Maps a sort field name of spec section 3 to its SortField, or nullopt for
// names that are not fixed result fields (per-influencer fields included).
std::optional<SortField> FixedSortField(absl::string_view name);

}  // namespace clout

#endif  // CLOUT_ENGINE_EXECUTOR_H_
