// The immutable, columnar form of the loaded results.
//
// A StoreSnapshot is what a query sees: every job's influencer results as
// they stood after one committed load. Snapshots are never modified after
// they are published, so any number of threads may read one concurrently
// without synchronisation; a snapshot stays valid for as long as a
// shared_ptr to it (or to one of its JobResults) is held.
#ifndef CLOUT_ENGINE_SNAPSHOT_H_
#define CLOUT_ENGINE_SNAPSHOT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"

namespace clout {

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

// The columns of influencer results. Row i of every column is one result.
// Strings are codes into a dictionary kept beside the columns; bucket spans,
// which take few distinct values, likewise.
struct InfluencerColumns {
  std::vector<int64_t> timestamp;  // epoch milliseconds
  std::vector<double> influencer_score;
  std::vector<double> initial_influencer_score;
  std::vector<double> probability;
  std::vector<uint32_t> bucket_span_code;
  std::vector<uint8_t> is_interim;  // 0 or 1
  std::vector<uint32_t> field_name_code;
  std::vector<uint32_t> field_value_code;

  size_t size() const { return timestamp.size(); }
  void Reserve(size_t n);
  // Bytes of the column storage in use (size, not capacity).
  static constexpr size_t kBytesPerRow =
      sizeof(int64_t) + 3 * sizeof(double) + 3 * sizeof(uint32_t) +
      sizeof(uint8_t);
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
  // The distinct influencer field names of the job's rows (a name may stay
  // listed after its last row was replaced away).
  std::vector<absl::string_view> field_names;

  size_t size() const { return columns.size(); }
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

// Every job's results after one committed load.
struct StoreSnapshot {
  // Known jobs: any job of which a document (of any result type) was loaded.
  // A known job may hold no influencer results.
  absl::flat_hash_map<std::string, std::shared_ptr<const JobResults>> jobs;
  // Every influencer field name seen in any job: these are sortable fields.
  absl::flat_hash_set<std::string> influencer_field_names;
  // Number of committed loads that produced this snapshot.
  uint64_t generation = 0;

  // The job's results, or nullptr if the job is unknown.
  const JobResults* FindJob(absl::string_view job_id) const {
    auto it = jobs.find(job_id);
    return it == jobs.end() ? nullptr : it->second.get();
  }
};

}  // namespace clout

#endif  // CLOUT_ENGINE_SNAPSHOT_H_
