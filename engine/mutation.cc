#include "engine/mutation.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace clout {

bool MutationResult::errors() const {
  for (const ItemResult& item : items) {
    if (item.outcome == MutationOutcome::kError) return true;
  }
  return false;
}

absl::string_view MutationOutcomeName(MutationOutcome outcome) {
  switch (outcome) {
    case MutationOutcome::kCreated: return "created";
    case MutationOutcome::kUpdated: return "updated";
    case MutationOutcome::kNoop: return "noop";
    case MutationOutcome::kDeleted: return "deleted";
    case MutationOutcome::kNotFound: return "not_found";
    case MutationOutcome::kError: return "error";
  }
  return "error";
}

MutationBatch::MutationBatch(MutationMode mode)
    : mode_(mode), arena_(std::make_shared<StringArena>()) {}

MutationBatch::JobRows& MutationBatch::RowsOf(absl::string_view job_id) {
  for (size_t i = 0; i < kRecentJobs && recent_[i].second != nullptr; ++i) {
    if (BytesEqual(job_id, recent_[i].first)) return *recent_[i].second;
  }
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) {
    it = jobs_.emplace(std::string(job_id), std::make_unique<JobRows>()).first;
    it->second->slot = static_cast<uint32_t>(job_order_.size());
    job_order_.push_back(std::string(job_id));
    slots_.push_back(it->second.get());
  }
  // Replaces the entries in turn.
  std::pair<std::string, JobRows*>& entry = recent_[recent_next_];
  recent_next_ = (recent_next_ + 1) % kRecentJobs;
  entry.first.assign(job_id.data(), job_id.size());
  entry.second = it->second.get();
  return *entry.second;
}

void MutationBatch::PrefetchFieldValue(const JobRows* rows,
                                       absl::string_view field_value) const {
  rows->string_codes.Prefetch(field_value);
}

void MutationBatch::RegisterJob(absl::string_view job_id) {
  JobRows& rows = RowsOf(job_id);
  rows.named = true;
  rows.named_after_job_op = true;
}

uint32_t MutationBatch::Intern(JobRows& rows, absl::string_view s) {
  return rows.string_codes.Intern(
      s, rows.strings, [this](absl::string_view t) { return arena_->Store(t); });
}

void MutationBatch::AddInfluencer(absl::string_view job_id,
                                  const InfluencerFields& row) {
  AddInfluencer(&RowsOf(job_id), row);
}

void MutationBatch::AddInfluencer(JobRows* job, const InfluencerFields& row) {
  if (mode_ == MutationMode::kBulk) {
    items_.push_back({OpKind::kUpsert, job->slot,
                      static_cast<uint32_t>(job->columns.size())});
  }
  Stage(*job, row);
}

void MutationBatch::CreateInfluencer(absl::string_view job_id,
                                     const InfluencerFields& row) {
  JobRows& rows = RowsOf(job_id);
  if (mode_ == MutationMode::kBulk) {
    items_.push_back({OpKind::kCreate, rows.slot,
                      static_cast<uint32_t>(rows.columns.size())});
  }
  has_creates_ = true;
  Stage(rows, row);
}

void MutationBatch::Stage(JobRows& rows, const InfluencerFields& row) {
  rows.named = true;
  rows.named_after_job_op = true;
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
  c.version.push_back(1);
  ++influencers_;
  ++operations_;
}

void MutationBatch::DeleteInfluencer(const InfluencerResultId& id) {
  JobRows& rows = RowsOf(id.job_id);
  if (mode_ == MutationMode::kBulk) {
    items_.push_back({OpKind::kDeleteResult, rows.slot,
                      static_cast<uint32_t>(rows.deletes.size())});
  }
  rows.deletes.emplace_back(id, rows.columns.size());
  ++operations_;
}

void MutationBatch::JobOperation(absl::string_view job_id, OpKind kind) {
  JobRows& rows = RowsOf(job_id);
  if (mode_ == MutationMode::kBulk) {
    items_.push_back({kind, rows.slot,
                      static_cast<uint32_t>(rows.job_ops.size())});
  }
  rows.job_ops.push_back({kind, rows.columns.size(), rows.deletes.size(),
                          rows.named_after_job_op});
  rows.named_after_job_op = kind == OpKind::kReplaceJob;
  if (kind == OpKind::kReplaceJob) rows.named = true;
  ++operations_;
}

void MutationBatch::DeleteJob(absl::string_view job_id) {
  JobOperation(job_id, OpKind::kDeleteJob);
}

void MutationBatch::ReplaceJob(absl::string_view job_id) {
  JobOperation(job_id, OpKind::kReplaceJob);
}

void MutationBatch::AddOtherResult(absl::string_view job_id,
                                   absl::string_view doc_id) {
  if (!job_id.empty()) RegisterJob(job_id);
  if (mode_ != MutationMode::kBulk) return;
  items_.push_back({OpKind::kOtherResult, 0,
                    static_cast<uint32_t>(other_ids_.size())});
  other_ids_.emplace_back(doc_id);
  ++operations_;
}

void MutationBatch::DeleteOtherResult(absl::string_view doc_id) {
  if (mode_ != MutationMode::kBulk) return;
  items_.push_back({OpKind::kDeleteOther, 0,
                    static_cast<uint32_t>(other_ids_.size())});
  other_ids_.emplace_back(doc_id);
  ++operations_;
}

void MutationBatch::AddError(absl::Status error) {
  if (mode_ != MutationMode::kBulk) return;
  if (error.ok()) {
    error = absl::InternalError("an item failed without an error");
  }
  items_.push_back(
      {OpKind::kError, 0, static_cast<uint32_t>(errors_.size())});
  errors_.push_back(std::move(error));
  ++operations_;
}

void MutationBatch::Coalesce(MutationBatch&& next) {
  const uint32_t start = static_cast<uint32_t>(items_.size());
  boundaries_.push_back(start);
  for (uint32_t boundary : next.boundaries_) {
    boundaries_.push_back(start + boundary);
  }
  generations_ += next.generations_;
  Append(std::move(next));
}

void MutationBatch::Reserve(size_t operations) {
  // Shared among the jobs in proportion to the rows each holds so far
  // (evenly when none holds any), not `operations` for each.
  size_t total = 0;
  for (const auto& [id, rows] : jobs_) total += rows->columns.size();
  for (auto& [id, rows] : jobs_) {
    const size_t share =
        total == 0 ? operations / std::max<size_t>(jobs_.size(), 1)
                   : static_cast<size_t>(static_cast<double>(operations) *
                                         static_cast<double>(rows->columns.size()) /
                                         static_cast<double>(total));
    const size_t want = rows->columns.size() + share;
    if (rows->columns.timestamp.capacity() < want) rows->columns.Reserve(want);
  }
  if (mode_ == MutationMode::kBulk) items_.reserve(items_.size() + operations);
}

void MutationBatch::Append(MutationBatch&& other) {
  // Where each of other's jobs lands here, for its items.
  struct Landing {
    uint32_t slot;
    size_t rows;
    size_t deletes;
    size_t job_ops;
  };
  std::vector<Landing> landings(other.slots_.size());
  for (const std::string& job_id : other.job_order_) {
    JobRows& src = *other.jobs_.at(job_id);
    JobRows& dst = RowsOf(job_id);
    landings[src.slot] = {dst.slot, dst.columns.size(), dst.deletes.size(),
                          dst.job_ops.size()};
    dst.named = dst.named || src.named;
    // Whether dst named the job since its last DeleteJob: counts for
    // src's first job operation only.
    const bool dst_named = dst.named_after_job_op;
    if (src.named_after_job_op || !src.job_ops.empty()) {
      dst.named_after_job_op = src.named_after_job_op;
    }
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
    const size_t delete_base = dst.deletes.size();
    for (auto& [id, staged_before] : src.deletes) {
      dst.deletes.emplace_back(std::move(id), base + staged_before);
    }
    for (size_t k = 0; k < src.job_ops.size(); ++k) {
      const JobOp& op = src.job_ops[k];
      dst.job_ops.push_back({op.kind, base + op.rows_before,
                             delete_base + op.deletes_before,
                             op.named_before || (k == 0 && dst_named)});
    }
    InfluencerColumns& d = dst.columns;
    const InfluencerColumns& c = src.columns;
    const size_t n = c.size();
    // Geometric growth: a batch that many batches are appended to in turn
    // (Coalesce, over a whole log) would otherwise copy its rows each time.
    if (d.timestamp.capacity() < base + n) {
      d.Reserve(std::max(base + n, 2 * d.timestamp.capacity()));
    }
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
    d.version.insert(d.version.end(), c.version.begin(), c.version.end());
    d.bucket_span_code.resize(base + n);
    d.field_name_code.resize(base + n);
    d.field_value_code.resize(base + n);
    for (size_t r = 0; r < n; ++r) {
      d.bucket_span_code[base + r] = span_code[c.bucket_span_code[r]];
      d.field_name_code[base + r] = string_code[c.field_name_code[r]];
      d.field_value_code[base + r] = string_code[c.field_value_code[r]];
    }
  }
  if (mode_ == MutationMode::kBulk) {
    for (Item item : other.items_) {
      switch (item.kind) {
        case OpKind::kUpsert:
        case OpKind::kCreate:
          item.index += static_cast<uint32_t>(landings[item.job].rows);
          item.job = landings[item.job].slot;
          break;
        case OpKind::kDeleteResult:
          item.index += static_cast<uint32_t>(landings[item.job].deletes);
          item.job = landings[item.job].slot;
          break;
        case OpKind::kDeleteJob:
        case OpKind::kReplaceJob:
          item.index += static_cast<uint32_t>(landings[item.job].job_ops);
          item.job = landings[item.job].slot;
          break;
        case OpKind::kError:
          item.index += static_cast<uint32_t>(errors_.size());
          break;
        case OpKind::kOtherResult:
        case OpKind::kDeleteOther:
          item.index += static_cast<uint32_t>(other_ids_.size());
          break;
      }
      items_.push_back(item);
    }
    errors_.insert(errors_.end(), other.errors_.begin(), other.errors_.end());
    other_ids_.insert(other_ids_.end(), other.other_ids_.begin(),
                      other.other_ids_.end());
  }
  influencers_ += other.influencers_;
  operations_ += other.operations_;
  has_creates_ = has_creates_ || other.has_creates_;
  other = MutationBatch(other.mode_);
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

size_t MutationBatch::MemoryUsage() const {
  size_t bytes = arena_->bytes_reserved();
  for (const auto& [id, rows] : jobs_) {
    bytes += rows->columns.size() * InfluencerColumns::kBytesPerRow +
             rows->strings.size() * (sizeof(absl::string_view) + 16);
  }
  return bytes;
}


std::string InfluencerDocumentId(absl::string_view job_id,
                                 const InfluencerFields& row) {
  int32_t length = 0;
  const int32_t hash = JavaStringHash(row.field_value, &length);
  return absl::StrCat(job_id, "_influencer_", row.timestamp, "_",
                      row.bucket_span, "_", row.field_name, "_", hash, "_",
                      length);
}

}  // namespace clout
