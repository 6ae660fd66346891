#include "engine/store.h"

#include <utility>

#include "absl/time/clock.h"

namespace clout {

IngestBatch::IngestBatch() : arena_(std::make_shared<StringArena>()) {}

IngestBatch::JobRows& IngestBatch::RowsOf(absl::string_view job_id) {
  if (last_rows_ != nullptr && job_id == last_job_) return *last_rows_;
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) {
    it = jobs_.emplace(std::string(job_id), std::make_unique<JobRows>()).first;
    job_order_.push_back(std::string(job_id));
  }
  last_job_ = std::string(job_id);
  last_rows_ = it->second.get();
  return *last_rows_;
}

void IngestBatch::RegisterJob(absl::string_view job_id) { RowsOf(job_id); }

uint32_t IngestBatch::Intern(JobRows& rows, absl::string_view s) {
  auto it = rows.string_codes.find(s);
  if (it != rows.string_codes.end()) return it->second;
  absl::string_view stored = arena_->Store(s);
  uint32_t code = static_cast<uint32_t>(rows.strings.size());
  rows.strings.push_back(stored);
  rows.string_codes.emplace(stored, code);
  return code;
}

void IngestBatch::AddInfluencer(absl::string_view job_id,
                                const InfluencerFields& row) {
  JobRows& rows = RowsOf(job_id);
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
  c.field_name_code.push_back(Intern(rows, row.field_name));
  c.field_value_code.push_back(Intern(rows, row.field_value));
  ++influencers_;
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

template <typename T>
void AppendColumn(std::vector<T>& to, const std::vector<T>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

// A new JobResults holding `old`'s rows (if any) followed by `rows`.
std::shared_ptr<const JobResults> Merge(
    const std::string& job_id, const JobResults* old,
    const InfluencerColumns& rows, const std::vector<absl::string_view>& strings,
    const std::vector<int64_t>& bucket_spans,
    const std::shared_ptr<const StringArena>& arena) {
  auto job = std::make_shared<JobResults>();
  if (old != nullptr) {
    *job = *old;  // copy-on-write: the published JobResults never changes
  } else {
    job->job_id = job_id;
  }
  if (rows.size() == 0) return job;
  job->arenas.push_back(arena);

  // Batch-local codes -> this job's codes.
  std::vector<uint32_t> string_map(strings.size());
  for (size_t i = 0; i < strings.size(); ++i) {
    auto [it, inserted] = job->string_codes.emplace(
        strings[i], static_cast<uint32_t>(job->strings.size()));
    if (inserted) job->strings.push_back(strings[i]);
    string_map[i] = it->second;
  }
  std::vector<uint32_t> span_map(bucket_spans.size());
  for (size_t i = 0; i < bucket_spans.size(); ++i) {
    uint32_t code = 0;
    while (code < job->bucket_spans.size() &&
           job->bucket_spans[code] != bucket_spans[i]) {
      ++code;
    }
    if (code == job->bucket_spans.size()) {
      job->bucket_spans.push_back(bucket_spans[i]);
    }
    span_map[i] = code;
  }

  InfluencerColumns& c = job->columns;
  c.Reserve(c.size() + rows.size());
  AppendColumn(c.timestamp, rows.timestamp);
  AppendColumn(c.influencer_score, rows.influencer_score);
  AppendColumn(c.initial_influencer_score, rows.initial_influencer_score);
  AppendColumn(c.probability, rows.probability);
  AppendColumn(c.is_interim, rows.is_interim);
  for (uint32_t code : rows.bucket_span_code) {
    c.bucket_span_code.push_back(span_map[code]);
  }
  for (uint32_t code : rows.field_name_code) {
    c.field_name_code.push_back(string_map[code]);
  }
  for (uint32_t code : rows.field_value_code) {
    c.field_value_code.push_back(string_map[code]);
  }
  for (uint8_t interim : rows.is_interim) job->interim_rows += interim;
  return job;
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

// A new job's results are the batch's rows as they are: its dictionary
// codes become the job's, so the columns move instead of being copied.
std::shared_ptr<const JobResults> Adopt(
    const std::string& job_id, IngestBatch::JobRows&& rows,
    const std::shared_ptr<const StringArena>& arena) {
  auto job = std::make_shared<JobResults>();
  job->job_id = job_id;
  job->columns = std::move(rows.columns);
  job->strings = std::move(rows.strings);
  job->string_codes = std::move(rows.string_codes);
  job->bucket_spans = std::move(rows.bucket_spans);
  if (job->size() > 0) job->arenas.push_back(arena);
  for (uint8_t interim : job->columns.is_interim) job->interim_rows += interim;
  return job;
}

}  // namespace

InfluencerStore::InfluencerStore(StoreOptions options)
    : options_(std::move(options)),
      snapshot_(std::make_shared<const StoreSnapshot>()) {}

std::shared_ptr<const StoreSnapshot> InfluencerStore::Snapshot() const {
  absl::MutexLock lock(&snapshot_mu_);
  return snapshot_;
}

void InfluencerStore::Commit(IngestBatch batch) {
  absl::MutexLock commit_lock(&commit_mu_);
  std::shared_ptr<const StoreSnapshot> current = Snapshot();
  auto next = std::make_shared<StoreSnapshot>(*current);
  next->generation = current->generation + 1;
  std::shared_ptr<const StringArena> arena = std::move(batch.arena_);
  for (const std::string& job_id : batch.job_order_) {
    IngestBatch::JobRows& rows = *batch.jobs_.at(job_id);
    const JobResults* old = current->FindJob(job_id);
    if (old != nullptr && rows.columns.size() == 0) continue;
    // Name codes are needed below; read them before the rows may move.
    std::vector<absl::string_view> names = FieldNames(rows);
    if (old == nullptr || old->size() == 0) {
      next->jobs[job_id] = Adopt(job_id, std::move(rows), arena);
    } else {
      next->jobs[job_id] = Merge(job_id, old, rows.columns, rows.strings,
                                 rows.bucket_spans, arena);
    }
    for (absl::string_view name : names) {
      if (!next->influencer_field_names.contains(name)) {
        next->influencer_field_names.insert(std::string(name));
      }
    }
  }
  absl::MutexLock lock(&snapshot_mu_);
  snapshot_ = std::move(next);
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
