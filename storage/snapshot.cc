#include "storage/snapshot.h"

#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <deque>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "engine/column_view.h"
#include "engine/dates.h"
#include "engine/error.h"
#include "engine/executor.h"
#include "engine/mutation.h"

namespace clout {
namespace {

static_assert(std::endian::native == std::endian::little,
              "snapshots are little-endian and read in place");

constexpr absl::string_view kMagic = "CLOUTSNP";
// Version 2 added a segment's score order; version 1 files are still read.
constexpr uint32_t kFormatVersion = 2;
constexpr uint32_t kOldestFormatVersion = 1;
constexpr size_t kHeaderBytes = 64;
constexpr size_t kAlign = 64;
enum Kind : uint32_t { kSegment = 1, kManifest = 2, kBundle = 3 };

absl::Status Corrupt(absl::string_view name, absl::string_view what) {
  return EsError(500, "snapshot_corrupted_exception",
                 absl::StrCat("snapshot file [", name, "] is corrupted: ",
                              what));
}

// A file's payload as pieces, with the bytes the pieces point into that
// are not the store's own (headers of sections, padding).
class Pieces {
 public:
  void Add(absl::string_view bytes) {
    if (bytes.empty()) return;
    pieces_.push_back(bytes);
    size_ += bytes.size();
  }
  template <typename T>
  void AddArray(const T* data, size_t n) {
    Add(absl::string_view(reinterpret_cast<const char*>(data), n * sizeof(T)));
  }
  // Copies `bytes` into storage of its own.
  void AddCopy(std::string bytes) {
    owned_.push_back(std::make_unique<std::string>(std::move(bytes)));
    Add(*owned_.back());
  }
  void Pad() {
    static constexpr char kZeros[kAlign] = {};
    if (size_ % kAlign != 0) Add(absl::string_view(kZeros, kAlign - size_ % kAlign));
  }
  void Append(Pieces&& other) {
    for (absl::string_view piece : other.pieces_) Add(piece);
    // The strings move by pointer: views into them stay valid.
    for (auto& s : other.owned_) owned_.push_back(std::move(s));
  }
  size_t size() const { return size_; }
  const std::vector<absl::string_view>& pieces() const { return pieces_; }

 private:
  std::vector<absl::string_view> pieces_;
  std::vector<std::unique_ptr<std::string>> owned_;  // stable addresses
  size_t size_ = 0;
};

template <typename T>
void Put(std::string* out, T value) {
  out->append(reinterpret_cast<const char*>(&value), sizeof(T));
}
void PutString(std::string* out, absl::string_view s) {
  Put<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out->append(s.data(), s.size());
}

// A whole file: header, then `payload`.
Pieces File(Kind kind, Pieces&& payload) {
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  for (absl::string_view piece : payload.pieces()) {
    XXH3_64bits_update(state, piece.data(), piece.size());
  }
  const uint64_t payload_hash = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  std::string header(kMagic);
  Put<uint32_t>(&header, kFormatVersion);
  Put<uint32_t>(&header, kind);
  Put<uint64_t>(&header, payload.size());
  Put<uint64_t>(&header, payload_hash);
  Put<uint64_t>(&header, XXH3_64bits(header.data(), header.size()));
  header.resize(kHeaderBytes, '\0');
  Pieces file;
  file.AddCopy(std::move(header));
  file.Append(std::move(payload));
  return file;
}

// One segment's rows (deleted ones included) as a file.
Pieces SegmentFile(absl::string_view job_id, const SegmentColumnView& c) {
  const size_t rows = c.rows;
  std::string head;
  PutString(&head, job_id);
  Put<uint64_t>(&head, rows);
  Put<uint64_t>(&head, c.strings.size());
  Put<uint64_t>(&head, c.bucket_spans.size());
  Put<int64_t>(&head, c.min_timestamp);
  Put<int64_t>(&head, c.max_timestamp);
  Put<uint64_t>(&head, c.interim_rows);
  Put<uint8_t>(&head, c.time_ordered ? 1 : 0);
  Put<uint32_t>(&head, static_cast<uint32_t>(c.field_names.size()));
  for (absl::string_view name : c.field_names) PutString(&head, name);
  const bool has_order = c.score_order.size() == rows && rows > 0;
  Put<uint8_t>(&head, has_order ? 1 : 0);
  // The dictionary: offsets, then bytes.
  std::string offsets;
  std::string bytes;
  uint64_t at = 0;
  for (absl::string_view s : c.strings) {
    Put<uint64_t>(&offsets, at);
    at += s.size();
  }
  Put<uint64_t>(&offsets, at);
  bytes.reserve(at);
  for (absl::string_view s : c.strings) bytes.append(s.data(), s.size());

  Pieces payload;
  payload.AddCopy(std::move(head));
  payload.Pad();
  payload.AddArray(c.timestamp.data(), rows);
  payload.Pad();
  payload.AddArray(c.influencer_score.data(), rows);
  payload.Pad();
  payload.AddArray(c.initial_influencer_score.data(), rows);
  payload.Pad();
  payload.AddArray(c.probability.data(), rows);
  payload.Pad();
  payload.AddArray(c.bucket_span_code.data(), rows);
  payload.Pad();
  payload.AddArray(c.field_name_code.data(), rows);
  payload.Pad();
  payload.AddArray(c.field_value_code.data(), rows);
  payload.Pad();
  payload.AddArray(c.version.data(), rows);
  payload.Pad();
  payload.AddArray(c.is_interim.data(), rows);
  payload.Pad();
  payload.AddCopy(std::move(offsets));
  payload.Pad();
  payload.AddCopy(std::move(bytes));
  payload.Pad();
  payload.AddArray(c.bucket_spans.data(), c.bucket_spans.size());
  if (has_order) {
    payload.Pad();
    payload.AddArray(c.score_order.data(), rows);
  }
  return File(kSegment, std::move(payload));
}

// Each job of `version` (by id), as views.
std::vector<JobColumnView> JobsOf(const StoreVersion& version) {
  std::vector<const std::string*> ids;
  for (const auto& [id, job] : version.jobs) ids.push_back(&id);
  std::sort(ids.begin(), ids.end(),
            [](const std::string* a, const std::string* b) { return *a < *b; });
  std::vector<JobColumnView> jobs;
  jobs.reserve(ids.size());
  for (const std::string* id : ids) {
    jobs.push_back(*JobColumnView::Of(version, *id));
  }
  return jobs;
}

// A manifest of `version`, whose jobs are `jobs` (JobsOf), naming each
// segment by `file_of(segment)`.
template <typename FileOf>
Pieces ManifestFile(const StoreVersion& version,
                    const std::vector<JobColumnView>& jobs, FileOf file_of) {
  std::string out;
  Put<uint64_t>(&out, version.generation);
  Put<int64_t>(&out, version.next_seq_no);
  Put<uint32_t>(&out, static_cast<uint32_t>(jobs.size()));
  for (const JobColumnView& job : jobs) {
    PutString(&out, job.job_id());
    Put<uint32_t>(&out, static_cast<uint32_t>(job.segments().size()));
    for (const SegmentColumnView& segment : job.segments()) {
      PutString(&out, file_of(segment));
      Put<uint64_t>(&out, segment.deleted_rows);
      if (segment.deleted_rows > 0) {
        const std::vector<uint32_t> rows = segment.DeletedSorted();
        out.append(reinterpret_cast<const char*>(rows.data()),
                   rows.size() * sizeof(uint32_t));
      }
    }
    Put<uint32_t>(&out, static_cast<uint32_t>(job.field_names().size()));
    for (absl::string_view name : job.field_names()) PutString(&out, name);
  }
  Pieces payload;
  payload.AddCopy(std::move(out));
  return File(kManifest, std::move(payload));
}

// Reads fixed-width values and strings from a payload, checking bounds.
class Reader {
 public:
  Reader(absl::string_view bytes, absl::string_view name)
      : bytes_(bytes), name_(name) {}
  template <typename T>
  bool Get(T* value) {
    if (bytes_.size() - pos_ < sizeof(T)) return Fail();
    std::memcpy(value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool GetString(absl::string_view* s) {
    uint32_t n;
    if (!Get(&n) || bytes_.size() - pos_ < n) return Fail();
    *s = bytes_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  // `n` elements of T at the next 64-byte boundary.
  template <typename T>
  bool GetArray(size_t n, const T** out) {
    pos_ = (pos_ + kAlign - 1) / kAlign * kAlign;
    if (pos_ > bytes_.size() || n > (bytes_.size() - pos_) / sizeof(T)) {
      return Fail();
    }
    *out = reinterpret_cast<const T*>(bytes_.data() + pos_);
    pos_ += n * sizeof(T);
    return true;
  }
  bool Fail() {
    failed_ = true;
    return false;
  }
  absl::Status Error(absl::string_view what) const {
    return Corrupt(name_, absl::StrCat(what, " (payload offset ", pos_, ")"));
  }
  bool done() const { return pos_ == bytes_.size(); }

 private:
  absl::string_view bytes_;
  absl::string_view name_;
  size_t pos_ = 0;
  bool failed_ = false;
};

// Checks a file's header and, when `hash_payload`, its payload checksum;
// returns the payload. The file must end where its payload ends.
absl::StatusOr<absl::string_view> OpenFile(absl::string_view bytes,
                                           Kind kind, absl::string_view name,
                                           bool hash_payload = true,
                                           uint64_t* expected_hash = nullptr,
                                           uint32_t* format_version = nullptr) {
  if (bytes.size() < kHeaderBytes || bytes.substr(0, kMagic.size()) != kMagic) {
    return Corrupt(name, "not a clout snapshot file (bad magic bytes)");
  }
  uint32_t version, file_kind;
  uint64_t size, payload_hash, header_hash;
  std::memcpy(&version, bytes.data() + 8, 4);
  std::memcpy(&file_kind, bytes.data() + 12, 4);
  std::memcpy(&size, bytes.data() + 16, 8);
  std::memcpy(&payload_hash, bytes.data() + 24, 8);
  std::memcpy(&header_hash, bytes.data() + 32, 8);
  // The version first: another version's header may differ past it.
  if (version < kOldestFormatVersion || version > kFormatVersion) {
    return EsError(
        400, "illegal_argument_exception",
        absl::StrCat("snapshot file [", name, "] has format version ", version,
                     "; this build reads versions ", kOldestFormatVersion,
                     " to ", kFormatVersion,
                     " only: write it again from its dumps with this build's "
                     "`clout snapshot`"));
  }
  if (format_version != nullptr) *format_version = version;
  if (XXH3_64bits(bytes.data(), 32) != header_hash ||
      bytes.substr(40, kHeaderBytes - 40).find_first_not_of('\0') !=
          absl::string_view::npos) {
    return Corrupt(name, "header checksum mismatch");
  }
  if (file_kind != kind) {
    return Corrupt(name, absl::StrCat("a file of kind ", file_kind,
                                      " where kind ", kind, " was expected"));
  }
  if (size > bytes.size() - kHeaderBytes) {
    return Corrupt(name, absl::StrCat("the file ends at byte ", bytes.size(),
                                      ", inside its payload of ", size,
                                      " bytes"));
  }
  if (size != bytes.size() - kHeaderBytes) {
    return Corrupt(name, absl::StrCat(bytes.size() - kHeaderBytes - size,
                                      " bytes after the payload"));
  }
  absl::string_view payload = bytes.substr(kHeaderBytes, size);
  if (expected_hash != nullptr) *expected_hash = payload_hash;
  if (hash_payload &&
      XXH3_64bits(payload.data(), payload.size()) != payload_hash) {
    return Corrupt(name, "payload checksum mismatch");
  }
  return payload;
}

// Reads the `n` values at `from` (a pointer into `file`'s data()) into
// *to with ReadAt: the column's bytes are never touched through the map.
template <typename T>
absl::Status ReadColumn(const MappedFile& file, const T* from, size_t n,
                        Column<T>* to) {
  to->resize(n);
  if (n == 0) return absl::OkStatus();
  const uint64_t offset = static_cast<uint64_t>(
      reinterpret_cast<const char*>(from) - file.data().data());
  return file.ReadAt(offset, reinterpret_cast<char*>(to->data()),
                     n * sizeof(T));
}

// A column's bytes.
template <typename T>
absl::string_view ColumnBytes(const Column<T>& column) {
  return absl::string_view(reinterpret_cast<const char*>(column.data()),
                           column.size() * sizeof(T));
}

// A MappedFile over bytes already in memory (ParseSnapshotBundle's).
class BytesFile : public MappedFile {
 public:
  explicit BytesFile(absl::string_view bytes) : bytes_(bytes) {}
  absl::string_view data() const override { return bytes_; }

 private:
  absl::string_view bytes_;
};

// A plain segment from its file (`bytes`, a part of `file`'s data()),
// checked to hold together. Its columns are read with ReadAt into the
// job's own columns and hashed there; the rest (headers, dictionary,
// padding) is read and hashed through the map.
absl::StatusOr<std::shared_ptr<const JobResults>> ReadSegment(
    const MappedFile& file, absl::string_view bytes, absl::string_view name) {
  uint64_t expected_hash = 0;
  uint32_t format_version = 0;
  absl::StatusOr<absl::string_view> payload =
      OpenFile(bytes, kSegment, name, /*hash_payload=*/false, &expected_hash,
               &format_version);
  if (!payload.ok()) return payload.status();
  Reader r(*payload, name);
  auto job = std::make_shared<JobResults>();
  absl::string_view job_id;
  uint64_t rows, strings, spans, interim_rows;
  int64_t min_ts, max_ts;
  uint8_t time_ordered;
  uint32_t field_names;
  if (!r.GetString(&job_id) || !r.Get(&rows) || !r.Get(&strings) ||
      !r.Get(&spans) || !r.Get(&min_ts) || !r.Get(&max_ts) ||
      !r.Get(&interim_rows) || !r.Get(&time_ordered) || !r.Get(&field_names)) {
    return r.Error("truncated segment header");
  }
  if (rows >= UINT32_MAX || strings >= UINT32_MAX || spans >= UINT32_MAX) {
    return r.Error("counts out of range");
  }
  // Read before the checksum is compared: nothing here is sized by a count
  // (a damaged one fails a bounds check first).
  job->job_id = std::string(job_id);
  auto arena = std::make_shared<StringArena>();
  std::vector<absl::string_view> names;
  for (uint32_t i = 0; i < field_names; ++i) {
    absl::string_view field;
    if (!r.GetString(&field)) return r.Error("truncated field names");
    names.push_back(field);
  }
  uint8_t has_order = 0;  // version 2 on
  if (format_version >= 2 && (!r.Get(&has_order) || has_order > 1)) {
    return r.Error("truncated segment header");
  }
  const int64_t* timestamp;
  const double *score, *initial, *probability;
  const uint32_t *span_code, *name_code, *value_code, *version;
  const uint8_t* interim;
  const uint64_t* offsets;
  const char* string_bytes;
  const int64_t* span_values;
  if (!r.GetArray(rows, &timestamp) || !r.GetArray(rows, &score) ||
      !r.GetArray(rows, &initial) || !r.GetArray(rows, &probability) ||
      !r.GetArray(rows, &span_code) || !r.GetArray(rows, &name_code) ||
      !r.GetArray(rows, &value_code) || !r.GetArray(rows, &version) ||
      !r.GetArray(rows, &interim) || !r.GetArray(strings + 1, &offsets)) {
    return r.Error("truncated columns");
  }
  const uint64_t string_total = offsets[strings];
  if (!r.GetArray(string_total, &string_bytes) ||
      !r.GetArray(spans, &span_values)) {
    return r.Error("truncated dictionary");
  }
  const uint32_t* score_order = nullptr;
  if (has_order == 1 && !r.GetArray(rows, &score_order)) {
    return r.Error("truncated score order");
  }
  if (!r.done()) return r.Error("bytes after the last section");
  // The columns, read into the job's own memory, then the payload's
  // checksum in file order: the columns from there, the rest from the map.
  InfluencerColumns& c = job->columns;
  RowOrder order;  // the score order, if the file has one
  {
    absl::Status read = ReadColumn(file, timestamp, rows, &c.timestamp);
    if (read.ok()) read = ReadColumn(file, score, rows, &c.influencer_score);
    if (read.ok()) {
      read = ReadColumn(file, initial, rows, &c.initial_influencer_score);
    }
    if (read.ok()) read = ReadColumn(file, probability, rows, &c.probability);
    if (read.ok()) read = ReadColumn(file, span_code, rows, &c.bucket_span_code);
    if (read.ok()) read = ReadColumn(file, name_code, rows, &c.field_name_code);
    if (read.ok()) {
      read = ReadColumn(file, value_code, rows, &c.field_value_code);
    }
    if (read.ok()) read = ReadColumn(file, version, rows, &c.version);
    if (read.ok()) read = ReadColumn(file, interim, rows, &c.is_interim);
    if (read.ok() && score_order != nullptr) {
      read = ReadColumn(file, score_order, rows, &order);
    }
    if (!read.ok()) return read;
  }
  {
    const std::pair<const void*, absl::string_view> columns[] = {
        {timestamp, ColumnBytes(c.timestamp)},
        {score, ColumnBytes(c.influencer_score)},
        {initial, ColumnBytes(c.initial_influencer_score)},
        {probability, ColumnBytes(c.probability)},
        {span_code, ColumnBytes(c.bucket_span_code)},
        {name_code, ColumnBytes(c.field_name_code)},
        {value_code, ColumnBytes(c.field_value_code)},
        {version, ColumnBytes(c.version)},
        {interim, ColumnBytes(c.is_interim)},
        // Last in the file; none: nothing (at the end, hashing nothing).
        {score_order != nullptr ? static_cast<const void*>(score_order)
                                : payload->data() + payload->size(),
         ColumnBytes(order)}};
    XXH3_state_t* state = XXH3_createState();
    XXH3_64bits_reset(state);
    const char* at = payload->data();
    for (const auto& [mapped, copy] : columns) {
      const char* start = static_cast<const char*>(mapped);
      XXH3_64bits_update(state, at, static_cast<size_t>(start - at));
      XXH3_64bits_update(state, copy.data(), copy.size());
      at = start + copy.size();
    }
    XXH3_64bits_update(state, at,
                       static_cast<size_t>(payload->data() + payload->size() - at));
    const uint64_t hash = XXH3_64bits_digest(state);
    XXH3_freeState(state);
    if (hash != expected_hash) return Corrupt(name, "payload checksum mismatch");
  }
  // The dictionary.
  job->strings.reserve(strings);
  job->string_codes.reserve(strings);
  for (uint64_t i = 0; i < strings; ++i) {
    if (offsets[i] > offsets[i + 1] || offsets[i + 1] > string_total) {
      return r.Error("dictionary offsets out of order");
    }
    absl::string_view s = arena->Store(absl::string_view(
        string_bytes + offsets[i], offsets[i + 1] - offsets[i]));
    if (!job->string_codes.emplace(s, static_cast<uint32_t>(i)).second) {
      return r.Error("a string twice in the dictionary");
    }
    job->strings.push_back(s);
  }
  for (absl::string_view field : names) {
    job->field_names.push_back(arena->Store(field));
  }
  job->arenas.push_back(std::move(arena));
  for (uint64_t i = 0; i < spans; ++i) {
    if (span_values[i] < 0) return r.Error("a negative bucket span");
    job->bucket_spans.push_back(span_values[i]);
  }
  // Every row holds together: codes within their dictionaries, values as
  // the loader stages them, and the summary fields true.
  uint64_t interim_count = 0;
  bool ordered = true;
  bool any_missing = false;  // a missing double (NaN) to make canonical
  auto stored = [&any_missing](double v) {
    any_missing |= IsMissing(v);
    return std::isfinite(v) || IsMissing(v);
  };
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  {
    // The job's own columns from here on, never the map.
    const int64_t* timestamp = c.timestamp.data();
    const double* score = c.influencer_score.data();
    const double* initial = c.initial_influencer_score.data();
    const double* probability = c.probability.data();
    const uint32_t* span_code = c.bucket_span_code.data();
    const uint32_t* name_code = c.field_name_code.data();
    const uint32_t* value_code = c.field_value_code.data();
    const uint32_t* version = c.version.data();
    const uint8_t* interim = c.is_interim.data();
    for (uint64_t i = 0; i < rows; ++i) {
      if (span_code[i] >= spans || name_code[i] >= strings ||
          value_code[i] >= strings || interim[i] > 1 || version[i] == 0 ||
          !stored(score[i]) || !stored(initial[i]) ||
          !stored(probability[i]) || timestamp[i] < kMinEpochMillis ||
          timestamp[i] > kMaxEpochMillis) {
        return r.Error(absl::StrCat("row ", i, " does not hold together"));
      }
      interim_count += interim[i];
      if (i > 0 && timestamp[i] < timestamp[i - 1]) ordered = false;
      lo = std::min(lo, timestamp[i]);
      hi = std::max(hi, timestamp[i]);
    }
  }
  if (interim_count != interim_rows || (time_ordered == 1 && !ordered) ||
      time_ordered > 1 || (rows > 0 && (lo != min_ts || hi != max_ts))) {
    return r.Error("the segment's summary does not match its rows");
  }
  job->may_have_missing_doubles = any_missing;
  if (any_missing) {
    for (Column<double>* column :
         {&c.influencer_score, &c.initial_influencer_score, &c.probability}) {
      for (double& v : *column) CheckStoredDouble(&v);
    }
  }
  job->interim_rows = interim_count;
  job->time_ordered = time_ordered == 1;
  job->min_timestamp = min_ts;
  job->max_timestamp = max_ts;
  std::shared_ptr<const JobResults> segment(std::move(job));
  // The score order spares a reopened store its costliest sort. It is not
  // trusted: the executor checks it the first time it needs it (a pass
  // with random reads, cheaper than the sort but not free, so a one-off
  // query that never needs it does not pay).
  if (score_order != nullptr) {
    OfferScoreOrder(segment, std::make_shared<const RowOrder>(std::move(order)));
  }
  return segment;
}

// A version from a manifest, whose segments `segment(file)` gives (null:
// the segment is left out of its job, as lost).
template <typename SegmentOf>
absl::StatusOr<std::shared_ptr<const StoreVersion>> ReadManifest(
    absl::string_view bytes, absl::string_view name, SegmentOf segment_of) {
  absl::StatusOr<absl::string_view> payload = OpenFile(bytes, kManifest, name);
  if (!payload.ok()) return payload.status();
  Reader r(*payload, name);
  auto version = std::make_shared<StoreVersion>();
  uint32_t jobs;
  if (!r.Get(&version->generation) || !r.Get(&version->next_seq_no) ||
      !r.Get(&jobs)) {
    return r.Error("truncated manifest");
  }
  absl::flat_hash_set<const JobResults*> used;
  for (uint32_t j = 0; j < jobs; ++j) {
    absl::string_view job_id;
    uint32_t count;
    if (!r.GetString(&job_id) || !r.Get(&count)) return r.Error("truncated job");
    std::vector<JobResults::Segment> segments;
    size_t live_rows = 0;
    size_t interim_rows = 0;
    for (uint32_t k = 0; k < count; ++k) {
      absl::string_view file;
      uint64_t deleted;
      if (!r.GetString(&file) || !r.Get(&deleted)) {
        return r.Error("truncated segment list");
      }
      absl::StatusOr<std::shared_ptr<const JobResults>> rows = segment_of(file);
      if (!rows.ok()) return rows.status();
      if (*rows == nullptr) {  // lost: its deleted rows go with it
        uint32_t row;
        for (uint64_t i = 0; i < deleted; ++i) {
          if (!r.Get(&row)) return r.Error("truncated deleted rows");
        }
        continue;
      }
      if ((*rows)->job_id != job_id || !used.insert(rows->get()).second) {
        return r.Error(absl::StrCat("segment [", file, "] does not belong to job [",
                                    job_id, "] alone"));
      }
      const size_t n = (*rows)->columns.size();
      if (deleted > n) return r.Error("more deleted rows than rows");
      JobResults::Segment segment{*rows, nullptr};
      live_rows += n - deleted;
      interim_rows += (*rows)->interim_rows;
      if (deleted > 0) {
        std::vector<uint32_t> list(deleted);
        for (uint64_t i = 0; i < deleted; ++i) {
          if (!r.Get(&list[i])) return r.Error("truncated deleted rows");
          if (list[i] >= n || (i > 0 && list[i] <= list[i - 1])) {
            return r.Error("deleted rows out of order");
          }
          interim_rows -= (*rows)->columns.is_interim[list[i]];
        }
        segment.deleted = std::make_shared<const DeletedRows>(std::move(list));
        segment.deleted_cache = std::make_shared<DeletedRowCache>();
      }
      segments.push_back(std::move(segment));
    }
    uint32_t names;
    if (!r.Get(&names)) return r.Error("truncated field names");
    if (names > payload->size() / 4) return r.Error("bad field name count");
    std::vector<absl::string_view> field_names(names);
    for (absl::string_view& field : field_names) {
      if (!r.GetString(&field)) return r.Error("truncated field names");
    }
    std::shared_ptr<const JobResults> job;
    if (segments.size() == 1 && segments[0].deleted == nullptr) {
      job = segments[0].rows;
    } else {
      auto assembled = std::make_shared<JobResults>();
      assembled->job_id = std::string(job_id);
      auto arena = std::make_shared<StringArena>();
      for (absl::string_view field : field_names) {
        assembled->field_names.push_back(arena->Store(field));
      }
      assembled->arenas.push_back(std::move(arena));
      assembled->live_rows = live_rows;
      assembled->interim_rows = interim_rows;
      assembled->segments = std::move(segments);
      job = std::move(assembled);
    }
    for (absl::string_view field : job->field_names) {
      version->influencer_field_names.insert(std::string(field));
    }
    if (!version->jobs.emplace(std::string(job_id), std::move(job)).second) {
      return r.Error("a job twice");
    }
  }
  if (!r.done()) return r.Error("bytes after the last job");
  return std::shared_ptr<const StoreVersion>(std::move(version));
}

absl::Status WritePieces(WritableFile& file, const Pieces& pieces) {
  for (absl::string_view piece : pieces.pieces()) {
    if (absl::Status s = file.Append(piece); !s.ok()) return s;
  }
  return absl::OkStatus();
}

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Files from this size on are written with Env::CreateForLargeWrite.
constexpr size_t kLargeFile = 1 << 20;

// Writes `pieces` to `path` through `path`.tmp: synced and renamed (the
// caller syncs the directory).
absl::Status WriteDurably(Env* env, const std::string& path,
                          const Pieces& pieces) {
  const std::string tmp = path + ".tmp";
  {
    // A left-over temporary file from a crash is replaced. A large file
    // goes around the page cache where the Env can (env.h).
    absl::StatusOr<std::unique_ptr<WritableFile>> file;
    if (pieces.size() >= kLargeFile) {
      file = env->CreateForLargeWrite(tmp);
    } else {
      env->Remove(tmp).IgnoreError();
      file = env->OpenAppendable(tmp);
    }
    if (!file.ok()) return file.status();
    absl::Status s = WritePieces(**file, pieces);
    if (s.ok()) s = (*file)->Sync();
    if (!s.ok()) {
      env->Remove(tmp).IgnoreError();
      return s;
    }
  }
  return env->Rename(tmp, path);
}

}  // namespace

bool IsSnapshotFile(absl::string_view prefix) {
  return absl::StartsWith(prefix, kMagic);
}

absl::StatusOr<uint64_t> WriteSnapshotBundle(Env* env, const std::string& path,
                                             const StoreVersion& version) {
  // Payload: u32 files, u32 zero, then (offset, size) per file, padded;
  // then the segment files and the manifest, each 64-byte aligned.
  std::vector<Pieces> files;
  absl::flat_hash_map<const void*, size_t> index;
  const std::vector<JobColumnView> jobs = JobsOf(version);
  for (const JobColumnView& job : jobs) {
    for (const SegmentColumnView& segment : job.segments()) {
      index[segment.id] = files.size();
      files.push_back(SegmentFile(job.job_id(), segment));
    }
  }
  files.push_back(ManifestFile(version, jobs, [&](const SegmentColumnView& segment) {
    return absl::StrCat("#", index.at(segment.id));
  }));
  std::string table;
  Put<uint32_t>(&table, static_cast<uint32_t>(files.size()));
  Put<uint32_t>(&table, 0);
  uint64_t at = (8 + 16 * files.size() + kAlign - 1) / kAlign * kAlign;
  for (const Pieces& file : files) {
    Put<uint64_t>(&table, at);
    Put<uint64_t>(&table, file.size());
    at = (at + file.size() + kAlign - 1) / kAlign * kAlign;
  }
  Pieces payload;
  payload.AddCopy(std::move(table));
  for (Pieces& file : files) {
    payload.Pad();
    payload.Append(std::move(file));
  }
  Pieces bundle = File(kBundle, std::move(payload));
  if (absl::Status s = WriteDurably(env, path, bundle); !s.ok()) return s;
  if (absl::Status s = env->SyncDir(DirOf(path)); !s.ok()) return s;
  return bundle.size();
}

namespace {

absl::StatusOr<std::shared_ptr<const StoreVersion>> ParseBundle(
    const MappedFile& file, absl::string_view name) {
  const absl::string_view bytes = file.data();
  // The bundle's own payload checksum repeats what its files' checksums
  // cover: it is not computed again. Instead the file table must lay the
  // files out exactly as the writer does (one after another, each at the
  // next 64-byte boundary, the last ending the payload) and every byte
  // between them must be zero, so that every byte is still checked, once.
  absl::StatusOr<absl::string_view> payload =
      OpenFile(bytes, kBundle, name, /*hash_payload=*/false);
  if (!payload.ok()) return payload.status();
  Reader r(*payload, name);
  uint32_t count, zero;
  if (!r.Get(&count) || !r.Get(&zero) || zero != 0 || count == 0 ||
      count > payload->size() / 16) {
    return r.Error("bad file table");
  }
  auto aligned = [](uint64_t at) { return (at + kAlign - 1) / kAlign * kAlign; };
  auto zeros = [](absl::string_view gap) {
    return gap.find_first_not_of('\0') == absl::string_view::npos;
  };
  // The table is not hashed: entries are checked one by one, and the list
  // grows as they pass (a damaged count sizes nothing).
  std::vector<absl::string_view> files;
  uint64_t expected = aligned(8 + 16 * uint64_t{count});
  uint64_t previous_end = 8 + 16 * uint64_t{count};
  for (uint32_t k = 0; k < count; ++k) {
    absl::string_view& file = files.emplace_back();
    uint64_t offset, size;
    if (!r.Get(&offset) || !r.Get(&size) || offset != expected ||
        offset > payload->size() || size > payload->size() - offset ||
        !zeros(payload->substr(previous_end, offset - previous_end))) {
      return r.Error("bad file table");
    }
    file = payload->substr(offset, size);
    previous_end = offset + size;
    expected = aligned(previous_end);
  }
  if (previous_end != payload->size()) {
    return r.Error("the files do not end the payload");
  }
  // Every segment is read (checked, copied) up front, on as many threads
  // as there are cores: the copies are bound by page faults, which the
  // kernel serves on each core at once.
  std::vector<std::shared_ptr<const JobResults>> segments(count - 1);
  std::vector<absl::Status> errors(count - 1);
  {
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t i; (i = next.fetch_add(1)) + 1 < count;) {
        absl::StatusOr<std::shared_ptr<const JobResults>> segment =
            ReadSegment(file, files[i],
                        absl::StrCat(name, " (segment ", i, ")"));
        if (segment.ok()) {
          segments[i] = *std::move(segment);
        } else {
          errors[i] = segment.status();
        }
      }
    };
    const size_t threads = std::min<size_t>(
        count - 1, std::max(1u, std::thread::hardware_concurrency()));
    std::vector<std::thread> pool;
    for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (std::thread& t : pool) t.join();
  }
  for (const absl::Status& error : errors) {
    if (!error.ok()) return error;
  }
  return ReadManifest(
      files.back(), absl::StrCat(name, " (manifest)"),
      [&](absl::string_view ref)
          -> absl::StatusOr<std::shared_ptr<const JobResults>> {
        uint64_t i;
        if (!absl::ConsumePrefix(&ref, "#") || !absl::SimpleAtoi(ref, &i) ||
            i + 1 >= count) {
          return Corrupt(name, absl::StrCat("no segment [", ref, "]"));
        }
        return segments[i];
      });
}

}  // namespace

absl::StatusOr<std::shared_ptr<const StoreVersion>> ParseSnapshotBundle(
    absl::string_view bytes, absl::string_view name) {
  return ParseBundle(BytesFile(bytes), name);
}

absl::StatusOr<std::shared_ptr<const StoreVersion>> ReadSnapshotBundle(
    Env* env, const std::string& path) {
  absl::StatusOr<std::unique_ptr<MappedFile>> mapped = env->MapFile(path);
  if (!mapped.ok()) return mapped.status();
  return ParseBundle(**mapped, path);
}

absl::StatusOr<uint64_t> LoadSnapshotFile(InfluencerStore& store,
                                          const std::string& path, Env* env,
                                          std::vector<std::string>* jobs) {
  absl::StatusOr<std::shared_ptr<const StoreVersion>> version =
      ReadSnapshotBundle(env, path);
  if (!version.ok()) return version.status();
  uint64_t results = 0;
  std::vector<std::string> ids;
  for (const auto& [id, job] : (*version)->jobs) {
    results += job->size();
    ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  // A store with a log is given the results as a batch, so that the log
  // holds them (a restored version would bypass it).
  if (store.options().log == nullptr && store.Restore(*version).ok()) {
    if (jobs != nullptr) *jobs = std::move(ids);
    return results;
  }
  // The store holds results already: upsert these as a dump's.
  MutationBatch batch(MutationMode::kLoad);
  for (const auto& [id, stored] : (*version)->jobs) {
    std::shared_ptr<const JobResults> job = MaterializeJob(stored);
    batch.RegisterJob(id);
    MutationBatch::JobRows* rows = batch.Rows(id);
    for (size_t i = 0; i < job->size(); ++i) {
      InfluencerFields row;
      row.field_name = job->field_name(i);
      row.field_value = job->field_value(i);
      row.timestamp = job->columns.timestamp[i];
      row.influencer_score = job->columns.influencer_score[i];
      row.initial_influencer_score = job->columns.initial_influencer_score[i];
      row.probability = job->columns.probability[i];
      row.bucket_span = job->bucket_span(i);
      row.is_interim = job->columns.is_interim[i] != 0;
      batch.AddInfluencer(rows, row);
    }
  }
  absl::StatusOr<MutationResult> applied = store.Apply(std::move(batch));
  if (!applied.ok()) return applied.status();
  if (jobs != nullptr) *jobs = std::move(ids);
  return results;
}

// --- SnapshotDir. ---------------------------------------------------------

namespace {

constexpr absl::string_view kManifestPrefix = "MANIFEST-";
constexpr absl::string_view kSegmentPrefix = "seg-";
// Segments that skip_corrupt set aside: `seg-N.seg.corrupt` (`.1`, ...).
constexpr absl::string_view kCorruptSuffix = ".corrupt";

bool ParseManifestName(absl::string_view name, uint64_t* generation) {
  return absl::ConsumePrefix(&name, kManifestPrefix) && name.size() == 20 &&
         absl::SimpleAtoi(name, generation);
}

}  // namespace

absl::StatusOr<std::unique_ptr<SnapshotDir>> SnapshotDir::Open(
    Env* env, std::string dir, bool skip_corrupt) {
  std::unique_ptr<SnapshotDir> snapshots(new SnapshotDir(env, std::move(dir)));
  absl::StatusOr<std::vector<std::string>> names = env->ListDir(snapshots->dir_);
  if (!names.ok()) return names.status();
  // A name for a file set aside that replaces no earlier one.
  absl::flat_hash_set<std::string> taken(names->begin(), names->end());
  auto aside = [&taken](const std::string& name) {
    std::string candidate = absl::StrCat(name, kCorruptSuffix);
    for (int n = 1; taken.contains(candidate); ++n) {
      candidate = absl::StrCat(name, kCorruptSuffix, ".", n);
    }
    taken.insert(candidate);
    return candidate;
  };
  for (const std::string& name : *names) {
    if (absl::StrContains(name, kCorruptSuffix)) {
      snapshots->kept_earlier_.push_back(name);
    }
  }
  std::sort(snapshots->kept_earlier_.begin(), snapshots->kept_earlier_.end());
  uint64_t newest = 0;
  bool any = false;
  for (const std::string& name : *names) {
    uint64_t generation;
    if (ParseManifestName(name, &generation) && (!any || generation > newest)) {
      newest = generation;
      any = true;
      snapshots->manifest_ = name;
    }
    uint64_t number;
    absl::string_view rest = name;
    if (absl::ConsumePrefix(&rest, kSegmentPrefix) &&
        absl::ConsumeSuffix(&rest, ".seg") && absl::SimpleAtoi(rest, &number)) {
      snapshots->next_file_ = std::max(snapshots->next_file_, number + 1);
    }
  }
  if (!any) return snapshots;
  const std::string path = JoinPath(snapshots->dir_, snapshots->manifest_);
  absl::StatusOr<std::unique_ptr<MappedFile>> manifest = env->MapFile(path);
  if (!manifest.ok()) return manifest.status();
  absl::StatusOr<std::shared_ptr<const StoreVersion>> version = ReadManifest(
      (*manifest)->data(), path,
      [&](absl::string_view file)
          -> absl::StatusOr<std::shared_ptr<const JobResults>> {
        if (!absl::StartsWith(file, kSegmentPrefix) ||
            file.find('/') != absl::string_view::npos) {
          return Corrupt(path, absl::StrCat("bad segment name [", file, "]"));
        }
        const std::string segment_path = JoinPath(snapshots->dir_, file);
        absl::StatusOr<std::unique_ptr<MappedFile>> mapped =
            env->MapFile(segment_path);
        absl::StatusOr<std::shared_ptr<const JobResults>> segment =
            mapped.ok()
                ? ReadSegment(**mapped, (*mapped)->data(), segment_path)
                : Corrupt(path, absl::StrCat("its segment [", file,
                                             "] cannot be read: ",
                                             mapped.status().message()));
        if (!segment.ok() && skip_corrupt) {
          // Its rows are lost: the job goes on without them, and the file
          // (if there is one) is kept aside as evidence.
          std::string skipped = std::string(segment.status().message());
          if (mapped.ok()) {
            mapped->reset();
            const std::string to = aside(std::string(file));
            absl::Status moved =
                env->Rename(segment_path, JoinPath(snapshots->dir_, to));
            if (!moved.ok()) return moved;
            absl::StrAppend(&skipped, "; set aside as [", to, "]");
          }
          snapshots->skipped_.push_back(std::move(skipped));
          return std::shared_ptr<const JobResults>();
        }
        if (!segment.ok()) return segment.status();
        snapshots->written_[segment->get()] = {
            *segment, std::string(file), (*mapped)->data().size()};
        return segment;
      });
  if (!version.ok()) return version.status();
  if (!snapshots->skipped_.empty()) {
    // The renames, durable before anything relies on them.
    if (absl::Status s = env->SyncDir(snapshots->dir_); !s.ok()) return s;
  }
  snapshots->opened_ = *std::move(version);
  return snapshots;
}

absl::StatusOr<SnapshotStats> SnapshotDir::Write(const StoreVersion& version) {
  std::lock_guard<std::mutex> lock(mu_);
  SnapshotStats stats;
  stats.generation = version.generation;
  absl::flat_hash_map<const void*, Written> kept;
  std::vector<std::pair<std::string, Pieces>> fresh;
  const std::vector<JobColumnView> jobs = JobsOf(version);
  for (const JobColumnView& job : jobs) {
    for (const SegmentColumnView& segment : job.segments()) {
      ++stats.segments;
      auto it = written_.find(segment.id);
      if (it != written_.end() && it->second.segment.lock() == segment.handle) {
        stats.bytes += it->second.bytes;
        kept[segment.id] = it->second;
        continue;
      }
      const std::string file = absl::StrFormat("seg-%020d.seg", next_file_++);
      Pieces pieces = SegmentFile(job.job_id(), segment);
      stats.bytes += pieces.size();
      stats.bytes_written += pieces.size();
      ++stats.segments_written;
      kept[segment.id] = {segment.handle, file, pieces.size()};
      fresh.emplace_back(file, std::move(pieces));
    }
  }
  // On failure, this attempt's files go: retries must not fill the disk.
  auto fail = [&](absl::Status s, const std::string& manifest) {
    for (const auto& [file, pieces] : fresh) {
      env_->Remove(JoinPath(dir_, file)).IgnoreError();
    }
    if (!manifest.empty()) env_->Remove(JoinPath(dir_, manifest)).IgnoreError();
    return s;
  };
  // New segments, durable before the manifest that names them.
  for (const auto& [file, pieces] : fresh) {
    if (absl::Status s = WriteDurably(env_, JoinPath(dir_, file), pieces);
        !s.ok()) {
      return fail(s, "");
    }
  }
  if (!fresh.empty()) {
    if (absl::Status s = env_->SyncDir(dir_); !s.ok()) return fail(s, "");
  }
  const std::string manifest =
      absl::StrFormat("%s%020d", kManifestPrefix, version.generation);
  Pieces pieces =
      ManifestFile(version, jobs, [&](const SegmentColumnView& segment) {
        return kept.at(segment.id).file;
      });
  stats.bytes += pieces.size();
  stats.bytes_written += pieces.size();
  if (absl::Status s = WriteDurably(env_, JoinPath(dir_, manifest), pieces);
      !s.ok()) {
    return fail(s, "");
  }
  if (absl::Status s = env_->SyncDir(dir_); !s.ok()) {
    // Not durable: the previous manifest stays the newest one on disk.
    return fail(s, manifest == manifest_ ? "" : manifest);
  }
  // The new snapshot is durable: what only older ones used can go.
  written_ = std::move(kept);
  manifest_ = manifest;
  absl::flat_hash_set<std::string> used;
  for (const auto& [key, entry] : written_) used.insert(entry.file);
  absl::StatusOr<std::vector<std::string>> names = env_->ListDir(dir_);
  if (!names.ok()) return stats;  // removal is best effort
  bool removed = false;
  for (const std::string& name : *names) {
    uint64_t generation;
    const bool old_manifest =
        ParseManifestName(name, &generation) && name != manifest_;
    const bool unused_segment = absl::StartsWith(name, kSegmentPrefix) &&
                                !absl::StrContains(name, kCorruptSuffix) &&
                                !used.contains(name);
    if (old_manifest || unused_segment || absl::EndsWith(name, ".tmp")) {
      removed = env_->Remove(JoinPath(dir_, name)).ok() || removed;
    }
  }
  if (removed) env_->SyncDir(dir_).IgnoreError();
  return stats;
}

}  // namespace clout
