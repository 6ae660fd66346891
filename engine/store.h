// InfluencerStore: the in-memory home of influencer results, and the entry
// point of the Get Influencers query.
//
// Thread safety: an InfluencerStore is safe for concurrent use from multiple
// threads without external synchronisation. Queries never block loads and
// loads never block queries for longer than a pointer swap. Commits
// (Commit(), and therefore every load in loader.h) are serialised. A query
// sees the store either entirely before or entirely after any commit, never
// in between: each query runs on the snapshot that was current when it
// started.
//
//   clout::InfluencerStore store;
//   absl::StatusOr<clout::LoadReport> report =
//       clout::LoadFile(store, "data/it_ops_new_kpi.ndjson", {});
//   clout::InfluencersRequest request;
//   request.job_id = "it_ops_new_kpi";
//   absl::StatusOr<clout::InfluencersPage> page = store.GetInfluencers(request);
#ifndef CLOUT_ENGINE_STORE_H_
#define CLOUT_ENGINE_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/executor.h"
#include "engine/interner.h"
#include "engine/request.h"
#include "engine/snapshot.h"

namespace clout {

struct StoreOptions {
  // Largest from + size a query may ask for (Elasticsearch's
  // index.max_result_window). Must be >= 0.
  int64_t max_result_window = 10000;
  // The value of "now" in date math, in epoch milliseconds. Defaults to the
  // system clock. Called once per query that uses "now"; must be thread-safe.
  std::function<int64_t()> now_millis;
};

// One influencer result as loaded, before it enters the store.
struct InfluencerFields {
  absl::string_view field_name;
  absl::string_view field_value;
  int64_t timestamp = 0;  // epoch milliseconds
  double influencer_score = 0.0;
  double initial_influencer_score = 0.0;
  double probability = 0.0;
  int64_t bucket_span = 0;  // seconds
  bool is_interim = false;
};

// An influencer result named the way Elasticsearch names its document:
// "<job_id>_influencer_<timestamp>_<bucket_span>_<field_name>_<hash>_<length>",
// where hash and length are Java's String.hashCode() and length() of the
// influencer field value (UTF-16 code units).
struct InfluencerResultId {
  std::string job_id;
  int64_t timestamp = 0;
  int64_t bucket_span = 0;
  std::string field_name;
  int32_t value_hash = 0;
  int32_t value_length = 0;
};

// Parses an Elasticsearch influencer document _id. Returns nullopt if `id`
// does not have that form (other result types' ids, say). The job id is
// the text before the first "_influencer_" after which the rest has the
// form <timestamp>_<bucket_span>_<field name>_<hash>_<length> (a job id may
// contain "_influencer_" itself). Pure; thread-safe.
std::optional<InfluencerResultId> ParseInfluencerResultId(absl::string_view id);

// Java's String.hashCode() of the UTF-16 form of `utf8`, and its length in
// UTF-16 code units (invalid UTF-8 bytes count as one unit each). Pure.
int32_t JavaStringHash(absl::string_view utf8, int32_t* utf16_length);

// Results staged for one commit. Nothing in a batch is visible to queries
// until InfluencerStore::Commit(). A batch is single-threaded: it is not safe
// to use one batch from several threads.
class IngestBatch {
 public:
  IngestBatch();
  // A moved-from batch may only be destroyed or assigned to.
  IngestBatch(IngestBatch&&) = default;
  IngestBatch& operator=(IngestBatch&&) = default;

  // Makes `job_id` known to the store at commit, even if it brings no
  // influencer results (as a document of another result type does).
  void RegisterJob(absl::string_view job_id);

  // Stages one influencer result of `job_id`. Copies the strings. `row`
  // must be what the loader stages: finite doubles, a timestamp within
  // [kMinEpochMillis, kMaxEpochMillis] (dates.h), bucket_span >= 0, UTF-8
  // strings. Nothing here checks it: other rows give unspecified query
  // results (a NaN score sorts differently by each strategy). A job holds
  // fewer than 2^32 - 1 rows (row numbers are 32-bit).
  void AddInfluencer(absl::string_view job_id, const InfluencerFields& row);

  // One job's staged rows (defined below).
  struct JobRows;

  // A handle to `job_id`'s staged rows, for the overloads below that skip
  // finding the job by name (the loader keeps one per recent job). Creates
  // the rows if the batch has none yet: that alone stages no row and makes
  // no job known to the store at commit (job_ids() does list the job).
  // Valid until the batch is destroyed, moved from, or Append()ed to
  // another batch.
  JobRows* Rows(absl::string_view job_id) { return &RowsOf(job_id); }

  // AddInfluencer(job_id, row) for the job of `rows` (from Rows()).
  void AddInfluencer(JobRows* rows, const InfluencerFields& row);

  // A hint, with no observable effect: a row of the job of `rows` (from
  // Rows()) with this field value may be staged soon. Starts loading what
  // AddInfluencer() will look up for it, so that reading the rest of the
  // document hides that latency. Changes nothing staged.
  void PrefetchFieldValue(const JobRows* rows,
                          absl::string_view field_value) const;

  // Stages the deletion of the result `id` names (a _bulk delete action):
  // at commit it removes the stored result and any result staged before
  // this call; results staged after it are kept. Like Elasticsearch's _id,
  // `id` names the value by its Java hash and length: stored values whose
  // hashes collide ("Aa" and "BB") are removed together, where upserts tell
  // them apart (Elasticsearch would hold one document for both).
  void DeleteInfluencer(const InfluencerResultId& id);

  // Moves everything `other` staged to the end of this batch, as if its
  // calls had been made on this batch after this batch's own: rows keep
  // their order (so the later of two equal results still wins), deletions
  // keep their place among the rows. Copies `other`'s dictionary strings
  // (not its rows' strings one by one). `other` is left empty but valid.
  // Used to merge batches parsed in parallel.
  void Append(IngestBatch&& other);

  // Number of influencer results staged.
  size_t influencers() const { return influencers_; }

  // When set, the commit drops every stored result of each job this batch
  // names (by rows or RegisterJob) before adding the batch's rows: the batch
  // replaces those jobs wholesale. Default false: the batch upserts.
  void set_replace_jobs(bool replace) { replace_jobs_ = replace; }
  bool replace_jobs() const { return replace_jobs_; }
  // Job ids the batch staged anything for (rows, RegisterJob, deletions)
  // or handed a Rows() handle for, in first-seen order.
  const std::vector<std::string>& job_ids() const { return job_order_; }
  // Approximate heap bytes held by the batch.
  size_t MemoryUsage() const;

  // One job's staged rows (the store's commit reads these; not for users).
  struct JobRows {
    InfluencerColumns columns;  // codes are batch-local
    std::vector<absl::string_view> strings;
    StringInterner string_codes;  // indexes `strings`
    std::vector<int64_t> bucket_spans;
    // Staged deletions, each with the number of rows staged before it.
    std::vector<std::pair<InfluencerResultId, size_t>> deletes;
    // Named by a document or RegisterJob (not only by deletions): the job
    // becomes known at commit.
    bool named = false;
    // The previous row's field name: consecutive rows often share it.
    absl::string_view last_name;
    uint32_t last_name_code = UINT32_MAX;
  };

 private:
  friend class InfluencerStore;
  JobRows& RowsOf(absl::string_view job_id);
  uint32_t Intern(JobRows& rows, absl::string_view s);

  std::shared_ptr<StringArena> arena_;
  absl::flat_hash_map<std::string, std::unique_ptr<JobRows>> jobs_;
  std::vector<std::string> job_order_;
  // Jobs of recent rows (dumps interleave a few jobs): found without
  // hashing the job id. Replaced in turn; unused entries hold null.
  static constexpr size_t kRecentJobs = 4;
  std::pair<std::string, JobRows*> recent_[kRecentJobs];
  size_t recent_next_ = 0;
  size_t influencers_ = 0;
  bool replace_jobs_ = false;
};

// What a commit did to the stored influencer results.
struct CommitStats {
  uint64_t added = 0;      // results whose identity was new to the store
  uint64_t replaced = 0;   // stored (or earlier staged) results superseded
  uint64_t deleted = 0;    // stored results removed (replace_jobs, _bulk deletes)
  uint64_t unchanged = 0;  // results re-loaded identical to what was stored
  uint64_t delete_misses = 0;  // staged deletions that matched nothing
};

class InfluencerStore {
 public:
  explicit InfluencerStore(StoreOptions options = StoreOptions());
  InfluencerStore(const InfluencerStore&) = delete;
  InfluencerStore& operator=(const InfluencerStore&) = delete;

  // Makes every row and job of `batch` visible at once. Consumes the batch.
  // Never fails: all validation happens before rows are staged.
  //
  // Identity: an influencer result is identified, as in Elasticsearch, by
  // (job_id, timestamp, bucket_span, influencer_field_name,
  // influencer_field_value). A staged result whose identity is already
  // stored replaces the stored one and takes the newest ingest position
  // (as a re-indexed document moves to the end of Elasticsearch's document
  // order), unless it is identical in every field, in which case the stored
  // result stays where it is (an identical re-load changes nothing). A
  // batch is applied as a unit: first, within it, the last occurrence of
  // an identity wins (it takes that last position, and each earlier one
  // counts as replaced, even if identical), then the survivors meet the
  // stored results as above. So a dump holding a, b, a again leaves b, a,
  // while loading a, b and then a leaves a, b. New identities are
  // appended in batch order. With batch.replace_jobs() every stored result
  // of the batch's jobs is dropped first. Returns what changed. With
  // `threads` > 1, up to that many of the batch's jobs are merged at once
  // (the result is the same).
  CommitStats Commit(IngestBatch batch, int threads = 1);

  // Removes `job_id` and all its results, as deleting the job in
  // Elasticsearch would: afterwards queries for it answer 404. Returns
  // NotFound (404 resource_not_found_exception) if the job is unknown, and
  // leaves the store unchanged then. Atomic like Commit().
  absl::Status DeleteJob(absl::string_view job_id);

  // Registers `job_id` as a known job with no results (if it is not known
  // already), as creating the job in Elasticsearch would.
  void RegisterJob(absl::string_view job_id);

  // The current snapshot. Never null. Holding it keeps its data alive.
  std::shared_ptr<const StoreSnapshot> Snapshot() const;

  // Answers the Get Influencers query of spec get-influencers.md on the
  // current snapshot. Returns the page, or an error in Elasticsearch's shape
  // (error.h): 404 resource_not_found_exception for an unknown job, 400
  // search_phase_execution_exception for a bad date, an unknown sort field
  // or a result window beyond max_result_window. Leaves the store unchanged.
  absl::StatusOr<InfluencersPage> GetInfluencers(
      const InfluencersRequest& request) const;

  const StoreOptions& options() const { return options_; }

  // Current time for date math, from options().now_millis or the system
  // clock.
  int64_t NowMillis() const;

 private:
  StoreOptions options_;
  // std::mutex rather than absl::Mutex: ThreadSanitizer understands it
  // without an instrumented abseil.
  std::mutex commit_mu_;  // serialises Commit, RegisterJob and DeleteJob
  mutable std::mutex snapshot_mu_;
  std::shared_ptr<const StoreSnapshot> snapshot_ ABSL_GUARDED_BY(snapshot_mu_);
};

}  // namespace clout

#endif  // CLOUT_ENGINE_STORE_H_
