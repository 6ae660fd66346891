#include "engine/store.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/error.h"

namespace clout {

namespace {

// The identity of an influencer result within its job, in the job's codes.
struct Identity {
  int64_t timestamp;
  int64_t bucket_span;
  uint32_t field_name;
  uint32_t field_value;
  friend bool operator==(const Identity& a, const Identity& b) {
    return a.timestamp == b.timestamp && a.bucket_span == b.bucket_span &&
           a.field_name == b.field_name && a.field_value == b.field_value;
  }
  template <typename H>
  friend H AbslHashValue(H h, const Identity& id) {
    return H::combine(std::move(h), id.timestamp, id.bucket_span,
                      id.field_name, id.field_value);
  }
};

// Columns plus the dictionaries their codes refer to.
struct CodedRows {
  const InfluencerColumns& columns;
  const std::vector<uint32_t>& string_map;  // row code -> job code
  const std::vector<int64_t>& bucket_spans;  // row span code -> seconds

  Identity IdentityOf(size_t row) const {
    return {columns.timestamp[row], bucket_spans[columns.bucket_span_code[row]],
            string_map[columns.field_name_code[row]],
            string_map[columns.field_value_code[row]]};
  }
};

// A hash index of rows by identity, holding only row numbers (the rows are
// the keys): 8 bytes per row at most, a fraction of a hash map of
// identities, which matters when a load brings millions of rows.
class RowIndex {
 public:
  static constexpr uint32_t kEmpty = UINT32_MAX;

  explicit RowIndex(size_t rows) {
    size_t capacity = 16;
    while (capacity < 2 * rows) capacity *= 2;
    slots_.assign(capacity, kEmpty);
    mask_ = capacity - 1;
  }

  // The slot of `id` among `rows`: it holds the row with that identity, or
  // kEmpty where such a row would go.
  uint32_t* Find(const Identity& id, const CodedRows& rows) {
    size_t i = absl::Hash<Identity>()(id) & mask_;
    while (slots_[i] != kEmpty && !(rows.IdentityOf(slots_[i]) == id)) {
      i = (i + 1) & mask_;
    }
    return &slots_[i];
  }

 private:
  std::vector<uint32_t> slots_;
  size_t mask_ = 0;
};

// For rows in time order: marks every row whose identity a later row of
// the same timestamp repeats as not kept, counting each in *replaced (the
// last occurrence wins, as with a RowIndex over all rows).
void DropRepeatsWithinRuns(const CodedRows& rows, std::vector<bool>* keep,
                           uint64_t* replaced) {
  const Column<int64_t>& time = rows.columns.timestamp;
  const size_t n = time.size();
  constexpr size_t kSmallRun = 16;  // compare pairwise up to this many rows
  for (size_t begin = 0, end; begin < n; begin = end) {
    end = begin + 1;
    while (end < n && time[end] == time[begin]) ++end;
    if (end - begin == 1) continue;
    if (end - begin <= kSmallRun) {
      for (size_t i = begin + 1; i < end; ++i) {
        const Identity id = rows.IdentityOf(i);
        for (size_t j = begin; j < i; ++j) {
          if ((*keep)[j] && rows.IdentityOf(j) == id) {
            (*keep)[j] = false;
            ++*replaced;
            break;  // earlier repeats were dropped already
          }
        }
      }
      continue;
    }
    absl::flat_hash_map<Identity, size_t> last;
    for (size_t i = begin; i < end; ++i) {
      auto [it, inserted] = last.emplace(rows.IdentityOf(i), i);
      if (!inserted) {
        (*keep)[it->second] = false;
        ++*replaced;
        it->second = i;
      }
    }
  }
}

bool SameBits(double a, double b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

// True if the two rows hold the same values in every non-identity field.
bool SameValues(const InfluencerColumns& a, size_t i,
                const InfluencerColumns& b, size_t j) {
  return SameBits(a.influencer_score[i], b.influencer_score[j]) &&
         SameBits(a.initial_influencer_score[i],
                  b.initial_influencer_score[j]) &&
         SameBits(a.probability[i], b.probability[j]) &&
         a.is_interim[i] == b.is_interim[j];
}

// Appends row `i` of `from` to `to`, translating codes.
void AppendRow(const InfluencerColumns& from, size_t i,
               const std::vector<uint32_t>& string_map,
               const std::vector<uint32_t>& span_map, InfluencerColumns& to) {
  to.timestamp.push_back(from.timestamp[i]);
  to.influencer_score.push_back(from.influencer_score[i]);
  to.initial_influencer_score.push_back(from.initial_influencer_score[i]);
  to.probability.push_back(from.probability[i]);
  to.bucket_span_code.push_back(span_map[from.bucket_span_code[i]]);
  to.is_interim.push_back(from.is_interim[i]);
  to.field_name_code.push_back(string_map[from.field_name_code[i]]);
  to.field_value_code.push_back(string_map[from.field_value_code[i]]);
  to.version.push_back(from.version[i]);
}

std::vector<uint32_t> IdentityMap(size_t n) {
  std::vector<uint32_t> map(n);
  for (size_t i = 0; i < n; ++i) map[i] = static_cast<uint32_t>(i);
  return map;
}

// The distinct influencer field names of a batch's rows for one job.
std::vector<absl::string_view> FieldNames(const MutationBatch::JobRows& rows) {
  std::vector<bool> seen(rows.strings.size());
  std::vector<absl::string_view> names;
  for (uint32_t code : rows.columns.field_name_code) {
    if (seen[code]) continue;
    seen[code] = true;
    names.push_back(rows.strings[code]);
  }
  return names;
}

// Applies staged _bulk deletions: a deletion removes the stored rows it
// names and the staged rows staged before it. Returns the number of stored
// rows removed (also added to stats->deleted).
size_t ApplyDeletes(
    const std::vector<std::pair<InfluencerResultId, size_t>>& deletes,
    const JobResults& job, const JobResults* old,
    const InfluencerColumns& staged, const std::vector<uint32_t>& string_map,
    const std::vector<int64_t>& staged_spans, std::vector<bool>* keep,
    std::vector<bool>* keep_old, CommitStats* stats) {
  // Deletions by (timestamp, bucket_span), so most rows are ruled out by
  // one lookup; Java hashes of values are computed once per string.
  absl::flat_hash_map<std::pair<int64_t, int64_t>, std::vector<size_t>> by_time;
  for (size_t d = 0; d < deletes.size(); ++d) {
    by_time[{deletes[d].first.timestamp, deletes[d].first.bucket_span}]
        .push_back(d);
  }
  std::vector<std::optional<std::pair<int32_t, int32_t>>> hashes(
      job.strings.size());
  auto matches = [&](const InfluencerResultId& id, uint32_t name,
                     uint32_t value) {
    if (job.strings[name] != id.field_name) return false;
    if (!hashes[value].has_value()) {
      int32_t length = 0;
      int32_t hash = JavaStringHash(job.strings[value], &length);
      hashes[value] = std::make_pair(hash, length);
    }
    return hashes[value]->first == id.value_hash &&
           hashes[value]->second == id.value_length;
  };
  std::vector<bool> hit(deletes.size(), false);
  size_t deleted = 0;
  if (old != nullptr) {
    const InfluencerColumns& c = old->columns;
    for (size_t r = 0; r < c.size(); ++r) {
      auto it = by_time.find(
          std::make_pair(c.timestamp[r], old->bucket_spans[c.bucket_span_code[r]]));
      if (it == by_time.end()) continue;
      for (size_t d : it->second) {
        if (matches(deletes[d].first, c.field_name_code[r],
                    c.field_value_code[r])) {
          (*keep_old)[r] = false;
          hit[d] = true;
          ++deleted;
          break;
        }
      }
    }
  }
  for (size_t i = 0; i < staged.size(); ++i) {
    if (!(*keep)[i]) continue;
    auto it = by_time.find(std::make_pair(
        staged.timestamp[i], staged_spans[staged.bucket_span_code[i]]));
    if (it == by_time.end()) continue;
    for (size_t d : it->second) {
      if (deletes[d].second > i &&
          matches(deletes[d].first, string_map[staged.field_name_code[i]],
                  string_map[staged.field_value_code[i]])) {
        (*keep)[i] = false;
        hit[d] = true;
        break;
      }
    }
  }
  stats->deleted += deleted;
  stats->delete_misses +=
      static_cast<uint64_t>(std::count(hit.begin(), hit.end(), false));
  return deleted;
}

// Java hashes and lengths of a job's strings, computed once each.
class ValueHashes {
 public:
  explicit ValueHashes(const std::vector<absl::string_view>& strings)
      : strings_(strings), hashes_(strings.size()) {}
  // Whether `id` names the result with these codes (its job aside).
  bool Matches(const InfluencerResultId& id, uint32_t name, uint32_t value) {
    if (strings_[name] != id.field_name) return false;
    if (!hashes_[value].has_value()) {
      int32_t length = 0;
      int32_t hash = JavaStringHash(strings_[value], &length);
      hashes_[value] = std::make_pair(hash, length);
    }
    return hashes_[value]->first == id.value_hash &&
           hashes_[value]->second == id.value_length;
  }

 private:
  const std::vector<absl::string_view>& strings_;
  std::vector<std::optional<std::pair<int32_t, int32_t>>> hashes_;
};

// What a batch does to one job's rows, decided before they are built.
struct JobPlan {
  std::vector<bool> keep;      // staged rows that end up stored
  std::vector<bool> keep_old;  // stored rows that stay
  bool job_exists = true;      // false: the job ends deleted
};

// The batch's items on one job, with where their outcomes go.
struct JobItems {
  const std::vector<MutationBatch::Item>* items = nullptr;
  std::vector<uint32_t> indexes;  // into *items and *results, in order
  std::vector<ItemResult>* results = nullptr;
};

// A kLoad batch's plan for one job (the unit semantics of mutation.h):
// staged rows from `first_row` and deletions from `first_delete` (those
// after the last job operation) meet `old`'s rows (null: none stay).
void PlanLoad(const MutationBatch::JobRows& rows, size_t first_row,
              size_t first_delete, const JobResults& job,
              const JobResults* old, const std::vector<uint32_t>& string_map,
              MutationBatch::JobRows* staged_rows, JobPlan* plan,
              CommitStats* stats) {
  const size_t n = rows.columns.size();
  const CodedRows staged{rows.columns, string_map, rows.bucket_spans};
  std::vector<bool>& keep = plan->keep;
  keep.assign(n, true);
  for (size_t i = 0; i < first_row; ++i) keep[i] = false;
  const size_t old_rows = old != nullptr ? old->size() : 0;
  const Column<int64_t>& staged_time = rows.columns.timestamp;
  // Rows in time order (as dumps are) can only repeat an identity within a
  // run of one timestamp: a new job's rows need no index of the batch.
  const bool by_runs = old_rows == 0 && first_row == 0 &&
                       std::is_sorted(staged_time.begin(), staged_time.end());
  RowIndex staged_row(by_runs ? 0 : n);
  if (by_runs) {
    DropRepeatsWithinRuns(staged, &keep, &stats->replaced);
  } else {
    for (size_t i = first_row; i < n; ++i) {
      const Identity id = staged.IdentityOf(i);
      uint32_t* slot = staged_row.Find(id, staged);
      if (*slot != RowIndex::kEmpty) {
        keep[*slot] = false;
        ++stats->replaced;
      }
      *slot = static_cast<uint32_t>(i);
    }
  }
  std::vector<bool>& keep_old = plan->keep_old;
  keep_old.assign(old_rows, true);
  if (rows.deletes.size() > first_delete) {
    std::vector<std::pair<InfluencerResultId, size_t>> deletes(
        rows.deletes.begin() + static_cast<ptrdiff_t>(first_delete),
        rows.deletes.end());
    ApplyDeletes(deletes, job, old, rows.columns, string_map,
                 rows.bucket_spans, &keep, &keep_old, stats);
  }
  if (old_rows == 0) return;
  Column<uint32_t>& version = staged_rows->columns.version;
  const std::vector<uint32_t> same = IdentityMap(job.strings.size());
  const CodedRows stored{old->columns, same, old->bucket_spans};
  for (size_t r = 0; r < old_rows; ++r) {
    if (!keep_old[r]) continue;  // deleted
    const uint32_t match = *staged_row.Find(stored.IdentityOf(r), staged);
    if (match == RowIndex::kEmpty || !keep[match]) continue;
    if (SameValues(old->columns, r, rows.columns, match)) {
      keep[match] = false;  // identical: the stored row stays put
      ++stats->unchanged;
    } else {
      keep_old[r] = false;  // replaced: the staged row goes to the end
      version[match] = old->columns.version[r] + 1;
      ++stats->replaced;
    }
  }
}

// A kBulk batch's plan for one job: its items applied one after another,
// each given its outcome, version and (later) sequence number.
void PlanBulk(const MutationBatch::JobRows& rows, const JobResults& job,
              const JobResults* old, const std::vector<uint32_t>& string_map,
              const JobItems& job_items, MutationBatch::JobRows* staged_rows,
              JobPlan* plan, CommitStats* stats) {
  using OpKind = MutationBatch::OpKind;
  const size_t n = rows.columns.size();
  const CodedRows staged{rows.columns, string_map, rows.bucket_spans};
  // Where each identity the batch touches stands as the items apply.
  constexpr int64_t kNobody = INT64_MIN;
  struct State {
    bool exists = false;
    uint32_t version = 0;  // its writes (kept past a delete, as a tombstone)
    int64_t holder = kNobody;  // staged row i, or -(r + 1) for stored row r
    int64_t stored = kNobody;  // its stored row r as -(r + 1), if any
  };
  absl::flat_hash_map<Identity, State> states;
  for (size_t i = 0; i < n; ++i) states.try_emplace(staged.IdentityOf(i));
  absl::flat_hash_map<std::pair<int64_t, int64_t>, std::vector<size_t>> by_time;
  for (size_t d = 0; d < rows.deletes.size(); ++d) {
    by_time[{rows.deletes[d].first.timestamp, rows.deletes[d].first.bucket_span}]
        .push_back(d);
  }
  ValueHashes hashes(job.strings);
  const size_t old_rows = old != nullptr ? old->size() : 0;
  if (old_rows > 0) {
    const std::vector<uint32_t> same = IdentityMap(job.strings.size());
    const CodedRows stored{old->columns, same, old->bucket_spans};
    for (size_t r = 0; r < old_rows; ++r) {
      const Identity id = stored.IdentityOf(r);
      auto it = states.find(id);
      if (it == states.end()) {
        auto deletes = by_time.find({id.timestamp, id.bucket_span});
        if (deletes == by_time.end()) continue;
        bool named = false;
        for (size_t d : deletes->second) {
          named = named || hashes.Matches(rows.deletes[d].first, id.field_name,
                                          id.field_value);
        }
        if (!named) continue;
        it = states.try_emplace(id).first;
      }
      const int64_t holder = -static_cast<int64_t>(r) - 1;
      it->second = State{true, old->columns.version[r], holder, holder};
    }
  }
  // The identities each deletion may remove.
  std::vector<std::vector<Identity>> candidates(rows.deletes.size());
  if (!rows.deletes.empty()) {
    for (const auto& [id, state] : states) {
      auto deletes = by_time.find({id.timestamp, id.bucket_span});
      if (deletes == by_time.end()) continue;
      for (size_t d : deletes->second) {
        if (hashes.Matches(rows.deletes[d].first, id.field_name,
                           id.field_value)) {
          candidates[d].push_back(id);
        }
      }
    }
  }

  Column<uint32_t>& version = staged_rows->columns.version;
  bool stored_alive = old != nullptr;
  bool job_known = old != nullptr;
  for (uint32_t index : job_items.indexes) {
    const MutationBatch::Item& item = (*job_items.items)[index];
    ItemResult& out = (*job_items.results)[index];
    switch (item.kind) {
      case OpKind::kUpsert:
      case OpKind::kCreate: {
        State& state = states[staged.IdentityOf(item.index)];
        if (state.exists && item.kind == OpKind::kCreate) {
          out.outcome = MutationOutcome::kError;
          out.error = EsError(
              409, "version_conflict_engine_exception",
              absl::StrCat("[", InfluencerDocumentId(job.job_id, [&] {
                             InfluencerFields f;
                             f.timestamp = rows.columns.timestamp[item.index];
                             f.bucket_span = rows.bucket_spans
                                 [rows.columns.bucket_span_code[item.index]];
                             f.field_name =
                                 rows.strings[rows.columns.field_name_code[item.index]];
                             f.field_value = rows.strings
                                 [rows.columns.field_value_code[item.index]];
                             return f;
                           }()),
                           "]: version conflict, document already exists "
                           "(current version [",
                           state.version, "])"));
          out.status = 409;
          break;
        }
        out.outcome = state.exists ? MutationOutcome::kUpdated
                                   : MutationOutcome::kCreated;
        out.status = state.exists ? 200 : 201;
        ++(state.exists ? stats->replaced : stats->added);
        state.exists = true;
        state.version += 1;
        state.holder = item.index;
        version[item.index] = state.version;
        out.version = state.version;
        job_known = true;
        break;
      }
      case OpKind::kDeleteResult: {
        // Each result removed counts the deletion as one more write, and
        // the item answers the highest such version. A deletion that
        // removes nothing answers one past the highest version of a
        // result deleted earlier in the batch (a tombstone), else 1.
        uint32_t removed_version = 0;
        uint32_t tombstone = 0;
        for (const Identity& id : candidates[item.index]) {
          State& state = states.at(id);
          if (!state.exists) {
            tombstone = std::max(tombstone, state.version);
            continue;
          }
          state.exists = false;
          state.holder = kNobody;
          state.version += 1;
          removed_version = std::max(removed_version, state.version);
          ++stats->deleted;
        }
        const bool removed = removed_version > 0;
        out.outcome =
            removed ? MutationOutcome::kDeleted : MutationOutcome::kNotFound;
        out.status = removed ? 200 : 404;
        out.version = removed ? removed_version : tombstone + 1;
        if (!removed) ++stats->delete_misses;
        break;
      }
      case OpKind::kDeleteJob:
      case OpKind::kReplaceJob: {
        const MutationBatch::JobOp& op = rows.job_ops[item.index];
        size_t removed = 0;
        size_t stored_tracked = 0;
        for (auto& [id, state] : states) {
          if (state.stored != kNobody) ++stored_tracked;
          if (state.exists) ++removed;
          state = State{};
        }
        if (stored_alive) removed += old_rows - stored_tracked;
        stored_alive = false;
        stats->deleted += removed;
        const bool known = job_known || op.named_before;
        if (item.kind == OpKind::kDeleteJob) {
          out.outcome = known ? MutationOutcome::kDeleted
                              : MutationOutcome::kNotFound;
          out.status = known ? 200 : 404;
          job_known = false;
        } else {
          out.outcome =
              removed > 0 ? MutationOutcome::kDeleted : MutationOutcome::kNoop;
          out.status = 200;
          job_known = true;
        }
        break;
      }
      case OpKind::kError:
      case OpKind::kOtherResult:
      case OpKind::kDeleteOther:
        break;  // not a job's item
    }
  }
  plan->keep.assign(n, false);
  plan->keep_old.assign(old_rows, stored_alive);
  for (const auto& [id, state] : states) {
    if (state.stored != kNobody && stored_alive) {
      plan->keep_old[-(state.stored + 1)] =
          state.exists && state.holder == state.stored;
    }
    if (state.exists && state.holder >= 0) plan->keep[state.holder] = true;
  }
  plan->job_exists = job_known || rows.named_after_job_op;
}

// The results of `job_id` after the batch's operations on it (`rows`) meet
// `stored` (null when the job is unknown), or null if the job ends deleted.
std::shared_ptr<const JobResults> CommitJob(
    const std::string& job_id, const std::shared_ptr<const JobResults>& stored,
    MutationBatch::JobRows&& rows, MutationMode mode, bool replace_jobs,
    const JobItems& job_items, const std::shared_ptr<const StringArena>& arena,
    CommitStats* stats) {
  // The stored rows the batch's rows meet, and where the rows after the
  // batch's last job operation start (kLoad: what comes before is undone).
  std::shared_ptr<const JobResults> old = stored;
  size_t first_row = 0;
  size_t first_delete = 0;
  bool job_exists = true;
  if (mode == MutationMode::kLoad) {
    if (old != nullptr && ((replace_jobs && rows.named) || !rows.job_ops.empty())) {
      stats->deleted += old->size();
      old = nullptr;
    }
    if (!rows.job_ops.empty()) {
      first_row = rows.job_ops.back().rows_before;
      first_delete = rows.job_ops.back().deletes_before;
      job_exists = rows.named_after_job_op;
    }
  }
  if (old == nullptr && stored != nullptr && !job_exists) return nullptr;

  auto job = std::make_shared<JobResults>();
  if (old != nullptr) {
    job->job_id = old->job_id;
    job->strings = old->strings;
    job->string_codes = old->string_codes;
    job->bucket_spans = old->bucket_spans;
    job->arenas = old->arenas;
    job->field_names = old->field_names;
  } else {
    job->job_id = job_id;
  }
  const size_t n = rows.columns.size();
  if (n > 0) job->arenas.push_back(arena);

  // Batch codes -> this job's codes, extending its dictionaries.
  std::vector<uint32_t> string_map(rows.strings.size());
  for (size_t i = 0; i < rows.strings.size(); ++i) {
    auto [it, inserted] = job->string_codes.emplace(
        rows.strings[i], static_cast<uint32_t>(job->strings.size()));
    if (inserted) job->strings.push_back(rows.strings[i]);
    string_map[i] = it->second;
  }
  std::vector<uint32_t> span_map(rows.bucket_spans.size());
  for (size_t i = 0; i < rows.bucket_spans.size(); ++i) {
    auto found = std::find(job->bucket_spans.begin(), job->bucket_spans.end(),
                           rows.bucket_spans[i]);
    span_map[i] = static_cast<uint32_t>(found - job->bucket_spans.begin());
    if (found == job->bucket_spans.end()) {
      job->bucket_spans.push_back(rows.bucket_spans[i]);
    }
  }
  for (absl::string_view name : FieldNames(rows)) {
    if (std::find(job->field_names.begin(), job->field_names.end(), name) ==
        job->field_names.end()) {
      job->field_names.push_back(name);
    }
  }

  JobPlan plan;
  CommitStats job_stats;
  if (mode == MutationMode::kLoad) {
    PlanLoad(rows, first_row, first_delete, *job, old.get(), string_map,
             &rows, &plan, &job_stats);
  } else {
    PlanBulk(rows, *job, old.get(), string_map, job_items, &rows, &plan,
             &job_stats);
    job_exists = plan.job_exists;
  }
  const std::vector<bool>& keep = plan.keep;
  const std::vector<bool>& keep_old = plan.keep_old;
  const size_t old_rows = old != nullptr ? old->size() : 0;
  const size_t kept_old = static_cast<size_t>(
      std::count(keep_old.begin(), keep_old.end(), true));
  const size_t kept_new =
      static_cast<size_t>(std::count(keep.begin(), keep.end(), true));
  if (mode == MutationMode::kLoad) {
    // Every staged row new to the store adds one; a replacement none.
    job_stats.added = kept_new - (old_rows - kept_old - job_stats.deleted);
  }
  stats->added += job_stats.added;
  stats->replaced += job_stats.replaced;
  stats->deleted += job_stats.deleted;
  stats->unchanged += job_stats.unchanged;
  stats->delete_misses += job_stats.delete_misses;
  if (!job_exists) return nullptr;
  // Nothing changed: the job is as it was (all the batch's strings and
  // spans were already in its dictionaries).
  if (old_rows > 0 && kept_old == old_rows && kept_new == 0) return old;

  // The batch's codes must mean the job's: equal sizes are not enough when
  // the job kept dictionaries from rows since deleted (its strings in
  // another order), so each code must map to itself.
  auto is_identity = [](const std::vector<uint32_t>& map) {
    for (size_t i = 0; i < map.size(); ++i) {
      if (map[i] != i) return false;
    }
    return true;
  };
  const bool adopt_all = old_rows == 0 && kept_new == n &&
                         job->strings.size() == rows.strings.size() &&
                         job->bucket_spans.size() == rows.bucket_spans.size() &&
                         is_identity(string_map) && is_identity(span_map);
  if (adopt_all) {
    // A new job whose rows are all new: its dictionary is the batch's, so
    // the columns move instead of being copied.
    job->columns = std::move(rows.columns);
  } else {
    InfluencerColumns& c = job->columns;
    const std::vector<uint32_t> same_strings = IdentityMap(job->strings.size());
    const std::vector<uint32_t> same_spans =
        IdentityMap(job->bucket_spans.size());
    c.Reserve(kept_old + kept_new);
    if (kept_old == old_rows && old_rows > 0) {
      c = old->columns;  // whole columns, no row-by-row copy
    } else {
      for (size_t r = 0; r < old_rows; ++r) {
        if (keep_old[r]) {
          AppendRow(old->columns, r, same_strings, same_spans, c);
        }
      }
    }
    for (size_t i = 0; i < n; ++i) {
      if (keep[i]) AppendRow(rows.columns, i, string_map, span_map, c);
    }
  }
  for (uint8_t interim : job->columns.is_interim) job->interim_rows += interim;
  job->time_ordered =
      std::is_sorted(job->columns.timestamp.begin(), job->columns.timestamp.end());
  return job;
}

// Sortable field names are those some job's rows have.
void RecomputeFieldNames(StoreSnapshot& snapshot) {
  snapshot.influencer_field_names.clear();
  for (const auto& [id, job] : snapshot.jobs) {
    for (absl::string_view name : job->field_names) {
      snapshot.influencer_field_names.insert(std::string(name));
    }
  }
}

}  // namespace

InfluencerStore::InfluencerStore(StoreOptions options)
    : options_(std::move(options)),
      snapshot_(std::make_shared<const StoreSnapshot>()) {}

InfluencerStore::~InfluencerStore() {
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

std::shared_ptr<const StoreSnapshot> InfluencerStore::Snapshot() const {
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  return snapshot_;
}

void InfluencerStore::Publish(std::shared_ptr<const StoreSnapshot> version) {
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  snapshot_ = std::move(version);
}

std::future<absl::StatusOr<MutationResult>> InfluencerStore::Submit(
    MutationBatch batch, ApplyOptions options) {
  Pending pending{std::move(batch), options, {}};
  std::future<absl::StatusOr<MutationResult>> done =
      pending.done.get_future();
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    queue_.push_back(std::move(pending));
    if (!writer_.joinable()) writer_ = std::thread([this] { WriterLoop(); });
  }
  queue_cv_.notify_one();
  return done;
}

absl::StatusOr<MutationResult> InfluencerStore::Apply(MutationBatch batch,
                                                      ApplyOptions options) {
  return Submit(std::move(batch), options).get();
}

void InfluencerStore::WriterLoop() {
  for (;;) {
    std::deque<Pending> group;
    {
      std::unique_lock<std::mutex> lock(queue_mu_);
      queue_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to apply
      group.swap(queue_);
    }
    // Each batch applies onto the one before it; the group becomes
    // visible at once, after one WaitDurable.
    std::shared_ptr<const StoreSnapshot> version = Snapshot();
    std::vector<absl::StatusOr<MutationResult>> results;
    results.reserve(group.size());
    for (Pending& pending : group) {
      if (!log_failure_.ok()) {
        results.push_back(log_failure_);
        continue;
      }
      results.push_back(ApplyTo(pending.batch, pending.options, &version));
    }
    if (options_.log != nullptr && log_failure_.ok()) {
      absl::Status durable = options_.log->WaitDurable(version->generation);
      if (!durable.ok()) {
        log_failure_ = durable;
        for (auto& result : results) result = durable;
      }
    }
    if (version != Snapshot() && log_failure_.ok()) Publish(version);
    for (size_t i = 0; i < group.size(); ++i) {
      group[i].done.set_value(std::move(results[i]));
    }
  }
}

absl::StatusOr<MutationResult> InfluencerStore::ApplyTo(
    MutationBatch& batch, const ApplyOptions& options,
    std::shared_ptr<const StoreSnapshot>* version) {
  using OpKind = MutationBatch::OpKind;
  const StoreSnapshot& current = **version;
  const MutationMode mode = batch.mode_;
  // What would fail a kLoad batch is checked before anything is logged.
  if (mode == MutationMode::kLoad) {
    if (batch.has_creates_) {
      return EsError(400, "illegal_argument_exception",
                     "create operations need a bulk-mode batch: a load "
                     "applies its documents as a unit");
    }
    for (const std::string& job_id : batch.job_order_) {
      const MutationBatch::JobRows& rows = *batch.jobs_.at(job_id);
      for (size_t k = 0; k < rows.job_ops.size(); ++k) {
        const MutationBatch::JobOp& op = rows.job_ops[k];
        const bool known =
            op.named_before || (k == 0 && current.FindJob(job_id) != nullptr);
        if (op.kind == OpKind::kDeleteJob && !known) {
          return EsError(404, "resource_not_found_exception",
                         absl::StrCat("No known job with id '", job_id, "'"));
        }
      }
    }
  }
  if (options_.log != nullptr) {
    if (absl::Status s = options_.log->Append(batch, current.generation + 1);
        !s.ok()) {
      log_failure_ = s;
      return s;
    }
  }

  MutationResult result;
  result.generation = current.generation + 1;
  result.first_seq_no = current.next_seq_no;
  auto next = std::make_shared<StoreSnapshot>(current);
  next->generation = result.generation;
  std::shared_ptr<const StringArena> arena = std::move(batch.arena_);
  // The items of each job, in order.
  std::vector<JobItems> job_items(batch.job_order_.size());
  if (mode == MutationMode::kBulk) {
    result.items.resize(batch.items_.size());
    for (JobItems& items : job_items) {
      items.items = &batch.items_;
      items.results = &result.items;
    }
    // Documents of other result types: only this batch's writes count.
    absl::flat_hash_map<absl::string_view, uint32_t> other_versions;
    for (uint32_t i = 0; i < batch.items_.size(); ++i) {
      const MutationBatch::Item& item = batch.items_[i];
      ItemResult& out = result.items[i];
      switch (item.kind) {
        case OpKind::kError:
          out.outcome = MutationOutcome::kError;
          out.error = batch.errors_[item.index];
          out.status = HttpStatusOf(out.error);
          break;
        case OpKind::kOtherResult: {
          uint32_t& version = other_versions[batch.other_ids_[item.index]];
          out.outcome = version > 0 ? MutationOutcome::kUpdated
                                    : MutationOutcome::kCreated;
          out.status = version > 0 ? 200 : 201;
          out.version = ++version;
          break;
        }
        case OpKind::kDeleteOther: {
          auto it = other_versions.find(batch.other_ids_[item.index]);
          const bool found = it != other_versions.end() && it->second > 0;
          out.outcome =
              found ? MutationOutcome::kDeleted : MutationOutcome::kNotFound;
          out.status = found ? 200 : 404;
          out.version = found ? it->second + 1 : 1;
          if (found) other_versions.erase(it);
          break;
        }
        default:
          job_items[item.job].indexes.push_back(i);
          break;
      }
    }
  }
  // The jobs to merge, each independent of the others.
  struct Merge {
    const std::string* job_id;
    std::shared_ptr<const JobResults> stored;
    MutationBatch::JobRows* rows;
    const JobItems* items;
    CommitStats stats;
    std::shared_ptr<const JobResults> job;
  };
  std::vector<Merge> merges;
  bool removed_any = batch.replace_jobs_;
  for (const std::string& job_id : batch.job_order_) {
    MutationBatch::JobRows& rows = *batch.jobs_.at(job_id);
    auto found = current.jobs.find(job_id);
    std::shared_ptr<const JobResults> stored =
        found == current.jobs.end() ? nullptr : found->second;
    if (mode == MutationMode::kLoad && rows.job_ops.empty()) {
      if (stored == nullptr && !rows.named) {
        // Only deletions, of a job the store does not know: nothing to do.
        result.stats.delete_misses += rows.deletes.size();
        continue;
      }
      if (stored != nullptr && !(batch.replace_jobs_ && rows.named) &&
          rows.columns.size() == 0 && rows.deletes.empty()) {
        continue;  // only registered, already known
      }
    }
    if (!rows.job_ops.empty()) removed_any = true;
    merges.push_back(Merge{&job_id, std::move(stored), &rows,
                           &job_items[rows.slot], {}, nullptr});
  }
  auto merge = [&](Merge& m) {
    m.job = CommitJob(*m.job_id, m.stored, std::move(*m.rows), mode,
                      batch.replace_jobs_, *m.items, arena, &m.stats);
  };
  const size_t workers = std::min<size_t>(
      merges.size(), static_cast<size_t>(std::max(options.threads, 1)));
  if (workers > 1) {
    std::atomic<size_t> next_merge{0};
    auto work = [&]() {
      for (size_t i; (i = next_merge.fetch_add(1)) < merges.size();) {
        merge(merges[i]);
      }
    };
    std::vector<std::thread> pool;
    for (size_t w = 1; w < workers; ++w) pool.emplace_back(work);
    work();
    for (std::thread& t : pool) t.join();
  } else {
    for (Merge& m : merges) merge(m);
  }
  for (Merge& m : merges) {
    result.stats.added += m.stats.added;
    result.stats.replaced += m.stats.replaced;
    result.stats.deleted += m.stats.deleted;
    result.stats.unchanged += m.stats.unchanged;
    result.stats.delete_misses += m.stats.delete_misses;
    if (m.job == nullptr) {
      next->jobs.erase(*m.job_id);
      continue;
    }
    for (absl::string_view name : m.job->field_names) {
      if (!next->influencer_field_names.contains(name)) {
        next->influencer_field_names.insert(std::string(name));
      }
    }
    next->jobs[*m.job_id] = std::move(m.job);
  }
  if (removed_any) RecomputeFieldNames(*next);
  // Sequence numbers: one per applied operation, in batch order.
  if (mode == MutationMode::kBulk) {
    for (ItemResult& item : result.items) {
      if (item.outcome != MutationOutcome::kError) {
        item.seq_no = next->next_seq_no++;
      }
    }
  } else {
    next->next_seq_no += static_cast<int64_t>(batch.operations_);
  }
  *version = std::move(next);
  return result;
}

absl::Status InfluencerStore::DeleteJob(absl::string_view job_id) {
  MutationBatch batch;
  batch.DeleteJob(job_id);
  return Apply(std::move(batch)).status();
}

void InfluencerStore::RegisterJob(absl::string_view job_id) {
  MutationBatch batch;
  batch.RegisterJob(job_id);
  // A registration cannot fail but through the log, whose error every
  // later write reports too.
  Apply(std::move(batch)).IgnoreError();
}

int64_t InfluencerStore::NowMillis() const {
  if (options_.now_millis) return options_.now_millis();
  return absl::ToUnixMillis(absl::Now());
}

absl::StatusOr<InfluencersPage> InfluencerStore::GetInfluencers(
    const InfluencersRequest& request) const {
  std::shared_ptr<const StoreSnapshot> snapshot = Snapshot();
  QueryContext context;
  context.max_result_window = options_.max_result_window;
  context.now_millis = [this] { return NowMillis(); };
  absl::StatusOr<ResolvedQuery> query =
      ResolveQuery(*snapshot, request, context);
  if (!query.ok()) return query.status();
  return ExecuteQuery(*query);
}

}  // namespace clout
