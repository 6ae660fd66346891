// The immutable, columnar form of stored results (internal to the engine:
// users see it only through the store, the loader and the query API).
//
// A StoreVersion is what a query sees: every job's influencer results as
// they stood after one applied batch. Versions are never modified after
// they are published, so any number of threads may read one concurrently
// without synchronisation; a version stays valid for as long as a
// shared_ptr to it (or to one of its JobResults) is held.
#ifndef CLOUT_ENGINE_COLUMNS_H_
#define CLOUT_ENGINE_COLUMNS_H_

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"

namespace clout {

class TimeIndex;  // time_index.h
struct JobResults;  // below
class IdentityIndex;  // identity_index.h: rows by result identity
class IdentityFilter;  // identity_index.h: which identities a segment has

// Append-only storage for strings whose addresses never change. Not
// thread-safe while being appended to; immutable (and freely shared) once
// handed to a snapshot.
class StringArena {
 public:
  StringArena() = default;
  StringArena(const StringArena&) = delete;
  StringArena& operator=(const StringArena&) = delete;

  // Copies `s` into the arena; the returned view stays valid for the arena's
  // lifetime.
  absl::string_view Store(absl::string_view s);

  // Bytes held, including unused block space.
  size_t bytes_reserved() const { return bytes_reserved_; }

 private:
  static constexpr size_t kBlockSize = 1 << 16;
  std::vector<std::unique_ptr<char[]>> blocks_;
  char* cursor_ = nullptr;
  size_t left_ = 0;
  size_t bytes_reserved_ = 0;
};

// Allocates large blocks (>= 1 MiB) 2 MiB-aligned and asks the kernel to
// back them with transparent huge pages: filling a column of millions of
// rows then takes a few hundred page faults instead of hundreds of
// thousands. Smaller blocks come from operator new. Stateless; thread-safe.
//
// Elements made without a value (a Column's sized constructor, resize(n))
// are default-initialised, as by new T[n]: numbers are left unset, not
// zeroed, since every such column is then written in full (zeroing it first
// cost a pass over fresh memory). Write before reading.
template <typename T>
struct ColumnAllocator {
  using value_type = T;
  ColumnAllocator() = default;
  template <typename U>
  ColumnAllocator(const ColumnAllocator<U>&) {}
  T* allocate(size_t n) {
    return static_cast<T*>(AllocateColumnBytes(n * sizeof(T)));
  }
  void deallocate(T* p, size_t n) { FreeColumnBytes(p, n * sizeof(T)); }
  template <typename U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <typename U>
  friend bool operator==(const ColumnAllocator&, const ColumnAllocator<U>&) {
    return true;
  }
  static void* AllocateColumnBytes(size_t bytes);
  static void FreeColumnBytes(void* p, size_t bytes);
};

void* AllocateColumnBlock(size_t bytes);
void FreeColumnBlock(void* p, size_t bytes);

template <typename T>
void* ColumnAllocator<T>::AllocateColumnBytes(size_t bytes) {
  return AllocateColumnBlock(bytes);
}
template <typename T>
void ColumnAllocator<T>::FreeColumnBytes(void* p, size_t bytes) {
  FreeColumnBlock(p, bytes);
}

// A column of values, one per row.
template <typename T>
using Column = std::vector<T, ColumnAllocator<T>>;

// A missing double: the value stored for influencer_score,
// initial_influencer_score or probability when a document does not have
// the field (or has it as null). Elasticsearch shows such a field as 0.0
// (its result object's default) but sorts the document after every
// document that has the field, in both directions (a sort's missing
// `_last`), and no score threshold matches it. Clout stores the presence
// in the value itself, as a quiet NaN, which no document can hold (JSON
// has no NaN and Elasticsearch refuses non-finite doubles): the columns,
// the log and snapshots keep it bit for bit without a column of their own.
inline double MissingDouble() { return std::numeric_limits<double>::quiet_NaN(); }
// Whether a stored double is missing (any NaN counts).
inline bool IsMissing(double value) { return std::isnan(value); }
// The value Elasticsearch shows for a stored double: 0.0 when missing.
inline double ShownDouble(double value) {
  return IsMissing(value) ? 0.0 : value;
}
// Whether `*value`, read back from a log or a snapshot, is a double the
// store holds (finite, or missing); a missing one is made the canonical
// MissingDouble(), so that identical rows stay identical bit for bit.
// Leaves `*value` unchanged when it returns false.
inline bool CheckStoredDouble(double* value) {
  if (IsMissing(*value)) {
    *value = MissingDouble();
    return true;
  }
  return std::isfinite(*value);
}

// The columns of influencer results. Row i of every column is one result.
// Strings are codes into a dictionary kept beside the columns; bucket spans,
// which take few distinct values, likewise.
struct InfluencerColumns {
  Column<int64_t> timestamp;  // epoch milliseconds
  // The three doubles: MissingDouble() where the document had no value.
  Column<double> influencer_score;
  Column<double> initial_influencer_score;
  Column<double> probability;
  Column<uint32_t> bucket_span_code;
  Column<uint8_t> is_interim;  // 0 or 1
  Column<uint32_t> field_name_code;
  Column<uint32_t> field_value_code;
  // Elasticsearch's _version of the result: how many times it was written
  // (1 when first stored).
  Column<uint32_t> version;

  size_t size() const { return timestamp.size(); }
  void Reserve(size_t n);
  // Gives back capacity beyond size() (a copy of each column that has
  // any).
  void ShrinkToFit();
  // Appends row `i` of `from`, translating its string codes with
  // string_code(code) and its bucket span code with span_code(code).
  template <typename StringCode, typename SpanCode>
  void AppendRow(const InfluencerColumns& from, size_t i,
                 StringCode string_code, SpanCode span_code) {
    timestamp.push_back(from.timestamp[i]);
    influencer_score.push_back(from.influencer_score[i]);
    initial_influencer_score.push_back(from.initial_influencer_score[i]);
    probability.push_back(from.probability[i]);
    bucket_span_code.push_back(span_code(from.bucket_span_code[i]));
    is_interim.push_back(from.is_interim[i]);
    field_name_code.push_back(string_code(from.field_name_code[i]));
    field_value_code.push_back(string_code(from.field_value_code[i]));
    version.push_back(from.version[i]);
  }
  // Bytes of the column storage in use (size, not capacity).
  static constexpr size_t kBytesPerRow =
      sizeof(int64_t) + 3 * sizeof(double) + 4 * sizeof(uint32_t) +
      sizeof(uint8_t);
};

// Rows of a job in some order (a sort's page order, the time order); large,
// so on huge pages like the columns.
using RowOrder = Column<uint32_t>;

// Sort orders and the TimeIndex of one job's rows, built on demand by the executor and kept
// for later queries. Thread-safe: guarded by its own mutex.
struct SortOrderCache {
  std::mutex mu;
  // Key: the sort (field and direction); value: every row in page order.
  absl::flat_hash_map<std::string, std::shared_ptr<const RowOrder>>
      orders;
  // How often each sort was asked for without an order (to build on reuse).
  absl::flat_hash_map<std::string, int> misses;
  // The byte-order rank of each dictionary string (code -> rank), once
  // built.
  std::shared_ptr<const std::vector<uint32_t>> string_ranks;
  // A score order read from a snapshot file and not checked yet
  // (OfferScoreOrder, executor.h): the executor checks it instead of
  // sorting the first time it needs that order, then drops it.
  std::shared_ptr<const RowOrder> stored_score_order;
  // The job's TimeIndex, once built.
  std::shared_ptr<const TimeIndex> time_index;
  // For a job of segments: per sort's key in `orders` (the empty string
  // for the time order), every segment's order (or TimeIndex), in segment
  // order, once a query found all of them built: later queries look them
  // up under this one lock, not one per segment. Used only while
  // `segments` are the job's (no store path shares a job's cache between
  // jobs, but a copy of a JobResults would).
  struct SegmentOrders {
    std::vector<std::shared_ptr<const JobResults>> segments;
    std::vector<std::shared_ptr<const RowOrder>> orders;
    std::vector<std::shared_ptr<const TimeIndex>> times;
  };
  absl::flat_hash_map<std::string, std::shared_ptr<const SegmentOrders>>
      segment_orders;
  // Per numeric sort and direction (key: 2 * sort + desc), the least page
  // order key of the rows: the earliest any of them can place (executor.cc
  // skips a segment none of whose rows can reach a page). Once asked for.
  absl::flat_hash_map<int, uint64_t> best_keys;
  // The job's rows by identity, once a commit needed them.
  std::shared_ptr<const IdentityIndex> identity_index;
  // Which identities a plain job's rows may have (store.cc says which
  // segments get one, and when); null: none (a write then looks every
  // identity up in it).
  std::shared_ptr<const IdentityFilter> identity_filter;
};

// The row filters of a query (time window, score threshold,
// exclude_interim): a row passes when it passes each filter set.
struct RowPredicate {
  bool has_window = false;
  bool has_end = false;
  bool has_score = false;
  bool exclude_interim = false;
  int64_t start = INT64_MIN;  // with has_window
  int64_t end = INT64_MAX;    // with has_end: exclusive
  double min_score = 0;       // with has_score

  bool any() const { return has_window || has_score || exclude_interim; }
  template <typename Columns>
  ABSL_ATTRIBUTE_ALWAYS_INLINE bool Passes(const Columns& c,
                                           uint32_t row) const {
    if (has_window) {
      const int64_t ts = c.timestamp[row];
      if (ts < start || (has_end && ts >= end)) return false;
    }
    if (has_score && !(c.influencer_score[row] >= min_score)) return false;
    return !(exclude_interim && c.is_interim[row]);
  }
  friend bool operator==(const RowPredicate& a, const RowPredicate& b) {
    // Scores compare by bits: NaN thresholds are equal to themselves.
    return a.has_window == b.has_window && a.has_end == b.has_end &&
           a.has_score == b.has_score &&
           a.exclude_interim == b.exclude_interim && a.start == b.start &&
           a.end == b.end &&
           std::memcmp(&a.min_score, &b.min_score, sizeof(double)) == 0;
  }
};

// The deleted rows of one segment: an immutable set of its row numbers,
// shared by every version that holds it. Adding rows (With) makes a new set
// that shares this one's storage, so that a write costs its own rows, not
// the set's: the rows are kept in sorted levels, oldest first, each more
// than twice the size of the next; a new level is folded into the one
// before it while that one is at most twice its size. A set of n rows
// added b at a time thus has at most log2(n / b) + 1 levels, and each row
// is copied O(log n) times over its life. Immutable but for the bitmap of
// the large levels, built once under a lock: thread-safe.
class DeletedRows {
 public:
  // A set of `sorted` (ascending, no repeats).
  explicit DeletedRows(std::vector<uint32_t> sorted);

  // Number of rows in the set.
  size_t size() const { return size_; }
  // Whether `row` is in the set: O(levels * log n). One bit test for all
  // the levels of at least kBitmapLevelRows rows (the oldest ones): a
  // bitmap of their rows together, built on first use and shared by every
  // set holding the same large levels, so that a write which adds only a
  // small level keeps it. For each smaller level two probes of a Bloom
  // filter (16-32 bits a row, built with the level) before a binary
  // search, which 0.4-1.4% of rows not in the level then still pay.
  bool Contains(uint32_t row) const;
  static constexpr size_t kBitmapLevelRows = size_t{1} << 15;
  // Heap bytes: the levels, their Bloom filters, and the large levels'
  // bitmap if built.
  size_t bytes() const;
  // Number of rows of the set less than `row`. O(levels * log n).
  size_t Rank(uint32_t row) const;
  // This set plus `added` (ascending, no repeats, none of them in this
  // set). This set is left unchanged.
  std::shared_ptr<const DeletedRows> With(std::vector<uint32_t> added) const;
  // The rows, ascending (a copy). O(n log n).
  std::vector<uint32_t> Sorted() const;
  // A bitmap of the set over rows [0, rows) (bit r set when row r is in
  // it; every row of the set must be less than `rows`): a copy of the
  // large levels' shared bitmap (built if it is not) plus the small
  // levels' rows, so that it costs O(rows / 64 + small levels' rows), not
  // a random write per row of the set.
  std::vector<uint64_t> Bitmap(size_t rows) const;
  // Calls f(row) for every row, in no particular order.
  template <typename F>
  void ForEachUnordered(F&& f) const {
    for (const auto& level : levels_) {
      for (uint32_t row : *level) f(row);
    }
  }
  // Number of levels (for tests and memory figures).
  size_t levels() const { return levels_.size(); }
  // The levels' rows, oldest (largest) first, each ascending. A level is
  // immutable and shared by the sets made from this one while they hold
  // it: its address identifies it while a pointer to it is held.
  using Level = std::shared_ptr<const std::vector<uint32_t>>;
  const std::vector<Level>& level_rows() const { return levels_; }

  // Answers Contains for rows asked about in ascending order, in O(1)
  // amortised per row plus O(levels) per deleted row passed. Holds
  // pointers into the set: it must outlive the cursor. Not thread-safe.
  class Cursor {
   public:
    // A cursor over `rows`; null stands for the empty set.
    explicit Cursor(const DeletedRows* rows);
    // Whether `row` is in the set; `row` must not be less than the row
    // asked about before.
    bool Contains(uint32_t row) {
      if (row < next_) return false;
      return Advance(row);
    }

   private:
    bool Advance(uint32_t row);
    struct Head {
      const uint32_t* at;
      const uint32_t* end;
    };
    std::vector<Head> heads_;
    uint64_t next_ = UINT64_MAX;  // the least row not yet passed
  };

 private:
  DeletedRows() = default;
  // A bitmap of the rows of levels [0, count) of a set (bit r set: row r
  // is in one of them), built once on first use (a lock only until then;
  // if the build runs out of memory, the next use tries again) from the
  // levels of whichever set asks first: every set sharing it holds the same
  // first `count` levels. Thread-safe.
  class LevelBitmap {
   public:
    using Rows = std::shared_ptr<const std::vector<uint32_t>>;
    LevelBitmap() = default;
    // A bitmap built from a copy of `base`'s bits (built; every row in it
    // is in this one's levels) plus the rows of `extra` (the rest of this
    // one's rows): a write that folds into the large levels then costs a
    // copy and the small levels and rows it adds, not every large row.
    // Holds `base` and `extra` until built.
    LevelBitmap(std::shared_ptr<const LevelBitmap> base,
                std::vector<Rows> extra)
        : base_(std::move(base)), extra_(std::move(extra)) {}
    const std::vector<uint64_t>& Get(
        const std::vector<std::shared_ptr<const std::vector<uint32_t>>>& levels,
        size_t count) const;
    // The bits if built, else null (no lock).
    const std::vector<uint64_t>* IfBuilt() const {
      return built_.load(std::memory_order_acquire) ? &bits_ : nullptr;
    }
    size_t bytes() const {
      return built_.load(std::memory_order_acquire) ? bits_.capacity() * 8 : 0;
    }

   private:
    mutable std::mutex mu_;
    mutable std::vector<uint64_t> bits_;  // written once, under mu_
    mutable std::atomic<bool> built_{false};
    mutable std::shared_ptr<const LevelBitmap> base_;  // until built
    mutable std::vector<Rows> extra_;                  // until built
  };
  // A Bloom filter of a small level's rows: bit h(row) and bit g(row)
  // set for each, of 2^bits_log2 bits.
  struct LevelFilter {
    std::vector<uint64_t> bits;
    int bits_log2 = 0;
    // A fully mixed 64-bit hash of `row` (MurmurHash3's finaliser), one
    // for every level's filter: a bare multiply left the second probe's
    // bits correlated for runs of neighbouring rows, 2-4x the false hits.
    static uint64_t Hash(uint32_t row) {
      uint64_t h = uint64_t{row} + 1;
      h ^= h >> 33;
      h *= 0xff51afd7ed558ccdull;
      h ^= h >> 33;
      h *= 0xc4ceb9fe1a85ec53ull;
      h ^= h >> 33;
      return h;
    }
    // The two bit positions of a row of hash `h`.
    std::pair<uint64_t, uint64_t> Probes(uint64_t h) const {
      return {h >> (64 - bits_log2), (h >> (64 - 2 * bits_log2)) &
                                         ((uint64_t{1} << bits_log2) - 1)};
    }
    bool MayContain(uint64_t h) const {
      const auto [a, b] = Probes(h);
      return (bits[a / 64] >> (a % 64) & 1) != 0 &&
             (bits[b / 64] >> (b % 64) & 1) != 0;
    }
  };
  // Two probes of bits_log2 bits each fit one hash: 16 bits a row of a
  // level under kBitmapLevelRows stays within 2^32 bits.
  static_assert(16 * kBitmapLevelRows <= (uint64_t{1} << 32));
  void AddLevel(std::vector<uint32_t> level);
  // Sets large_levels_ and large_bitmap_ from levels_, for a set made
  // from one (null: none) whose bitmap `before` covered its first
  // `before_levels` levels, of which this set holds the first `untouched`:
  // that bitmap itself when the large levels are the same, else, if it is
  // built, one built from it and `extra` (the rows of this set's large
  // levels that were in none of the other's).
  void SetLargeLevels(std::shared_ptr<const LevelBitmap> before,
                      size_t before_levels, size_t untouched,
                      std::vector<LevelBitmap::Rows> extra);
  std::vector<std::shared_ptr<const std::vector<uint32_t>>> levels_;
  // Levels [0, large_levels_) have kBitmapLevelRows rows or more (levels
  // shrink from oldest to newest); large_bitmap_ is their bitmap, null
  // when there are none.
  size_t large_levels_ = 0;
  std::shared_ptr<const LevelBitmap> large_bitmap_;
  // One per level: null for levels of kBitmapLevelRows rows or more.
  std::vector<std::shared_ptr<const LevelFilter>> filters_;
  size_t size_ = 0;
};

// What queries learned of one segment's deleted rows (one list: a new
// list needs a new cache). Thread-safe.
//  - How many of them pass each of the predicates queries asked about
//    lately (at most kEntries, the newest kept). A write that deletes more
//    rows of the segment makes the next list's counts from these plus its
//    own rows (Extend), so that a query repeated under writes counts the
//    batch's deleted rows, not all of them.
//  - A bitmap of them, for pages deep enough that a binary search per row
//    costs more than building it.
//  - Their keys in a sort order (KeysInOrder), for counting the deleted
//    rows among a range of that order's positions by binary searches
//    instead of reading each position (a page deep in an order whose first
//    rows were rewritten). Kept per level of the list on a shelf that
//    every cache Extend makes from this one shares, so that a write's rows
//    are keyed once, even by a query on a list older than the newest.
class DeletedRowCache {
 public:
  static constexpr size_t kEntries = 16;
  // Sort orders whose keys a shelf keeps (the least recently used goes).
  static constexpr size_t kOrders = 4;
  // What reading a range's positions costs for each row KeysInOrder would
  // key instead (a key read from the columns plus its share of a sort,
  // against a position and a bit test): positions read instead of keys
  // (positions_instead) earn one row of credit per this many.
  static constexpr size_t kPositionsPerKey = 32;
  // Lists whose complete runs a shelf keeps per order (the newest asked).
  static constexpr size_t kListsPerOrder = 2;
  // One level's rows as keys of a sort order: (key, row), ascending.
  using OrderKeys = std::vector<std::pair<uint64_t, uint32_t>>;
  // A list's keys in one sort order: one sorted run per level of the list.
  using OrderRuns = std::vector<std::shared_ptr<const OrderKeys>>;

  // The count of `predicate`'s matches, if known.
  std::optional<int64_t> Find(const RowPredicate& predicate) const;
  // Records that `count` deleted rows pass `predicate`.
  void Add(const RowPredicate& predicate, int64_t count);
  // The bitmap of `deleted` (this cache's list) over a segment of `rows`
  // rows: bit r set when row r is deleted. Built on first use.
  std::shared_ptr<const std::vector<uint64_t>> Bitmap(
      const DeletedRows& deleted, size_t rows) const;
  // Heap bytes of the bitmap and of the keys on the shelf (a shelf shared
  // with other caches is counted in each). Thread-safe.
  size_t bytes() const;
  // The rows of `deleted` (this cache's list, or another list of the
  // caches that share its shelf) as keys of the sort order named `order`, whose
  // key of row r is key_of(r) (the same for a name as long as the segment
  // lives): one sorted run per level of the list, so that the deleted rows
  // in a range of the order's positions are counted by two binary searches
  // a level.
  //  - A level's run is kept on the shelf, which the caches Extend makes
  //    share; Extend drops the runs of levels its list neither holds nor
  //    may have folded into its newest one. So a write's rows are keyed
  //    once, when a query first needs them, whichever list it reads, and a
  //    level folded from keyed levels merges their runs and keys only its
  //    other rows.
  //  - Each level not keyed yet is keyed now, from the newest (smallest),
  //    if the rows it needs keyed fit in what is left of the budget
  //    (build_limit plus the order's credit); a level that does not fit is
  //    skipped.
  //  - Null if any level is left unkeyed; then `positions_instead` (the
  //    positions the caller reads instead) adds positions_instead /
  //    kPositionsPerKey rows to the order's credit. The rows keyed past
  //    build_limit use it up. So a list too large to key for any one query
  //    is keyed once the queries have spent about as much reading
  //    positions. A call holds the credit while it keys: calls meanwhile
  //    see none, so that they do not all key the same large level.
  //  - The complete runs of the last kListsPerOrder lists asked about are
  //    kept: queries on the version before a write and on the one after
  //    find theirs.
  // Thread-safe; key_of is called without the cache's or shelf's lock.
  std::shared_ptr<const OrderRuns> KeysInOrder(
      const std::string& order, const DeletedRows& deleted,
      absl::FunctionRef<uint64_t(uint32_t)> key_of, size_t build_limit,
      size_t positions_instead = 0) const;
  // The cache of `list`, which holds this one's rows plus `added` (rows of
  // `columns`, none of them in this list): every known count extended, and
  // the same shelf of keys, less the runs of levels `list` neither holds
  // nor may have folded into its newest one. Leaves this cache's counts
  // and bitmap unchanged.
  template <typename Columns>
  std::shared_ptr<DeletedRowCache> Extend(const Columns& columns,
                                          const std::vector<uint32_t>& added,
                                          const DeletedRows& list) const {
    auto next = std::make_shared<DeletedRowCache>();
    {
      std::lock_guard<std::mutex> lock(mu_);
      next->entries_.reserve(entries_.size());
      for (const auto& [predicate, count] : entries_) {
        int64_t more = 0;
        for (uint32_t row : added) more += predicate.Passes(columns, row);
        next->entries_.push_back({predicate, count + more});
      }
    }
    next->shelf_ = shelf_;
    shelf_->Prune(list);
    return next;
  }

 private:
  // One level's keys; holds the level, whose address identifies it.
  struct LevelKeys {
    DeletedRows::Level level;
    std::shared_ptr<const OrderKeys> keys;
  };
  struct OrderEntry {
    std::string order;
    std::vector<LevelKeys> levels;  // keyed levels, of any list sharing it
    size_t credit = 0;              // rows (see KeysInOrder)
    // The complete runs of lists (by their levels), newest asked last, at
    // most kListsPerOrder.
    struct ListRuns {
      std::vector<DeletedRows::Level> levels;
      std::shared_ptr<const OrderRuns> runs;
    };
    std::vector<ListRuns> lists;
    // The runs of the list of `levels`, if kept (moved to the back).
    std::shared_ptr<const OrderRuns> RunsOf(
        const std::vector<DeletedRows::Level>& levels);
  };
  // The keys of a segment's lists, shared by the caches of its lists that
  // Extend made from one another. Thread-safe.
  struct KeyShelf {
    std::mutex mu;
    std::vector<OrderEntry> orders;  // least recently used first
    // Drops the keys of levels `list` neither holds nor may have folded
    // into its newest level (those no larger than it); the complete runs
    // of at most kListsPerOrder lists stay.
    void Prune(const DeletedRows& list);
    // The entry of `order`, made (dropping the least recently used past
    // kOrders) if `make`, moved to the back; null if none. Under mu.
    OrderEntry* Touch(const std::string& order, bool make);
  };

  mutable std::mutex mu_;
  std::vector<std::pair<RowPredicate, int64_t>> entries_;  // oldest first
  mutable std::shared_ptr<const std::vector<uint64_t>> bitmap_;
  std::shared_ptr<KeyShelf> shelf_ = std::make_shared<KeyShelf>();
};

// One job's influencer results. Rows are in ingest order: row i was loaded
// before row j when i < j, which is the tie-break order of every query.
struct JobResults {
  std::string job_id;
  InfluencerColumns columns;
  // Dictionary of influencer field names and values: code -> string.
  std::vector<absl::string_view> strings;
  // string -> code, for interning new rows.
  absl::flat_hash_map<absl::string_view, uint32_t> string_codes;
  // Dictionary of bucket spans (seconds): code -> value.
  std::vector<int64_t> bucket_spans;
  // Owners of the bytes `strings` points into.
  std::vector<std::shared_ptr<const StringArena>> arenas;
  // Number of rows whose is_interim is true.
  size_t interim_rows = 0;
  // Whether the rows are in ascending timestamp order (as dumps usually
  // are); set when the job is committed. A scan then reads only a window's
  // rows.
  bool time_ordered = false;
  // The least and greatest timestamp of a plain job's rows (deleted ones
  // included), set when it is built; min > max when it has none. A write
  // looks for a result's identity only in segments whose range holds it.
  int64_t min_timestamp = INT64_MAX;
  int64_t max_timestamp = INT64_MIN;
  // False only when a plain job's rows are known to have no missing double
  // (SetMissingDoubles): a scan's sort keys then skip the missing test.
  // True (the safe value) until then.
  bool may_have_missing_doubles = true;
  // The distinct influencer field names of the job's rows (a name may stay
  // listed after its last row was replaced away).
  std::vector<absl::string_view> field_names;
  // Lazily built sort orders of these rows (the rows never change; a new
  // commit makes a new JobResults with an empty cache).
  std::shared_ptr<SortOrderCache> sort_orders =
      std::make_shared<SortOrderCache>();

  // A job of several segments, as incremental commits leave it: each
  // segment is a plain JobResults (no segments of its own) whose `deleted`
  // rows (null for none) were replaced or removed since
  // it was built. The job's rows are the segments' rows that are not
  // deleted, segment after segment, in ingest order. This object's own
  // columns and dictionaries are then empty, and the row accessors below
  // apply to plain jobs only. Empty for a plain job.
  struct Segment {
    std::shared_ptr<const JobResults> rows;
    std::shared_ptr<const DeletedRows> deleted;
    // Counts of `deleted` rows by predicate; null: none kept (the
    // executor then counts them each time). Belongs to this `deleted`
    // list: a new list needs new counts.
    std::shared_ptr<DeletedRowCache> deleted_cache;
    size_t deleted_rows() const { return deleted ? deleted->size() : 0; }
  };
  std::vector<Segment> segments;
  // The rows of a job of segments that are not deleted.
  size_t live_rows = 0;

  // Number of results of the job.
  size_t size() const { return segments.empty() ? columns.size() : live_rows; }
  absl::string_view field_name(size_t row) const {
    return strings[columns.field_name_code[row]];
  }
  absl::string_view field_value(size_t row) const {
    return strings[columns.field_value_code[row]];
  }
  int64_t bucket_span(size_t row) const {
    return bucket_spans[columns.bucket_span_code[row]];
  }
  // The code of `s` in this job's dictionary, or -1 if it never occurs.
  int64_t CodeOf(absl::string_view s) const {
    auto it = string_codes.find(s);
    return it == string_codes.end() ? -1 : static_cast<int64_t>(it->second);
  }
};

// Sets a plain job's min_timestamp and max_timestamp from its rows (after
// time_ordered is set). O(rows) unless the rows are in time order.
void SetTimestampRange(JobResults& job);

// Sets a plain job's may_have_missing_doubles from its rows. O(rows).
void SetMissingDoubles(JobResults& job);

// `job` as one plain segment: itself when it is plain, else a new
// JobResults holding its live rows in order (their strings stay in the
// segments' arenas, which it shares), whose field names are those of its
// rows. O(rows). Thread-safe.
std::shared_ptr<const JobResults> MaterializeJob(
    const std::shared_ptr<const JobResults>& job);

// Every job's results after one applied batch.
struct StoreVersion {
  // Known jobs: any job of which a document (of any result type) was loaded.
  // A known job may hold no influencer results.
  absl::flat_hash_map<std::string, std::shared_ptr<const JobResults>> jobs;
  // Every influencer field name seen in any job: these are sortable fields.
  absl::flat_hash_set<std::string> influencer_field_names;
  // Number of mutation batches applied to reach this snapshot (each
  // InfluencerStore::Apply adds one, even for an empty batch).
  uint64_t generation = 0;
  // The _seq_no the next applied operation gets.
  int64_t next_seq_no = 0;

  // The job's results, or nullptr if the job is unknown.
  const JobResults* FindJob(absl::string_view job_id) const {
    auto it = jobs.find(job_id);
    return it == jobs.end() ? nullptr : it->second.get();
  }
  // The job's results as one plain segment (MaterializeJob: O(rows) for a
  // job of segments), or null if the job is unknown.
  std::shared_ptr<const JobResults> PlainJob(absl::string_view job_id) const {
    auto it = jobs.find(job_id);
    return it == jobs.end() ? nullptr : MaterializeJob(it->second);
  }
};

}  // namespace clout

#endif  // CLOUT_ENGINE_COLUMNS_H_
