#include "engine/store.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/error.h"
#include "engine/identity_index.h"

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
  to.AppendRow(
      from, i, [&](uint32_t code) { return string_map[code]; },
      [&](uint32_t code) { return span_map[code]; });
}

std::vector<uint32_t> IdentityMap(size_t n) {
  std::vector<uint32_t> map(n);
  for (size_t i = 0; i < n; ++i) map[i] = static_cast<uint32_t>(i);
  return map;
}

// The distinct influencer field names of a batch's rows for one job.
// Only the rows `keep` marks count.
std::vector<absl::string_view> FieldNames(const MutationBatch::JobRows& rows,
                                          const std::vector<bool>& keep) {
  std::vector<bool> seen(rows.strings.size());
  std::vector<absl::string_view> names;
  for (size_t i = 0; i < rows.columns.size(); ++i) {
    if (!keep[i]) continue;
    const uint32_t code = rows.columns.field_name_code[i];
    if (seen[code]) continue;
    seen[code] = true;
    names.push_back(rows.strings[code]);
  }
  return names;
}

// Java hashes and lengths of a dictionary's strings, computed once each.
class ValueHashes {
 public:
  explicit ValueHashes(const std::vector<absl::string_view>& strings)
      : strings_(strings), hashes_(strings.size()) {}
  // Whether `id` names a result with these codes (its job and time aside).
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

// The identity of a result by its strings, comparable across segments
// (each segment has its own dictionary).
struct TextIdentity {
  int64_t timestamp;
  int64_t bucket_span;
  absl::string_view name;
  absl::string_view value;
  friend bool operator==(const TextIdentity& a, const TextIdentity& b) {
    return a.timestamp == b.timestamp && a.bucket_span == b.bucket_span &&
           a.name == b.name && a.value == b.value;
  }
  template <typename H>
  friend H AbslHashValue(H h, const TextIdentity& id) {
    return H::combine(std::move(h), id.timestamp, id.bucket_span, id.name,
                      id.value);
  }
};

TextIdentity StagedIdentity(const MutationBatch::JobRows& rows, size_t i) {
  const InfluencerColumns& c = rows.columns;
  return {c.timestamp[i], rows.bucket_spans[c.bucket_span_code[i]],
          rows.strings[c.field_name_code[i]],
          rows.strings[c.field_value_code[i]]};
}

std::shared_ptr<const IdentityIndex> IdentityIndexOf(const JobResults& job) {
  SortOrderCache& cache = *job.sort_orders;
  {
    std::lock_guard<std::mutex> lock(cache.mu);
    if (cache.identity_index) return cache.identity_index;
  }
  auto index = std::make_shared<const IdentityIndex>(job);
  std::lock_guard<std::mutex> lock(cache.mu);
  if (!cache.identity_index) cache.identity_index = std::move(index);
  return cache.identity_index;
}

// Which segments get an IdentityFilter (a plain segment's; optional: a
// segment without one is probed for every identity). On the commit path:
// a new delta or a window merged there of up to kEagerFilterRows rows
// (hashing them costs a fraction of building them), and a segment of up
// to kLazyFilterRows when first probed (about a millisecond at most). Off
// it: a segment a background merge built of deltas, up to
// kMergeFilterRows. Not a job's base that a background merge built (16-32
// bits a row, 2-4 B: its rows are what updates find, and new results
// after its time range skip it without one), unless the lazy rule above
// builds one for it (a base of up to kLazyFilterRows).
constexpr size_t kLazyFilterRows = 16384;
constexpr size_t kEagerFilterRows = size_t{1} << 18;
constexpr size_t kMergeFilterRows = size_t{1} << 22;

// Deleted rows fewer than this never merge a job for their memory alone
// (StoreOptions::merge_ratio).
constexpr size_t kCrowdedDeletedRows = 4096;

// The plain segment's IdentityFilter: the one built already, else one
// built now when `build`, else null (also when there is no memory for it:
// it is optional). Thread-safe.
std::shared_ptr<const IdentityFilter> IdentityFilterOf(const JobResults& job,
                                                       bool build) {
  SortOrderCache& cache = *job.sort_orders;
  {
    std::lock_guard<std::mutex> lock(cache.mu);
    if (cache.identity_filter || !build) return cache.identity_filter;
  }
  std::shared_ptr<const IdentityFilter> filter;
  try {
    filter = std::make_shared<const IdentityFilter>(job);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
  std::lock_guard<std::mutex> lock(cache.mu);
  if (!cache.identity_filter) cache.identity_filter = std::move(filter);
  return cache.identity_filter;
}

// A stored row: its segment and row number.
struct StoredRow {
  uint32_t segment;
  uint32_t row;
  friend bool operator==(const StoredRow& a, const StoredRow& b) {
    return a.segment == b.segment && a.row == b.row;
  }
  template <typename H>
  friend H AbslHashValue(H h, const StoredRow& r) {
    return H::combine(std::move(h), r.segment, r.row);
  }
};

// A stored job as a batch meets it: its live rows found by identity
// (through each segment's IdentityIndex) or by a deletion's _id (through
// the rows of its timestamp), never by a scan of the job.
class StoredRows {
 public:
  // `job` may be null (nothing stored). `batch` is the staged rows whose
  // codes Find() translates, once per string and segment.
  StoredRows(const std::shared_ptr<const JobResults>& job,
             const MutationBatch::JobRows& batch)
      : batch_(batch) {
    if (job == nullptr) return;
    if (job->segments.empty()) {
      segments_.push_back({job, nullptr});
    } else {
      segments_ = job->segments;
    }
    codes_.resize(segments_.size());
    spans_.resize(segments_.size());
    filters_.resize(segments_.size());
  }

  bool empty() const { return segments_.empty(); }
  size_t live_rows() const {
    size_t rows = 0;
    for (const JobResults::Segment& segment : segments_) {
      rows += segment.rows->size() - segment.deleted_rows();
    }
    return rows;
  }
  const JobResults& rows(StoredRow r) const {
    return *segments_[r.segment].rows;
  }
  uint32_t version(StoredRow r) const {
    return rows(r).columns.version[r.row];
  }
  TextIdentity IdentityOf(StoredRow r) const {
    const JobResults& job = rows(r);
    return {job.columns.timestamp[r.row], job.bucket_span(r.row),
            job.field_name(r.row), job.field_value(r.row)};
  }

  // The live stored row with the identity of staged row `i`, if any.
  std::optional<StoredRow> FindStaged(size_t i) {
    const InfluencerColumns& c = batch_.columns;
    const int64_t timestamp = c.timestamp[i];
    for (size_t s = segments_.size(); s-- > 0;) {
      const JobResults& segment = *segments_[s].rows;
      if (timestamp < segment.min_timestamp ||
          timestamp > segment.max_timestamp || !MayHold(s, i)) {
        continue;
      }
      const int64_t name = Code(s, c.field_name_code[i]);
      const int64_t value = Code(s, c.field_value_code[i]);
      const int64_t span = Span(s, c.bucket_span_code[i]);
      if (name < 0 || value < 0 || span < 0) continue;
      const JobResults& job = *segments_[s].rows;
      std::optional<StoredRow> found;
      Index(s).ForEach(
          job.columns, c.timestamp[i], static_cast<uint32_t>(span),
          static_cast<uint32_t>(name), static_cast<uint32_t>(value),
          [&](uint32_t row) {
            if (!Deleted(s, row)) {
              found = StoredRow{static_cast<uint32_t>(s), row};
            }
          });
      if (found) return found;
    }
    return std::nullopt;
  }

  // A hint with no observable effect: FindStaged(i) may come soon. Stage
  // 0 prefetches the identity index slots it will read, stage 1 (once
  // those are likely cached) the rows they hold, so that the cache misses
  // of rows looked up in turn overlap. Indexes not fetched yet are left
  // alone (building one is FindStaged's to do).
  void PrefetchStaged(size_t i, int stage) {
    const InfluencerColumns& c = batch_.columns;
    const int64_t timestamp = c.timestamp[i];
    for (size_t s = segments_.size(); s-- > 0;) {
      const JobResults& segment = *segments_[s].rows;
      if (timestamp < segment.min_timestamp ||
          timestamp > segment.max_timestamp || s >= indexes_.size() ||
          !indexes_[s] || !MayHold(s, i)) {
        continue;
      }
      const int64_t name = Code(s, c.field_name_code[i]);
      const int64_t value = Code(s, c.field_value_code[i]);
      const int64_t span = Span(s, c.bucket_span_code[i]);
      if (name < 0 || value < 0 || span < 0) continue;
      const size_t slot = indexes_[s]->Slot(
          timestamp, static_cast<uint32_t>(span), static_cast<uint32_t>(name),
          static_cast<uint32_t>(value));
      if (stage == 0) {
        indexes_[s]->PrefetchSlot(slot);
      } else {
        indexes_[s]->PrefetchRow(segment.columns, slot);
      }
    }
  }

  // Calls on_row(r) for every live stored row that `id` names, oldest
  // first.
  template <typename OnRow>
  void ForEachNamed(const InfluencerResultId& id, OnRow on_row) {
    for (size_t s = 0; s < segments_.size(); ++s) {
      const JobResults& job = *segments_[s].rows;
      if (id.timestamp < job.min_timestamp || id.timestamp > job.max_timestamp) {
        continue;
      }
      const int64_t name = job.CodeOf(id.field_name);
      if (name < 0) continue;
      ValueHashes& hashes = Hashes(s);
      ForEachRowAt(segments_[s].rows, id.timestamp, [&](uint32_t row) {
        if (job.bucket_span(row) == id.bucket_span &&
            job.columns.field_name_code[row] == name && !Deleted(s, row) &&
            hashes.Matches(id, static_cast<uint32_t>(name),
                           job.columns.field_value_code[row])) {
          on_row(StoredRow{static_cast<uint32_t>(s), row});
        }
      });
    }
  }

 private:
  // False if segment s holds no row with staged row i's identity (its
  // IdentityFilter says so); true if it may, or has no filter.
  bool MayHold(size_t s, size_t i) {
    Filter& filter = filters_[s];
    if (!filter.fetched) {
      filter.fetched = true;
      const JobResults& rows = *segments_[s].rows;
      filter.filter =
          IdentityFilterOf(rows, rows.columns.size() <= kLazyFilterRows);
    }
    if (filter.filter == nullptr) return true;
    // Hashed once per staged row and call (a few tens of ns), not kept: a
    // load of millions of rows would hold them all.
    if (hashed_row_ != i) {
      const TextIdentity id = StagedIdentity(batch_, i);
      staged_hash_ =
          TextIdentityHash(id.timestamp, id.bucket_span, id.name, id.value);
      hashed_row_ = i;
    }
    return filter.filter->MayContain(staged_hash_);
  }
  bool Deleted(size_t s, uint32_t row) const {
    const DeletedRows* deleted = segments_[s].deleted.get();
    return deleted != nullptr && deleted->Contains(row);
  }
  // Segment s's code of batch string `code`, or -1 if s lacks the string.
  int64_t Code(size_t s, uint32_t code) {
    std::vector<int64_t>& codes = codes_[s];
    if (codes.empty()) codes.assign(batch_.strings.size(), -2);
    if (codes[code] == -2) {
      codes[code] = segments_[s].rows->CodeOf(batch_.strings[code]);
    }
    return codes[code];
  }
  int64_t Span(size_t s, uint32_t code) {
    std::vector<int64_t>& spans = spans_[s];
    if (spans.empty()) {
      const std::vector<int64_t>& have = segments_[s].rows->bucket_spans;
      spans.assign(batch_.bucket_spans.size(), -1);
      for (size_t k = 0; k < spans.size(); ++k) {
        auto it = std::find(have.begin(), have.end(), batch_.bucket_spans[k]);
        if (it != have.end()) spans[k] = it - have.begin();
      }
    }
    return spans[code];
  }
  // Segment s's identity index, fetched from its cache once per batch.
  const IdentityIndex& Index(size_t s) {
    if (indexes_.size() < segments_.size()) indexes_.resize(segments_.size());
    if (!indexes_[s]) indexes_[s] = IdentityIndexOf(*segments_[s].rows);
    return *indexes_[s];
  }
  ValueHashes& Hashes(size_t s) {
    if (hashes_.size() < segments_.size()) hashes_.resize(segments_.size());
    if (!hashes_[s]) {
      hashes_[s] = std::make_unique<ValueHashes>(segments_[s].rows->strings);
    }
    return *hashes_[s];
  }

  const MutationBatch::JobRows& batch_;
  std::vector<JobResults::Segment> segments_;
  std::vector<std::vector<int64_t>> codes_;
  std::vector<std::vector<int64_t>> spans_;
  std::vector<std::unique_ptr<ValueHashes>> hashes_;
  std::vector<std::shared_ptr<const IdentityIndex>> indexes_;
  struct Filter {
    bool fetched = false;
    std::shared_ptr<const IdentityFilter> filter;  // null: none
  };
  std::vector<Filter> filters_;
  size_t hashed_row_ = SIZE_MAX;  // the staged row staged_hash_ is of
  uint64_t staged_hash_ = 0;
};

// What a batch does to one job, decided before anything is built.
struct JobPlan {
  std::vector<bool> keep;        // staged rows that end up stored
  std::vector<StoredRow> removed;  // stored rows replaced or deleted
  uint64_t replaced_stored = 0;  // of `removed`, those replaced
  bool drop_stored = false;      // every stored row goes (a job operation)
  bool job_exists = true;        // false: the job ends deleted
};

// The batch's items on one job, with where their outcomes go.
struct JobItems {
  const std::vector<MutationBatch::Item>* items = nullptr;
  std::vector<uint32_t> indexes;  // into *items and *results, in order
  // Null: outcomes are not kept (ApplyOptions::item_results).
  std::vector<ItemResult>* results = nullptr;
  // Counts the items that fail (409 creates), if set.
  size_t* failed = nullptr;
  // Items where a coalesced batch's later batches start, ascending
  // (MutationBatch::Coalesce).
  const std::vector<uint32_t>* boundaries = nullptr;
};

// A kLoad batch's plan for one job (the unit semantics of mutation.h):
// staged rows from `first_row` and deletions from `first_delete` (those
// after the last job operation) meet the stored rows.
void PlanLoad(const MutationBatch::JobRows& rows, size_t first_row,
              size_t first_delete, StoredRows& stored,
              MutationBatch::JobRows* staged_rows, JobPlan* plan,
              CommitStats* stats) {
  const size_t n = rows.columns.size();
  // Within the batch its own codes tell strings apart.
  const std::vector<uint32_t> same = IdentityMap(rows.strings.size());
  const CodedRows staged{rows.columns, same, rows.bucket_spans};
  std::vector<bool>& keep = plan->keep;
  keep.assign(n, true);
  for (size_t i = 0; i < first_row; ++i) keep[i] = false;
  const Column<int64_t>& staged_time = rows.columns.timestamp;
  // Rows in time order (as dumps are) can only repeat an identity within a
  // run of one timestamp: a new job's rows need no index of the batch.
  if (first_row == 0 && std::is_sorted(staged_time.begin(), staged_time.end())) {
    DropRepeatsWithinRuns(staged, &keep, &stats->replaced);
  } else {
    RowIndex staged_row(n);
    for (size_t i = first_row; i < n; ++i) {
      uint32_t* slot = staged_row.Find(staged.IdentityOf(i), staged);
      if (*slot != RowIndex::kEmpty) {
        keep[*slot] = false;
        ++stats->replaced;
      }
      *slot = static_cast<uint32_t>(i);
    }
  }
  absl::flat_hash_set<StoredRow> removed;
  auto remove = [&](StoredRow r) {
    if (!removed.insert(r).second) return false;
    plan->removed.push_back(r);
    return true;
  };
  if (rows.deletes.size() > first_delete) {
    // A deletion removes the stored rows it names and the rows staged
    // before it; each row counts for the first deletion that names it.
    std::vector<bool> hit(rows.deletes.size(), false);
    for (size_t d = first_delete; d < rows.deletes.size(); ++d) {
      stored.ForEachNamed(rows.deletes[d].first, [&](StoredRow r) {
        if (remove(r)) {
          hit[d] = true;
          ++stats->deleted;
        }
      });
    }
    absl::flat_hash_map<std::pair<int64_t, int64_t>, std::vector<size_t>> by_time;
    for (size_t d = first_delete; d < rows.deletes.size(); ++d) {
      by_time[{rows.deletes[d].first.timestamp, rows.deletes[d].first.bucket_span}]
          .push_back(d);
    }
    ValueHashes hashes(rows.strings);
    for (size_t i = first_row; i < n; ++i) {
      if (!keep[i]) continue;
      auto it = by_time.find(std::make_pair(
          staged_time[i], rows.bucket_spans[rows.columns.bucket_span_code[i]]));
      if (it == by_time.end()) continue;
      for (size_t d : it->second) {
        if (rows.deletes[d].second > i &&
            hashes.Matches(rows.deletes[d].first, rows.columns.field_name_code[i],
                           rows.columns.field_value_code[i])) {
          keep[i] = false;
          hit[d] = true;
          break;
        }
      }
    }
    stats->delete_misses += static_cast<uint64_t>(
        std::count(hit.begin() + static_cast<ptrdiff_t>(first_delete), hit.end(),
                   false));
  }
  if (stored.empty()) return;
  Column<uint32_t>& version = staged_rows->columns.version;
  for (size_t i = first_row; i < n; ++i) {
    if (!keep[i]) continue;
    std::optional<StoredRow> match = stored.FindStaged(i);
    if (!match || removed.contains(*match)) continue;
    if (SameValues(stored.rows(*match).columns, match->row, rows.columns, i)) {
      keep[i] = false;  // identical: the stored row stays put
      ++stats->unchanged;
    } else {
      remove(*match);  // replaced: the staged row goes to the end
      version[i] = stored.version(*match) + 1;
      ++stats->replaced;
      ++plan->replaced_stored;
    }
  }
}

// A kBulk batch's plan for one job: its items applied one after another,
// each given its outcome, version and (later) sequence number.
void PlanBulk(const std::string& job_id, const MutationBatch::JobRows& rows,
              bool stored_known,
              StoredRows& stored, const JobItems& job_items,
              MutationBatch::JobRows* staged_rows, JobPlan* plan,
              CommitStats* stats) {
  using OpKind = MutationBatch::OpKind;
  const size_t n = rows.columns.size();
  // Where each identity the batch touches stands as the items apply.
  constexpr int64_t kNobody = -1;
  constexpr int64_t kStoredHolder = -2;
  struct State {
    bool exists = false;
    uint32_t version = 0;  // its writes (kept past a delete, as a tombstone)
    int64_t holder = kNobody;  // staged row i, or kStoredHolder
    std::optional<StoredRow> stored;  // its live stored row, if any
    uint32_t epoch = 0;  // the coalesced batch that last touched it
  };
  // One State per identity, numbered: staged rows' identities first (in
  // order of first appearance), then those only stored rows that a
  // deletion names have. Staged identities are found by the batch's codes
  // (equal strings have equal codes within a batch), so that an item costs
  // an index into `states`, not a hash of its strings.
  // (A replayed commit holds millions of rows: these live on the
  // columns' huge pages, whose first touch costs far less.)
  std::vector<State, ColumnAllocator<State>> states;
  Column<uint32_t> row_state(n);           // staged row -> its state
  Column<uint32_t> state_row;              // staged state -> its first row
  std::vector<TextIdentity> stored_text;   // states after the staged ones
  absl::flat_hash_map<Identity, uint32_t, absl::Hash<Identity>,
                      std::equal_to<Identity>,
                      ColumnAllocator<std::pair<const Identity, uint32_t>>>
      ids;
  // Replayed commits write each identity a few times: room for a
  // quarter of the rows as distinct identities spares most rehashes.
  const size_t expected_ids =
      std::max(std::min<size_t>(n, size_t{1} << 16), n / 4);
  ids.reserve(expected_ids);
  states.reserve(expected_ids);
  state_row.reserve(expected_ids);
  const Column<int64_t>& staged_time = rows.columns.timestamp;
  auto key_of = [&](size_t i) {
    return Identity{staged_time[i],
                    rows.bucket_spans[rows.columns.bucket_span_code[i]],
                    rows.columns.field_name_code[i],
                    rows.columns.field_value_code[i]};
  };
  // Lookups a few rows ahead are prefetched (hints only: the lookups
  // themselves are in row order).
  constexpr size_t kSlotAhead = 16;
  constexpr size_t kRowAhead = 8;
  for (size_t i = 0; i < n; ++i) {
    if (i + kSlotAhead < n) {
      stored.PrefetchStaged(i + kSlotAhead, 0);
      ids.prefetch(key_of(i + kSlotAhead));
    }
    if (i + kRowAhead < n) stored.PrefetchStaged(i + kRowAhead, 1);
    auto [it, inserted] =
        ids.try_emplace(key_of(i), static_cast<uint32_t>(states.size()));
    row_state[i] = it->second;
    if (!inserted) continue;
    states.emplace_back();
    state_row.push_back(static_cast<uint32_t>(i));
    if (std::optional<StoredRow> match = stored.FindStaged(i)) {
      states.back() = State{true, stored.version(*match), kStoredHolder, match};
    }
  }
  const size_t staged_states = states.size();
  if (!rows.deletes.empty()) {
    // A stored row a deletion names has a staged identity only if the
    // batch holds its strings.
    absl::flat_hash_map<absl::string_view, uint32_t> codes;
    codes.reserve(rows.strings.size());
    for (size_t k = 0; k < rows.strings.size(); ++k) {
      codes.emplace(rows.strings[k], static_cast<uint32_t>(k));
    }
    absl::flat_hash_map<TextIdentity, uint32_t> others;
    for (const auto& [id, staged_before] : rows.deletes) {
      stored.ForEachNamed(id, [&](StoredRow r) {
        const TextIdentity text = stored.IdentityOf(r);
        const uint32_t next = static_cast<uint32_t>(states.size());
        auto name = codes.find(text.name);
        auto value = codes.find(text.value);
        const bool inserted =
            name != codes.end() && value != codes.end()
                ? ids.try_emplace(Identity{text.timestamp, text.bucket_span,
                                           name->second, value->second},
                                  next)
                      .second
                : others.try_emplace(text, next).second;
        if (!inserted) return;  // the identity has its state already
        states.push_back(State{true, stored.version(r), kStoredHolder, r});
        stored_text.push_back(text);
      });
    }
  }
  auto text_of = [&](size_t k) {
    return k < staged_states ? StagedIdentity(rows, state_row[k])
                             : stored_text[k - staged_states];
  };
  // The identities (states) each deletion may remove.
  std::vector<std::vector<uint32_t>> candidates(rows.deletes.size());
  if (!rows.deletes.empty()) {
    absl::flat_hash_map<std::pair<int64_t, int64_t>, std::vector<size_t>> by_time;
    for (size_t d = 0; d < rows.deletes.size(); ++d) {
      by_time[{rows.deletes[d].first.timestamp, rows.deletes[d].first.bucket_span}]
          .push_back(d);
    }
    for (size_t k = 0; k < states.size(); ++k) {
      const TextIdentity id = text_of(k);
      auto deletes = by_time.find({id.timestamp, id.bucket_span});
      if (deletes == by_time.end()) continue;
      int32_t length = 0;
      const int32_t hash = JavaStringHash(id.value, &length);
      for (size_t d : deletes->second) {
        const InfluencerResultId& named = rows.deletes[d].first;
        if (named.field_name == id.name && named.value_hash == hash &&
            named.value_length == length) {
          candidates[d].push_back(static_cast<uint32_t>(k));
        }
      }
    }
  }

  auto drop_holder = [&](State& state) {
    if (state.holder == kStoredHolder) {
      plan->removed.push_back(*state.stored);
      state.stored.reset();
    }
    state.holder = kNobody;
  };
  Column<uint32_t>& version = staged_rows->columns.version;
  bool stored_alive = !stored.empty();
  bool job_known = stored_known;
  // A tombstone lasts for its batch only: in a coalesced batch, a result
  // deleted in an earlier batch starts again at version 1.
  uint32_t epoch = 0;
  size_t next_boundary = 0;
  auto touch = [&epoch](State& state) {
    if (state.epoch != epoch) {
      if (!state.exists) state.version = 0;
      state.epoch = epoch;
    }
  };
  for (uint32_t index : job_items.indexes) {
    const MutationBatch::Item& item = (*job_items.items)[index];
    ItemResult scratch;
    ItemResult& out =
        job_items.results != nullptr ? (*job_items.results)[index] : scratch;
    if (job_items.boundaries != nullptr) {
      while (next_boundary < job_items.boundaries->size() &&
             (*job_items.boundaries)[next_boundary] <= index) {
        ++next_boundary;
        ++epoch;
      }
    }
    switch (item.kind) {
      case OpKind::kUpsert:
      case OpKind::kCreate: {
        State& state = states[row_state[item.index]];
        touch(state);
        if (state.exists && item.kind == OpKind::kCreate) {
          InfluencerFields fields;
          const TextIdentity id = StagedIdentity(rows, item.index);
          fields.timestamp = id.timestamp;
          fields.bucket_span = id.bucket_span;
          fields.field_name = id.name;
          fields.field_value = id.value;
          out.outcome = MutationOutcome::kError;
          out.error = EsError(
              409, "version_conflict_engine_exception",
              absl::StrCat("[", InfluencerDocumentId(job_id, fields),
                           "]: version conflict, document already exists "
                           "(current version [",
                           state.version, "])"));
          out.status = 409;
          if (job_items.failed != nullptr) ++*job_items.failed;
          break;
        }
        out.outcome = state.exists ? MutationOutcome::kUpdated
                                   : MutationOutcome::kCreated;
        out.status = state.exists ? 200 : 201;
        if (state.exists) {
          ++stats->replaced;
          drop_holder(state);
        } else {
          ++stats->added;
        }
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
        for (uint32_t k : candidates[item.index]) {
          State& state = states[k];
          touch(state);
          if (!state.exists) {
            tombstone = std::max(tombstone, state.version);
            continue;
          }
          state.exists = false;
          drop_holder(state);
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
        for (State& state : states) {
          if (state.exists && state.holder != kStoredHolder) ++removed;
          state = State{};
        }
        if (stored_alive) removed += stored.live_rows() - plan->removed.size();
        stored_alive = false;
        plan->drop_stored = true;
        plan->removed.clear();
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
  for (const State& state : states) {
    if (state.exists && state.holder >= 0) plan->keep[state.holder] = true;
  }
  plan->job_exists = job_known || rows.named_after_job_op;
}

// A plain segment of `job_id` holding the staged rows `keep` marks, in
// order, with the batch's dictionary.
std::shared_ptr<JobResults> BuildSegment(
    const std::string& job_id, MutationBatch::JobRows&& rows,
    const std::vector<bool>& keep,
    const std::shared_ptr<const StringArena>& arena) {
  auto job = std::make_shared<JobResults>();
  job->job_id = job_id;
  job->strings = rows.strings;
  job->string_codes.reserve(rows.strings.size());
  for (size_t i = 0; i < rows.strings.size(); ++i) {
    job->string_codes.emplace(rows.strings[i], static_cast<uint32_t>(i));
  }
  job->bucket_spans = rows.bucket_spans;
  job->field_names = FieldNames(rows, keep);
  if (!rows.strings.empty()) job->arenas.push_back(arena);
  const size_t n = rows.columns.size();
  const size_t kept =
      static_cast<size_t>(std::count(keep.begin(), keep.end(), true));
  if (kept == n) {
    job->columns = std::move(rows.columns);  // no copy
    // A batch reserved for coalescing (MutationBatch::Reserve) may hold
    // far more room than rows: the stored job does not keep it. (Columns
    // grown by doubling hold at most twice their rows: not worth a copy.)
    if (job->columns.timestamp.capacity() > 2 * n + 16) {
      job->columns.ShrinkToFit();
    }
  } else {
    const std::vector<uint32_t> same_strings = IdentityMap(rows.strings.size());
    const std::vector<uint32_t> same_spans = IdentityMap(rows.bucket_spans.size());
    job->columns.Reserve(kept);
    for (size_t i = 0; i < n; ++i) {
      if (keep[i]) {
        AppendRow(rows.columns, i, same_strings, same_spans, job->columns);
      }
    }
  }
  for (uint8_t interim : job->columns.is_interim) job->interim_rows += interim;
  job->time_ordered = std::is_sorted(job->columns.timestamp.begin(),
                                     job->columns.timestamp.end());
  SetTimestampRange(*job);
  SetMissingDoubles(*job);
  return job;
}

// `segments` as one job of segments (or the one plain segment it is),
// holding `live_rows` rows of which `interim_rows` interim. The field
// names are copied into an arena of the job's own: the segments that held
// them may go.
std::shared_ptr<const JobResults> Assemble(
    const std::string& job_id, std::vector<JobResults::Segment> segments,
    const std::vector<absl::string_view>& field_names, size_t live_rows,
    size_t interim_rows) {
  // A segment with no live row is dropped.
  std::erase_if(segments, [](const JobResults::Segment& segment) {
    return segment.deleted_rows() == segment.rows->size();
  });
  if (segments.size() == 1 && segments[0].deleted == nullptr) {
    return segments[0].rows;
  }
  auto job = std::make_shared<JobResults>();
  job->job_id = job_id;
  auto names = std::make_shared<StringArena>();
  for (absl::string_view name : field_names) {
    job->field_names.push_back(names->Store(name));
  }
  job->arenas.push_back(std::move(names));
  if (segments.empty()) return job;
  job->live_rows = live_rows;
  job->interim_rows = interim_rows;
  job->segments = std::move(segments);
  return job;
}

// A merge running in the background (StoreOptions): the segments handed
// to it (as one job of segments), and the rows of those deleted since.
struct MergeInProgress {
  std::shared_ptr<const JobResults> snapshot;
  // Whether the merged segments start at the job's base.
  bool with_base = false;
  // snapshot's segments, by address -> their index there.
  absl::flat_hash_map<const JobResults*, uint32_t> segment_of;
  // (index in snapshot->segments, row) of each row deleted since.
  std::vector<std::pair<uint32_t, uint32_t>> deleted;
};

// Background merges a job may have at a time, which run on other
// threads: windows of deltas, or a window beside a merge of the whole job
// (asked for only while no other merge runs). A window is half of
// max_delta_segments wide and is asked for only while the deltas are
// within it, so two windows fill the limit. A pair of growing deltas
// (StoreOptions::merge_growing_deltas) takes a slot as a window does, and
// while one is asked for in a commit no window is. The bound on deltas
// does not rest on this number.
constexpr size_t kMergesPerJob = 2;

// Segments [from, to) of a job, to merge in the background; none if empty.
struct MergeRequest {
  size_t from = 0;
  size_t to = 0;
};

// Of `segments`, the window of `width` adjacent ones, all `free`, holding
// the fewest rows (the newest of equals), or SIZE_MAX if there is none:
// merging the smallest neighbours keeps a merge's cost near its own rows
// (as a tiered policy does), where always merging the newest would copy
// one growing delta again and again.
size_t SmallestWindow(const std::vector<JobResults::Segment>& segments,
                      const std::vector<bool>& free, size_t width) {
  size_t best = SIZE_MAX;
  size_t best_rows = SIZE_MAX;
  size_t rows = 0;
  size_t run = 0;  // free segments in a row, ending at s
  for (size_t s = 0; s < segments.size(); ++s) {
    if (!free[s]) {
      run = 0;
      rows = 0;
      continue;
    }
    ++run;
    rows += segments[s].rows->size();
    if (run > width) rows -= segments[s - width].rows->size();
    if (run >= width && rows <= best_rows) {
      best_rows = rows;
      best = s + 1 - width;
    }
  }
  return best;
}

// The stored job `old` with its rows `removed` deleted and the segment
// `added` (may be null) appended: a job of segments that shares every
// unchanged segment, so that the cost is the batch's, not the job's. Past
// the most deltas, the smallest neighbouring deltas are merged into one;
// when the deltas and deleted rows outgrow the base by the merge ratio,
// the whole job is merged into one plain segment (StoreOptions says
// when). Merges are done here if `request` is null; else *request says
// which segments of the returned job to merge, for the caller to start a
// background merge. `in_progress` holds the job's background merges,
// whose segments stay as they are and which learn of the rows deleted
// from them; meanwhile only neighbouring deltas that none of them holds
// are merged, here or by one more background merge (up to kMergesPerJob
// at a time), and the whole job is not. Before those rules, with
// merge_growing_deltas, neighbouring deltas of which the newer is as large
// as the older are merged (here while small, else by a background merge
// of the pair; with no `request`, by the rules above only).
std::shared_ptr<const JobResults> AddToSegments(
    const std::shared_ptr<const JobResults>& old,
    const std::vector<StoredRow>& removed, std::shared_ptr<JobResults> added,
    const StoreOptions& options, bool warm,
    const std::vector<MergeInProgress*>& in_progress, MergeRequest* request) {
  const size_t max_deltas = std::max<size_t>(options.max_delta_segments, 1);
  std::vector<JobResults::Segment> segments;
  if (old->segments.empty()) {
    segments.push_back({old, nullptr});
  } else {
    segments = old->segments;
  }
  std::vector<std::vector<uint32_t>> newly_deleted(segments.size());
  for (const StoredRow& r : removed) newly_deleted[r.segment].push_back(r.row);
  for (size_t s = 0; s < segments.size(); ++s) {
    std::vector<uint32_t>& rows = newly_deleted[s];
    if (rows.empty()) continue;
    std::sort(rows.begin(), rows.end());
    for (MergeInProgress* merge : in_progress) {
      auto it = merge->segment_of.find(segments[s].rows.get());
      if (it != merge->segment_of.end()) {
        for (uint32_t row : rows) merge->deleted.push_back({it->second, row});
      }
    }
    // Shares the rows deleted before (DeletedRows): O(batch), not O(job).
    const DeletedRows* before = segments[s].deleted.get();
    std::shared_ptr<const DeletedRows> list =
        before != nullptr ? before->With(rows)
                          : std::make_shared<const DeletedRows>(rows);
    // What queries learned of the deleted rows, carried over.
    segments[s].deleted_cache =
        segments[s].deleted_cache != nullptr
            ? segments[s].deleted_cache->Extend(segments[s].rows->columns,
                                                rows, *list)
            : std::make_shared<DeletedRowCache>();
    segments[s].deleted = std::move(list);
  }
  std::vector<absl::string_view> field_names = old->field_names;
  size_t live_rows = old->size() - removed.size();
  size_t interim_rows = old->interim_rows;
  for (const StoredRow& r : removed) {
    interim_rows -= segments[r.segment].rows->columns.is_interim[r.row];
  }
  if (added != nullptr && added->size() > 0) {
    for (absl::string_view name : added->field_names) {
      if (std::find(field_names.begin(), field_names.end(), name) ==
          field_names.end()) {
        field_names.push_back(name);
      }
    }
    live_rows += added->size();
    interim_rows += added->interim_rows;
    segments.push_back({std::move(added), nullptr});
  }
  std::shared_ptr<const JobResults> job = Assemble(
      old->job_id, std::move(segments), field_names, live_rows, interim_rows);
  // The pair of deltas asked for below (StoreOptions::merge_growing_deltas),
  // by identity: merges on the commit path may move it.
  std::vector<const JobResults*> requested;
  // The deltas that may be merged: those no background merge holds nor
  // this call asks for. The base is merged only as the job.
  auto free_deltas = [&] {
    std::vector<bool> free(job->segments.size(), true);
    if (!free.empty()) free[0] = false;
    for (size_t s = 1; s < job->segments.size(); ++s) {
      const JobResults* rows = job->segments[s].rows.get();
      for (const MergeInProgress* merge : in_progress) {
        if (merge->segment_of.contains(rows)) free[s] = false;
      }
      if (std::find(requested.begin(), requested.end(), rows) !=
          requested.end()) {
        free[s] = false;
      }
    }
    return free;
  };
  // Deltas `from` to `from + width` of `job` merged into one, here.
  auto merge_window = [&](size_t from, size_t width) {
    auto window = std::make_shared<JobResults>();
    window->job_id = job->job_id;
    window->segments.assign(job->segments.begin() + from,
                            job->segments.begin() + from + width);
    for (const JobResults::Segment& segment : window->segments) {
      window->live_rows += segment.rows->size() - segment.deleted_rows();
    }
    std::vector<JobResults::Segment> kept(job->segments.begin(),
                                          job->segments.begin() + from);
    std::shared_ptr<const JobResults> merged = MaterializeJob(window);
    if (merged->size() <= kEagerFilterRows) IdentityFilterOf(*merged, true);
    kept.push_back({std::move(merged), nullptr});
    kept.insert(kept.end(), job->segments.begin() + from + width,
                job->segments.end());
    job = Assemble(job->job_id, std::move(kept), field_names, live_rows,
                   interim_rows);
  };
  if (options.merge_growing_deltas) {
    // The newest two neighbouring free deltas of which the newer holds at
    // least the older's rows are merged, till none are: the deltas then
    // shrink from the oldest to the newest, as a binary counter's bits do,
    // so a job holds about log2(deltas' rows / batch rows) of them. A pair
    // of up to inline_merge_rows rows is merged here, while this commit
    // has merged fewer than inline_merge_rows rows so (the rest of a
    // carry waits for the next commit, which keeps the commit's tail
    // short); a larger one in the background, while the job has a merge
    // slot and is within the limit.
    size_t budget = options.inline_merge_rows;
    for (;;) {
      const std::vector<bool> free = free_deltas();
      size_t pair = 0;  // the pair's newer delta
      for (size_t s = job->segments.size(); s-- > 2;) {
        if (free[s - 1] && free[s] &&
            job->segments[s].rows->size() >=
                job->segments[s - 1].rows->size()) {
          pair = s;
          break;
        }
      }
      if (pair == 0) break;
      const size_t rows = job->segments[pair - 1].rows->size() +
                          job->segments[pair].rows->size();
      if (rows <= budget) {
        merge_window(pair - 1, 2);
        budget -= rows;
        continue;
      }
      if (rows <= options.inline_merge_rows) break;  // the next commit's
      if (request != nullptr && in_progress.size() < kMergesPerJob &&
          job->segments.size() - 1 <= max_deltas) {
        requested = {job->segments[pair - 1].rows.get(),
                     job->segments[pair].rows.get()};
      }
      break;
    }
  }
  std::vector<bool> free = free_deltas();
  size_t longest = 0;  // free deltas in a row
  for (size_t s = 0, run = 0; s < job->segments.size(); ++s) {
    run = free[s] ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  // Deltas past `trigger` are merged; the headroom up to max_deltas takes
  // those written while merges run (which pin the deltas they merge).
  const size_t trigger = max_deltas - std::max<size_t>(max_deltas / 8, 1);
  const size_t deltas = job->segments.empty() ? 0 : job->segments.size() - 1;
  if (deltas > trigger && longest >= 2) {
    const size_t full_width = std::max<size_t>(max_deltas / 2, 2);
    size_t width = std::min(full_width, longest);
    size_t from = SmallestWindow(job->segments, free, width);
    size_t rows = 0;
    for (size_t s = from; s < from + width; ++s) {
      rows += job->segments[s].rows->size();
    }
    // A small window (the rule: the smallest deltas) is merged here, which
    // keeps the deltas few at little cost; a large one in the background,
    // if it is as wide as a window is (a merge pins its deltas till it is
    // done: a narrow one would pin them for little gain), the job has
    // fewer background merges than it may have, and the deltas are within
    // max_deltas (a merge leaves their number as it is till it is done).
    // Else, past max_deltas, the fewest neighbouring deltas that bring
    // them back are merged here (the smallest such window), so that a job
    // holds at most max_deltas + 1: the one more is a delta written right
    // after a merge took the newest.
    const bool small = rows <= options.inline_merge_rows;
    bool merge_here = small || request == nullptr;
    if (!merge_here && width == full_width && deltas <= max_deltas &&
        in_progress.size() < kMergesPerJob && requested.empty()) {
      *request = {from, from + width};
    } else if (!merge_here && deltas > max_deltas) {
      width = std::min(longest, deltas - max_deltas + 1);
      from = SmallestWindow(job->segments, free, width);
      merge_here = true;
    }
    if (merge_here) merge_window(from, width);
  }
  if (!job->segments.empty() && in_progress.empty()) {
    const JobResults::Segment& base = job->segments[0];
    size_t churn = base.deleted_rows();
    size_t deleted = 0;
    size_t stored = 0;
    for (size_t s = 0; s < job->segments.size(); ++s) {
      if (s > 0) churn += job->segments[s].rows->size();
      deleted += job->segments[s].deleted_rows();
      stored += job->segments[s].rows->size();
    }
    // A replay (no query runs meanwhile) merges less often: each merge
    // rebuilds the identity index of the whole job.
    const double ratio =
        warm ? options.merge_ratio : std::max(options.merge_ratio, 1.0);
    // Deleted rows cost their columns and indexes until merged away; under
    // updates alone the churn rule would let them reach ratio / (2 + ratio)
    // of the rows stored (11% at 0.25), and more while the merge runs. A
    // quarter of the ratio keeps the budget per live influencer within 72
    // B at 10M rows taking 100,000 updates/s (mutation_bench
    // BM_MemoryUnderUpdates: 71 B, 9% deleted at the peak; a third: 73 B).
    // Only while queries run (a replay merges by churn alone, as few times
    // as it can: the first write after it applies this rule), and from
    // kCrowdedDeletedRows on (a small job's few deleted rows cost little,
    // and would otherwise merge it on nearly every write).
    const bool crowded =
        warm && deleted >= kCrowdedDeletedRows &&
        static_cast<double>(deleted) > options.merge_ratio / 4 *
                                           static_cast<double>(stored);
    if (crowded || static_cast<double>(churn) >
                       ratio * static_cast<double>(base.rows->size())) {
      if (request != nullptr) {
        // The whole job; near the most deltas, all but the newest two, so
        // that the deltas written while it runs find two free slots to
        // be merged with. It takes the place of a pair asked for above.
        requested.clear();
        const size_t segments = job->segments.size();
        *request = {0, segments - 1 >= trigger && segments >= 4
                           ? segments - 2
                           : segments};
      } else {
        // The merged job is built with the indexes queries and the next
        // write need, so that neither pays for them after it is published.
        job = MaterializeJob(job);
        if (warm) WarmIndexes(job);
        IdentityIndexOf(*job);
      }
    }
  }
  if (!requested.empty()) {
    for (size_t s = 1; s + 1 < job->segments.size(); ++s) {
      if (job->segments[s].rows.get() == requested[0]) {
        *request = {s, s + 2};
        break;
      }
    }
  }
  return job;
}

// `merged`, the merge of the segments `progress->snapshot` holds, fitted
// into the job as it stands now (`current`) in their place, with the rows
// deleted since marked deleted in it; the segments before and after them
// stay. Null when `current` no longer holds those segments in order (the
// job was replaced or deleted meanwhile), when none of them has a live
// row left, or when the rows do not add up.
std::shared_ptr<const JobResults> FitMerge(
    const std::shared_ptr<const JobResults>& current,
    const MergeInProgress& progress,
    const std::shared_ptr<const JobResults>& merged) {
  if (current == nullptr || current->segments.empty()) return nullptr;
  const std::vector<JobResults::Segment>& now_segments = current->segments;
  const std::vector<JobResults::Segment>& snapshot =
      progress.snapshot->segments;
  auto index_of = [&](size_t s) -> int64_t {
    auto it = progress.segment_of.find(now_segments[s].rows.get());
    return it == progress.segment_of.end() ? int64_t{-1}
                                           : static_cast<int64_t>(it->second);
  };
  // The merged segments still there are neighbours, in order (one with
  // no live row left was dropped).
  size_t first = 0;
  while (first < now_segments.size() && index_of(first) < 0) ++first;
  if (first == now_segments.size()) return nullptr;
  size_t end = first;
  size_t live_before = 0;  // of the merged segments, now
  std::vector<const JobResults::Segment*> now(snapshot.size(), nullptr);
  int64_t last_index = -1;
  for (; end < now_segments.size(); ++end) {
    const int64_t index = index_of(end);
    if (index < 0) break;
    if (index <= last_index) return nullptr;
    last_index = index;
    const JobResults::Segment& segment = now_segments[end];
    // Rows are only ever deleted: fewer deleted now than in the snapshot
    // means the snapshot came from a version that was never published.
    if (segment.deleted_rows() < snapshot[index].deleted_rows()) return nullptr;
    now[index] = &segment;
    live_before += segment.rows->size() - segment.deleted_rows();
  }
  for (size_t s = end; s < now_segments.size(); ++s) {
    if (index_of(s) >= 0) return nullptr;
  }
  // Where each merged segment's live rows start in the merged one.
  std::vector<size_t> offset(snapshot.size() + 1, 0);
  for (size_t s = 0; s < snapshot.size(); ++s) {
    offset[s + 1] = offset[s] + snapshot[s].rows->size() -
                    snapshot[s].deleted_rows();
  }
  if (offset.back() != merged->size()) return nullptr;
  std::vector<uint32_t> deleted;
  deleted.reserve(progress.deleted.size());
  for (auto [s, row] : progress.deleted) {
    // Deleted in the job as it stands (a batch the log refused may have
    // been applied to a version never published).
    if (now[s] != nullptr) {
      const DeletedRows* marked = now[s]->deleted.get();
      if (marked == nullptr || !marked->Contains(row)) continue;
    }
    const DeletedRows* before = snapshot[s].deleted.get();
    const size_t earlier = before == nullptr ? 0 : before->Rank(row);
    deleted.push_back(static_cast<uint32_t>(offset[s] + row - earlier));
  }
  std::sort(deleted.begin(), deleted.end());
  deleted.erase(std::unique(deleted.begin(), deleted.end()), deleted.end());
  if (merged->size() - deleted.size() != live_before) return nullptr;
  std::vector<JobResults::Segment> segments(now_segments.begin(),
                                            now_segments.begin() + first);
  JobResults::Segment fitted{merged, nullptr, nullptr};
  if (!deleted.empty()) {
    fitted.deleted = std::make_shared<const DeletedRows>(std::move(deleted));
    fitted.deleted_cache = std::make_shared<DeletedRowCache>();
  }
  segments.push_back(std::move(fitted));
  segments.insert(segments.end(), now_segments.begin() + end,
                  now_segments.end());
  return Assemble(current->job_id, std::move(segments), current->field_names,
                  current->live_rows, current->interim_rows);
}

// The results of `job_id` after the batch's operations on it (`rows`) meet
// `stored` (null when the job is unknown), or null if the job ends deleted.
std::shared_ptr<const JobResults> CommitJob(
    const std::string& job_id, const std::shared_ptr<const JobResults>& stored,
    MutationBatch::JobRows&& rows, MutationMode mode, bool replace_jobs,
    const JobItems& job_items, const std::shared_ptr<const StringArena>& arena,
    const StoreOptions& options, bool warm,
    const std::vector<MergeInProgress*>& in_progress, MergeRequest* request,
    CommitStats* stats) {
  // The stored rows the batch's rows meet, and where the rows after the
  // batch's last job operation start (kLoad: what comes before is undone).
  std::shared_ptr<const JobResults> old = stored;
  size_t first_row = 0;
  size_t first_delete = 0;
  bool job_exists = true;
  if (mode == MutationMode::kLoad) {
    if (old != nullptr &&
        ((replace_jobs && rows.named) || !rows.job_ops.empty())) {
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

  StoredRows view(old, rows);
  JobPlan plan;
  CommitStats job_stats;
  if (mode == MutationMode::kLoad) {
    PlanLoad(rows, first_row, first_delete, view, &rows, &plan, &job_stats);
    const size_t kept_new = static_cast<size_t>(
        std::count(plan.keep.begin(), plan.keep.end(), true));
    // Every staged row new to the store adds one; a replacement none.
    job_stats.added = kept_new - plan.replaced_stored;
  } else {
    PlanBulk(job_id, rows, old != nullptr, view, job_items, &rows, &plan,
             &job_stats);
    job_exists = plan.job_exists;
  }
  stats->added += job_stats.added;
  stats->replaced += job_stats.replaced;
  stats->deleted += job_stats.deleted;
  stats->unchanged += job_stats.unchanged;
  stats->delete_misses += job_stats.delete_misses;
  if (!job_exists) return nullptr;

  const bool any_new =
      std::find(plan.keep.begin(), plan.keep.end(), true) != plan.keep.end();
  if (old == nullptr || plan.drop_stored) {
    return BuildSegment(job_id, std::move(rows), plan.keep, arena);
  }
  if (!any_new && plan.removed.empty()) return old;  // nothing changed
  std::shared_ptr<JobResults> added =
      any_new ? BuildSegment(job_id, std::move(rows), plan.keep, arena)
              : nullptr;
  // Later writes ask the delta's filter before its dictionary and index:
  // O(batch) now, where most lookups in the delta would find nothing.
  if (added != nullptr && added->size() <= kEagerFilterRows) {
    IdentityFilterOf(*added, true);
  }
  return AddToSegments(old, plan.removed, std::move(added), options, warm,
                       in_progress, request);
}

// Sortable field names are those some job's rows have.
void RecomputeFieldNames(StoreVersion& snapshot) {
  snapshot.influencer_field_names.clear();
  for (const auto& [id, job] : snapshot.jobs) {
    for (absl::string_view name : job->field_names) {
      snapshot.influencer_field_names.insert(std::string(name));
    }
  }
}

}  // namespace

struct InfluencerStore::PendingMerge {
  std::string job_id;
  MergeInProgress merge;
};

struct InfluencerStore::FinishedMerge {
  uint64_t id;
  std::string job_id;
  std::shared_ptr<const JobResults> snapshot;
  std::shared_ptr<const JobResults> merged;  // null if the merge failed
};

// What a merge task holds of its store: the store while it lives.
struct InfluencerStore::MergeInbox {
  std::mutex mu;
  InfluencerStore* store ABSL_GUARDED_BY(mu) = nullptr;
};

InfluencerStore::InfluencerStore(StoreOptions options)
    : options_(std::move(options)),
      version_(std::make_shared<const StoreVersion>()),
      inbox_(std::make_shared<MergeInbox>()) {
  std::lock_guard<std::mutex> lock(inbox_->mu);
  inbox_->store = this;
}

InfluencerStore::~InfluencerStore() {
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  {
    // A merge task that finishes from now on drops its work.
    std::lock_guard<std::mutex> lock(inbox_->mu);
    inbox_->store = nullptr;
  }
  {
    std::lock_guard<std::mutex> lock(merger_mu_);
    merger_stopping_ = true;
    merge_tasks_.clear();
  }
  merger_cv_.notify_all();
  for (std::thread& merger : mergers_) merger.join();
}

void InfluencerStore::RegisterMerge(
    const std::string& job_id, const std::shared_ptr<const JobResults>& whole,
    size_t from, size_t to) {
  std::shared_ptr<const JobResults> job = whole;
  if (from > 0 || to < whole->segments.size()) {
    auto window = std::make_shared<JobResults>();
    window->job_id = job_id;
    window->segments.assign(whole->segments.begin() + from,
                            whole->segments.begin() + to);
    for (const JobResults::Segment& segment : window->segments) {
      window->live_rows += segment.rows->size() - segment.deleted_rows();
    }
    job = std::move(window);
  }
  auto pending = std::make_unique<PendingMerge>();
  pending->job_id = job_id;
  pending->merge.snapshot = job;
  pending->merge.with_base = from == 0;
  for (size_t s = 0; s < job->segments.size(); ++s) {
    pending->merge.segment_of.emplace(job->segments[s].rows.get(),
                                      static_cast<uint32_t>(s));
  }
  group_merges_.reserve(group_merges_.size() + 1);
  std::vector<std::unique_ptr<PendingMerge>>& merges = pending_merges_[job_id];
  merges.reserve(merges.size() + 1);
  group_merges_.push_back(pending.get());
  merges.push_back(std::move(pending));
}

void InfluencerStore::ForgetMerge(const PendingMerge* merge) {
  auto job = pending_merges_.find(merge->job_id);
  if (job == pending_merges_.end()) return;
  std::erase_if(job->second, [&](const std::unique_ptr<PendingMerge>& p) {
    return p.get() == merge;
  });
  if (job->second.empty()) pending_merges_.erase(job);
}

void InfluencerStore::StartMerges(bool published) {
  std::vector<PendingMerge*> started;
  started.swap(group_merges_);
  for (PendingMerge* pending : started) {
    if (!published) {
      // Registered on a version that was never published: it must not be
      // fitted into the one that is.
      ForgetMerge(pending);
      continue;
    }
    const std::string job_id = pending->job_id;
    std::shared_ptr<const JobResults> job = pending->merge.snapshot;
    uint64_t id;
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      id = ++last_merge_id_;
      outstanding_merges_.insert(id);
    }
    // The task holds the job's data and the inbox, never the store.
    const bool with_base = pending->merge.with_base;
    std::function<void()> task = [inbox = inbox_, id, job_id, job, with_base]() {
      FinishedMerge finished{id, job_id, job, nullptr};
      try {
        std::shared_ptr<const JobResults> merged = MaterializeJob(job);
        clout::WarmIndexes(merged);
        IdentityIndexOf(*merged);
        if (!with_base && merged->size() <= kMergeFilterRows) {
          IdentityFilterOf(*merged, true);
        }
        finished.merged = std::move(merged);
      } catch (const std::exception&) {
        // Out of memory, most likely: the job stays as it is, and a later
        // write starts the merge again.
      }
      std::lock_guard<std::mutex> inbox_lock(inbox->mu);
      if (inbox->store == nullptr) return;
      InfluencerStore& store = *inbox->store;
      {
        std::lock_guard<std::mutex> lock(store.queue_mu_);
        store.finished_merges_.push_back(std::move(finished));
      }
      store.queue_cv_.notify_all();
    };
    try {
      if (options_.merge_executor) {
        options_.merge_executor(std::move(task));
      } else {
        {
          std::lock_guard<std::mutex> lock(merger_mu_);
          merge_tasks_.push_back(std::move(task));
          // Another thread while every one is busy: a small merge need
          // not wait behind a whole job's.
          if (idle_mergers_ < merge_tasks_.size() &&
              mergers_.size() < kMergeThreads) {
            try {
              mergers_.reserve(kMergeThreads);
              mergers_.emplace_back([this] { MergerLoop(); });
            } catch (const std::exception&) {
              // The threads there run it; with none, it is not started.
              if (mergers_.empty()) {
                merge_tasks_.pop_back();
                throw;
              }
            }
          }
        }
        merger_cv_.notify_one();
      }
    } catch (const std::exception&) {
      // No thread or no memory for it: the job stays as it is, and a
      // later write starts the merge again.
      ForgetMerge(pending);
      {
        std::lock_guard<std::mutex> lock(queue_mu_);
        outstanding_merges_.erase(id);
      }
      merges_cv_.notify_all();
    }
  }
}

void InfluencerStore::MergerLoop() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(merger_mu_);
      ++idle_mergers_;
      merger_cv_.wait(lock, [this] {
        return merger_stopping_ || !merge_tasks_.empty();
      });
      --idle_mergers_;
      if (merger_stopping_) return;
      task = std::move(merge_tasks_.front());
      merge_tasks_.pop_front();
    }
    task();
  }
}

void InfluencerStore::InstallMerges(std::vector<FinishedMerge> finished) {
  try {
    std::shared_ptr<const StoreVersion> current = Current();
    std::shared_ptr<StoreVersion> next;
    for (FinishedMerge& done : finished) {
      auto pending = pending_merges_.find(done.job_id);
      if (pending == pending_merges_.end()) continue;
      std::vector<std::unique_ptr<PendingMerge>>& merges = pending->second;
      auto it = std::find_if(merges.begin(), merges.end(),
                             [&](const std::unique_ptr<PendingMerge>& p) {
                               return p->merge.snapshot == done.snapshot;
                             });
      if (it == merges.end()) continue;
      std::unique_ptr<PendingMerge> merge = std::move(*it);
      merges.erase(it);
      if (merges.empty()) pending_merges_.erase(pending);
      if (done.merged == nullptr) continue;
      // The job as the merges fitted before this one left it.
      const StoreVersion& latest = next != nullptr ? *next : *current;
      auto job = latest.jobs.find(done.job_id);
      if (job == latest.jobs.end()) continue;
      std::shared_ptr<const JobResults> fitted =
          FitMerge(job->second, merge->merge, done.merged);
      if (fitted == nullptr) continue;
      if (next == nullptr) next = std::make_shared<StoreVersion>(*current);
      next->jobs[done.job_id] = std::move(fitted);
    }
    if (next != nullptr) Publish(std::move(next));
  } catch (const std::exception&) {
    // Out of memory: the jobs stay as they are (a later write merges
    // them), and the merges count as done; none of them stays pending,
    // which would keep its job from merging again.
    for (const FinishedMerge& done : finished) {
      auto pending = pending_merges_.find(done.job_id);
      if (pending == pending_merges_.end()) continue;
      std::erase_if(pending->second,
                    [&](const std::unique_ptr<PendingMerge>& merge) {
                      return merge->merge.snapshot == done.snapshot;
                    });
      if (pending->second.empty()) pending_merges_.erase(pending);
    }
  }
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    for (const FinishedMerge& done : finished) {
      outstanding_merges_.erase(done.id);
    }
  }
  merges_cv_.notify_all();
}

void InfluencerStore::WaitForMerges() {
  std::unique_lock<std::mutex> lock(queue_mu_);
  // Merges started later do not count: under steady writes there may
  // always be one.
  const uint64_t last = last_merge_id_;
  merges_cv_.wait(lock, [&] {
    return outstanding_merges_.empty() || *outstanding_merges_.begin() > last;
  });
}

std::shared_ptr<const StoreVersion> InfluencerStore::Current() const {
  std::lock_guard<std::mutex> lock(version_mu_);
  return version_;
}

absl::Status InfluencerStore::Restore(
    std::shared_ptr<const StoreVersion> version) {
  std::lock_guard<std::mutex> lock(queue_mu_);
  // The writer thread starts with the first batch submitted: without it,
  // nothing was ever applied or is waiting.
  if (writer_.joinable()) {
    return EsError(400, "illegal_argument_exception",
                   "a snapshot can only be restored into a store that has "
                   "been given no batch");
  }
  Publish(std::move(version));
  return absl::OkStatus();
}

void InfluencerStore::Publish(std::shared_ptr<const StoreVersion> version) {
  std::lock_guard<std::mutex> lock(version_mu_);
  version_ = std::move(version);
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
    std::vector<FinishedMerge> merged;
    {
      std::unique_lock<std::mutex> lock(queue_mu_);
      queue_cv_.wait(lock, [this] {
        return stopping_ || !queue_.empty() || !finished_merges_.empty();
      });
      if (stopping_ && queue_.empty()) return;  // nothing left to apply
      group.swap(queue_);
      merged.swap(finished_merges_);
    }
    // Merges built meanwhile are published first, on their own: they
    // change no answer, so they need no sync.
    if (!merged.empty()) InstallMerges(std::move(merged));
    if (group.empty()) continue;
    // Each batch applies onto the one before it; the group's applied
    // batches become visible at once, after one WaitDurable. A batch the
    // log refused fails with every batch after it, but those before it
    // still land.
    const std::shared_ptr<const StoreVersion> published = Current();
    std::shared_ptr<const StoreVersion> version = published;
    std::vector<absl::StatusOr<MutationResult>> results;
    results.reserve(group.size());
    for (size_t next = 0;; ++next) {
      if (next == group.size()) {
        // With a log, batches that arrived while this group was applied
        // join it: they share its sync (up to kMaxGroup batches).
        constexpr size_t kMaxGroup = 256;
        if (options_.log == nullptr || group.size() >= kMaxGroup) break;
        std::unique_lock<std::mutex> lock(queue_mu_);
        if (queue_.empty() && group.size() < 4 && last_group_size_ > 1) {
          // Writers are busy (the last group had several batches): a
          // quarter of a millisecond for one more to share the sync
          // (PostgreSQL's commit_delay, for at most one wait a group).
          queue_cv_.wait_for(lock, std::chrono::microseconds(250),
                             [this] { return !queue_.empty() || stopping_; });
          if (queue_.empty()) break;
        }
        if (queue_.empty()) break;
        while (!queue_.empty() && group.size() < kMaxGroup) {
          group.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      Pending& pending = group[next];
      if (!log_failure_.ok()) {
        results.push_back(log_failure_);
        continue;
      }
      logged_unapplied_ = false;
      try {
        results.push_back(ApplyTo(pending.batch, pending.options, &version));
      } catch (const std::exception& e) {
        // Out of memory, most likely: this batch fails, the store goes on.
        results.push_back(EsError(
            500, "exception", absl::StrCat("the batch could not be applied: ",
                                           e.what())));
        if (logged_unapplied_) {
          // The log holds a batch the store does not: the next batch
          // would take its generation. A restart replays the log.
          log_failure_ = EsError(
              500, "exception",
              absl::StrCat("a logged batch could not be applied (", e.what(),
                           "); writes are refused until a restart replays "
                           "the log"));
        }
      }
    }
    last_group_size_ = group.size();
    bool made_visible = false;
    if (version != published) {
      absl::Status durable = options_.log == nullptr
                                 ? absl::OkStatus()
                                 : options_.log->WaitDurable(version->generation);
      if (durable.ok()) {
        Publish(version);
        made_visible = true;
      } else {
        log_failure_ = durable;
        for (auto& result : results) {
          if (result.ok()) result = durable;
        }
      }
    }
    StartMerges(made_visible);
    // The batches go before their writers are answered: a result may
    // share a Status with its batch (an error item), and that Status must
    // not lose its last reference on this thread after the submitter has
    // read it (ThreadSanitizer cannot see abseil's uninstrumented refcount
    // order it).
    for (Pending& pending : group) {
      MutationBatch spent(std::move(pending.batch));
    }
    for (size_t i = 0; i < group.size(); ++i) {
      group[i].done.set_value(std::move(results[i]));
    }
  }
}

absl::StatusOr<MutationResult> InfluencerStore::ApplyTo(
    MutationBatch& batch, const ApplyOptions& options,
    std::shared_ptr<const StoreVersion>* version) {
  using OpKind = MutationBatch::OpKind;
  const StoreVersion& current = **version;
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
    // A failed append leaves the log as it was: only this batch fails.
    if (absl::Status s = options_.log->Append(
            batch, current.generation + batch.generations_);
        !s.ok()) {
      return s;
    }
    logged_unapplied_ = true;
  }

  MutationResult result;
  result.generation = current.generation + batch.generations_;
  result.first_seq_no = current.next_seq_no;
  auto next = std::make_shared<StoreVersion>(current);
  next->generation = result.generation;
  std::shared_ptr<const StringArena> arena = std::move(batch.arena_);
  // The items of each job, in order.
  std::vector<JobItems> job_items(batch.job_order_.size());
  // Items that fail in a job's plan (409 creates), per job.
  std::vector<size_t> failed(batch.job_order_.size(), 0);
  const bool keep_items = options.item_results;
  if (mode == MutationMode::kBulk) {
    if (keep_items) result.items.resize(batch.items_.size());
    for (size_t k = 0; k < job_items.size(); ++k) {
      JobItems& items = job_items[k];
      items.items = &batch.items_;
      items.results = keep_items ? &result.items : nullptr;
      items.boundaries = &batch.boundaries_;
      items.failed = &failed[k];
    }
    // Documents of other result types: only this batch's writes count.
    absl::flat_hash_map<absl::string_view, uint32_t> other_versions;
    size_t next_boundary = 0;
    for (uint32_t i = 0; i < batch.items_.size(); ++i) {
      const MutationBatch::Item& item = batch.items_[i];
      if (next_boundary < batch.boundaries_.size() &&
          batch.boundaries_[next_boundary] == i) {
        other_versions.clear();  // each coalesced batch counts its own
        while (next_boundary < batch.boundaries_.size() &&
               batch.boundaries_[next_boundary] == i) {
          ++next_boundary;
        }
      }
      ItemResult scratch;
      ItemResult& out = keep_items ? result.items[i] : scratch;
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
    std::vector<MergeInProgress*> in_progress;  // the job's background merges
    CommitStats stats;
    std::shared_ptr<const JobResults> job;
    MergeRequest request;
  };
  const bool background = !options.replay;
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
    std::vector<MergeInProgress*> in_progress;
    if (auto pending = pending_merges_.find(job_id);
        pending != pending_merges_.end()) {
      for (const std::unique_ptr<PendingMerge>& merge : pending->second) {
        in_progress.push_back(&merge->merge);
      }
    }
    merges.push_back(Merge{&job_id, std::move(stored), &rows,
                           &job_items[rows.slot], std::move(in_progress),
                           {}, nullptr});
  }
  auto merge = [&](Merge& m) {
    m.job = CommitJob(*m.job_id, m.stored, std::move(*m.rows), mode,
                      batch.replace_jobs_, *m.items, arena, options_,
                      !options.replay, m.in_progress,
                      background ? &m.request : nullptr, &m.stats);
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
  if (mode == MutationMode::kBulk && keep_items) {
    for (ItemResult& item : result.items) {
      if (item.outcome != MutationOutcome::kError) {
        item.seq_no = next->next_seq_no++;
      }
    }
  } else if (mode == MutationMode::kBulk) {
    // The same count without the items: every item but the errors
    // recorded with the batch and the creates that failed.
    size_t failures = batch.errors_.size();
    for (size_t f : failed) failures += f;
    next->next_seq_no += static_cast<int64_t>(batch.items_.size() - failures);
  } else {
    next->next_seq_no += static_cast<int64_t>(batch.operations_);
  }
  // Merges asked for are registered last, once nothing can fail: the
  // writer starts them if this version is published (StartMerges).
  for (Merge& m : merges) {
    if (m.request.to > m.request.from && next->jobs.contains(*m.job_id)) {
      RegisterMerge(*m.job_id, next->jobs.at(*m.job_id), m.request.from,
                    m.request.to);
    }
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

absl::Status InfluencerStore::WarmIndexes(absl::string_view job_id) const {
  std::shared_ptr<const StoreVersion> version = Current();
  auto job = version->jobs.find(job_id);
  if (job == version->jobs.end()) {
    return EsError(404, "resource_not_found_exception",
                   absl::StrCat("No known job with id '", job_id, "'"));
  }
  clout::WarmIndexes(job->second);
  return absl::OkStatus();
}

int64_t InfluencerStore::NowMillis() const {
  if (options_.now_millis) return options_.now_millis();
  return absl::ToUnixMillis(absl::Now());
}

absl::StatusOr<InfluencersPage> InfluencerStore::GetInfluencers(
    const InfluencersRequest& request) const {
  std::shared_ptr<const StoreVersion> snapshot = Current();
  QueryContext context;
  context.max_result_window = options_.max_result_window;
  context.now_millis = [this] { return NowMillis(); };
  absl::StatusOr<ResolvedQuery> query =
      ResolveQuery(*snapshot, request, context);
  if (!query.ok()) return query.status();
  return ExecuteQuery(*query);
}

}  // namespace clout
