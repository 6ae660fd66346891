#include "engine/executor.h"

#include <algorithm>
#include <limits>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "engine/dates.h"
#include "engine/error.h"
#include "engine/order_key.h"
#include "engine/radix_sort.h"
#include "engine/run_selection.h"
#include "engine/identity_index.h"
#include "engine/time_index.h"

namespace clout {

std::optional<SortField> FixedSortField(absl::string_view name) {
  static constexpr std::pair<absl::string_view, SortField> kFields[] = {
      {"influencer_score", SortField::kInfluencerScore},
      {"initial_influencer_score", SortField::kInitialInfluencerScore},
      {"probability", SortField::kProbability},
      {"bucket_span", SortField::kBucketSpan},
      {"timestamp", SortField::kTimestamp},
      {"is_interim", SortField::kIsInterim},
      {"influencer_field_name", SortField::kInfluencerFieldName},
      {"influencer_field_value", SortField::kInfluencerFieldValue},
      {"job_id", SortField::kJobId},
      {"result_type", SortField::kResultType},
  };
  for (const auto& [field_name, field] : kFields) {
    if (field_name == name) return field;
  }
  return std::nullopt;
}

absl::StatusOr<ResolvedQuery> ResolveQuery(const StoreVersion& snapshot,
                                           const InfluencersRequest& request,
                                           const QueryContext& context) {
  ResolvedQuery query;
  auto job = snapshot.jobs.find(request.job_id);
  if (job == snapshot.jobs.end()) {
    return EsError(404, "resource_not_found_exception",
                   absl::StrCat("No known job with id '", request.job_id, "'"));
  }
  query.job = job->second;

  std::optional<int64_t> now;
  auto now_millis = [&]() -> int64_t {
    if (!now.has_value()) {
      now = context.now_millis ? context.now_millis() : 0;
    }
    return *now;
  };
  // Only date math that mentions "now" reads the clock.
  auto resolve_date = [&](const std::optional<std::string>& text,
                          bool is_number,
                          std::optional<int64_t>* out) -> absl::Status {
    if (!text.has_value()) return absl::OkStatus();
    if (is_number) {
      // A body's number: epoch milliseconds, never a year. Out of range, it
      // fails below with the error any such date gets.
      if (absl::StatusOr<int64_t> millis = ParseEpochMillis(*text); millis.ok()) {
        *out = *millis;
        return absl::OkStatus();
      }
    }
    int64_t now_value =
        text->find("now") != std::string::npos ? now_millis() : 0;
    absl::StatusOr<int64_t> millis = ParseDateParam(*text, now_value);
    if (!millis.ok()) return millis.status();
    *out = *millis;
    return absl::OkStatus();
  };
  if (absl::Status s = resolve_date(request.start, request.start_is_number,
                                   &query.start); !s.ok()) {
    return s;
  }
  if (absl::Status s = resolve_date(request.end, request.end_is_number, &query.end); !s.ok()) {
    return s;
  }

  if (std::optional<SortField> fixed = FixedSortField(request.sort)) {
    query.sort = *fixed;
  } else if (snapshot.influencer_field_names.contains(request.sort)) {
    query.sort = SortField::kInfluencerField;
    query.sort_field_name = request.sort;
  } else {
    return SearchPhaseError(
        "query_shard_exception",
        absl::StrCat("No mapping found for [", request.sort,
                     "] in order to sort on"));
  }

  // The parsers keep from/size within [0, INT32_MAX]; a request built in
  // code may not (from + size could overflow, a negative size wrap).
  for (auto [name, value] : {std::pair<const char*, int64_t>{"from", request.from},
                             std::pair<const char*, int64_t>{"size", request.size}}) {
    if (value < 0) {
      return EsError(400, "illegal_argument_exception",
                     absl::StrCat("Parameter [", name, "] cannot be < 0"));
    }
    if (value > std::numeric_limits<int32_t>::max()) {
      return EsError(400, "illegal_argument_exception",
                     absl::StrCat("Failed to parse int parameter [", name,
                                  "] with value [", value, "]"));
    }
  }
  int64_t window = request.from + request.size;
  if (window > context.max_result_window) {
    return SearchPhaseError(
        "illegal_argument_exception",
        absl::StrCat("Result window is too large, from + size must be less "
                     "than or equal to: [",
                     context.max_result_window, "] but was [", window,
                     "]. See the scroll api for a more efficient way to "
                     "request large data sets. This limit can be set by "
                     "changing the [index.max_result_window] index level "
                     "setting."));
  }

  if (request.influencer_score > 0) query.min_score = request.influencer_score;
  query.exclude_interim = request.exclude_interim;
  query.desc = request.desc;
  query.from = request.from;
  query.size = request.size;
  return query;
}

namespace {

// The filters of a query (time window, score threshold, exclude_interim),
// hoisted out of the per-row loops.
RowPredicate PredicateOf(const ResolvedQuery& query) {
  RowPredicate p;
  p.has_window = query.start.has_value() || query.end.has_value();
  p.start = query.start.value_or(INT64_MIN);
  p.end = query.end.value_or(INT64_MAX);
  p.has_end = query.end.has_value();
  p.has_score = query.min_score.has_value();
  p.min_score = query.min_score.value_or(0.0);
  p.exclude_interim = query.exclude_interim;
  return p;
}

struct RowFilter {
  explicit RowFilter(const ResolvedQuery& query)
      : c(query.job->columns), predicate(PredicateOf(query)) {}
  // The filter of a query with this predicate over `job` (a segment).
  RowFilter(const RowPredicate& predicate, const JobResults& job)
      : c(job.columns), predicate(predicate) {}

  bool Passes(uint32_t row) const { return predicate.Passes(c, row); }

  const InfluencerColumns& c;
  const RowPredicate predicate;
};

// Calls on_match(row) for every row that passes the query's filters among
// the rows row_at(first), ..., row_at(last - 1), in that order.
template <typename RowAt, typename OnMatch>
void ForEachMatch(const ResolvedQuery& query, size_t first, size_t last,
                  RowAt row_at, OnMatch on_match) {
  const RowFilter filter(query);
  for (size_t i = first; i < last; ++i) {
    const uint32_t row = row_at(i);
    if (filter.Passes(row)) on_match(row);
  }
}

// The numeric sort key of `row`, oriented so ascending key = page order.
uint64_t NumericKey(const JobResults& job, SortField sort, bool desc,
                    uint32_t row) {
  const InfluencerColumns& c = job.columns;
  const uint64_t flip = desc ? ~uint64_t{0} : 0;
  uint64_t key = 0;
  switch (sort) {
    case SortField::kInfluencerScore:
      return DoubleOrderKey(c.influencer_score[row], flip);
    case SortField::kInitialInfluencerScore:
      return DoubleOrderKey(c.initial_influencer_score[row], flip);
    case SortField::kProbability:
      return DoubleOrderKey(c.probability[row], flip);
    case SortField::kBucketSpan:
      key = OrderKey(job.bucket_span(row));
      break;
    case SortField::kTimestamp:
      key = OrderKey(c.timestamp[row]);
      break;
    case SortField::kIsInterim:
      key = c.is_interim[row];
      break;
    default:  // constant fields: every row ties
      key = 0;
      break;
  }
  return key ^ flip;
}

bool IsNumericSort(SortField sort) {
  switch (sort) {
    case SortField::kInfluencerFieldName:
    case SortField::kInfluencerFieldValue:
    case SortField::kInfluencerField:
      return false;
    default:
      return true;
  }
}

Influencer ViewOf(const JobResults& job, uint32_t row) {
  const InfluencerColumns& c = job.columns;
  Influencer view;
  view.job_id = job.job_id;
  view.influencer_field_name = job.field_name(row);
  view.influencer_field_value = job.field_value(row);
  view.influencer_score = ShownDouble(c.influencer_score[row]);
  view.initial_influencer_score = ShownDouble(c.initial_influencer_score[row]);
  view.probability = ShownDouble(c.probability[row]);
  view.bucket_span = job.bucket_span(row);
  view.is_interim = c.is_interim[row] != 0;
  view.timestamp = c.timestamp[row];
  return view;
}

}  // namespace

namespace {

// The rank of every dictionary string of `job` in byte order, cached with
// the job (thread-safe): string sorts compare ranks, never strings.
std::shared_ptr<const std::vector<uint32_t>> StringRanks(const JobResults& job) {
  SortOrderCache& cache = *job.sort_orders;
  {
    std::lock_guard<std::mutex> lock(cache.mu);
    if (cache.string_ranks) return cache.string_ranks;
  }
  std::vector<uint32_t> by_string(job.strings.size());
  for (size_t c = 0; c < by_string.size(); ++c) {
    by_string[c] = static_cast<uint32_t>(c);
  }
  std::sort(by_string.begin(), by_string.end(), [&](uint32_t a, uint32_t b) {
    return job.strings[a] < job.strings[b];
  });
  // Equal strings cannot occur (a dictionary), so ranks are distinct.
  auto rank = std::make_shared<std::vector<uint32_t>>(job.strings.size());
  for (size_t i = 0; i < by_string.size(); ++i) {
    (*rank)[by_string[i]] = static_cast<uint32_t>(i);
  }
  std::lock_guard<std::mutex> lock(cache.mu);
  if (!cache.string_ranks) cache.string_ranks = std::move(rank);
  return cache.string_ranks;
}

// The page-order key of a row: ascending (key, row) is the query's page
// order. Strings key on their dictionary rank; rows without a value (a
// per-influencer field of another name) get the largest key.
class RowKeys {
 public:
  explicit RowKeys(const ResolvedQuery& query)
      : job_(*query.job), sort_(query.sort), desc_(query.desc),
        numeric_(IsNumericSort(query.sort)) {
    if (numeric_) return;
    ranks_ = StringRanks(job_);
    codes_ = sort_ == SortField::kInfluencerFieldName
                 ? &job_.columns.field_name_code
                 : &job_.columns.field_value_code;
    field_code_ = sort_ == SortField::kInfluencerField
                      ? job_.CodeOf(query.sort_field_name)
                      : -1;
  }

  uint64_t operator()(uint32_t row) const {
    if (numeric_) return NumericKey(job_, sort_, desc_, row);
    if (sort_ == SortField::kInfluencerField &&
        job_.columns.field_name_code[row] != field_code_) {
      return UINT64_MAX;  // missing: last in both directions
    }
    return KeyOfRank((*ranks_)[(*codes_)[row]]);
  }

  // For string sorts: keys take at most distinct_keys() values, and
  // Bucket(row) numbers them densely in key order (a counting sort).
  bool numeric() const { return numeric_; }
  size_t distinct_keys() const { return ranks_->size() + 1; }
  size_t Bucket(uint32_t row) const {
    if (sort_ == SortField::kInfluencerField &&
        job_.columns.field_name_code[row] != field_code_) {
      return ranks_->size();
    }
    uint32_t rank = (*ranks_)[(*codes_)[row]];
    return desc_ ? ranks_->size() - 1 - rank : rank;
  }

 private:
  uint64_t KeyOfRank(uint32_t rank) const {
    return desc_ ? (uint64_t{1} << 62) - rank : rank;
  }

  const JobResults& job_;
  SortField sort_;
  bool desc_;
  bool numeric_;
  std::shared_ptr<const std::vector<uint32_t>> ranks_;
  const Column<uint32_t>* codes_ = nullptr;
  int64_t field_code_ = -1;
};

// Every row of the job in the query's page order. String sorts are a
// counting sort over dictionary ranks (stable, so ties stay in ingest
// order); numeric sorts sort (key, row) pairs.
RowOrder BuildPageOrder(const ResolvedQuery& query) {
  const size_t n = query.job->size();
  RowKeys keys(query);
  RowOrder order(n);
  if (!keys.numeric()) {
    std::vector<size_t> next(keys.distinct_keys() + 1, 0);
    for (size_t r = 0; r < n; ++r) ++next[keys.Bucket(static_cast<uint32_t>(r)) + 1];
    for (size_t b = 1; b < next.size(); ++b) next[b] += next[b - 1];
    for (size_t r = 0; r < n; ++r) {
      order[next[keys.Bucket(static_cast<uint32_t>(r))]++] =
          static_cast<uint32_t>(r);
    }
    return order;
  }
  KeyedRows keyed(n);
  for (size_t r = 0; r < n; ++r) {
    keyed[r] = {keys(static_cast<uint32_t>(r)), static_cast<uint32_t>(r)};
  }
  RadixSortByKey(&keyed);
  for (size_t i = 0; i < n; ++i) order[i] = keyed[i].row;
  return order;
}

std::string OrderName(const ResolvedQuery& query) {
  return absl::StrCat(static_cast<int>(query.sort), ":", query.sort_field_name,
                      ":", query.desc ? "desc" : "asc");
}

// The cached page order of `query`'s sort, building it if `index_use`
// allows; null if the query should scan instead.
std::shared_ptr<const RowOrder> PageOrder(
    const ResolvedQuery& query, IndexUse index_use) {
  if (index_use == IndexUse::kNever) return nullptr;
  SortOrderCache& cache = *query.job->sort_orders;
  const std::string name = OrderName(query);
  {
    std::lock_guard<std::mutex> lock(cache.mu);
    auto it = cache.orders.find(name);
    if (it != cache.orders.end()) return it->second;
    // A one-off query (a command-line run, say) is cheaper as a scan.
    if (index_use == IndexUse::kAuto && ++cache.misses[name] < 2) {
      return nullptr;
    }
  }
  // Built outside the lock; if two threads race, both orders are equal and
  // the first stored wins. A score order read from a snapshot file is
  // checked instead (a pass with random reads, cheaper than the sort), and
  // used if it is the order.
  std::shared_ptr<const RowOrder> order;
  if (query.sort == SortField::kInfluencerScore && query.desc) {
    std::shared_ptr<const RowOrder> stored;
    {
      std::lock_guard<std::mutex> lock(cache.mu);
      stored = std::move(cache.stored_score_order);
      cache.stored_score_order = nullptr;
    }
    if (stored != nullptr && IsScoreOrder(query.job, *stored)) {
      order = std::move(stored);
    }
  }
  if (order == nullptr) {
    order = std::make_shared<const RowOrder>(BuildPageOrder(query));
  }
  std::lock_guard<std::mutex> lock(cache.mu);
  return cache.orders.try_emplace(name, std::move(order)).first->second;
}

// A page as row numbers of the query's job, before it is materialised.
struct RowPage {
  int64_t count = 0;  // matches before paging
  // The page, in page order; inline up to a default page's size, so that
  // a repeated query allocates nothing for it.
  absl::InlinedVector<uint32_t, 128> rows;
};

// The `limit` smallest (key, row) pairs offered, kept in a buffer of at
// most 2 * limit: once it fills, it is cut back to its `limit` smallest and
// later offers not below the cut are dropped with one comparison.
class TopK {
 public:
  explicit TopK(size_t limit)
      : limit_(limit), capacity_(2 * limit + 8) {}

  void Offer(uint64_t key, uint32_t row) {
    KeyedRow candidate{key, row};
    if (full_ && !(candidate < cut_)) return;
    buffer_.push_back(candidate);
    if (buffer_.size() == capacity_) Cut();
  }

  // Whether the buffer has been cut; then only offers below cut() enter.
  bool full() const { return full_; }
  const KeyedRow& cut() const { return cut_; }

  // The kept pairs in ascending order.
  std::vector<KeyedRow> Take() {
    if (buffer_.size() > limit_) Cut();
    std::sort(buffer_.begin(), buffer_.end());
    return std::move(buffer_);
  }

 private:
  void Cut() {
    std::nth_element(buffer_.begin(), buffer_.begin() + (limit_ - 1),
                     buffer_.end());
    buffer_.resize(limit_);
    cut_ = buffer_.back();
    full_ = true;
  }

  size_t limit_;
  size_t capacity_;
  bool full_ = false;
  KeyedRow cut_{};
  std::vector<KeyedRow> buffer_;
};

// Key functors for the sequential scan: each computes the page-order key
// of a row (as RowKeys does) without a per-row switch. `flip` is all ones
// for a descending sort (~key), else zero. Rows are size_t so that a block's
// keys are computed from contiguous loads, not gathers.
struct DoubleKey {
  const double* column;
  uint64_t flip;
  uint64_t operator()(size_t r) const {
    return DoubleOrderKey(column[r], flip);
  }
};
// DoubleKey for a job known to have no missing double.
struct PresentDoubleKey {
  const double* column;
  uint64_t flip;
  uint64_t operator()(size_t r) const { return OrderKey(column[r]) ^ flip; }
};
struct TimestampKey {
  const int64_t* column;
  uint64_t flip;
  uint64_t operator()(size_t r) const { return OrderKey(column[r]) ^ flip; }
};
struct InterimKey {
  const uint8_t* column;
  uint64_t flip;
  uint64_t operator()(size_t r) const { return uint64_t{column[r]} ^ flip; }
};
struct ConstantKey {
  uint64_t flip;
  uint64_t operator()(size_t) const { return flip; }
};
// A code column mapped through a table of keys (bucket spans, strings).
struct CodeKey {
  const uint32_t* codes;
  const uint64_t* key_of_code;
  size_t distinct_codes;
  uint64_t operator()(size_t r) const { return key_of_code[codes[r]]; }
};
// A per-influencer field: the value's key where the row's field name is the
// field, else missing (the largest key).
struct FieldKey {
  const uint32_t* names;
  uint32_t field_code;
  const uint32_t* values;
  const uint64_t* key_of_code;
  uint64_t operator()(size_t r) const {
    return names[r] == field_code ? key_of_code[values[r]] : UINT64_MAX;
  }
};

// Calls body(key_of) with the key functor of the query's sort. `table` is
// scratch space for code -> key tables.
template <typename Body>
void WithKeyOf(const ResolvedQuery& query, std::vector<uint64_t>* table,
               Body body) {
  const JobResults& job = *query.job;
  const InfluencerColumns& c = job.columns;
  const uint64_t flip = query.desc ? ~uint64_t{0} : 0;
  auto double_key = [&](const Column<double>& column) {
    if (!job.may_have_missing_doubles) {
      return body(PresentDoubleKey{column.data(), flip});
    }
    return body(DoubleKey{column.data(), flip});
  };
  switch (query.sort) {
    case SortField::kInfluencerScore:
      return double_key(c.influencer_score);
    case SortField::kInitialInfluencerScore:
      return double_key(c.initial_influencer_score);
    case SortField::kProbability:
      return double_key(c.probability);
    case SortField::kTimestamp:
      return body(TimestampKey{c.timestamp.data(), flip});
    case SortField::kIsInterim:
      return body(InterimKey{c.is_interim.data(), flip});
    case SortField::kBucketSpan:
      table->resize(job.bucket_spans.size());
      for (size_t i = 0; i < table->size(); ++i) {
        (*table)[i] = OrderKey(job.bucket_spans[i]) ^ flip;
      }
      return body(CodeKey{c.bucket_span_code.data(), table->data(), table->size()});
    case SortField::kJobId:
    case SortField::kResultType:
      return body(ConstantKey{flip});
    case SortField::kInfluencerFieldName:
    case SortField::kInfluencerFieldValue:
    case SortField::kInfluencerField: {
      std::shared_ptr<const std::vector<uint32_t>> ranks = StringRanks(job);
      table->resize(ranks->size());
      for (size_t i = 0; i < table->size(); ++i) {
        uint32_t rank = (*ranks)[i];
        (*table)[i] = query.desc ? (uint64_t{1} << 62) - rank : rank;
      }
      if (query.sort == SortField::kInfluencerField) {
        int64_t field_code = job.CodeOf(query.sort_field_name);
        if (field_code < 0) return body(ConstantKey{UINT64_MAX});
        return body(FieldKey{c.field_name_code.data(),
                             static_cast<uint32_t>(field_code),
                             c.field_value_code.data(), table->data()});
      }
      return body(CodeKey{query.sort == SortField::kInfluencerFieldName
                              ? c.field_name_code.data()
                              : c.field_value_code.data(),
                          table->data(), table->size()});
    }
  }
}

// The page and count of the matches among rows first..last-1, in
// ascending row order, the common case (a whole job, a window of a job
// stored in time order, or of its rows that are: ScanWindowPage): a filter
// pass feeding a bounded top-k selection (never a sort of all matches).
// Rows arrive in ascending order, so once the buffer has been cut at (key,
// row) a later row can only enter with a smaller key: one integer
// comparison per row.
RowPage ScanRowsPage(const ResolvedQuery& query, size_t first,
                             size_t last) {
  RowPage page;
  const size_t limit = static_cast<size_t>(query.from + query.size);
  const RowFilter filter(query);
  const InfluencerColumns& c = filter.c;
  const bool has_window = filter.predicate.has_window;
  const int64_t start = filter.predicate.start;
  const int64_t end = filter.predicate.end;
  const bool has_end = filter.predicate.has_end;
  const bool has_score = filter.predicate.has_score;
  const double min_score = filter.predicate.min_score;
  const bool exclude_interim = filter.predicate.exclude_interim;
  int64_t count = 0;
  std::vector<KeyedRow> buffer;
  std::vector<uint64_t> table;
  WithKeyOf(query, &table, [&](auto key_of) {
    const size_t capacity = 2 * limit + 8;
    uint64_t cut = UINT64_MAX;
    bool full = false;
    auto passes = [&](uint32_t row) { return filter.Passes(row); };
    auto offer = [&](uint64_t key, uint32_t row) {
      buffer.push_back({key, row});
      if (buffer.size() == capacity) {
        std::nth_element(buffer.begin(), buffer.begin() + (limit - 1),
                         buffer.end());
        buffer.resize(limit);
        cut = buffer.back().key;
        full = true;
      }
    };
    if (limit == 0) {
      for (size_t i = first; i < last; ++i) {
        count += passes(static_cast<uint32_t>(i));
      }
      return;
    }
    // The bit mask of block [i, i + kBlock)'s rows that pass the filters.
    constexpr size_t kBlock = 64;
    auto matched_mask = [&](size_t i) {
      uint64_t matched = ~uint64_t{0};
      if (has_window) {
        uint64_t m = 0;
        const int64_t* ts = c.timestamp.data() + i;
        for (size_t j = 0; j < kBlock; ++j) {
          m |= static_cast<uint64_t>((ts[j] >= start) &
                                     (!has_end | (ts[j] < end)))
               << j;
        }
        matched &= m;
      }
      if (has_score) {
        uint64_t m = 0;
        const double* score = c.influencer_score.data() + i;
        for (size_t j = 0; j < kBlock; ++j) {
          m |= static_cast<uint64_t>(score[j] >= min_score) << j;
        }
        matched &= m;
      }
      if (exclude_interim) {
        uint64_t m = 0;
        const uint8_t* interim = c.is_interim.data() + i;
        for (size_t j = 0; j < kBlock; ++j) {
          m |= static_cast<uint64_t>(interim[j] == 0) << j;
        }
        matched &= m;
      }
      return matched;
    };
    // Rows visited in ascending order can only enter a cut buffer with a
    // key below the cut's; in descending order, with a key not above it
    // (the test may let an equal key in needlessly, never keep one out).
    auto run = [&](auto descending) {
      constexpr bool kDescending = decltype(descending)::value;
      auto below_cut = [&](uint64_t key) {
        return kDescending ? key <= cut : key < cut;
      };
      // Until the buffer is first cut, every match enters it.
      size_t lo = first;
      size_t hi = last;
      while (lo < hi && !full) {
        const uint32_t row = static_cast<uint32_t>(kDescending ? --hi : lo++);
        if (!passes(row)) continue;
        ++count;
        offer(key_of(row), row);
      }
      // Then blocks of 64 rows: the filters and the comparison with the cut
      // become bit masks computed in straight-line (vectorisable) loops,
      // and only rows below the cut are looked at one by one.
      uint64_t keys[kBlock];
      // A code-keyed sort (a string or bucket span) whose cut leaves at most
      // kFew codes below it tests rows by comparing codes, not by looking
      // keys up: far cheaper, and after the first cuts of a string sort
      // usually the case. Recomputed when the cut moves.
      constexpr bool kCoded =
          std::is_same_v<std::decay_t<decltype(key_of)>, CodeKey>;
      constexpr size_t kFew = 8;
      uint32_t few[kFew];
      bool use_few = false;
      uint64_t few_cut = 0;
      bool few_known = false;
      auto refresh_few = [&]() {
        if constexpr (kCoded) {
          if (few_known && few_cut == cut) return;
          few_known = true;
          few_cut = cut;
          use_few = key_of.distinct_codes <= (size_t{1} << 16);
          size_t k = 0;
          for (size_t code = 0; use_few && code < key_of.distinct_codes; ++code) {
            if (!below_cut(key_of.key_of_code[code])) continue;
            if (k == kFew) {
              use_few = false;
            } else {
              few[k++] = static_cast<uint32_t>(code);
            }
          }
          for (; k < kFew; ++k) few[k] = UINT32_MAX;  // matches no code
        }
      };
      while (hi - lo >= kBlock) {
        const size_t i = kDescending ? hi - kBlock : lo;
        const uint64_t matched = matched_mask(i);
        count += std::popcount(matched);
        if constexpr (kCoded) {
          refresh_few();
          if (use_few) {
            uint64_t below = 0;
            const uint32_t* codes = key_of.codes + i;
            for (size_t j = 0; j < kBlock; ++j) {
              bool in = false;
              for (size_t k = 0; k < kFew; ++k) in |= codes[j] == few[k];
              below |= static_cast<uint64_t>(in) << j;
            }
            for (uint64_t candidates = matched & below; candidates != 0;
                 candidates &= candidates - 1) {
              const int j = std::countr_zero(candidates);
              const uint64_t key = key_of(static_cast<uint32_t>(i + j));
              if (below_cut(key)) offer(key, static_cast<uint32_t>(i + j));
            }
            if (kDescending) {
              hi -= kBlock;
            } else {
              lo += kBlock;
            }
            continue;
          }
        }
        uint64_t below = 0;
        for (size_t j = 0; j < kBlock; ++j) {
          keys[j] = key_of(i + j);
          below |= static_cast<uint64_t>(below_cut(keys[j])) << j;
        }
        for (uint64_t candidates = matched & below; candidates != 0;
             candidates &= candidates - 1) {
          const int j = std::countr_zero(candidates);
          // The cut may have dropped since the mask was made.
          if (below_cut(keys[j])) offer(keys[j], static_cast<uint32_t>(i + j));
        }
        if (kDescending) {
          hi -= kBlock;
        } else {
          lo += kBlock;
        }
      }
      while (lo < hi) {
        const uint32_t row = static_cast<uint32_t>(kDescending ? --hi : lo++);
        if (!passes(row)) continue;
        ++count;
        const uint64_t key = key_of(row);
        if (below_cut(key)) offer(key, row);
      }
    };
    // Dumps are usually stored in time order: a newest-first sort meets its
    // page soonest walking backwards.
    if (query.sort == SortField::kTimestamp && query.desc) {
      run(std::true_type());
    } else {
      run(std::false_type());
    }
  });
  page.count = count;
  if (query.size == 0) return page;
  if (buffer.size() > limit) {
    std::nth_element(buffer.begin(), buffer.begin() + (limit - 1), buffer.end());
    buffer.resize(limit);
  }
  std::sort(buffer.begin(), buffer.end());
  for (size_t i = static_cast<size_t>(query.from); i < buffer.size(); ++i) {
    page.rows.push_back(buffer[i].row);
  }
  return page;
}

// Appends the rows `top` kept, from its `from`-th on, to page->rows.
void TakePage(TopK& top, int64_t from, RowPage* page) {
  std::vector<KeyedRow> best = top.Take();
  for (size_t i = static_cast<size_t>(from); i < best.size(); ++i) {
    page->rows.push_back(best[i].row);
  }
}

// The page and count of the matches among rows[0, n) that are >= min_row:
// rows of the query's window (the window is not tested again) in any
// order, as a job not stored in time order lists them. As ScanRowsPage,
// but rows may come in any order, so each match below the cut is offered
// to the top-k by (key, row).
RowPage ScanRowListPage(const ResolvedQuery& query, PackedRowsView rows,
                        size_t n, uint32_t min_row) {
  RowPage page;
  const size_t limit = static_cast<size_t>(query.from + query.size);
  RowPredicate predicate = PredicateOf(query);
  predicate.has_window = false;  // the positions are the window's
  const RowFilter filter(predicate, *query.job);
  int64_t count = 0;
  if (limit == 0 || query.size == 0) {
    for (size_t i = 0; i < n; ++i) {
      count += rows[i] >= min_row && filter.Passes(rows[i]);
    }
    page.count = count;
    return page;
  }
  TopK top(limit);
  std::vector<uint64_t> table;
  const double* score = filter.c.influencer_score.data();
  const uint8_t* interim = filter.c.is_interim.data();
  const bool has_score = predicate.has_score;
  const double min_score = predicate.min_score;
  const bool exclude_interim = predicate.exclude_interim;
  WithKeyOf(query, &table, [&](auto key_of) {
    // Blocks of 64 positions: the filters become a bit mask computed in
    // straight-line loops (independent loads, no branch per row), and
    // only the matches are keyed and offered.
    constexpr size_t kBlock = 64;
    constexpr int kSparse = 16;
    uint32_t block[kBlock];
    size_t i = 0;
    for (; n - i >= kBlock; i += kBlock) {
      uint64_t matched = 0;
      // The block's entries read with their width a constant.
      rows.WithWidth([&](auto width) {
        constexpr size_t W = width;
        for (size_t j = 0; j < kBlock; ++j) {
          block[j] = rows.At<W>(i + j);
          matched |= static_cast<uint64_t>(block[j] >= min_row) << j;
        }
      });
      if (std::popcount(matched) <= kSparse) {
        // Few of the block's rows are from min_row on (the rest are
        // another scan's): test them one by one.
        for (; matched != 0; matched &= matched - 1) {
          const uint32_t row = block[std::countr_zero(matched)];
          if (!filter.Passes(row)) continue;
          ++count;
          top.Offer(key_of(row), row);
        }
        continue;
      }
      if (has_score) {
        uint64_t m = 0;
        for (size_t j = 0; j < kBlock; ++j) {
          m |= static_cast<uint64_t>(score[block[j]] >= min_score) << j;
        }
        matched &= m;
      }
      if (exclude_interim) {
        uint64_t m = 0;
        for (size_t j = 0; j < kBlock; ++j) {
          m |= static_cast<uint64_t>(interim[block[j]] == 0) << j;
        }
        matched &= m;
      }
      count += std::popcount(matched);
      if (top.full()) {
        // Only the rows below the cut can enter: one more mask (the cut
        // moves during the block at most down, and Offer tests again).
        const KeyedRow cut = top.cut();
        uint64_t below = 0;
        for (size_t j = 0; j < kBlock; ++j) {
          const uint64_t key = key_of(block[j]);
          below |= static_cast<uint64_t>((key < cut.key) |
                                         ((key == cut.key) & (block[j] < cut.row)))
                   << j;
        }
        matched &= below;
      }
      for (; matched != 0; matched &= matched - 1) {
        const uint32_t row = block[std::countr_zero(matched)];
        top.Offer(key_of(row), row);
      }
    }
    for (; i < n; ++i) {
      const uint32_t row = rows[i];
      if (row < min_row || !filter.Passes(row)) continue;
      ++count;
      top.Offer(key_of(row), row);
    }
  });
  page.count = count;
  TakePage(top, query.from, &page);
  return page;
}

// The page and count of the matches in the window of a job not stored in
// time order, whose positions in `time` are [first, last) (`time` is not
// the identity: those windows take ScanRowsPage). The job's leading rows
// that are in time order (TimeIndex::ordered_rows: a job merged after
// updates keeps its older rows in order, the rewritten ones after them)
// hold their part of the window in one stretch, scanned in row order
// (ScanRowsPage). The other rows' part is read from the index's time order
// of them (TimeIndex::tail_order) when it keeps one, else from every
// window position of the time order, the ordered rows skipped (sorting
// those rows into row order first, for fewer cache misses, cost more than
// it saved: measured). The two pages are merged. Requires query.size > 0
// (the caller counts alone from the index).
RowPage ScanWindowPage(const ResolvedQuery& query, const TimeIndex& time,
                       size_t first, size_t last) {
  // The index keeps the whole time order as a list (then the tail's is
  // empty), or (a job merged after updates) only the tail's.
  const PackedRowsView positions =
      time.order().empty() ? PackedRowsView() : time.order().view().Skip(first);
  const size_t n = last - first;
  const size_t ordered = time.ordered_rows();
  if (ordered == 0) return ScanRowListPage(query, positions, n, 0);
  const Column<int64_t>& ts = query.job->columns.timestamp;
  const auto ordered_end = ts.begin() + static_cast<ptrdiff_t>(ordered);
  const size_t head_first =
      query.start.has_value()
          ? static_cast<size_t>(
                std::lower_bound(ts.begin(), ordered_end, *query.start) -
                ts.begin())
          : 0;
  const size_t head_last = std::max(
      head_first,
      query.end.has_value()
          ? static_cast<size_t>(
                std::lower_bound(ts.begin(), ordered_end, *query.end) -
                ts.begin())
          : ordered);
  // Both parts' best from + size, merged, then paged. Their rows are the
  // window's (the head's stretch is exactly its ordered rows), so the
  // window is not tested again.
  ResolvedQuery whole = query;
  whole.from = 0;
  whole.size = query.from + query.size;
  whole.start.reset();
  whole.end.reset();
  const RowPage head = ScanRowsPage(whole, head_first, head_last);
  // The tail's rows in the window: from its own time order if the index
  // keeps one, else every window position, the ordered rows skipped.
  RowPage tail;
  if (!time.tail_order().empty()) {
    const auto [tail_first, tail_last] =
        time.TailWindow(*query.job, query.start, query.end);
    tail = ScanRowListPage(whole, time.tail_order().view().Skip(tail_first),
                           tail_last - tail_first,
                           static_cast<uint32_t>(ordered));
  } else {
    tail = ScanRowListPage(whole, positions, n, static_cast<uint32_t>(ordered));
  }
  RowPage page;
  page.count = head.count + tail.count;
  // RowKeys gives every row the key the scans' functors (WithKeyOf) gave
  // it: the same page order.
  const RowKeys keys(query);
  TopK top(static_cast<size_t>(whole.size));
  for (uint32_t row : head.rows) top.Offer(keys(row), row);
  for (uint32_t row : tail.rows) top.Offer(keys(row), row);
  TakePage(top, query.from, &page);
  return page;
}

// The job's influencer_score-descending page order, building it if needed.
std::shared_ptr<const RowOrder> ScoreOrder(
    const std::shared_ptr<const JobResults>& job) {
  ResolvedQuery score_query;
  score_query.job = job;
  score_query.sort = SortField::kInfluencerScore;
  score_query.desc = true;
  return PageOrder(score_query, IndexUse::kAlways);
}

// The job's TimeIndex, building it (and the score order it needs) on first
// use. Thread-safe like PageOrder.
std::shared_ptr<const TimeIndex> TimeIndexOf(const ResolvedQuery& query) {
  SortOrderCache& cache = *query.job->sort_orders;
  {
    std::lock_guard<std::mutex> lock(cache.mu);
    if (cache.time_index) return cache.time_index;
  }
  auto index = std::make_shared<const TimeIndex>(*query.job,
                                                 *ScoreOrder(query.job));
  std::lock_guard<std::mutex> lock(cache.mu);
  if (!cache.time_index) cache.time_index = std::move(index);
  return cache.time_index;
}

// The job's TimeIndex if it is built (never builds it). Thread-safe.
std::shared_ptr<const TimeIndex> CachedTimeIndex(const JobResults& job) {
  SortOrderCache& cache = *job.sort_orders;
  std::lock_guard<std::mutex> lock(cache.mu);
  return cache.time_index;
}

// The TimeIndex for a timestamp sort's page order, building it if
// `index_use` allows (under kAuto, on the second timestamp-sorted query);
// null if the query should scan instead.
std::shared_ptr<const TimeIndex> TimeIndexFor(const ResolvedQuery& query,
                                              IndexUse index_use) {
  if (index_use == IndexUse::kNever) return nullptr;
  SortOrderCache& cache = *query.job->sort_orders;
  {
    std::lock_guard<std::mutex> lock(cache.mu);
    if (cache.time_index) return cache.time_index;
    if (index_use == IndexUse::kAuto && ++cache.misses["timestamp"] < 2) {
      return nullptr;
    }
  }
  return TimeIndexOf(query);
}


// The number of rows with influencer_score >= t: a prefix of the score order.
size_t RowsScoringAtLeast(const JobResults& job,
                          const RowOrder& score_order, double t) {
  const Column<double>& score = job.columns.influencer_score;
  return static_cast<size_t>(
      std::partition_point(score_order.begin(), score_order.end(),
                           [&](uint32_t r) { return score[r] >= t; }) -
      score_order.begin());
}

// A job's rows in a sort's page order: a materialised order, or for a
// timestamp sort the TimeIndex's time order read forwards (ascending) or
// group by group backwards (descending: newest timestamps first, rows of
// equal timestamp still in ingest order), which needs no memory of its own.
class PageOrderView {
 public:
  explicit PageOrderView(const RowOrder& rows) : rows_(&rows), n_(rows.size()) {}
  PageOrderView(const TimeIndex& time, const JobResults& job, bool desc)
      : time_(&time), job_(&job), desc_(desc), n_(time.size()) {}

  size_t size() const { return n_; }

  // The row at page position i (O(1); O(log n) for a descending time
  // order).
  uint32_t operator[](size_t i) const {
    if (rows_ != nullptr) return (*rows_)[i];
    if (!desc_) return time_->RowAt(i);
    auto [group_first, group_last] = GroupAt(n_ - 1 - i);
    return time_->RowAt(group_first + (i - (n_ - group_last)));
  }

  // A row whose sort key (under the view's own sort) equals that of the
  // row at page position i: that row itself, except in a descending time
  // order, whose position i holds a row of the same timestamp as time
  // position n - 1 - i. O(1): no search of the group (operator[]'s cost).
  uint32_t SameKeyRowAt(size_t i) const {
    if (rows_ != nullptr) return (*rows_)[i];
    return time_->RowAt(desc_ ? n_ - 1 - i : i);
  }

  // Reads the rows from page position i on, one at a time: O(1) amortised
  // per row (a descending time order finds its first group once, then
  // walks back group by group). The view must outlive the reader.
  class Reader {
   public:
    Reader(const PageOrderView& view, size_t i) : view_(&view), i_(i) {
      if (i_ < view.n_ && view.rows_ == nullptr && view.desc_) {
        std::tie(group_first_, group_last_) = view.GroupAt(view.n_ - 1 - i);
        position_ = group_first_ + (i - (view.n_ - group_last_));
      }
    }
    bool done() const { return i_ >= view_->n_; }
    // The row at the reader's position, which it then passes. Requires
    // !done().
    uint32_t Next() {
      const PageOrderView& v = *view_;
      const size_t i = i_++;
      if (v.rows_ != nullptr) return (*v.rows_)[i];
      if (!v.desc_) return v.time_->RowAt(i);
      if (position_ == group_last_) {
        // The previous group of equal timestamps, found walking back over
        // it (its rows are read next, so this costs O(1) per row).
        group_last_ = group_first_;
        const int64_t ts = v.Timestamp(group_last_ - 1);
        group_first_ = group_last_ - 1;
        while (group_first_ > 0 && v.Timestamp(group_first_ - 1) == ts) {
          --group_first_;
        }
        position_ = group_first_;
      }
      return v.time_->RowAt(position_++);
    }

   private:
    const PageOrderView* view_;
    size_t i_;
    // A descending time order: the time positions of the current group,
    // and the next one to read.
    size_t group_first_ = 0;
    size_t group_last_ = 0;
    size_t position_ = 0;
  };

  // Calls f(row) for the rows from page position i on, until f returns
  // false.
  template <typename F>
  void ForEachFrom(size_t i, F f) const {
    for (Reader reader(*this, i); !reader.done();) {
      if (!f(reader.Next())) return;
    }
  }

 private:
  int64_t Timestamp(size_t position) const {
    return job_->columns.timestamp[time_->RowAt(position)];
  }
  // The time positions [first, last) of the rows whose timestamp equals
  // that at `position`: searched outward from `position` in doubling steps
  // (O(log group size) reads, the first ones near it), not over the whole
  // order, whose binary search would read scattered rows.
  std::pair<size_t, size_t> GroupAt(size_t position) const {
    const int64_t ts = Timestamp(position);
    // first: the partition point of Timestamp(p) < ts, in [lo, hi].
    size_t lo = 0;
    size_t hi = position;  // Timestamp(hi) == ts
    for (size_t step = 1; step <= hi; step *= 2) {
      if (Timestamp(hi - step) < ts) {
        lo = hi - step + 1;
        break;
      }
      hi -= step;
    }
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (Timestamp(mid) < ts) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    const size_t first = lo;
    // last: the partition point of Timestamp(p) <= ts, in [lo, hi].
    lo = position + 1;
    hi = n_;
    for (size_t step = 1; position + step < n_; step *= 2) {
      if (Timestamp(position + step) > ts) {
        hi = position + step;
        break;
      }
      lo = position + step + 1;
    }
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (Timestamp(mid) <= ts) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return {first, lo};
  }

  const RowOrder* rows_ = nullptr;
  const TimeIndex* time_ = nullptr;
  const JobResults* job_ = nullptr;
  bool desc_ = false;
  size_t n_ = 0;
};

// The first position i of `order` for which below(order[i]) is false,
// where below is true on a prefix.
template <typename Below>
size_t PartitionPoint(const PageOrderView& order, Below below) {
  size_t lo = 0;
  size_t hi = order.size();
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (below(order[mid])) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// Where the matches of a query lie when they are one run of its page order.
struct OrderRun {
  size_t first = 0;
  size_t last = 0;
};

// Whether a job's matches of `query` can be one run of its page order
// (MatchesAsRun): no filter but exclude_interim; only a score threshold on
// a score order; only a window on a timestamp order.
bool MatchesCanBeRun(const ResolvedQuery& query) {
  const bool window = query.start.has_value() || query.end.has_value();
  const bool score = query.min_score.has_value();
  if (window && score) return false;
  if (window) return query.sort == SortField::kTimestamp;
  if (score) return query.sort == SortField::kInfluencerScore;
  return true;
}

// The run of `order` holding exactly the query's matches, if they form one:
// no filter; only a score threshold on a score order; only a window on a
// timestamp order. An exclude_interim on a job without interim rows filters
// nothing.
std::optional<OrderRun> MatchesAsRun(const ResolvedQuery& query,
                                     const JobResults& job,
                                     const PageOrderView& order) {
  const InfluencerColumns& c = job.columns;
  const size_t n = order.size();
  if (!MatchesCanBeRun(query)) return std::nullopt;
  if (query.exclude_interim && job.interim_rows > 0) return std::nullopt;
  const bool window = query.start.has_value() || query.end.has_value();
  const bool score = query.min_score.has_value();
  if (!window && !score) return OrderRun{0, n};
  if (score && !window && query.sort == SortField::kInfluencerScore) {
    // Missing scores match no threshold and lie at the end of the order
    // in both directions: descending, the matches are a prefix; ascending,
    // the run between the scores below t and the missing tail.
    const double t = *query.min_score;
    const Column<double>& score = c.influencer_score;
    if (query.desc) {
      return OrderRun{
          0, PartitionPoint(order, [&](uint32_t r) { return score[r] >= t; })};
    }
    size_t present = PartitionPoint(
        order, [&](uint32_t r) { return !IsMissing(score[r]); });
    size_t split = PartitionPoint(order, [&](uint32_t r) {
      return !IsMissing(score[r]) && score[r] < t;
    });
    return OrderRun{split, std::max(split, present)};
  }
  if (window && !score && query.sort == SortField::kTimestamp) {
    const int64_t lo = query.start.value_or(INT64_MIN);
    const int64_t hi = query.end.value_or(INT64_MAX);
    if (lo >= hi) return OrderRun{0, 0};
    auto ts = [&](uint32_t r) { return c.timestamp[r]; };
    size_t begin = PartitionPoint(order, [&](uint32_t r) {
      return query.desc ? ts(r) >= hi : ts(r) < lo;
    });
    size_t end = PartitionPoint(order, [&](uint32_t r) {
      return query.desc ? ts(r) >= lo : ts(r) < hi;
    });
    return OrderRun{begin, std::max(begin, end)};
  }
  return std::nullopt;
}

// The query's count from the job's TimeIndex, and the window's positions in
// time order (the whole job when there is no window).
struct IndexedCount {
  int64_t count = 0;
  size_t window_first = 0;
  size_t window_last = 0;
};

IndexedCount CountWithIndex(const ResolvedQuery& query, const TimeIndex& index) {
  const JobResults& job = *query.job;
  IndexedCount result;
  std::tie(result.window_first, result.window_last) =
      index.Window(job, query.start, query.end);
  const size_t first = result.window_first;
  const size_t last = result.window_last;
  size_t count = last - first;
  double t = 0.0;
  if (query.min_score.has_value()) {
    t = *query.min_score;
    size_t rank_limit = RowsScoringAtLeast(job, *ScoreOrder(query.job), t);
    // The whole job's count is the prefix itself (no pass over blocks).
    count = first == 0 && last == job.size()
                ? rank_limit
                : index.CountTopRanks(job, first, last, rank_limit, t);
  }
  if (query.exclude_interim) {
    auto [begin, end] = index.InterimPositions(first, last);
    for (const uint32_t* p = begin; p != end; ++p) {
      if (!query.min_score.has_value() ||
          job.columns.influencer_score[index.RowAt(*p)] >= t) {
        --count;
      }
    }
  }
  result.count = static_cast<int64_t>(count);
  return result;
}

// Appends the page of a run of `order` that holds exactly the matches.
void PageFromRun(const ResolvedQuery& query, const PageOrderView& order,
                 OrderRun run, RowPage* page) {
  size_t begin = std::min(run.first + static_cast<size_t>(query.from), run.last);
  size_t left = std::min(static_cast<size_t>(query.size), run.last - begin);
  if (left == 0) return;
  order.ForEachFrom(begin, [&](uint32_t row) {
    page->rows.push_back(row);
    return --left > 0;
  });
}

// Appends the page by walking `order` and skipping rows that do not match.
// Gives up after visiting `max_visits` rows without completing the page:
// returns false and leaves `page` as it was.
bool PageFromWalk(const ResolvedQuery& query, const PageOrderView& order,
                  RowPage* page,
                  size_t max_visits = std::numeric_limits<size_t>::max()) {
  const int64_t limit = query.from + query.size;
  const size_t size_before = page->rows.size();
  int64_t seen = 0;
  size_t visits = 0;
  bool complete = true;
  const RowFilter filter(query);
  order.ForEachFrom(0, [&](uint32_t row) {
    if (++visits > max_visits) {
      complete = false;
      return false;
    }
    if (!filter.Passes(row)) return true;
    if (seen >= query.from) page->rows.push_back(row);
    return ++seen < limit;
  });
  if (!complete) page->rows.resize(size_before);
  return complete;
}

// Appends the page of a score-descending query with a time window (and
// any threshold or exclude_interim) from the TimeIndex: the window's rows
// in page order are its blocks' sorted score ranks merged (a heap of
// blocks), the blocks at its two ends filtered by timestamp. A score
// threshold is a rank limit (`rank_limit`: the rows scoring at least it).
// O(blocks + limit * log(limit)), whatever the scores and timestamps; a
// walk of the score order may visit far more rows when the two correlate
// (ties of score keep ingest order, which is often time order).
//
// Blocks join the heap lazily, in the order of their least rank (read from
// the index's compact list of them): those with the `limit` least first,
// the others once the heap's least rank passes theirs, so that a page
// reads about `limit` blocks' ranks, not every block's in the window.
void PageFromBlocks(const ResolvedQuery& query, const RowOrder& score_order,
                    const TimeIndex& index, size_t first, size_t last,
                    size_t rank_limit, RowPage* page) {
  if (first >= last) return;
  const JobResults& job = *query.job;
  const InfluencerColumns& c = job.columns;
  const int64_t start = query.start.value_or(INT64_MIN);
  const int64_t end = query.end.value_or(INT64_MAX);
  const size_t b = index.block_rows();
  const size_t first_block = first / b;
  const size_t last_block = (last - 1) / b;
  const std::vector<uint32_t>& first_ranks = index.BlockFirstRanks();
  const int64_t limit = query.from + query.size;
  // The window's blocks as (least rank, block), the `limit` least sorted
  // first; the rest are sorted when first needed.
  std::vector<std::pair<uint32_t, uint32_t>> pending;
  pending.reserve(last_block - first_block + 1);
  for (size_t block = first_block; block <= last_block; ++block) {
    if (first_ranks[block] < rank_limit) {
      pending.emplace_back(first_ranks[block], static_cast<uint32_t>(block));
    }
  }
  size_t sorted = std::min(pending.size(), static_cast<size_t>(limit));
  std::nth_element(pending.begin(), pending.begin() + sorted, pending.end());
  std::sort(pending.begin(), pending.begin() + sorted);
  size_t next_pending = 0;

  struct Cursor {
    PackedRowsView ranks;  // the block's
    size_t next;           // of ranks
    size_t end;
    bool edge;  // a block only partly in the window
  };
  std::vector<Cursor> cursors;
  // Moves a cursor to its next rank in the window and under the limit;
  // false if it has none.
  auto settle = [&](Cursor& cursor) {
    for (; cursor.next != cursor.end; ++cursor.next) {
      const uint32_t rank = cursor.ranks[cursor.next];
      if (rank >= rank_limit) return false;  // ranks ascend
      if (!cursor.edge) return true;
      const int64_t ts = c.timestamp[score_order[rank]];
      if (ts >= start && ts < end) return true;
    }
    return false;
  };
  std::vector<std::pair<uint32_t, uint32_t>> heap;  // (rank, cursor)
  auto after = [](const std::pair<uint32_t, uint32_t>& x,
                  const std::pair<uint32_t, uint32_t>& y) { return x > y; };
  // Adds the pending blocks whose least rank is below the heap's least.
  auto admit = [&] {
    while (next_pending < pending.size() &&
           (heap.empty() || pending[next_pending].first < heap.front().first)) {
      if (next_pending == sorted) {
        std::sort(pending.begin() + sorted, pending.end());
        sorted = pending.size();
      }
      const size_t block = pending[next_pending++].second;
      auto [ranks, count] = index.BlockRanks(block);
      cursors.push_back(
          {ranks, 0, count, block * b < first || (block + 1) * b > last});
      if (settle(cursors.back())) {
        heap.emplace_back(cursors.back().ranks[cursors.back().next],
                          static_cast<uint32_t>(cursors.size() - 1));
        std::push_heap(heap.begin(), heap.end(), after);
      }
    }
  };
  int64_t seen = 0;
  for (admit(); !heap.empty() && seen < limit; admit()) {
    std::pop_heap(heap.begin(), heap.end(), after);
    auto [rank, i] = heap.back();
    heap.pop_back();
    const uint32_t row = score_order[rank];
    if (!query.exclude_interim || !c.is_interim[row]) {
      if (seen >= query.from) page->rows.push_back(row);
      ++seen;
    }
    Cursor& cursor = cursors[i];
    ++cursor.next;
    if (settle(cursor)) {
      heap.emplace_back(cursor.ranks[cursor.next], i);
      std::push_heap(heap.begin(), heap.end(), after);
    }
  }
}

RowPage ExecuteWithOrder(const ResolvedQuery& query,
                                 const PageOrderView& order,
                                 IndexUse index_use) {
  RowPage page;
  const JobResults& job = *query.job;
  if (std::optional<OrderRun> run = MatchesAsRun(query, job, order)) {
    page.count = static_cast<int64_t>(run->last - run->first);
    if (query.size > 0) PageFromRun(query, order, *run, &page);
      return page;
  }
  const bool window = query.start.has_value() || query.end.has_value();
  std::shared_ptr<const TimeIndex> index;
  size_t window_first = 0;
  size_t window_last = job.size();
  if (window || query.min_score.has_value() ||
      index_use == IndexUse::kAlwaysScanWindow) {
    index = TimeIndexOf(query);
    IndexedCount counted = CountWithIndex(query, *index);
    page.count = counted.count;
    window_first = counted.window_first;
    window_last = counted.window_last;
  } else {  // only exclude_interim
    page.count = static_cast<int64_t>(job.size() - job.interim_rows);
  }
  if (query.size == 0 || query.from >= page.count) return page;

  // Walking the order visits about limit * n / count rows (all of them when
  // the page reaches the last match), each a random access; scanning the
  // window's rows in time order is sequential when the rows are stored in
  // time order, and then needs a bounded partial sort.
  //
  // A score-descending sort with a window can instead merge the window's
  // TimeIndex blocks (PageFromBlocks), whose cost does not depend on the
  // data. The walk's estimate assumes scores independent of time, which
  // they often are not, so the blocks are preferred to it unless it is
  // estimated far cheaper; when the walk is estimated at most twice the
  // blocks' cost it is tried first (it reads fewer cache lines per row),
  // with a budget of twice its estimated rows, and the blocks finish a walk
  // that runs out of it.
  bool scan_window = index_use == IndexUse::kAlwaysScanWindow;
  // The window's rows are read in row order when the job is stored in time
  // order, or when the window is the whole job (a threshold alone): the
  // top-k does not depend on the order it is offered rows in.
  const bool sequential_scan =
      index && (index->identity() ||
                (window_first == 0 && window_last == job.size()));
  bool blocks = false;
  size_t walk_budget = std::numeric_limits<size_t>::max();
  const bool blocks_apply = index && window &&
                            query.sort == SortField::kInfluencerScore &&
                            query.desc;
  // A walk chosen over the window's scan gets a budget too: the estimate
  // assumes matches spread evenly over the order, and an order that
  // follows time (probability, often) meets a late window only after every
  // row before it. A walk that runs out of its budget hands over to the
  // scan, so it costs at most the budget more than the scan.
  const bool scan_after_walk =
      index && (index_use == IndexUse::kAuto ||
                index_use == IndexUse::kAlways ||
                index_use == IndexUse::kAlwaysBlocks ||
                index_use == IndexUse::kAlwaysShortWalk);
  size_t scan_walk_budget = 0;
  if (index && index_use == IndexUse::kAlwaysShortWalk) {
    scan_walk_budget = job.size() / 4;  // tests: both outcomes, often
  }
  if (index && (index_use == IndexUse::kAuto || index_use == IndexUse::kAlways ||
                index_use == IndexUse::kAlwaysBlocks)) {
    const double n = static_cast<double>(job.size());
    const double limit = static_cast<double>(query.from + query.size);
    const double count = static_cast<double>(page.count);
    const double walk_rows = limit >= count ? n : limit * n / count;
    const double scan_rows = static_cast<double>(window_last - window_first);
    // Per row, ScanWindowPage reads the time order and gathers the
    // columns: up to about twice ScanRowsPage's cost (measured). With the
    // index's tail order, it reads the ordered rows as one stretch, at
    // ScanRowsPage's cost, and only the tail's through a list.
    double scan_cost = sequential_scan ? 1.0 : 2.0;
    if (!sequential_scan && !index->tail_order().empty() && scan_rows > 0) {
      const auto [tail_first, tail_last] =
          index->TailWindow(job, query.start, query.end);
      scan_cost = 1.0 + static_cast<double>(tail_last - tail_first) / scan_rows;
    }
    // At least a sixth of the scan's cost (a walk visit costs about 3),
    // so that a walk that would have ended just past the budget pays at
    // most about 3x for the scan after it.
    scan_walk_budget = static_cast<size_t>(
        std::min(n, std::max(4 * walk_rows + 1024,
                             scan_rows * scan_cost / (3.0 * 2))));
    scan_window = scan_rows * scan_cost < walk_rows * 3.0;
    if (blocks_apply) {
      const double block_count =
          static_cast<double>(window_last - window_first) /
              static_cast<double>(index->block_rows()) + 2;
      // A 4-byte least rank per block, then about `limit` blocks read.
      const double block_cost =
          0.5 * block_count +
          3 * limit * std::log2(std::min(limit, block_count) + 1);
      if (index_use == IndexUse::kAlwaysBlocks) {
        blocks = true;
      } else if (block_cost <= scan_rows * scan_cost &&
                 block_cost <= 4 * 3.0 * walk_rows) {
        blocks = true;
        scan_window = false;
        if (3.0 * walk_rows <= 2 * block_cost) {
          walk_budget = static_cast<size_t>(2 * walk_rows);
        }
      }
    }
  }
  if (blocks && walk_budget != std::numeric_limits<size_t>::max() &&
      PageFromWalk(query, order, &page, walk_budget)) {
    return page;
  }
  if (blocks) {
    const size_t rank_limit =
        query.min_score.has_value()
            ? RowsScoringAtLeast(job, *ScoreOrder(query.job), *query.min_score)
            : job.size();
    PageFromBlocks(query, *ScoreOrder(query.job), *index, window_first,
                   window_last, rank_limit, &page);
    return page;
  }
  auto scan = [&] {
    const TimeIndex& time = *index;
    RowPage scanned =
        sequential_scan
            ? ScanRowsPage(query, window_first, window_last)
            : ScanWindowPage(query, time, window_first, window_last);
    scanned.count = page.count;
    return scanned;
  };
  if (scan_window) return scan();
  if (scan_after_walk) {
    if (PageFromWalk(query, order, &page, scan_walk_budget)) return page;
    return scan();
  }
  PageFromWalk(query, order, &page);
  return page;
}



RowPage ExecuteRows(const ResolvedQuery& query, IndexUse index_use) {
  if (query.sort == SortField::kTimestamp) {
    // Timestamp sorts page straight off the TimeIndex.
    if (std::shared_ptr<const TimeIndex> time = TimeIndexFor(query, index_use)) {
      return ExecuteWithOrder(query, PageOrderView(*time, *query.job, query.desc),
                              index_use);
    }
  } else if (std::shared_ptr<const RowOrder> order = PageOrder(query, index_use)) {
    return ExecuteWithOrder(query, PageOrderView(*order), index_use);
  }
  // Rows stored in time order hold a window's matches in one stretch.
  const JobResults& job = *query.job;
  size_t first = 0;
  size_t last = job.size();
  if (job.time_ordered) {
    const Column<int64_t>& ts = job.columns.timestamp;
    if (query.start.has_value()) {
      first = static_cast<size_t>(
          std::lower_bound(ts.begin(), ts.end(), *query.start) - ts.begin());
    }
    if (query.end.has_value()) {
      last = static_cast<size_t>(
          std::lower_bound(ts.begin(), ts.end(), *query.end) - ts.begin());
    }
    last = std::max(first, last);
  }
  return ScanRowsPage(query, first, last);
}

// -1, 0 or 1 as row `a` of segment `sa` comes before, level with, or after
// row `b` of segment `sb` in the query's page order (values, not codes:
// each segment has its own dictionary).
int ComparePageOrder(const ResolvedQuery& query, const JobResults& sa,
                     uint32_t a, const JobResults& sb, uint32_t b) {
  if (IsNumericSort(query.sort)) {
    const uint64_t ka = NumericKey(sa, query.sort, query.desc, a);
    const uint64_t kb = NumericKey(sb, query.sort, query.desc, b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  }
  absl::string_view va;
  absl::string_view vb;
  if (query.sort == SortField::kInfluencerFieldName) {
    va = sa.field_name(a);
    vb = sb.field_name(b);
  } else {
    va = sa.field_value(a);
    vb = sb.field_value(b);
    if (query.sort == SortField::kInfluencerField) {
      // Missing (another field's row): last in both directions.
      const bool ma = sa.field_name(a) != query.sort_field_name;
      const bool mb = sb.field_name(b) != query.sort_field_name;
      if (ma || mb) return ma == mb ? 0 : ma ? 1 : -1;
    }
  }
  const int c = va.compare(vb);  // byte-wise, unsigned
  const int ascending = c < 0 ? -1 : c > 0 ? 1 : 0;
  return query.desc ? -ascending : ascending;
}

// The number of `segment`'s deleted rows that match `filter` (a pass over
// them when the query filters, unless the segment's DeletedRowCache knows).
int64_t DeletedMatches(const JobResults::Segment& segment,
                       const RowFilter& filter) {
  const DeletedRows* deleted = segment.deleted.get();
  if (deleted == nullptr) return 0;
  if (!filter.predicate.any()) return static_cast<int64_t>(deleted->size());
  DeletedRowCache* cache = segment.deleted_cache.get();
  if (cache != nullptr) {
    if (std::optional<int64_t> known = cache->Find(filter.predicate)) {
      return *known;
    }
  }
  int64_t matches = 0;
  deleted->ForEachUnordered(
      [&](uint32_t row) { matches += filter.Passes(row); });
  if (cache != nullptr) cache->Add(filter.predicate, matches);
  return matches;
}

// Whether `row` of a segment is deleted: a bit of `bitmap` when there is
// one, else a search of `deleted` (null: none is).
bool IsDeleted(const DeletedRows* deleted, const std::vector<uint64_t>* bitmap,
               uint32_t row) {
  if (bitmap != nullptr) return ((*bitmap)[row / 64] >> (row % 64)) & 1;
  return deleted != nullptr && deleted->Contains(row);
}

// One segment's live matches, in page order, with their numeric keys (for
// numeric sorts), consumed from `next` on by MergeParts.
struct Part {
  const JobResults* rows;
  decltype(RowPage::rows) page;  // live matches in page order
  std::vector<uint64_t> keys;    // numeric sorts: each row's NumericKey
  size_t next = 0;
};

// Merges the parts in page order, ties to the earlier part (whose rows were
// ingested first), and appends the rows from merged position `from` up to
// `limit` to `out`.
void MergeParts(const ResolvedQuery& query, std::vector<Part>& parts,
                size_t from, size_t limit, InfluencersPage* out) {
  out->influencers.reserve(limit > from ? limit - from : 0);
  const Part* only = nullptr;  // the one part with rows, if only one has
  size_t with_rows = 0;
  for (const Part& part : parts) {
    if (part.next < part.page.size()) {
      only = &part;
      ++with_rows;
    }
  }
  if (with_rows == 1) {  // its page is the page: no keys, no heap
    const size_t end = std::min(limit, only->page.size() - only->next);
    for (size_t i = from; i < end; ++i) {
      out->influencers.push_back(ViewOf(*only->rows, only->page[only->next + i]));
    }
    return;
  }
  const bool numeric = IsNumericSort(query.sort);
  if (numeric) {
    for (Part& part : parts) {
      part.keys.resize(part.page.size());
      for (size_t i = 0; i < part.page.size(); ++i) {
        part.keys[i] =
            NumericKey(*part.rows, query.sort, query.desc, part.page[i]);
      }
    }
  }
  // A heap of the parts by their next row: page order, then part.
  auto after = [&](size_t a, size_t b) {
    const Part& pa = parts[a];
    const Part& pb = parts[b];
    int c;
    if (numeric) {
      const uint64_t ka = pa.keys[pa.next];
      const uint64_t kb = pb.keys[pb.next];
      c = ka < kb ? -1 : ka > kb ? 1 : 0;
    } else {
      c = ComparePageOrder(query, *pa.rows, pa.page[pa.next], *pb.rows,
                           pb.page[pb.next]);
    }
    return c != 0 ? c > 0 : a > b;
  };
  std::vector<size_t> heap;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].next < parts[i].page.size()) heap.push_back(i);
  }
  std::make_heap(heap.begin(), heap.end(), after);
  for (size_t taken = 0; taken < limit && !heap.empty(); ++taken) {
    std::pop_heap(heap.begin(), heap.end(), after);
    Part& best = parts[heap.back()];
    if (taken >= from) {
      out->influencers.push_back(ViewOf(*best.rows, best.page[best.next]));
    }
    if (++best.next == best.page.size()) {
      heap.pop_back();
    } else {
      std::push_heap(heap.begin(), heap.end(), after);
    }
  }
}

// ExecuteSegmentRuns's view of one segment: its matches, as the run
// [first, last) of its page order; the positions before `lo` are passed
// over (before the page).
struct SegmentRun {
  const JobResults::Segment* segment;
  std::optional<PageOrderView> view;  // over an order ExecuteSegmentRuns holds
  size_t first = 0;
  size_t last = 0;
  size_t lo = 0;
  std::shared_ptr<const std::vector<uint64_t>> bitmap;  // of deleted rows
  // The deleted rows' keys in `order` (DeletedRowCache::KeysInOrder), once
  // asked for; null if not to be had.
  std::shared_ptr<const DeletedRowCache::OrderRuns> deleted_keys;
  bool deleted_keys_asked = false;
  size_t deleted_read = 0;  // deleted rows a merge read (ReadRunRow)

  const JobResults& rows() const { return *segment->rows; }
};

// A row of one of ExecuteSegmentRuns's runs, with a key that orders rows
// of any segment: its NumericKey under a numeric sort; under a string sort
// (each segment has its own dictionary) its string's first 8 bytes, which
// order rows whose keys differ, the strings deciding between equal keys.
// The RunRows PassRows and TakeBlock compare (RunRowAt) under a numeric
// sort may hold another row of the same key (SameKeyRowAt): only their key
// and run are meaningful.
struct RunRow {
  uint64_t key = 0;
  uint32_t row = 0;
  uint32_t run = 0;
};

// Whether `a` comes before `b` in the job's page order: (value, run).
bool RunRowBefore(const ResolvedQuery& query,
                  const std::vector<SegmentRun>& runs, const RunRow& a,
                  const RunRow& b) {
  if (a.key != b.key) return a.key < b.key;
  const int c = IsNumericSort(query.sort)
                    ? 0
                    : ComparePageOrder(query, runs[a.run].rows(), a.row,
                                       runs[b.run].rows(), b.row);
  return c != 0 ? c < 0 : a.run < b.run;
}

// Run `run`'s row `row` as a RunRow.
RunRow MakeRunRow(const ResolvedQuery& query,
                  const std::vector<SegmentRun>& runs, size_t run,
                  uint32_t row) {
  RunRow out;
  out.row = row;
  out.run = static_cast<uint32_t>(run);
  const JobResults& rows = runs[run].rows();
  if (IsNumericSort(query.sort)) {
    out.key = NumericKey(rows, query.sort, query.desc, row);
    return out;
  }
  if (query.sort == SortField::kInfluencerField &&
      rows.field_name(row) != query.sort_field_name) {
    out.key = UINT64_MAX;  // missing: last in both directions
    return out;
  }
  const absl::string_view value = query.sort == SortField::kInfluencerFieldName
                                      ? rows.field_name(row)
                                      : rows.field_value(row);
  // Big-endian, zero-padded: byte-wise order, a shorter string's padding
  // tying with (never passing) a longer one's bytes.
  uint64_t prefix = 0;
  for (size_t i = 0; i < 8; ++i) {
    prefix = (prefix << 8) |
             (i < value.size() ? static_cast<unsigned char>(value[i]) : 0);
  }
  out.key = query.desc ? ~prefix : prefix;
  return out;
}

// Run s's row at page position `position` as a RunRow, for comparisons
// only: under a numeric sort any row of the position's key will do, found
// in O(1) (a descending time order's exact row is a search).
RunRow RunRowAt(const ResolvedQuery& query, const std::vector<SegmentRun>& runs,
                size_t s, size_t position) {
  const PageOrderView& view = *runs[s].view;
  return MakeRunRow(query, runs, s,
                    IsNumericSort(query.sort) ? view.SameKeyRowAt(position)
                                              : view[position]);
}

// Ranges of positions shorter than this are read, not searched for.
constexpr size_t kShortRange = 256;

// A range's deleted rows are counted by keys (DeletedIn) only if the rows
// left to key (those of levels not keyed yet, less the keyed levels they
// were folded from) are at most this many times the range's rows: keying
// a row (a random read, then a sort) costs about as much as reading a few
// positions, and the keys serve every later query of the list and of the
// lists after it. (A level folded from keyed ones also merges their runs:
// a copy, not counted here.)
constexpr size_t kKeyedRowsPerRangeRow = 16;

// The deleted rows of `run` at positions [from, to) of its order, named
// `order_name`. Under a numeric sort, whose positions are in
// (NumericKey, row) order (a time order's too), the count of the deleted
// rows' keys (DeletedRowCache::KeysInOrder, a sorted run per level of the
// list) between the range's ends, found by two binary searches a level: a
// page deep in an order whose first rows were rewritten (deleted rows crowd
// its start) costs O(levels x log deleted), not a read per position, once
// the levels are keyed. The first query after a write keys the write's
// rows (merging the runs of the levels they were folded with); the
// positions are read instead while more than kKeyedRowsPerRangeRow x the
// range's rows, plus the credit the queries that read positions instead
// earned (DeletedRowCache::kPositionsPerKey), are left to key: a list too
// large for one query (after a whole-job merge) is keyed once the queries
// have spent about as much reading positions.
size_t DeletedIn(const ResolvedQuery& query, const std::string& order_name,
                 SegmentRun& run, size_t from, size_t to) {
  const DeletedRows* deleted = run.segment->deleted.get();
  if (deleted == nullptr || from >= to) return 0;
  if (!run.deleted_keys_asked && to - from > kShortRange &&
      IsNumericSort(query.sort) && run.segment->deleted_cache != nullptr) {
    run.deleted_keys_asked = true;
    const JobResults& rows = run.rows();
    // (A time order has no cached order's name.)
    run.deleted_keys = run.segment->deleted_cache->KeysInOrder(
        order_name.empty() ? OrderName(query) : order_name, *deleted,
        [&](uint32_t row) {
          return NumericKey(rows, query.sort, query.desc, row);
        },
        kKeyedRowsPerRangeRow * (to - from), to - from);
  }
  if (run.deleted_keys != nullptr) {
    const PageOrderView& view = *run.view;
    // A position's (key, row); past the end, one after every key.
    auto key_at = [&](size_t position) {
      if (position >= view.size()) {
        return std::pair<uint64_t, uint32_t>{UINT64_MAX, UINT32_MAX};
      }
      const uint32_t row = view[position];
      return std::pair<uint64_t, uint32_t>{
          NumericKey(run.rows(), query.sort, query.desc, row), row};
    };
    const auto lo = key_at(from);
    const auto hi = key_at(to);
    size_t count = 0;
    for (const auto& keys : *run.deleted_keys) {
      const auto first = std::lower_bound(keys->begin(), keys->end(), lo);
      count += static_cast<size_t>(
          (to >= view.size() ? keys->end()
                             : std::lower_bound(first, keys->end(), hi)) -
          first);
    }
    return count;
  }
  // A bitmap (built once per list, cached) beats a search of each level
  // per row for all but short ranges.
  if (run.bitmap == nullptr && to - from > kShortRange &&
      run.segment->deleted_cache != nullptr) {
    run.bitmap =
        run.segment->deleted_cache->Bitmap(*deleted, run.rows().size());
  }
  size_t count = 0;
  size_t left = to - from;
  run.view->ForEachFrom(from, [&](uint32_t row) {
    count += IsDeleted(deleted, run.bitmap.get(), row);
    return --left > 0;
  });
  return count;
}

// Below this many rows left to pass, ExecuteSegmentRuns merges instead.
constexpr size_t kMergedPass = 64;

// Advances the runs' `lo` past rows (deleted or not) that are all among the
// next `need` rows of the job's page order after them, and returns how many
// it passed: all but at most kMergedPass of the `need`, unless the runs
// hold fewer. The page order is (value, segment, position): PassInStrides
// over the runs.
size_t PassRows(const ResolvedQuery& query, std::vector<SegmentRun>& runs,
                size_t need) {
  return PassInStrides(
      runs, need, kMergedPass,
      [&](size_t s, size_t position) {
        return RunRowAt(query, runs, s, position);
      },
      [&](const RunRow& a, const RunRow& b) {
        return RunRowBefore(query, runs, a, b);
      });
}

// Deleted rows a merge reads from a run before it asks for the bitmap of
// the run's deleted rows (DeletedRowCache::Bitmap, built once per list):
// a bit test costs a few ns, a search of the list's levels about 20, and
// a page whose order starts with rewritten rows reads many deleted ones.
constexpr size_t kDeletedReadBeforeBitmap = 128;

// Reads the next position of a merge's run (whose reader and positions
// left are `reader` and `left`, at least 1) into `row`; true if that row is
// live.
inline bool ReadRunRow(SegmentRun& run, PageOrderView::Reader& reader,
                       size_t& left, uint32_t& row) {
  --left;
  row = reader.Next();
  const DeletedRows* deleted = run.segment->deleted.get();
  if (!IsDeleted(deleted, run.bitmap.get(), row)) return true;
  if (run.bitmap == nullptr &&
      ++run.deleted_read == kDeletedReadBeforeBitmap &&
      run.segment->deleted_cache != nullptr) {
    run.bitmap = run.segment->deleted_cache->Bitmap(*deleted, run.rows().size());
  }
  return false;
}

// Reads run s of a merge on over its next positions (at most `cap`) that
// come before `front`, the least next row of the other runs, and calls
// take(s, row) for the live ones: found by a galloping search (LongestFit),
// so a long block costs O(log block) comparisons, not one a row. `reader`
// and `left` are the run's reader and the positions it has left. Out of
// line: inlined, it made the merge's per-row loop slower.
template <typename Take>
ABSL_ATTRIBUTE_NOINLINE void TakeBlock(const ResolvedQuery& query,
                                       std::vector<SegmentRun>& runs,
                                       size_t s, const RunRow& front,
                                       size_t cap,
                                       PageOrderView::Reader& reader,
                                       size_t& left, Take& take) {
  const size_t first = runs[s].last - left;
  const size_t block = LongestFit(0, cap, [&](size_t count) {
    return RunRowBefore(query, runs, RunRowAt(query, runs, s, first + count - 1),
                        front);
  });
  uint32_t row;
  for (size_t i = 0; i < block; ++i) {
    if (ReadRunRow(runs[s], reader, left, row)) take(s, row);
  }
}

// A job of segments whose matches are one run of each segment's page order
// (see MatchesAsRun): the rows before `from` are
// passed over in strides (PassRows) instead of being merged, and
// the page is merged from each run's next live rows, read one at a time
// as the merge takes them. Null when the query does not qualify; under
// IndexUse::kAuto, only with the segments' orders already built.
std::optional<InfluencersPage> ExecuteSegmentRuns(const ResolvedQuery& query,
                                                  IndexUse index_use) {
  const JobResults& job = *query.job;
  if (index_use == IndexUse::kNever || !MatchesCanBeRun(query)) {
    return std::nullopt;
  }
  // The sort's cache key, the same in every segment (built once: a
  // string per segment would cost as much as a small segment's page).
  const std::string order_name =
      query.sort == SortField::kTimestamp ? std::string() : OrderName(query);
  // Per segment, only what differs: its cached order, its run and its
  // deleted matches. A short page over many small segments costs little
  // more than these lookups. Under kAuto the orders come from the job's
  // cache under one lock once a query found them all (SegmentOrders);
  // that query looks each up under its segment's lock.
  const bool by_time = query.sort == SortField::kTimestamp;
  const RowPredicate predicate = PredicateOf(query);
  std::vector<SegmentRun> runs(job.segments.size());
  // The segments' orders (or time orders): recorded in the job's cache, or
  // looked up (or built) one by one.
  std::shared_ptr<const SortOrderCache::SegmentOrders> known;
  if (index_use == IndexUse::kAuto) {
    std::lock_guard<std::mutex> lock(job.sort_orders->mu);
    auto it = job.sort_orders->segment_orders.find(order_name);
    if (it != job.sort_orders->segment_orders.end()) known = it->second;
  }
  if (known != nullptr) {
    bool same = known->segments.size() == runs.size();
    for (size_t s = 0; same && s < runs.size(); ++s) {
      same = known->segments[s] == job.segments[s].rows;
    }
    if (!same) known = nullptr;
  }
  std::vector<std::shared_ptr<const RowOrder>> orders;
  std::vector<std::shared_ptr<const TimeIndex>> times;
  if (known == nullptr && by_time) times.reserve(runs.size());
  if (known == nullptr && !by_time) orders.reserve(runs.size());
  InfluencersPage out;
  for (size_t s = 0; s < runs.size(); ++s) {
    SegmentRun& run = runs[s];
    run.segment = &job.segments[s];
    const JobResults& rows = *run.segment->rows;
    SortOrderCache& cache = *rows.sort_orders;
    if (by_time) {
      if (known == nullptr) {
        std::shared_ptr<const TimeIndex> time;
        if (index_use == IndexUse::kAuto) {
          time = CachedTimeIndex(rows);
        } else {
          ResolvedQuery sub = query;
          sub.job = run.segment->rows;
          time = TimeIndexOf(sub);
        }
        if (time == nullptr) return std::nullopt;
        times.push_back(std::move(time));
      }
      run.view.emplace(known != nullptr ? *known->times[s] : *times[s], rows,
                       query.desc);
    } else {
      if (known == nullptr) {
        std::shared_ptr<const RowOrder> order;
        if (index_use == IndexUse::kAuto) {
          std::lock_guard<std::mutex> lock(cache.mu);
          auto it = cache.orders.find(order_name);
          if (it != cache.orders.end()) order = it->second;
        } else {
          ResolvedQuery sub = query;
          sub.job = run.segment->rows;
          order = PageOrder(sub, index_use);
        }
        if (order == nullptr) return std::nullopt;
        orders.push_back(std::move(order));
      }
      run.view.emplace(known != nullptr ? *known->orders[s] : *orders[s]);
    }
    std::optional<OrderRun> matches = MatchesAsRun(query, rows, *run.view);
    if (!matches) return std::nullopt;
    run.first = run.lo = matches->first;
    run.last = matches->last;
    out.count += static_cast<int64_t>(run.last - run.first) -
                 DeletedMatches(*run.segment, RowFilter(predicate, rows));
  }
  if (known == nullptr && index_use == IndexUse::kAuto) {
    // Every segment's order was found: recorded for the queries after.
    auto found = std::make_shared<SortOrderCache::SegmentOrders>();
    found->segments.reserve(runs.size());
    for (const JobResults::Segment& segment : job.segments) {
      found->segments.push_back(segment.rows);
    }
    found->orders = orders;
    found->times = times;
    std::lock_guard<std::mutex> lock(job.sort_orders->mu);
    job.sort_orders->segment_orders.insert_or_assign(order_name,
                                                     std::move(found));
  }
  if (query.size <= 0) return out;  // the count alone
  // Pass live rows: each round passes rows among the next `to_pass`, so at
  // most `to_pass` live ones; the deleted rows among them are made up for
  // next round.
  size_t to_pass = static_cast<size_t>(query.from);
  while (to_pass > kMergedPass) {
    std::vector<size_t> before(runs.size());
    for (size_t s = 0; s < runs.size(); ++s) before[s] = runs[s].lo;
    const size_t passed = PassRows(query, runs, to_pass);
    if (passed == 0) break;
    size_t deleted = 0;
    for (size_t s = 0; s < runs.size(); ++s) {
      deleted += DeletedIn(query, order_name, runs[s], before[s], runs[s].lo);
    }
    to_pass -= passed - deleted;
  }
  // Merge the rest: a heap of the runs by their next live row (page order,
  // then run), each read on as the merge takes its row.
  struct Head {
    std::optional<PageOrderView::Reader> reader;
    size_t left = 0;  // positions of the run not read yet
    RunRow next;      // the run's next live row
  };
  std::vector<Head> heads(runs.size());
  // Reads run s on to its next live row; false if it has none.
  auto advance = [&](size_t s) {
    Head& head = heads[s];
    uint32_t row;
    while (head.left > 0) {
      if (!ReadRunRow(runs[s], *head.reader, head.left, row)) continue;
      head.next = MakeRunRow(query, runs, s, row);
      return true;
    }
    return false;
  };
  // The heap holds the rows themselves (no indirection per comparison).
  auto after = [&](const RunRow& a, const RunRow& b) {
    return RunRowBefore(query, runs, b, a);
  };
  std::vector<RunRow> heap;
  heap.reserve(runs.size());
  for (size_t s = 0; s < runs.size(); ++s) {
    heads[s].left = runs[s].last - runs[s].lo;
    if (heads[s].left == 0) continue;
    heads[s].reader.emplace(*runs[s].view, runs[s].lo);
    if (advance(s)) heap.push_back(heads[s].next);
  }
  std::make_heap(heap.begin(), heap.end(), after);
  const size_t limit = to_pass + static_cast<size_t>(query.size);
  out.influencers.reserve(static_cast<size_t>(query.size));
  size_t taken = 0;
  auto take = [&](size_t s, uint32_t row) {
    if (taken++ >= to_pass) {
      out.influencers.push_back(ViewOf(runs[s].rows(), row));
    }
  };
  // The row taken next, out of the heap: while its run's next row still
  // comes before the heap's first, that row is taken next with one
  // comparison (a page mostly comes from one segment, the base). Once a
  // run has led kLeadsBeforeBlock rows in a row, its next positions that
  // come before the heap's first are found by a galloping search
  // (LongestFit) and taken without comparisons: a page of the base's rows
  // costs O(log page) comparisons, not one a row.
  constexpr size_t kLeadsBeforeBlock = 4;
  if (heap.empty()) return out;
  std::pop_heap(heap.begin(), heap.end(), after);
  RunRow leader = heap.back();
  heap.pop_back();
  size_t leads = 0;  // rows in a row taken from the leader's run
  while (true) {
    const size_t s = leader.run;
    take(s, leader.row);
    if (taken == limit) break;
    Head& head = heads[s];
    if (++leads >= kLeadsBeforeBlock && !heap.empty() &&
        head.left > 0) {
      TakeBlock(query, runs, s, heap.front(),
                std::min(head.left, limit - taken), *head.reader, head.left,
                take);
      if (taken == limit) break;
      leads = 0;
    }
    if (advance(s)) {
      if (heap.empty() || !after(head.next, heap.front())) {
        leader = head.next;
        continue;
      }
      heap.push_back(head.next);
      std::push_heap(heap.begin(), heap.end(), after);
    } else if (heap.empty()) {
      break;
    }
    std::pop_heap(heap.begin(), heap.end(), after);
    leader = heap.back();
    heap.pop_back();
    leads = 0;
  }
  if (!out.influencers.empty()) out.job = query.job;
  return out;
}

// ExecuteRows(query with size 0).count: the number of `query`'s matches in
// its job (one segment, deleted rows included). A window or score threshold
// is counted by the job's TimeIndex when it is built, without the sort's
// page order (a threshold looks up the score order).
int64_t CountRows(const ResolvedQuery& query, IndexUse index_use) {
  const bool window = query.start.has_value() || query.end.has_value();
  if ((window || query.min_score.has_value()) &&
      index_use != IndexUse::kNever) {
    if (std::shared_ptr<const TimeIndex> index = CachedTimeIndex(*query.job)) {
      return CountWithIndex(query, *index).count;
    }
  }
  ResolvedQuery count_query = query;
  count_query.from = 0;
  count_query.size = 0;
  return ExecuteRows(count_query, index_use).count;
}

// The least NumericKey of `rows`' rows for a numeric sort: no row of
// them, deleted or not, matching or not, places before it. UINT64_MAX
// for no rows. Computed once per segment and sort (one pass over a
// column, on the query that first needs it), then cached.
uint64_t BestKey(const JobResults& rows, SortField sort, bool desc) {
  SortOrderCache& cache = *rows.sort_orders;
  const int slot = 2 * static_cast<int>(sort) + (desc ? 1 : 0);
  {
    std::lock_guard<std::mutex> lock(cache.mu);
    auto it = cache.best_keys.find(slot);
    if (it != cache.best_keys.end()) return it->second;
  }
  const uint32_t n = static_cast<uint32_t>(rows.size());
  auto least = [n](auto key_of) {
    uint64_t best = std::numeric_limits<uint64_t>::max();
    for (uint32_t row = 0; row < n; ++row) best = std::min(best, key_of(row));
    return best;
  };
  const InfluencerColumns& c = rows.columns;
  const uint64_t flip = desc ? ~uint64_t{0} : 0;
  auto of_double = [&](const auto& column) {
    return least([&](uint32_t row) { return DoubleOrderKey(column[row], flip); });
  };
  uint64_t best;
  switch (sort) {
    case SortField::kInfluencerScore:
      best = of_double(c.influencer_score);
      break;
    case SortField::kInitialInfluencerScore:
      best = of_double(c.initial_influencer_score);
      break;
    case SortField::kProbability:
      best = of_double(c.probability);
      break;
    default:
      best = least(
          [&](uint32_t row) { return NumericKey(rows, sort, desc, row); });
      break;
  }
  std::lock_guard<std::mutex> lock(cache.mu);
  return cache.best_keys.try_emplace(slot, best).first->second;
}

// A job of segments: each segment's first from + size live matches (its
// page without its deleted rows), merged in page order; ties go to the
// earlier segment, whose rows were ingested first. The count is every
// segment's count less its deleted matches. Queries whose matches are runs
// of the segments' orders take ExecuteSegmentRuns instead.
//
// Under a numeric sort the segments' pages are merged, as they are paged,
// into the best from + size live matches seen (`best_rows`), which also
// decides which segments need paging; the page is best_rows[from, end).
// Other sorts merge the segments' pages at the end (MergeParts).
InfluencersPage ExecuteSegments(const ResolvedQuery& query,
                                IndexUse index_use) {
  if (std::optional<InfluencersPage> page =
          ExecuteSegmentRuns(query, index_use)) {
    return *std::move(page);
  }
  const JobResults& job = *query.job;
  const size_t limit = static_cast<size_t>(query.from + query.size);
  const size_t segments = job.segments.size();
  // Under a numeric sort the page order is (key, segment, row). The
  // segments are visited best first, by the least key any of their rows
  // has, and the page's last row so far (the limit-th best live match
  // seen) is kept: a segment that cannot place before it gives only its
  // count. With fresh writes scoring above older rows, the page comes
  // from a delta or two and the base is counted, not paged.
  const bool numeric = IsNumericSort(query.sort);
  std::vector<size_t> visit(segments);
  std::vector<uint64_t> best(segments, 0);
  for (size_t s = 0; s < segments; ++s) visit[s] = s;
  if (numeric && limit > 0 && segments > 1) {
    for (size_t s = 0; s < segments; ++s) {
      best[s] = BestKey(*job.segments[s].rows, query.sort, query.desc);
    }
    // (A stable_sort would allocate its buffer on every query.)
    std::sort(visit.begin(), visit.end(), [&](size_t a, size_t b) {
      return best[a] != best[b] ? best[a] < best[b] : a < b;
    });
  }
  // A live match's place in the page order of a numeric sort: (key,
  // segment, row), as one 128-bit integer (a tuple of them made each
  // comparison wait on a store-to-load forward).
  using Placed = unsigned __int128;
  auto place = [](uint64_t key, size_t s, uint32_t row) {
    return static_cast<Placed>(key) << 64 | static_cast<Placed>(s) << 32 | row;
  };
  const bool sorted_merge =
      numeric && segments > 1 && segments <= UINT32_MAX;  // (place's bits)
  // The best `limit` live matches of the segments paged so far, sorted.
  std::vector<Placed> best_rows;
  std::vector<Placed> incoming;  // a segment's rows that may enter it
  std::vector<Placed> merged;    // best_rows' tail merged with them
  if (sorted_merge) best_rows.reserve(std::min<size_t>(limit, 1 << 16));
  std::vector<Part> parts(sorted_merge ? 0 : segments);  // MergeParts'
  InfluencersPage out;
  for (size_t s : visit) {
    const JobResults::Segment& segment = job.segments[s];
    ResolvedQuery sub = query;
    sub.job = segment.rows;
    sub.from = 0;
    const DeletedRows* deleted = segment.deleted.get();
    DeletedRowCache* cache = segment.deleted_cache.get();
    const int64_t deleted_matches = DeletedMatches(segment, RowFilter(sub));
    if (sorted_merge && limit > 0 && best_rows.size() == limit &&
        place(best[s], s, 0) > best_rows.back()) {
      out.count += CountRows(sub, index_use) - deleted_matches;
      continue;
    }
    // Ask for `limit` rows and, for a segment with deleted rows, twice as
    // many more as its share of deleted rows predicts, plus limit / 16: another
    // round repeats the segment's scan or walk. Ask again for more while
    // deleted rows among them leave fewer than `limit` live ones and the
    // segment has more.
    Part part{segment.rows.get(), {}, {}};
    int64_t ask = static_cast<int64_t>(limit);
    if (deleted != nullptr && deleted->size() > 0 &&
        segment.rows->columns.size() > 0) {
      const double share = static_cast<double>(deleted->size()) /
                           static_cast<double>(segment.rows->columns.size());
      ask += static_cast<int64_t>(2 * share * static_cast<double>(limit)) +
             static_cast<int64_t>(limit / 16);
    }
    int64_t segment_count = 0;
    for (;;) {
      sub.size = ask;
      RowPage page = ExecuteRows(sub, index_use);
      segment_count = page.count;
      size_t kept = 0;
      int64_t dropped = 0;
      if (deleted == nullptr) {
        kept = std::min(page.rows.size(), limit);
      } else {
        // A deep page looks up many rows: a bitmap of the deleted rows
        // (built once per list) beats a binary search per row.
        std::shared_ptr<const std::vector<uint64_t>> bitmap;
        if (cache != nullptr && page.rows.size() > 4096) {
          bitmap = cache->Bitmap(*deleted, segment.rows->size());
        }
        for (uint32_t row : page.rows) {
          if (kept == limit) break;
          if (IsDeleted(deleted, bitmap.get(), row)) {
            ++dropped;
            continue;
          }
          page.rows[kept++] = row;
        }
      }
      page.rows.resize(kept);
      part.page = std::move(page.rows);
      if (kept == limit || page.count <= ask) break;
      ask = std::max(2 * ask, static_cast<int64_t>(limit) + 2 * dropped);
    }
    out.count += segment_count - deleted_matches;
    if (sorted_merge) {
      // The page is in page order, (key, row): once a row does not beat
      // the worst of full best_rows, none after it does.
      incoming.clear();
      if (limit == 0) continue;  // (best_rows.back() needs a row)
      for (uint32_t row : part.page) {
        const Placed placed = place(
            NumericKey(*segment.rows, query.sort, query.desc, row), s, row);
        if (best_rows.size() == limit && !(placed < best_rows.back())) break;
        incoming.push_back(placed);
      }
      if (incoming.empty()) continue;
      // Rows of best_rows before the first incoming one keep their places;
      // the rest merge with the incoming rows, up to `limit` in all.
      const size_t kept = static_cast<size_t>(
          std::upper_bound(best_rows.begin(), best_rows.end(),
                           incoming.front()) -
          best_rows.begin());
      merged.clear();
      size_t i = kept;
      size_t j = 0;
      while (merged.size() < limit - kept &&
             (i < best_rows.size() || j < incoming.size())) {
        const bool old_first = j == incoming.size() ||
                               (i < best_rows.size() && best_rows[i] < incoming[j]);
        merged.push_back(old_first ? best_rows[i++] : incoming[j++]);
      }
      best_rows.resize(kept);
      best_rows.insert(best_rows.end(), merged.begin(), merged.end());
      continue;
    }
    parts[s] = std::move(part);
  }
  const size_t from = static_cast<size_t>(query.from);
  if (!sorted_merge) {
    MergeParts(query, parts, from, limit, &out);
  } else if (best_rows.size() > from) {
    out.influencers.reserve(best_rows.size() - from);
    for (size_t i = from; i < best_rows.size(); ++i) {
      const uint32_t row = static_cast<uint32_t>(best_rows[i]);
      const size_t s = static_cast<size_t>(best_rows[i] >> 32) & 0xffffffffu;
      out.influencers.push_back(ViewOf(*job.segments[s].rows, row));
    }
  }
  if (!out.influencers.empty()) out.job = query.job;
  return out;
}

ResolvedQuery ScoreQuery(const std::shared_ptr<const JobResults>& rows) {
  ResolvedQuery query;
  query.job = rows;
  query.sort = SortField::kInfluencerScore;
  query.desc = true;
  return query;
}

}  // namespace

std::shared_ptr<const RowOrder> BuiltScoreOrder(
    const std::shared_ptr<const JobResults>& rows) {
  SortOrderCache& cache = *rows->sort_orders;
  const std::string name = OrderName(ScoreQuery(rows));
  std::lock_guard<std::mutex> lock(cache.mu);
  auto it = cache.orders.find(name);
  if (it != cache.orders.end()) return it->second;
  return cache.stored_score_order;
}

void OfferScoreOrder(const std::shared_ptr<const JobResults>& rows,
                     std::shared_ptr<const RowOrder> order) {
  if (!rows->segments.empty() || order == nullptr ||
      order->size() != rows->size()) {
    return;
  }
  SortOrderCache& cache = *rows->sort_orders;
  std::lock_guard<std::mutex> lock(cache.mu);
  cache.stored_score_order = std::move(order);
}

bool IsScoreOrder(const std::shared_ptr<const JobResults>& rows,
                  const RowOrder& order) {
  if (!rows->segments.empty()) return false;
  const size_t n = rows->size();
  if (order.size() != n) return false;
  const RowKeys keys(ScoreQuery(rows));
  const double* score = rows->columns.influencer_score.data();
  std::vector<uint64_t> seen((n + 63) / 64, 0);
  uint64_t last_key = 0;
  // The scores are read in the order's order, at random: prefetched a few
  // dozen rows ahead, so that the misses overlap.
  constexpr size_t kAhead = 32;
  for (size_t i = 0; i < n; ++i) {
    if (i + kAhead < n && order[i + kAhead] < n) {
      __builtin_prefetch(score + order[i + kAhead]);
    }
    const uint32_t row = order[i];
    if (row >= n || (seen[row / 64] >> (row % 64) & 1) != 0) return false;
    seen[row / 64] |= uint64_t{1} << (row % 64);
    const uint64_t key = keys(row);
    if (i > 0 && (key < last_key || (key == last_key && row < order[i - 1]))) {
      return false;
    }
    last_key = key;
  }
  return true;
}

InfluencersPage ExecuteQuery(const ResolvedQuery& query, IndexUse index_use) {
  if (!query.job->segments.empty()) return ExecuteSegments(query, index_use);
  RowPage rows = ExecuteRows(query, index_use);
  InfluencersPage page;
  page.count = rows.count;
  page.influencers.reserve(rows.rows.size());
  for (uint32_t row : rows.rows) {
    page.influencers.push_back(ViewOf(*query.job, row));
  }
  if (!page.influencers.empty()) page.job = query.job;
  return page;
}

void ForEachMatchInIngestOrder(
    const ResolvedQuery& query,
    absl::FunctionRef<void(size_t segment, uint32_t row)> on_match) {
  auto scan = [&](const ResolvedQuery& sub, size_t segment,
                  const DeletedRows* deleted) {
    DeletedRows::Cursor cursor(deleted);  // rows come in ascending order
    ForEachMatch(
        sub, 0, sub.job->columns.size(),
        [](size_t i) { return static_cast<uint32_t>(i); },
        [&](uint32_t row) {
          if (!cursor.Contains(row)) on_match(segment, row);
        });
  };
  if (query.job->segments.empty()) {
    scan(query, 0, nullptr);
    return;
  }
  for (size_t s = 0; s < query.job->segments.size(); ++s) {
    const JobResults::Segment& segment = query.job->segments[s];
    ResolvedQuery sub = query;
    sub.job = segment.rows;
    scan(sub, s, segment.deleted.get());
  }
}

void WarmIndexes(const std::shared_ptr<const JobResults>& job) {
  for (const JobResults::Segment& segment : job->segments) {
    WarmIndexes(segment.rows);
  }
  if (!job->segments.empty()) return;
  ResolvedQuery query;
  query.job = job;
  TimeIndexOf(query);
}

void WarmIndexes(const StoreVersion& snapshot, int threads) {
  std::vector<std::shared_ptr<const JobResults>> jobs;
  for (const auto& [id, job] : snapshot.jobs) jobs.push_back(job);
  std::atomic<size_t> next{0};
  auto work = [&]() {
    for (size_t i; (i = next.fetch_add(1)) < jobs.size();) WarmIndexes(jobs[i]);
  };
  std::vector<std::thread> pool;
  const size_t workers =
      std::min(jobs.size(), static_cast<size_t>(std::max(threads, 1)));
  for (size_t w = 1; w < workers; ++w) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
}

void ForEachRowAt(const std::shared_ptr<const JobResults>& job,
                  int64_t timestamp,
                  const std::function<void(uint32_t)>& on_row) {
  if (job->time_ordered) {
    const Column<int64_t>& ts = job->columns.timestamp;
    auto [first, last] = std::equal_range(ts.begin(), ts.end(), timestamp);
    for (auto it = first; it != last; ++it) {
      on_row(static_cast<uint32_t>(it - ts.begin()));
    }
    return;
  }
  ResolvedQuery query;
  query.job = job;
  std::shared_ptr<const TimeIndex> time = TimeIndexOf(query);
  const std::optional<int64_t> end =
      timestamp == INT64_MAX ? std::nullopt
                             : std::optional<int64_t>(timestamp + 1);
  auto [first, last] = time->Window(*job, timestamp, end);
  std::vector<uint32_t> rows;
  for (size_t position = first; position < last; ++position) {
    rows.push_back(time->RowAt(position));
  }
  std::sort(rows.begin(), rows.end());
  for (uint32_t row : rows) on_row(row);
}

IndexMemory IndexMemoryOf(const JobResults& job) {
  IndexMemory memory;
  if (!job.segments.empty()) {
    for (const JobResults::Segment& segment : job.segments) {
      const IndexMemory part = IndexMemoryOf(*segment.rows);
      memory.warm += part.warm;
      memory.identity += part.identity;
      memory.other_orders += part.other_orders;
      if (segment.deleted != nullptr) memory.deleted += segment.deleted->bytes();
      if (segment.deleted_cache != nullptr) {
        memory.deleted += segment.deleted_cache->bytes();
      }
    }
    // The job's record of its segments' orders (SegmentOrders): pointers
    // only, a few per segment and sort.
    std::lock_guard<std::mutex> lock(job.sort_orders->mu);
    for (const auto& [name, record] : job.sort_orders->segment_orders) {
      memory.other_orders +=
          sizeof(*record) +
          (record->segments.capacity() + record->orders.capacity() +
           record->times.capacity()) *
              sizeof(std::shared_ptr<const void>);
    }
    return memory;
  }
  ResolvedQuery score_query;
  score_query.sort = SortField::kInfluencerScore;
  score_query.desc = true;
  const std::string score_order = OrderName(score_query);
  SortOrderCache& cache = *job.sort_orders;
  std::lock_guard<std::mutex> lock(cache.mu);
  if (cache.time_index) memory.warm += cache.time_index->bytes();
  if (cache.identity_index) memory.identity += cache.identity_index->bytes();
  if (cache.identity_filter) memory.identity += cache.identity_filter->bytes();
  if (cache.string_ranks) {
    memory.other_orders += cache.string_ranks->capacity() * sizeof(uint32_t);
  }
  for (const auto& [name, order] : cache.orders) {
    (name == score_order ? memory.warm : memory.other_orders) +=
        order->capacity() * sizeof(uint32_t);
  }
  return memory;
}

size_t IndexBytes(const JobResults& job) { return IndexMemoryOf(job).total(); }

}  // namespace clout
