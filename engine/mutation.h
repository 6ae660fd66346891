// Mutations: the one way results enter, change in and leave a store.
//
// A MutationBatch is an ordered list of operations on influencer results
// and jobs: upsert a result, create a result (only if it does not exist),
// delete a result by its Elasticsearch _id, delete a job, replace a job.
// InfluencerStore::Apply (store.h) applies a batch atomically, gives it the
// next generation, and says what each operation did. The loader, the
// `_bulk` endpoint and the CLI all build batches.
//
// A batch has one of two modes, fixed when it is made:
//  - kLoad, a dump load: the batch is applied as a unit. Repeats of a
//    result within it collapse first (the last occurrence wins), then the
//    survivors meet the stored results; a survivor identical to the stored
//    result changes nothing (it keeps its place and its _version). No
//    per-operation outcome is kept (a dump holds millions); the result
//    carries totals. Apply fails the whole batch, changing nothing, if one
//    operation cannot be applied (DeleteJob of an unknown job).
//  - kBulk, Elasticsearch's `_bulk`: operations apply one after another, as
//    Elasticsearch applies a bulk request's items, and each gets an
//    outcome. An upsert of an existing result answers `updated` and bumps
//    its _version even when the document is identical (Elasticsearch
//    re-indexes it); an item that fails (a create whose result exists, an
//    error recorded by AddError) fails alone.
// Either way a changed result takes the newest ingest position (as a
// re-indexed document moves to the end of Elasticsearch's document order),
// and new results are appended in operation order.
//
// Thread safety: a batch is single-threaded (not safe to use from several
// threads at once); once handed to Apply it belongs to the store.
#ifndef CLOUT_ENGINE_MUTATION_H_
#define CLOUT_ENGINE_MUTATION_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/interner.h"
#include "engine/columns.h"

namespace clout {

// One influencer result as loaded, before it enters the store. A double
// left at its default is 0.0, present; set MissingDouble() (columns.h) for a field
// the document does not have.
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
//
// A result's *identity* is (job_id, timestamp, bucket_span,
// influencer_field_name, influencer_field_value): one stored result per
// identity. An id names an identity up to its value's hash, so one id may
// name several stored results whose values collide ("Aa" and "BB").
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

// The Elasticsearch _id of `job_id`'s result `row` (the form above). Pure.
std::string InfluencerDocumentId(absl::string_view job_id,
                                 const InfluencerFields& row);

// Java's String.hashCode() of the UTF-16 form of `utf8`, and its length in
// UTF-16 code units (invalid UTF-8 bytes count as one unit each). Pure.
int32_t JavaStringHash(absl::string_view utf8, int32_t* utf16_length);

enum class MutationMode { kLoad, kBulk };

// What one operation of a kBulk batch did.
enum class MutationOutcome {
  kCreated,   // a result new to the store (HTTP 201)
  kUpdated,   // an existing result re-written (200)
  kNoop,      // nothing to change (RegisterJob of a known job)
  kDeleted,   // a result or job removed (200)
  kNotFound,  // a delete that matched nothing (404, not an error)
  kError,     // failed alone; see ItemResult::error
};

// "created", "updated", "noop", "deleted", "not_found" or "error": the
// `result` of a `_bulk` item.
absl::string_view MutationOutcomeName(MutationOutcome outcome);

// The outcome of one operation of a kBulk batch.
struct ItemResult {
  MutationOutcome outcome = MutationOutcome::kError;
  // HTTP status of the item: 201 created, 200 updated/deleted/noop, 404
  // not_found, else the error's (error.h's EsStatusCode).
  int status = 0;
  // The result's write count after this operation (Elasticsearch's
  // _version): 1 when created, +1 for each update and for its deletion
  // (created again in the same batch after a deletion, it goes on from
  // there, as within Elasticsearch's gc_deletes window; a later batch
  // starts again at 1). 0 for failed items and job operations.
  uint64_t version = 0;
  // Sequence number of this operation (Elasticsearch's _seq_no), increasing
  // by one per applied operation across the store's life; -1 for a failed
  // item.
  int64_t seq_no = -1;
  // The error of a kError item (an Elasticsearch-shaped Status, error.h).
  absl::Status error;
};

// What a batch did to the stored influencer results, in totals.
struct CommitStats {
  uint64_t added = 0;      // results whose identity was new to the store
  uint64_t replaced = 0;   // stored (or earlier staged) results superseded
  uint64_t deleted = 0;    // stored results removed (deletes, job ops)
  uint64_t unchanged = 0;  // results re-loaded identical to what was stored
  uint64_t delete_misses = 0;  // result deletions that matched nothing
};

// What InfluencerStore::Apply did with a batch.
struct MutationResult {
  // The store's generation after the batch: the previous one plus one.
  uint64_t generation = 0;
  // Sequence number of the batch's first applied operation; the batch's
  // applied operations have consecutive numbers from here.
  int64_t first_seq_no = 0;
  // kBulk: one per operation, in order (kLoad: empty).
  std::vector<ItemResult> items;
  CommitStats stats;
  // Whether any item failed (`_bulk`'s "errors").
  bool errors() const;
};

class MutationBatch {
 public:
  explicit MutationBatch(MutationMode mode = MutationMode::kLoad);
  // A moved-from batch may only be destroyed or assigned to.
  MutationBatch(MutationBatch&&) = default;
  MutationBatch& operator=(MutationBatch&&) = default;

  MutationMode mode() const { return mode_; }

  // Makes `job_id` known to the store, even if it brings no influencer
  // results (as a document of another result type does). No item.
  void RegisterJob(absl::string_view job_id);

  // Upserts one influencer result of `job_id` (Elasticsearch's `index`
  // action). Copies the strings. `row` must be what the loader stages:
  // finite doubles, a timestamp within [kMinEpochMillis, kMaxEpochMillis]
  // (dates.h), bucket_span >= 0, UTF-8 strings. Nothing here checks it:
  // other rows give unspecified query results. A job holds fewer than
  // 2^32 - 1 rows.
  void AddInfluencer(absl::string_view job_id, const InfluencerFields& row);

  // Creates one influencer result (Elasticsearch's `create` action): in a
  // kBulk batch the item fails with 409 version_conflict_engine_exception
  // if the result exists at that point. A kLoad batch holding a create is
  // refused by Apply (400): a dump load has no per-result outcomes.
  void CreateInfluencer(absl::string_view job_id, const InfluencerFields& row);

  // Deletes the result(s) `id` names (a `_bulk` delete action): the stored
  // result and any result upserted earlier in this batch; results upserted
  // after it are kept. Like Elasticsearch's _id, `id` names the value by its
  // Java hash and length: stored values whose hashes collide ("Aa" and
  // "BB") are removed together, where upserts tell them apart.
  void DeleteInfluencer(const InfluencerResultId& id);

  // Deletes `job_id` and all its results, as deleting the job in
  // Elasticsearch would: operations on it earlier in the batch are undone;
  // later ones start a new job. Afterwards queries for it answer 404 unless
  // later operations name it again. An unknown job: a kNotFound item
  // (kBulk), or Apply fails with 404 resource_not_found_exception (kLoad).
  void DeleteJob(absl::string_view job_id);

  // Drops every result of `job_id` (stored or earlier in the batch) and
  // keeps the job known: the batch's later operations on it become its
  // whole content. Outcome kDeleted if it held anything, else kNoop.
  void ReplaceJob(absl::string_view job_id);

  // A document of another result type (a bucket, a record, ...) written
  // under `doc_id`: makes `job_id` known (unless it is empty). Clout keeps
  // no such documents, only their jobs; in a kBulk batch the item answers
  // created (version 1), or updated if the batch wrote `doc_id` before (a
  // later batch answers created again, where Elasticsearch would answer
  // updated).
  void AddOtherResult(absl::string_view job_id, absl::string_view doc_id);

  // A delete action naming a document that is not an influencer result:
  // kBulk answers deleted if the batch wrote `doc_id` before, else
  // not_found. Changes nothing stored.
  void DeleteOtherResult(absl::string_view doc_id);

  // kBulk: records an item that failed before it could be staged (a bad
  // document, an index the caller does not serve), so that items keep the
  // request's order. An OK `error` is recorded as a 500. Ignored by kLoad
  // batches.
  void AddError(absl::Status error);

  // Moves everything `other` staged to the end of this batch, as if its
  // calls had been made on this batch after this batch's own (items too,
  // when this batch is kBulk). `other` must have this batch's mode. Copies
  // `other`'s dictionary strings (not its rows' strings one by one).
  // `other` is left empty but valid. Used to merge batches parsed in
  // parallel.
  void Append(MutationBatch&& other);

  // Makes this batch and `next` (both kBulk) one commit that does exactly
  // what applying this batch and then `next` would do: the same items in
  // order (this batch's, then next's), _version and _seq_no values, and
  // the store's generation advances by the number of batches coalesced.
  // For replaying a log; a coalesced batch is not for logging (its binary
  // form would be one batch). `next` is left empty but valid.
  void Coalesce(MutationBatch&& next);
  // Makes room for `operations` more operations (items, and rows shared
  // among the jobs the batch holds in proportion to their rows so far)
  // so that batches coalesced into this one do
  // not reallocate it as it grows. A hint with no observable effect; the
  // room not used costs address space, not memory, and a commit gives it
  // back. Throws std::bad_alloc like any allocation.
  void Reserve(size_t operations);
  // The number of batches this one stands for (Coalesce): 1 unless
  // coalesced.
  uint64_t generations() const { return generations_; }

  // kLoad only (a kBulk batch ignores it; use ReplaceJob): when set, every
  // job the batch names (by rows or RegisterJob) is replaced wholesale, as
  // if ReplaceJob(job) came first. Default false: upsert.
  void set_replace_jobs(bool replace) { replace_jobs_ = replace; }
  bool replace_jobs() const { return replace_jobs_; }

  // Number of influencer results staged (upserts and creates).
  size_t influencers() const { return influencers_; }
  // Number of operations (kBulk: items, including AddError's).
  size_t operations() const { return operations_; }
  // Job ids the batch staged anything for, in first-seen order.
  const std::vector<std::string>& job_ids() const { return job_order_; }
  // Approximate heap bytes held by the batch.
  size_t MemoryUsage() const;

  // --- For the loader's hot path. -------------------------------------
  // One job's staged operations (internal: defined in store.cc's terms,
  // read only by the store).
  struct JobRows;
  // A handle to `job_id`'s staged rows, for the overloads below that skip
  // finding the job by name (the loader keeps one per recent job). Creates
  // the rows if the batch has none yet: that alone stages nothing. Valid
  // until the batch is destroyed, moved from, or Append()ed elsewhere.
  JobRows* Rows(absl::string_view job_id) { return &RowsOf(job_id); }
  // AddInfluencer(job_id, row) for the job of `rows` (from Rows()).
  void AddInfluencer(JobRows* rows, const InfluencerFields& row);
  // A hint with no observable effect: a row of `rows`' job with this field
  // value may be staged soon, so start loading what AddInfluencer() will
  // look up for it.
  void PrefetchFieldValue(const JobRows* rows,
                          absl::string_view field_value) const;

  // The kinds of operations, in the order items record them.
  enum class OpKind : uint8_t {
    kUpsert, kCreate, kDeleteResult, kDeleteJob, kReplaceJob, kError,
    kOtherResult, kDeleteOther
  };
  // A job-level operation at its place among the job's rows and deletes.
  struct JobOp {
    OpKind kind;  // kDeleteJob or kReplaceJob
    size_t rows_before;
    size_t deletes_before;
    // Whether the batch named the job (rows, RegisterJob, ReplaceJob) since
    // its start or its previous DeleteJob.
    bool named_before;
  };
  struct JobRows {
    uint32_t slot = 0;  // index in job_ids()
    InfluencerColumns columns;  // codes are batch-local; versions are 1
    std::vector<absl::string_view> strings;
    StringInterner string_codes;  // indexes `strings`
    std::vector<int64_t> bucket_spans;
    // Staged deletions, each with the number of rows staged before it.
    std::vector<std::pair<InfluencerResultId, size_t>> deletes;
    // Job operations in order.
    std::vector<JobOp> job_ops;
    // Named by a row or RegisterJob (not only by deletions): the job
    // becomes known.
    bool named = false;
    // Named since the last job operation (a deleted job stays deleted
    // unless this is set).
    bool named_after_job_op = false;
    // The previous row's field name: consecutive rows often share it.
    absl::string_view last_name;
    uint32_t last_name_code = UINT32_MAX;
  };
  // One kBulk item: its kind, job (slot) and index among that job's rows
  // (upserts, creates), deletes or job_ops, among errors (kError), or
  // among other_ids (kOtherResult, kDeleteOther).
  struct Item {
    OpKind kind;
    uint32_t job;
    uint32_t index;
  };

 private:
  friend class InfluencerStore;
  friend void EncodeMutationBatch(const MutationBatch& batch,
                                  std::string* out);
  JobRows& RowsOf(absl::string_view job_id);
  uint32_t Intern(JobRows& rows, absl::string_view s);
  void Stage(JobRows& rows, const InfluencerFields& row);
  void JobOperation(absl::string_view job_id, OpKind kind);

  MutationMode mode_;
  std::shared_ptr<StringArena> arena_;
  absl::flat_hash_map<std::string, std::unique_ptr<JobRows>> jobs_;
  std::vector<std::string> job_order_;
  std::vector<JobRows*> slots_;  // by JobRows::slot
  std::vector<Item> items_;      // kBulk only
  std::vector<absl::Status> errors_;
  std::vector<std::string> other_ids_;
  // Jobs of recent rows (dumps interleave a few jobs): found without
  // hashing the job id. Replaced in turn; unused entries hold null.
  static constexpr size_t kRecentJobs = 4;
  std::pair<std::string, JobRows*> recent_[kRecentJobs];
  size_t recent_next_ = 0;
  size_t influencers_ = 0;
  size_t operations_ = 0;
  bool replace_jobs_ = false;
  bool has_creates_ = false;
  // Coalesce: items where each later batch starts, and how many batches.
  std::vector<uint32_t> boundaries_;
  uint64_t generations_ = 1;
};

// The binary form of a batch, as a write-ahead log (storage/) records it.
//
// EncodeMutationBatch appends to `*out` a self-contained form of `batch`
// (not yet applied) from which DecodeMutationBatch makes a batch that Apply
// treats exactly as it treats `batch`: on the same store it makes the same
// changes, item outcomes, _version and _seq_no values. Error items keep
// their HTTP status, type and reason. The form is the batch's calls in
// order (each job's dictionary once, then fixed-width operations), so a
// batch of n results takes about 45n bytes plus its distinct strings.
// Little-endian, versioned (a form of another version is refused). Reads
// the batch only; thread-compatible.
void EncodeMutationBatch(const MutationBatch& batch, std::string* out);

// Decodes EncodeMutationBatch's form. Returns the batch, or 400
// parse_exception naming the byte offset if `bytes` is not exactly one
// such form or holds what no loader stages (a code out of its dictionary,
// a non-finite score, a timestamp out of range). Strings are copied; their
// bytes are not checked to be UTF-8 (a log's checksum guards them). Pure;
// thread-safe.
absl::StatusOr<MutationBatch> DecodeMutationBatch(absl::string_view bytes);

// A write-ahead log that sits inside the store's commit (storage/ has the
// file-backed one). The store's writer thread calls Append for each batch,
// in generation order, while no other batch is being applied, and then
// WaitDurable once for a group of batches before it makes them visible.
// The store calls Append and WaitDurable from that one thread only (an
// implementation may take other calls of its own, such as a log's
// rotation, from other threads, and must then synchronise them).
class MutationLog {
 public:
  virtual ~MutationLog() = default;
  // Records `batch`, which becomes `generation` once applied: generations
  // arrive in order, one more each time (a failed Append's generation is
  // offered again with the next batch). Should not sync (a log may when it
  // starts a new file, syncing the old one), and must not call
  // back into the store (the writer thread would wait on itself). On
  // error the log must be as if Append had not been called (a log that
  // cannot promise that fails every later Append itself): this batch fails
  // with the error, and the store goes on with the next.
  virtual absl::Status Append(const MutationBatch& batch,
                              uint64_t generation) = 0;
  // Returns once every batch appended up to `generation` is durable (or at
  // once, under an asynchronous durability policy). On error the group is
  // not made visible, its batches fail, and the store refuses further
  // writes. Same rules as Append.
  virtual absl::Status WaitDurable(uint64_t generation) = 0;
};

}  // namespace clout

#endif  // CLOUT_ENGINE_MUTATION_H_
