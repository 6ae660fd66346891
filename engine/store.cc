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

IngestBatch::IngestBatch() : arena_(std::make_shared<StringArena>()) {}

IngestBatch::JobRows& IngestBatch::RowsOf(absl::string_view job_id) {
  for (size_t i = 0; i < kRecentJobs && recent_[i].second != nullptr; ++i) {
    if (BytesEqual(job_id, recent_[i].first)) return *recent_[i].second;
  }
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) {
    it = jobs_.emplace(std::string(job_id), std::make_unique<JobRows>()).first;
    job_order_.push_back(std::string(job_id));
  }
  // Replaces the entries in turn.
  std::pair<std::string, JobRows*>& entry = recent_[recent_next_];
  recent_next_ = (recent_next_ + 1) % kRecentJobs;
  entry.first.assign(job_id.data(), job_id.size());
  entry.second = it->second.get();
  return *entry.second;
}

void IngestBatch::PrefetchFieldValue(const JobRows* rows,
                                     absl::string_view field_value) const {
  rows->string_codes.Prefetch(field_value);
}

void IngestBatch::RegisterJob(absl::string_view job_id) {
  RowsOf(job_id).named = true;
}

uint32_t IngestBatch::Intern(JobRows& rows, absl::string_view s) {
  return rows.string_codes.Intern(
      s, rows.strings, [this](absl::string_view t) { return arena_->Store(t); });
}

void IngestBatch::AddInfluencer(absl::string_view job_id,
                                const InfluencerFields& row) {
  AddInfluencer(&RowsOf(job_id), row);
}

void IngestBatch::AddInfluencer(JobRows* job, const InfluencerFields& row) {
  JobRows& rows = *job;
  rows.named = true;
  InfluencerColumns& c = rows.columns;
  c.timestamp.push_back(row.timestamp);
  c.influencer_score.push_back(row.influencer_score);
  c.initial_influencer_score.push_back(row.initial_influencer_score);
  c.probability.push_back(row.probability);
  uint32_t span_code = 0;
  while (span_code < rows.bucket_spans.size() &&
         rows.bucket_spans[span_code] != row.bucket_span) {
    ++span_code;
  }
  if (span_code == rows.bucket_spans.size()) {
    rows.bucket_spans.push_back(row.bucket_span);
  }
  c.bucket_span_code.push_back(span_code);
  c.is_interim.push_back(row.is_interim ? 1 : 0);
  if (rows.last_name_code == UINT32_MAX || row.field_name != rows.last_name) {
    rows.last_name_code = Intern(rows, row.field_name);
    rows.last_name = rows.strings[rows.last_name_code];
  }
  c.field_name_code.push_back(rows.last_name_code);
  c.field_value_code.push_back(Intern(rows, row.field_value));
  ++influencers_;
}

void IngestBatch::Append(IngestBatch&& other) {
  for (const std::string& job_id : other.job_order_) {
    JobRows& src = *other.jobs_.at(job_id);
    JobRows& dst = RowsOf(job_id);
    dst.named = dst.named || src.named;
    std::vector<uint32_t> string_code(src.strings.size());
    for (size_t i = 0; i < src.strings.size(); ++i) {
      string_code[i] = Intern(dst, src.strings[i]);
    }
    std::vector<uint32_t> span_code(src.bucket_spans.size());
    for (size_t i = 0; i < src.bucket_spans.size(); ++i) {
      auto found = std::find(dst.bucket_spans.begin(), dst.bucket_spans.end(),
                             src.bucket_spans[i]);
      span_code[i] = static_cast<uint32_t>(found - dst.bucket_spans.begin());
      if (found == dst.bucket_spans.end()) {
        dst.bucket_spans.push_back(src.bucket_spans[i]);
      }
    }
    const size_t base = dst.columns.size();
    for (auto& [id, staged_before] : src.deletes) {
      dst.deletes.emplace_back(std::move(id), base + staged_before);
    }
    InfluencerColumns& d = dst.columns;
    const InfluencerColumns& c = src.columns;
    const size_t n = c.size();
    d.Reserve(base + n);
    d.timestamp.insert(d.timestamp.end(), c.timestamp.begin(), c.timestamp.end());
    d.influencer_score.insert(d.influencer_score.end(),
                              c.influencer_score.begin(),
                              c.influencer_score.end());
    d.initial_influencer_score.insert(d.initial_influencer_score.end(),
                                      c.initial_influencer_score.begin(),
                                      c.initial_influencer_score.end());
    d.probability.insert(d.probability.end(), c.probability.begin(),
                         c.probability.end());
    d.is_interim.insert(d.is_interim.end(), c.is_interim.begin(),
                        c.is_interim.end());
    d.bucket_span_code.resize(base + n);
    d.field_name_code.resize(base + n);
    d.field_value_code.resize(base + n);
    for (size_t r = 0; r < n; ++r) {
      d.bucket_span_code[base + r] = span_code[c.bucket_span_code[r]];
      d.field_name_code[base + r] = string_code[c.field_name_code[r]];
      d.field_value_code[base + r] = string_code[c.field_value_code[r]];
    }
  }
  influencers_ += other.influencers_;
  other = IngestBatch();
}

void IngestBatch::DeleteInfluencer(const InfluencerResultId& id) {
  JobRows& rows = RowsOf(id.job_id);
  rows.deletes.emplace_back(id, rows.columns.size());
}

namespace {

// The id of `job_id`'s result whose id continues with `rest`, which must be
// <timestamp>_<bucket_span>_<field name>_<hash>_<length>; nullopt if it is
// not of that form.
std::optional<InfluencerResultId> ParseResultIdRest(absl::string_view job_id,
                                                    absl::string_view rest) {
  InfluencerResultId result;
  result.job_id = std::string(job_id);
  // Reads an integer up to the next '_' and skips both.
  auto take_int = [&](int64_t* out) -> bool {
    if (rest.empty()) return false;
    size_t end = rest.find('_', rest[0] == '-' ? 1 : 0);
    if (end == absl::string_view::npos || end == 0) return false;
    absl::string_view digits = rest.substr(0, end);
    if (digits[0] == '+' || !absl::SimpleAtoi(digits, out)) return false;
    rest.remove_prefix(end + 1);
    return true;
  };
  if (!take_int(&result.timestamp) || !take_int(&result.bucket_span)) {
    return std::nullopt;
  }
  // From the right: _<hash>_<length>.
  size_t length_sep = rest.rfind('_');
  if (length_sep == absl::string_view::npos || length_sep == 0) return std::nullopt;
  size_t hash_sep = rest.rfind('_', length_sep - 1);
  if (hash_sep == absl::string_view::npos || hash_sep == 0) return std::nullopt;
  if (!absl::SimpleAtoi(rest.substr(length_sep + 1), &result.value_length) ||
      result.value_length < 0 ||
      !absl::SimpleAtoi(rest.substr(hash_sep + 1, length_sep - hash_sep - 1),
                        &result.value_hash)) {
    return std::nullopt;
  }
  result.field_name = std::string(rest.substr(0, hash_sep));
  return result;
}

}  // namespace

std::optional<InfluencerResultId> ParseInfluencerResultId(absl::string_view id) {
  constexpr absl::string_view kMarker = "_influencer_";
  // Job ids may contain the marker themselves (my_influencer_job): the
  // first occurrence after which the rest parses wins.
  for (size_t marker = id.find(kMarker); marker != absl::string_view::npos;
       marker = id.find(kMarker, marker + 1)) {
    if (marker == 0) continue;
    if (std::optional<InfluencerResultId> result = ParseResultIdRest(
            id.substr(0, marker), id.substr(marker + kMarker.size()))) {
      return result;
    }
  }
  return std::nullopt;
}

int32_t JavaStringHash(absl::string_view utf8, int32_t* utf16_length) {
  uint32_t hash = 0;  // Java's int arithmetic wraps
  uint32_t units = 0;  // (wraps past 2^32 like the hash; no UB)
  auto add = [&](uint32_t unit) {
    hash = hash * 31 + unit;
    ++units;
  };
  const auto* p = reinterpret_cast<const unsigned char*>(utf8.data());
  const auto* end = p + utf8.size();
  while (p < end) {
    uint32_t c = *p;
    int extra = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2
                             : (c >> 3) == 0x1E ? 3 : -1;
    bool valid = extra >= 0 && end - p > extra;
    for (int k = 1; valid && k <= extra; ++k) valid = (p[k] & 0xC0) == 0x80;
    uint32_t cp = extra <= 0 ? c : c & (0x3F >> extra);
    for (int k = 1; valid && k <= extra; ++k) cp = (cp << 6) | (p[k] & 0x3F);
    if (!valid || cp > 0x10FFFF) {
      add(c);  // not a UTF-8 sequence: the byte is one unit
      ++p;
      continue;
    }
    p += extra + 1;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      add(0xD800 + (cp >> 10));
      add(0xDC00 + (cp & 0x3FF));
    } else {
      add(cp);
    }
  }
  if (utf16_length != nullptr) *utf16_length = static_cast<int32_t>(units);
  return static_cast<int32_t>(hash);
}

size_t IngestBatch::MemoryUsage() const {
  size_t bytes = arena_->bytes_reserved();
  for (const auto& [id, rows] : jobs_) {
    bytes += rows->columns.size() * InfluencerColumns::kBytesPerRow +
             rows->strings.size() * (sizeof(absl::string_view) + 16);
  }
  return bytes;
}

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
}

std::vector<uint32_t> IdentityMap(size_t n) {
  std::vector<uint32_t> map(n);
  for (size_t i = 0; i < n; ++i) map[i] = static_cast<uint32_t>(i);
  return map;
}

// The distinct influencer field names of a batch's rows for one job.
std::vector<absl::string_view> FieldNames(const IngestBatch::JobRows& rows) {
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

// The results of `job_id` after committing `rows` onto `old` (null when the
// job is new, or when the batch replaces it).
std::shared_ptr<const JobResults> CommitJob(
    const std::string& job_id, const std::shared_ptr<const JobResults>& old,
    IngestBatch::JobRows&& rows,
    const std::shared_ptr<const StringArena>& arena, CommitStats* stats) {
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

  // The last occurrence of each identity in the batch wins.
  const CodedRows staged{rows.columns, string_map, rows.bucket_spans};
  std::vector<bool> keep(n, true);
  const size_t old_rows = old != nullptr ? old->size() : 0;
  const Column<int64_t>& staged_time = rows.columns.timestamp;
  // Rows in time order (as dumps are) can only repeat an identity within a
  // run of one timestamp: a new job's rows need no index of the batch.
  const bool by_runs = old_rows == 0 &&
                       std::is_sorted(staged_time.begin(), staged_time.end());
  RowIndex staged_row(by_runs ? 0 : n);
  if (by_runs) {
    DropRepeatsWithinRuns(staged, &keep, &stats->replaced);
  } else {
    for (size_t i = 0; i < n; ++i) {
      const Identity id = staged.IdentityOf(i);
      uint32_t* slot = staged_row.Find(id, staged);
      if (*slot != RowIndex::kEmpty) {
        keep[*slot] = false;
        ++stats->replaced;
      }
      *slot = static_cast<uint32_t>(i);
    }
  }

  std::vector<bool> keep_old(old_rows, true);
  size_t deleted_old = 0;
  if (!rows.deletes.empty()) {
    deleted_old = ApplyDeletes(rows.deletes, *job, old.get(), rows.columns,
                               string_map, rows.bucket_spans, &keep,
                               &keep_old, stats);
  }
  size_t replaced_old = 0;
  size_t unchanged = 0;
  if (old_rows > 0) {
    const std::vector<uint32_t> same = IdentityMap(job->strings.size());
    const CodedRows stored{old->columns, same, old->bucket_spans};
    for (size_t r = 0; r < old_rows; ++r) {
      if (!keep_old[r]) continue;  // deleted
      const uint32_t match = *staged_row.Find(stored.IdentityOf(r), staged);
      if (match == RowIndex::kEmpty) continue;
      if (SameValues(old->columns, r, rows.columns, match)) {
        keep[match] = false;  // identical: the stored row stays put
        ++unchanged;
      } else {
        keep_old[r] = false;  // replaced: the staged row goes to the end
        ++replaced_old;
      }
    }
  }
  stats->unchanged += unchanged;
  stats->replaced += replaced_old;
  // Every staged row superseded or identical: the job is as it was (all its
  // strings and spans were already in its dictionaries).
  if (old_rows > 0 && replaced_old == 0 && deleted_old == 0 &&
      std::find(keep.begin(), keep.end(), true) == keep.end()) {
    return old;
  }

  // The batch's codes must mean the job's: equal sizes are not enough when
  // the job kept dictionaries from rows since deleted (its strings in
  // another order), so each code must map to itself.
  auto is_identity = [](const std::vector<uint32_t>& map) {
    for (size_t i = 0; i < map.size(); ++i) {
      if (map[i] != i) return false;
    }
    return true;
  };
  const bool adopt_all = old_rows == 0 && rows.deletes.empty() &&
                         std::find(keep.begin(), keep.end(), false) ==
                             keep.end() &&
                         job->strings.size() == rows.strings.size() &&
                         job->bucket_spans.size() == rows.bucket_spans.size() &&
                         is_identity(string_map) && is_identity(span_map);
  if (adopt_all) {
    // A new job whose rows are all new: its dictionary is the batch's, so
    // the columns move instead of being copied.
    job->columns = std::move(rows.columns);
    stats->added += job->size();
  } else {
    InfluencerColumns& c = job->columns;
    const std::vector<uint32_t> same_strings = IdentityMap(job->strings.size());
    const std::vector<uint32_t> same_spans =
        IdentityMap(job->bucket_spans.size());
    c.Reserve(old_rows + n);
    if (old_rows > 0 && replaced_old == 0 && deleted_old == 0) {
      c = old->columns;  // whole columns, no row-by-row copy
    } else {
      for (size_t r = 0; r < old_rows; ++r) {
        if (keep_old[r]) {
          AppendRow(old->columns, r, same_strings, same_spans, c);
        }
      }
    }
    size_t appended = 0;
    for (size_t i = 0; i < n; ++i) {
      if (!keep[i]) continue;
      AppendRow(rows.columns, i, string_map, span_map, c);
      ++appended;
    }
    stats->added += appended - replaced_old;
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

std::shared_ptr<const StoreSnapshot> InfluencerStore::Snapshot() const {
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  return snapshot_;
}

CommitStats InfluencerStore::Commit(IngestBatch batch, int threads) {
  CommitStats stats;
  std::lock_guard<std::mutex> commit_lock(commit_mu_);
  std::shared_ptr<const StoreSnapshot> current = Snapshot();
  auto next = std::make_shared<StoreSnapshot>(*current);
  next->generation = current->generation + 1;
  std::shared_ptr<const StringArena> arena = std::move(batch.arena_);
  // The jobs to merge, each independent of the others.
  struct Merge {
    const std::string* job_id;
    std::shared_ptr<const JobResults> old;
    IngestBatch::JobRows* rows;
    CommitStats stats;
    std::shared_ptr<const JobResults> job;
  };
  std::vector<Merge> merges;
  for (const std::string& job_id : batch.job_order_) {
    IngestBatch::JobRows& rows = *batch.jobs_.at(job_id);
    auto found = current->jobs.find(job_id);
    std::shared_ptr<const JobResults> old =
        found == current->jobs.end() ? nullptr : found->second;
    if (old == nullptr && !rows.named) {
      // Only deletions, of a job the store does not know: nothing to do.
      stats.delete_misses += rows.deletes.size();
      continue;
    }
    if (old != nullptr && batch.replace_jobs_ && rows.named) {
      stats.deleted += old->size();
      old = nullptr;
    } else if (old != nullptr && rows.columns.size() == 0 &&
               rows.deletes.empty()) {
      continue;  // only registered, already known
    }
    merges.push_back(Merge{&job_id, std::move(old), &rows, {}, nullptr});
  }
  auto merge = [&](Merge& m) {
    m.job = CommitJob(*m.job_id, m.old, std::move(*m.rows), arena, &m.stats);
  };
  const size_t workers = std::min<size_t>(
      merges.size(), static_cast<size_t>(std::max(threads, 1)));
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
    stats.added += m.stats.added;
    stats.replaced += m.stats.replaced;
    stats.deleted += m.stats.deleted;
    stats.unchanged += m.stats.unchanged;
    stats.delete_misses += m.stats.delete_misses;
    for (absl::string_view name : m.job->field_names) {
      if (!next->influencer_field_names.contains(name)) {
        next->influencer_field_names.insert(std::string(name));
      }
    }
    next->jobs[*m.job_id] = std::move(m.job);
  }
  if (batch.replace_jobs_) RecomputeFieldNames(*next);
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  snapshot_ = std::move(next);
  return stats;
}

absl::Status InfluencerStore::DeleteJob(absl::string_view job_id) {
  std::lock_guard<std::mutex> commit_lock(commit_mu_);
  std::shared_ptr<const StoreSnapshot> current = Snapshot();
  if (current->FindJob(job_id) == nullptr) {
    return EsError(404, "resource_not_found_exception",
                   absl::StrCat("No known job with id '", job_id, "'"));
  }
  auto next = std::make_shared<StoreSnapshot>(*current);
  next->generation = current->generation + 1;
  next->jobs.erase(job_id);
  RecomputeFieldNames(*next);
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  snapshot_ = std::move(next);
  return absl::OkStatus();
}

void InfluencerStore::RegisterJob(absl::string_view job_id) {
  IngestBatch batch;
  batch.RegisterJob(job_id);
  Commit(std::move(batch));
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
