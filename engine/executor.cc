#include "engine/executor.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/dates.h"
#include "engine/error.h"

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

absl::StatusOr<ResolvedQuery> ResolveQuery(const StoreSnapshot& snapshot,
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
                          std::optional<int64_t>* out) -> absl::Status {
    if (!text.has_value()) return absl::OkStatus();
    int64_t now_value =
        text->find("now") != std::string::npos ? now_millis() : 0;
    absl::StatusOr<int64_t> millis = ParseDateParam(*text, now_value);
    if (!millis.ok()) return millis.status();
    *out = *millis;
    return absl::OkStatus();
  };
  if (absl::Status s = resolve_date(request.start, &query.start); !s.ok()) {
    return s;
  }
  if (absl::Status s = resolve_date(request.end, &query.end); !s.ok()) {
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

  int64_t window = request.from + request.size;
  if (window > context.max_result_window) {
    return SearchPhaseError(
        "illegal_argument_exception",
        absl::StrCat("Result window is too large, from + size must be less "
                     "than or equal to: [",
                     context.max_result_window, "] but was [", window, "]"));
  }

  if (request.influencer_score > 0) query.min_score = request.influencer_score;
  query.exclude_interim = request.exclude_interim;
  query.desc = request.desc;
  query.from = request.from;
  query.size = request.size;
  return query;
}

namespace {

// Maps a double to an unsigned key whose order is Java's Double.compare
// order (-0.0 before 0.0), as Lucene sorts doubles.
inline uint64_t OrderKey(double value) {
  uint64_t bits = std::bit_cast<uint64_t>(value);
  return (bits >> 63) ? ~bits : (bits | (uint64_t{1} << 63));
}

inline uint64_t OrderKey(int64_t value) {
  return static_cast<uint64_t>(value) ^ (uint64_t{1} << 63);
}

// A match waiting to be ordered: ascending (key, row) is the page order.
struct KeyedRow {
  uint64_t key;
  uint32_t row;
  friend bool operator<(const KeyedRow& a, const KeyedRow& b) {
    return a.key != b.key ? a.key < b.key : a.row < b.row;
  }
};

// Calls on_match(row) for every row that passes the query's filters, in
// ingest order.
template <typename OnMatch>
void ForEachMatch(const ResolvedQuery& query, OnMatch on_match) {
  const InfluencerColumns& c = query.job->columns;
  const size_t n = c.size();
  const int64_t start = query.start.value_or(INT64_MIN);
  const bool has_end = query.end.has_value();
  const int64_t end = query.end.value_or(INT64_MAX);
  const bool has_score = query.min_score.has_value();
  const double min_score = query.min_score.value_or(0.0);
  const bool exclude_interim = query.exclude_interim;
  for (size_t row = 0; row < n; ++row) {
    const int64_t ts = c.timestamp[row];
    if (ts < start || (has_end && ts >= end)) continue;
    if (has_score && !(c.influencer_score[row] >= min_score)) continue;
    if (exclude_interim && c.is_interim[row]) continue;
    on_match(static_cast<uint32_t>(row));
  }
}

// Leaves the first min(limit, v.size()) elements of `v` sorted by `less`;
// the rest in unspecified order. O(n + limit log limit).
template <typename T, typename Less>
void PartialSortPrefix(std::vector<T>& v, size_t limit, Less less) {
  if (limit == 0) return;
  if (limit < v.size()) {
    std::nth_element(v.begin(), v.begin() + limit, v.end(), less);
    v.resize(limit);
  }
  std::sort(v.begin(), v.end(), less);
}

// The numeric sort key of `row`, oriented so ascending key = page order.
uint64_t NumericKey(const JobResults& job, SortField sort, bool desc,
                    uint32_t row) {
  const InfluencerColumns& c = job.columns;
  uint64_t key = 0;
  switch (sort) {
    case SortField::kInfluencerScore:
      key = OrderKey(c.influencer_score[row]);
      break;
    case SortField::kInitialInfluencerScore:
      key = OrderKey(c.initial_influencer_score[row]);
      break;
    case SortField::kProbability:
      key = OrderKey(c.probability[row]);
      break;
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
  return desc ? ~key : key;
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
  view.influencer_score = c.influencer_score[row];
  view.initial_influencer_score = c.initial_influencer_score[row];
  view.probability = c.probability[row];
  view.bucket_span = job.bucket_span(row);
  view.is_interim = c.is_interim[row] != 0;
  view.timestamp = c.timestamp[row];
  return view;
}

}  // namespace

namespace {

// The sort key of every row, oriented so that ascending (key, row) is the
// page order; strings become their rank in the job's dictionary, and rows
// without a value (per-influencer fields) get the largest key.
std::vector<KeyedRow> PageOrderKeys(const ResolvedQuery& query) {
  const JobResults& job = *query.job;
  const size_t n = job.size();
  std::vector<KeyedRow> keyed(n);
  if (IsNumericSort(query.sort)) {
    for (size_t r = 0; r < n; ++r) {
      keyed[r] = {NumericKey(job, query.sort, query.desc,
                             static_cast<uint32_t>(r)),
                  static_cast<uint32_t>(r)};
    }
    return keyed;
  }
  std::vector<uint32_t> by_string(job.strings.size());
  for (size_t c = 0; c < by_string.size(); ++c) {
    by_string[c] = static_cast<uint32_t>(c);
  }
  std::sort(by_string.begin(), by_string.end(), [&](uint32_t a, uint32_t b) {
    return job.strings[a] < job.strings[b];
  });
  // Equal strings cannot occur (a dictionary), so ranks are distinct.
  std::vector<uint64_t> rank(job.strings.size());
  for (size_t i = 0; i < by_string.size(); ++i) rank[by_string[i]] = i;
  const Column<uint32_t>& codes = query.sort == SortField::kInfluencerFieldName
                                      ? job.columns.field_name_code
                                      : job.columns.field_value_code;
  const int64_t field_code = query.sort == SortField::kInfluencerField
                                 ? job.CodeOf(query.sort_field_name)
                                 : -1;
  for (size_t r = 0; r < n; ++r) {
    uint64_t key;
    if (query.sort == SortField::kInfluencerField &&
        job.columns.field_name_code[r] != field_code) {
      key = UINT64_MAX;  // missing: last in both directions
    } else {
      key = query.desc ? (uint64_t{1} << 62) - rank[codes[r]] : rank[codes[r]];
    }
    keyed[r] = {key, static_cast<uint32_t>(r)};
  }
  return keyed;
}

std::string OrderName(const ResolvedQuery& query) {
  return absl::StrCat(static_cast<int>(query.sort), ":", query.sort_field_name,
                      ":", query.desc ? "desc" : "asc");
}

// The cached page order of `query`'s sort, building it if `index_use`
// allows; null if the query should scan instead.
std::shared_ptr<const std::vector<uint32_t>> PageOrder(
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
  // the first stored wins.
  std::vector<KeyedRow> keyed = PageOrderKeys(query);
  std::sort(keyed.begin(), keyed.end());
  auto order = std::make_shared<std::vector<uint32_t>>(keyed.size());
  for (size_t i = 0; i < keyed.size(); ++i) (*order)[i] = keyed[i].row;
  std::lock_guard<std::mutex> lock(cache.mu);
  return cache.orders.try_emplace(name, std::move(order)).first->second;
}

// The query's count without a scan, where the filters allow it.
std::optional<int64_t> CountWithoutScan(const ResolvedQuery& query,
                                        const std::vector<uint32_t>& order) {
  const JobResults& job = *query.job;
  const bool window = query.start.has_value() || query.end.has_value();
  const bool score = query.min_score.has_value();
  if (!window && !score) {
    return static_cast<int64_t>(job.size() -
                                (query.exclude_interim ? job.interim_rows : 0));
  }
  if (query.exclude_interim) return std::nullopt;
  const InfluencerColumns& c = job.columns;
  if (score && !window && query.sort == SortField::kInfluencerScore) {
    // The rows with score >= t are a prefix (desc) or suffix (asc).
    const double t = *query.min_score;
    auto below = [&](uint32_t r) { return c.influencer_score[r] < t; };
    auto first_below = std::partition_point(
        order.begin(), order.end(), [&](uint32_t r) {
          return query.desc ? !below(r) : below(r);
        });
    size_t prefix = static_cast<size_t>(first_below - order.begin());
    return static_cast<int64_t>(query.desc ? prefix : order.size() - prefix);
  }
  if (window && !score && query.sort == SortField::kTimestamp) {
    const int64_t lo = query.start.value_or(INT64_MIN);
    const int64_t hi = query.end.value_or(INT64_MAX);
    if (lo >= hi) return 0;
    // Rows in [lo, hi) are contiguous in timestamp order.
    auto ts = [&](uint32_t r) { return c.timestamp[r]; };
    auto begin = std::partition_point(order.begin(), order.end(), [&](uint32_t r) {
      return query.desc ? ts(r) >= hi : ts(r) < lo;
    });
    auto end = std::partition_point(begin, order.end(), [&](uint32_t r) {
      return query.desc ? ts(r) >= lo : ts(r) < hi;
    });
    return static_cast<int64_t>(end - begin);
  }
  return std::nullopt;
}

bool Matches(const ResolvedQuery& query, uint32_t row) {
  const InfluencerColumns& c = query.job->columns;
  const int64_t ts = c.timestamp[row];
  if (query.start.has_value() && ts < *query.start) return false;
  if (query.end.has_value() && ts >= *query.end) return false;
  if (query.min_score.has_value() &&
      !(c.influencer_score[row] >= *query.min_score)) {
    return false;
  }
  return !(query.exclude_interim && c.is_interim[row]);
}

InfluencersPage ExecuteWithOrder(const ResolvedQuery& query,
                                 const std::vector<uint32_t>& order) {
  InfluencersPage page;
  const JobResults& job = *query.job;
  std::optional<int64_t> count = CountWithoutScan(query, order);
  const int64_t limit = query.from + query.size;
  int64_t seen = 0;
  if (query.size > 0 && (!count.has_value() || query.from < *count)) {
    for (uint32_t row : order) {
      if (!Matches(query, row)) continue;
      if (seen >= query.from) page.influencers.push_back(ViewOf(job, row));
      if (++seen == limit) break;
    }
  }
  if (count.has_value()) {
    page.count = *count;
  } else {
    int64_t matches = 0;
    ForEachMatch(query, [&](uint32_t) { ++matches; });
    page.count = matches;
  }
  if (!page.influencers.empty()) page.job = query.job;
  return page;
}

}  // namespace

InfluencersPage ExecuteQuery(const ResolvedQuery& query, IndexUse index_use) {
  if (std::shared_ptr<const std::vector<uint32_t>> order =
          PageOrder(query, index_use)) {
    return ExecuteWithOrder(query, *order);
  }
  InfluencersPage page;
  const JobResults& job = *query.job;
  const size_t limit = static_cast<size_t>(query.from + query.size);
  std::vector<uint32_t> rows;  // the page's rows, from offset 0

  if (IsNumericSort(query.sort)) {
    std::vector<KeyedRow> matches;
    ForEachMatch(query, [&](uint32_t row) {
      matches.push_back({NumericKey(job, query.sort, query.desc, row), row});
    });
    page.count = static_cast<int64_t>(matches.size());
    if (query.size > 0 && static_cast<size_t>(query.from) < matches.size()) {
      PartialSortPrefix(matches, limit, std::less<KeyedRow>());
      for (const KeyedRow& m : matches) rows.push_back(m.row);
    }
  } else {
    std::vector<uint32_t> matches;
    ForEachMatch(query, [&](uint32_t row) { matches.push_back(row); });
    page.count = static_cast<int64_t>(matches.size());
    if (query.size > 0 && static_cast<size_t>(query.from) < matches.size()) {
      const Column<uint32_t>& codes =
          query.sort == SortField::kInfluencerFieldName
              ? job.columns.field_name_code
              : job.columns.field_value_code;
      // For a per-influencer field, rows of other fields have no value.
      const int64_t field_code = query.sort == SortField::kInfluencerField
                                     ? job.CodeOf(query.sort_field_name)
                                     : -1;
      const bool check_missing = query.sort == SortField::kInfluencerField;
      const bool desc = query.desc;
      auto before = [&](uint32_t a, uint32_t b) {
        if (check_missing) {
          bool a_missing = job.columns.field_name_code[a] != field_code;
          bool b_missing = job.columns.field_name_code[b] != field_code;
          if (a_missing != b_missing) return b_missing;
          if (a_missing) return a < b;
        }
        uint32_t code_a = codes[a];
        uint32_t code_b = codes[b];
        if (code_a != code_b) {
          int cmp = job.strings[code_a].compare(job.strings[code_b]);
          if (cmp != 0) return desc ? cmp > 0 : cmp < 0;
        }
        return a < b;
      };
      PartialSortPrefix(matches, limit, before);
      rows = std::move(matches);
    }
  }

  for (size_t i = static_cast<size_t>(query.from); i < rows.size(); ++i) {
    page.influencers.push_back(ViewOf(job, rows[i]));
  }
  if (!page.influencers.empty()) page.job = query.job;
  return page;
}

}  // namespace clout
