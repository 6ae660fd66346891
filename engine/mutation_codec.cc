// The binary form of a MutationBatch (mutation.h): the batch's calls,
// replayed in order by DecodeMutationBatch, so that the decoded batch is
// built by the same public calls as any other and holds no state the
// calls could not make.
//
//   u32 version | u8 mode | u8 replace_jobs
//   u32 jobs    | per job: str job_id, u32 n + n str (dictionary),
//                          u32 n + n i64 (bucket spans)
//   u64 ops     | per op: u8 kind, then by kind (below)
//
// str is u32 length + bytes; integers are little-endian.
#include <bit>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/dates.h"
#include "engine/error.h"
#include "engine/mutation.h"

namespace clout {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the binary form is little-endian and written as in memory");

constexpr uint32_t kCodecVersion = 1;

enum class Op : uint8_t {
  kRegister = 1,      // u32 slot
  kUpsert = 2,        // row (below)
  kCreate = 3,        // row
  kDeleteResult = 4,  // u32 slot, i64 timestamp, i64 bucket_span,
                      // str field_name, i32 hash, i32 length
  kDeleteJob = 5,     // u32 slot
  kReplaceJob = 6,    // u32 slot
  kError = 7,         // i32 status, str type, str reason, str root type,
                      // str root reason
  kOtherResult = 8,   // str doc_id
  kDeleteOther = 9,   // str doc_id
};
// row: u32 slot, i64 timestamp, f64 influencer_score,
// f64 initial_influencer_score, f64 probability, u32 span code,
// u8 is_interim, u32 name code, u32 value code.

class Writer {
 public:
  explicit Writer(std::string* out) : out_(out) {}
  template <typename T>
  void Put(T value) {
    char bytes[sizeof(T)];
    std::memcpy(bytes, &value, sizeof(T));
    out_->append(bytes, sizeof(T));
  }
  void PutString(absl::string_view s) {
    Put<uint32_t>(static_cast<uint32_t>(s.size()));
    out_->append(s.data(), s.size());
  }
  void PutOp(Op op) { Put<uint8_t>(static_cast<uint8_t>(op)); }

 private:
  std::string* out_;
};

class Reader {
 public:
  explicit Reader(absl::string_view bytes) : bytes_(bytes) {}
  template <typename T>
  bool Get(T* value) {
    if (bytes_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool GetString(absl::string_view* s) {
    uint32_t n;
    if (!Get(&n) || bytes_.size() - pos_ < n) return false;
    *s = bytes_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  size_t pos() const { return pos_; }
  bool done() const { return pos_ == bytes_.size(); }

 private:
  absl::string_view bytes_;
  size_t pos_ = 0;
};

absl::Status Malformed(const Reader& reader, absl::string_view what) {
  return EsError(400, "parse_exception",
                 absl::StrCat("malformed mutation batch at byte ",
                              reader.pos(), ": ", what));
}

}  // namespace

void EncodeMutationBatch(const MutationBatch& batch, std::string* out) {
  using OpKind = MutationBatch::OpKind;
  using JobRows = MutationBatch::JobRows;
  Writer w(out);
  w.Put<uint32_t>(kCodecVersion);
  w.Put<uint8_t>(batch.mode_ == MutationMode::kBulk ? 1 : 0);
  w.Put<uint8_t>(batch.replace_jobs_ ? 1 : 0);
  w.Put<uint32_t>(static_cast<uint32_t>(batch.slots_.size()));
  for (const JobRows* rows : batch.slots_) {
    w.PutString(batch.job_order_[rows->slot]);
    w.Put<uint32_t>(static_cast<uint32_t>(rows->strings.size()));
    for (absl::string_view s : rows->strings) w.PutString(s);
    w.Put<uint32_t>(static_cast<uint32_t>(rows->bucket_spans.size()));
    for (int64_t span : rows->bucket_spans) w.Put<int64_t>(span);
  }
  // The operation count goes before the operations: patched at the end.
  const size_t count_at = out->size();
  w.Put<uint64_t>(0);
  uint64_t ops = 0;

  auto row = [&](Op op, const JobRows& rows, size_t i) {
    const InfluencerColumns& c = rows.columns;
    w.PutOp(op);
    w.Put<uint32_t>(rows.slot);
    w.Put<int64_t>(c.timestamp[i]);
    w.Put<double>(c.influencer_score[i]);
    w.Put<double>(c.initial_influencer_score[i]);
    w.Put<double>(c.probability[i]);
    w.Put<uint32_t>(c.bucket_span_code[i]);
    w.Put<uint8_t>(c.is_interim[i]);
    w.Put<uint32_t>(c.field_name_code[i]);
    w.Put<uint32_t>(c.field_value_code[i]);
    ++ops;
  };
  auto slot_op = [&](Op op, const JobRows& rows) {
    w.PutOp(op);
    w.Put<uint32_t>(rows.slot);
    ++ops;
  };
  auto delete_result = [&](const JobRows& rows, size_t i) {
    const InfluencerResultId& id = rows.deletes[i].first;
    w.PutOp(Op::kDeleteResult);
    w.Put<uint32_t>(rows.slot);
    w.Put<int64_t>(id.timestamp);
    w.Put<int64_t>(id.bucket_span);
    w.PutString(id.field_name);
    w.Put<int32_t>(id.value_hash);
    w.Put<int32_t>(id.value_length);
    ++ops;
  };
  // A job operation, after the RegisterJob that must precede it: the
  // batch records only whether the job was named since the previous job
  // operation, and rows or a ReplaceJob name it too.
  auto job_op = [&](const JobRows& rows, size_t k) {
    const MutationBatch::JobOp& op = rows.job_ops[k];
    const bool named_by_previous =
        k > 0 && (rows.job_ops[k - 1].kind == OpKind::kReplaceJob ||
                  rows.job_ops[k - 1].rows_before < op.rows_before);
    const bool named_by_rows = k == 0 && op.rows_before > 0;
    if (op.named_before && !named_by_previous && !named_by_rows) {
      slot_op(Op::kRegister, rows);
    }
    slot_op(op.kind == OpKind::kDeleteJob ? Op::kDeleteJob : Op::kReplaceJob,
            rows);
  };
  // What names the job after its last operation.
  auto trailing_register = [&](const JobRows& rows) {
    if (rows.job_ops.empty()) {
      if (rows.named && rows.columns.size() == 0) {
        slot_op(Op::kRegister, rows);
      }
      return;
    }
    const MutationBatch::JobOp& last = rows.job_ops.back();
    if (rows.named_after_job_op && last.kind != OpKind::kReplaceJob &&
        rows.columns.size() == last.rows_before) {
      slot_op(Op::kRegister, rows);
    }
  };

  if (batch.mode_ == MutationMode::kBulk) {
    for (const MutationBatch::Item& item : batch.items_) {
      switch (item.kind) {
        case OpKind::kUpsert:
        case OpKind::kCreate:
          row(item.kind == OpKind::kUpsert ? Op::kUpsert : Op::kCreate,
              *batch.slots_[item.job], item.index);
          break;
        case OpKind::kDeleteResult:
          delete_result(*batch.slots_[item.job], item.index);
          break;
        case OpKind::kDeleteJob:
        case OpKind::kReplaceJob:
          job_op(*batch.slots_[item.job], item.index);
          break;
        case OpKind::kError: {
          const EsErrorInfo info = EsErrorOf(batch.errors_[item.index]);
          w.PutOp(Op::kError);
          w.Put<int32_t>(info.http_status);
          w.PutString(info.type);
          w.PutString(info.reason);
          w.PutString(info.root_cause_type);
          w.PutString(info.root_cause_reason);
          ++ops;
          break;
        }
        case OpKind::kOtherResult:
        case OpKind::kDeleteOther:
          w.PutOp(item.kind == OpKind::kOtherResult ? Op::kOtherResult
                                                    : Op::kDeleteOther);
          w.PutString(batch.other_ids_[item.index]);
          ++ops;
          break;
      }
    }
    for (const JobRows* rows : batch.slots_) trailing_register(*rows);
  } else {
    // A load has no items: each job's rows, deletions and job operations
    // in their staged order (jobs are independent of each other).
    for (const JobRows* rows : batch.slots_) {
      const size_t n = rows->columns.size();
      size_t r = 0, d = 0, k = 0;
      while (r < n || d < rows->deletes.size() || k < rows->job_ops.size()) {
        if (k < rows->job_ops.size() && rows->job_ops[k].rows_before == r &&
            rows->job_ops[k].deletes_before == d) {
          job_op(*rows, k++);
        } else if (d < rows->deletes.size() && rows->deletes[d].second == r) {
          delete_result(*rows, d++);
        } else if (r < n) {
          row(Op::kUpsert, *rows, r++);
        } else {
          break;  // unreachable for a batch built by its calls
        }
      }
      trailing_register(*rows);
    }
  }
  std::memcpy(out->data() + count_at, &ops, sizeof(ops));
}

absl::StatusOr<MutationBatch> DecodeMutationBatch(absl::string_view bytes) {
  Reader r(bytes);
  uint32_t version;
  uint8_t mode, replace_jobs;
  if (!r.Get(&version)) return Malformed(r, "truncated");
  if (version != kCodecVersion) {
    return Malformed(r, absl::StrCat("unknown version ", version,
                                     " (this build reads version ",
                                     kCodecVersion, ")"));
  }
  if (!r.Get(&mode) || !r.Get(&replace_jobs)) return Malformed(r, "truncated");
  if (mode > 1 || replace_jobs > 1) return Malformed(r, "bad header");
  MutationBatch batch(mode == 1 ? MutationMode::kBulk : MutationMode::kLoad);
  batch.set_replace_jobs(replace_jobs == 1);

  struct Job {
    absl::string_view id;
    MutationBatch::JobRows* rows;
    std::vector<absl::string_view> strings;
    std::vector<int64_t> spans;
  };
  uint32_t job_count;
  if (!r.Get(&job_count)) return Malformed(r, "truncated");
  std::vector<Job> jobs;
  for (uint32_t j = 0; j < job_count; ++j) {
    Job job;
    uint32_t n;
    if (!r.GetString(&job.id) || !r.Get(&n)) return Malformed(r, "truncated");
    if (job.id.empty()) return Malformed(r, "empty job id");
    // Each string takes at least its 4-byte length: a count beyond what
    // is left is corrupt (and must not size an allocation).
    if (n > (bytes.size() - r.pos()) / 4) return Malformed(r, "bad count");
    job.strings.resize(n);
    for (absl::string_view& s : job.strings) {
      if (!r.GetString(&s)) return Malformed(r, "truncated");
    }
    if (!r.Get(&n)) return Malformed(r, "truncated");
    if (n > (bytes.size() - r.pos()) / 8) return Malformed(r, "bad count");
    job.spans.resize(n);
    for (int64_t& span : job.spans) {
      if (!r.Get(&span)) return Malformed(r, "truncated");
      if (span < 0) return Malformed(r, "negative bucket span");
    }
    job.rows = batch.Rows(job.id);
    if (job.rows->slot != j) return Malformed(r, "repeated job id");
    jobs.push_back(std::move(job));
  }

  uint64_t op_count;
  if (!r.Get(&op_count)) return Malformed(r, "truncated");
  auto get_slot = [&](uint32_t* slot) {
    return r.Get(slot) && *slot < jobs.size();
  };
  for (uint64_t i = 0; i < op_count; ++i) {
    uint8_t kind;
    if (!r.Get(&kind)) return Malformed(r, "truncated");
    switch (static_cast<Op>(kind)) {
      case Op::kUpsert:
      case Op::kCreate: {
        uint32_t slot, span, name, value;
        uint8_t interim;
        InfluencerFields row;
        if (!get_slot(&slot) || !r.Get(&row.timestamp) ||
            !r.Get(&row.influencer_score) ||
            !r.Get(&row.initial_influencer_score) ||
            !r.Get(&row.probability) || !r.Get(&span) || !r.Get(&interim) ||
            !r.Get(&name) || !r.Get(&value)) {
          return Malformed(r, "truncated or bad job");
        }
        const Job& job = jobs[slot];
        if (span >= job.spans.size() || name >= job.strings.size() ||
            value >= job.strings.size() || interim > 1) {
          return Malformed(r, "code out of its dictionary");
        }
        if (!CheckStoredDouble(&row.influencer_score) ||
            !CheckStoredDouble(&row.initial_influencer_score) ||
            !CheckStoredDouble(&row.probability) ||
            row.timestamp < kMinEpochMillis ||
            row.timestamp > kMaxEpochMillis) {
          return Malformed(r, "value out of range");
        }
        row.bucket_span = job.spans[span];
        row.is_interim = interim == 1;
        row.field_name = job.strings[name];
        row.field_value = job.strings[value];
        if (static_cast<Op>(kind) == Op::kUpsert) {
          batch.AddInfluencer(job.rows, row);
        } else {
          batch.CreateInfluencer(job.id, row);
        }
        break;
      }
      case Op::kDeleteResult: {
        uint32_t slot;
        InfluencerResultId id;
        absl::string_view field_name;
        if (!get_slot(&slot) || !r.Get(&id.timestamp) ||
            !r.Get(&id.bucket_span) || !r.GetString(&field_name) ||
            !r.Get(&id.value_hash) || !r.Get(&id.value_length)) {
          return Malformed(r, "truncated or bad job");
        }
        id.job_id = std::string(jobs[slot].id);
        id.field_name = std::string(field_name);
        batch.DeleteInfluencer(id);
        break;
      }
      case Op::kRegister:
      case Op::kDeleteJob:
      case Op::kReplaceJob: {
        uint32_t slot;
        if (!get_slot(&slot)) return Malformed(r, "truncated or bad job");
        if (static_cast<Op>(kind) == Op::kRegister) {
          batch.RegisterJob(jobs[slot].id);
        } else if (static_cast<Op>(kind) == Op::kDeleteJob) {
          batch.DeleteJob(jobs[slot].id);
        } else {
          batch.ReplaceJob(jobs[slot].id);
        }
        break;
      }
      case Op::kError: {
        int32_t status;
        absl::string_view type, reason, root_type, root_reason;
        if (!r.Get(&status) || !r.GetString(&type) || !r.GetString(&reason) ||
            !r.GetString(&root_type) || !r.GetString(&root_reason)) {
          return Malformed(r, "truncated");
        }
        batch.AddError(root_type == type && root_reason == reason
                           ? EsError(status, type, reason)
                           : EsErrorWithRootCause(status, type, reason,
                                                  root_type, root_reason));
        break;
      }
      case Op::kOtherResult:
      case Op::kDeleteOther: {
        absl::string_view doc_id;
        if (!r.GetString(&doc_id)) return Malformed(r, "truncated");
        if (static_cast<Op>(kind) == Op::kOtherResult) {
          batch.AddOtherResult("", doc_id);
        } else {
          batch.DeleteOtherResult(doc_id);
        }
        break;
      }
      default:
        return Malformed(r, absl::StrCat("unknown operation ", kind));
    }
  }
  if (!r.done()) return Malformed(r, "bytes after the last operation");
  return batch;
}

}  // namespace clout
