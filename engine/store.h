// InfluencerStore: the in-memory home of influencer results, and the entry
// point of the Get Influencers query.
//
// Thread safety: an InfluencerStore is safe for concurrent use from multiple
// threads without external synchronisation. Queries never block writes and
// writes never block queries for longer than a pointer swap. Every change
// is a MutationBatch (mutation.h) applied by Apply(), and therefore every
// load in loader.h: batches are applied one at a time, in the order they
// reach the store's writer thread, each with the next generation. A query
// sees the store either entirely before or entirely after any batch, never
// in between: each query runs on the version that was current when it
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

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/executor.h"
#include "engine/mutation.h"
#include "engine/request.h"
#include "engine/columns.h"

namespace clout {

struct StoreOptions {
  // Largest from + size a query may ask for (Elasticsearch's
  // index.max_result_window). Must be >= 0.
  int64_t max_result_window = 10000;
  // The value of "now" in date math, in epoch milliseconds. Defaults to the
  // system clock. Called once per query that uses "now"; must be thread-safe.
  std::function<int64_t()> now_millis;
  // If set, every batch is appended to this log inside the commit and made
  // visible only once WaitDurable says it is durable (mutation.h). Shared
  // so that the caller may keep a handle; the store calls it from its
  // writer thread only.
  std::shared_ptr<MutationLog> log;
  // A write to a job adds a segment of the batch's rows and marks the rows
  // it replaces or deletes, rather than copying the job: its cost is the
  // batch's. Past max_delta_segments - max(max_delta_segments / 8, 1)
  // delta segments (max_delta_segments >= 1), the neighbouring deltas holding the
  // fewest rows (half of the most, at least 2) are merged into one; once
  // the deltas' rows plus the base segment's deleted rows exceed
  // `merge_ratio` times the base's rows, or (outside a replay, and from
  // 4,096 deleted rows on) the deleted rows of all segments exceed
  // merge_ratio / 4 of the rows they store (deleted rows cost memory until
  // merged away: at the default, about 6%, plus those deleted while the
  // merge runs; a job taking updates faster than a whole-job merge of it
  // takes then merges nearly all the time), the whole job is merged into
  // one segment again (> 0). Queries answer the
  // same either way; each segment and deleted row costs them a little.
  size_t max_delta_segments = 16;
  double merge_ratio = 0.25;
  // Merges run off the commit path: the writer thread hands the segments
  // to merge (the whole job, or a window of neighbouring deltas) to a
  // merge task and goes on applying batches; once the task has built the
  // merged segment (and its query and identity indexes), the writer
  // publishes it as one more version, with the same generation and the
  // same answers, carrying over the rows deleted meanwhile. A job may have
  // two merges at a time: while one runs, other deltas may be merged by
  // another. A window is handed to a task only while the deltas are
  // within max_delta_segments; past it, the fewest neighbouring deltas no
  // merge holds that bring them back within it are merged on the commit
  // path, whatever their size. So a job holds at most
  // max_delta_segments + 1 deltas: the one more is a delta written right
  // after a merge took the newest, and it lasts till that merge is done.
  // (At max_delta_segments = 1 a window of two deltas is always past the
  // limit: deltas are then merged on the commit path, whatever their
  // size, and only whole-job merges run in the background.) A replay
  // (ApplyOptions::replay) merges on the commit path instead.
  //
  // Except: a window of deltas holding at most this many rows is merged on
  // the commit path (16,384 rows take about a millisecond), which keeps
  // the deltas few at little cost.
  size_t inline_merge_rows = 16384;
  // Before the rules above: while two neighbouring deltas no merge holds
  // are such that the newer has at least as many rows as the older, the
  // newest such pair is merged (on the commit path up to
  // inline_merge_rows rows in all per commit, the rest at the next one;
  // a larger pair in the background, while the job has a merge slot and
  // is within max_delta_segments; in a replay, which merges
  // on the commit path, large pairs are left to the rules above). Deltas then shrink from
  // the oldest to the newest, like a binary counter's bits, so a job
  // written in equal batches holds about log2(its deltas' rows / a
  // batch's rows) of them, half that on average, for about twice the
  // merge work of the rules above alone. False: the rules above only
  // (tests that need deltas to stay as written).
  bool merge_growing_deltas = true;
  // Runs one merge task. Null: the store's own merge threads, two tasks
  // at a time. A supplied executor may run a task on any thread, at any
  // time, even after the store is gone (the task then does its work and
  // drops it); a task never run leaves WaitForMerges() waiting.
  std::function<void(std::function<void()>)> merge_executor;
};

struct ApplyOptions {
  // Up to this many of the batch's jobs are merged at once (the result is
  // the same).
  int threads = 1;
  // A replay of many batches (a log's): jobs are merged back into one
  // segment less often (merge_ratio at least 1), and without building
  // their query indexes (sort orders, the time index): the first query or
  // WarmIndexes() does. The results are the same.
  bool replay = false;
  // Whether the result lists each item of a kBulk batch
  // (MutationResult::items). False leaves `items` empty and spares their
  // memory (a replay needs only the generation); the store changes the
  // same either way, _seq_no values included.
  bool item_results = true;
};

class InfluencerStore {
 public:
  explicit InfluencerStore(StoreOptions options = StoreOptions());
  InfluencerStore(const InfluencerStore&) = delete;
  InfluencerStore& operator=(const InfluencerStore&) = delete;

  // Stops the writer thread after the batches already submitted.
  ~InfluencerStore();

  // Applies `batch` atomically (mutation.h describes the two modes) and
  // returns what it did once it is visible to queries (and, with
  // StoreOptions::log, durable). Consumes the batch.
  //
  // Identity: an influencer result is identified, as in Elasticsearch, by
  // (job_id, timestamp, bucket_span, influencer_field_name,
  // influencer_field_value). A result whose identity is stored replaces the
  // stored one and takes the newest ingest position; in a kLoad batch an
  // identical one changes nothing. In a kLoad batch the last occurrence of
  // an identity wins first (it takes that last position, and each earlier
  // one counts as replaced, even if identical), then the survivors meet the
  // stored results: so a dump holding a, b, a again leaves b, a, while
  // loading a, b and then a leaves a, b. New identities are appended in
  // batch order.
  //
  // Errors, with the store unchanged by this batch: a kLoad batch holding
  // a create (400 illegal_argument_exception) or a DeleteJob of an unknown
  // job (404 resource_not_found_exception); the log's error if Append
  // failed (this batch only) or WaitDurable failed (MutationLog), after
  // which every later Apply fails with it too; 500 `exception` if applying
  // it threw (out of memory; with a log, every later Apply fails too, as
  // the log holds the batch).
  // Item failures of a kBulk batch are items, not errors.
  //
  // Blocks the calling thread until the batch is applied; the work runs on
  // the store's writer thread (started by the first Apply), which applies
  // the batches waiting at the time as one group: one WaitDurable, one
  // published version.
  absl::StatusOr<MutationResult> Apply(MutationBatch batch,
                                       ApplyOptions options = {});

  // Apply() without waiting: the future holds what Apply would return.
  std::future<absl::StatusOr<MutationResult>> Submit(
      MutationBatch batch, ApplyOptions options = {});

  // Removes `job_id` and all its results (a kLoad batch holding
  // DeleteJob). Returns NotFound (404 resource_not_found_exception) if the
  // job is unknown, leaving the store unchanged.
  absl::Status DeleteJob(absl::string_view job_id);

  // Registers `job_id` as a known job with no results (if it is not known
  // already), as creating the job in Elasticsearch would.
  void RegisterJob(absl::string_view job_id);

  // Makes `version` (a snapshot's: storage/snapshot.h) the store's
  // current version, generation and _seq_no included, as if the batches
  // that made it had been applied here. Only on a store that has been
  // given no batch yet: otherwise FailedPrecondition (400
  // illegal_argument_exception), the store unchanged. `version` must be
  // well formed (the snapshot reader checks it). Thread-safe.
  absl::Status Restore(std::shared_ptr<const StoreVersion> version);

  // The current version: every job's results after the last applied
  // batch. Never null. Holding it keeps its data alive. Thread-safe.
  std::shared_ptr<const StoreVersion> Current() const;

  // Builds, if not built yet, the indexes every query of `job_id` uses
  // (executor.h's WarmIndexes), so that a service takes traffic without
  // the first queries paying for them. NotFound (404
  // resource_not_found_exception) for an unknown job. Thread-safe.
  absl::Status WarmIndexes(absl::string_view job_id) const;

  // Answers the Get Influencers query of spec get-influencers.md on the
  // current version. Returns the page, or an error in Elasticsearch's shape
  // (error.h): 404 resource_not_found_exception for an unknown job, 400
  // search_phase_execution_exception for a bad date, an unknown sort field
  // or a result window beyond max_result_window. Leaves the store unchanged.
  absl::StatusOr<InfluencersPage> GetInfluencers(
      const InfluencersRequest& request) const;

  // Blocks until every merge started so far (StoreOptions) is published,
  // or dropped because its job was replaced or deleted meanwhile; merges
  // started later are not waited for. Loads (loader.h) call it before they return, so that a
  // loaded store is queried as merged. Thread-safe; never call it from a
  // merge executor's only thread.
  void WaitForMerges();

  const StoreOptions& options() const { return options_; }

  // Current time for date math, from options().now_millis or the system
  // clock.
  int64_t NowMillis() const;

 private:
  struct Pending {
    MutationBatch batch;
    ApplyOptions options;
    std::promise<absl::StatusOr<MutationResult>> done;
  };
  struct PendingMerge;
  struct FinishedMerge;
  struct MergeInbox;
  void WriterLoop();
  void MergerLoop();
  // Registers a background merge of segments [from, to) of `job`, so
  // that later batches record the rows they delete from them (writer
  // thread).
  void RegisterMerge(const std::string& job_id,
                     const std::shared_ptr<const JobResults>& job, size_t from,
                     size_t to);
  // Drops a merge registered and not started, or not to be fitted
  // (writer thread).
  void ForgetMerge(const PendingMerge* merge);
  // Hands the merges registered since the last call to merge tasks if
  // their version was published; else forgets them (writer thread).
  void StartMerges(bool published);
  // Publishes the merges finished so far (writer thread).
  void InstallMerges(std::vector<FinishedMerge> finished);
  // Applies `batch` onto `*version` (replacing it) without publishing.
  absl::StatusOr<MutationResult> ApplyTo(
      MutationBatch& batch, const ApplyOptions& options,
      std::shared_ptr<const StoreVersion>* version);
  void Publish(std::shared_ptr<const StoreVersion> version);

  StoreOptions options_;
  // std::mutex rather than absl::Mutex: ThreadSanitizer understands it
  // without an instrumented abseil.
  mutable std::mutex version_mu_;
  std::shared_ptr<const StoreVersion> version_ ABSL_GUARDED_BY(version_mu_);

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  std::thread writer_;  // started by the first Submit, under queue_mu_
  // Set (by the writer thread only) once the log failed to sync, or holds
  // a batch that could not be applied: writes refused.
  absl::Status log_failure_;
  // Whether the batch being applied is in the log (writer thread only).
  bool logged_unapplied_ = false;
  // Batches of the last group (writer thread only).
  size_t last_group_size_ = 0;

  // Background merges, by job id, oldest first (writer thread only).
  absl::flat_hash_map<std::string, std::vector<std::unique_ptr<PendingMerge>>>
      pending_merges_;
  // Merges built and waiting for the writer to publish them.
  std::vector<FinishedMerge> finished_merges_ ABSL_GUARDED_BY(queue_mu_);
  // Merges registered by the group being applied (writer thread only).
  std::vector<PendingMerge*> group_merges_;
  // Ids of the merges started and not yet published or dropped.
  std::set<uint64_t> outstanding_merges_ ABSL_GUARDED_BY(queue_mu_);
  uint64_t last_merge_id_ ABSL_GUARDED_BY(queue_mu_) = 0;
  std::condition_variable merges_cv_;
  // How merge tasks reach this store; cut off when it is destroyed.
  std::shared_ptr<MergeInbox> inbox_;
  // The store's own merge threads (without StoreOptions::merge_executor):
  // up to kMergeThreads, each started when a merge finds the others busy.
  static constexpr size_t kMergeThreads = 2;
  std::mutex merger_mu_;
  std::condition_variable merger_cv_;
  std::deque<std::function<void()>> merge_tasks_ ABSL_GUARDED_BY(merger_mu_);
  bool merger_stopping_ ABSL_GUARDED_BY(merger_mu_) = false;
  size_t idle_mergers_ ABSL_GUARDED_BY(merger_mu_) = 0;
  // Added under merger_mu_; joined by the destructor once no merge can
  // start.
  std::vector<std::thread> mergers_;
};

}  // namespace clout

#endif  // CLOUT_ENGINE_STORE_H_
