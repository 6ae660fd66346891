// libFuzzer target: the dump loader (clout::LoadString) over every format,
// then queries on what it loaded and the responses written from them.
//
// Input: byte 0 picks the options, the rest is the dump.
//   bit 0     lenient (else strict)
//   bits 1-2  chunk_bytes: 4096 (the smallest the loader uses), 4099,
//             8192 or 64 KiB
//   bit 3     repeat the dump until it is at least 9000 bytes long, so that
//             lines straddle chunk boundaries and buffers must grow
//   bit 4     replace_jobs for the second load of the same dump
//   bit 5     max_reported_errors = 1 (else 10)
//   bits 6-7  which queries to run (sort field, direction, filters)
//
// A dump starting with gzip's or zstd's magic bytes is decompressed first
// (the corpus holds compressed seeds).
//
// Invariants checked (a failure aborts, which libFuzzer reports as a crash):
//   - a failed load leaves the store unchanged; a strict load rejects
//     nothing; a lenient one keeps at most max_reported_errors messages;
//   - the chunk size changes nothing: the same load with 64 KiB chunks
//     succeeds or fails alike, with the same report and the same store;
//   - strict and lenient agree when nothing is rejected, and a strict
//     failure is either a lenient failure or a lenient rejection;
//   - limits (a small max_document_bytes, a memory budget) only ever fail a
//     load with a limit error; they never change a load's outcome otherwise;
//   - loading the same dump again (upsert, or replace_jobs) leaves the store
//     exactly as after the first load, and adds nothing;
//   - every query answers the same through InfluencerStore, ExecuteQuery and
//     ReferenceExecuteQuery, and its response (and any error) is valid JSON.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "engine/dates.h"
#include "engine/error.h"
#include "engine/loader.h"
#include "engine/store.h"
#include "fuzz/fuzz_util.h"

namespace {

using clout::LoadOptions;
using clout::LoadReport;
using clout_fuzz::CheckErrorJson;
using clout_fuzz::DumpStore;

// kBigChunk holds any input whole (run.sh sets -max_len=16384), and is small
// enough for ASan's primary allocator (a larger one costs an mmap per load).
constexpr size_t kChunks[] = {4096, 4099, 8192, 65536};
constexpr size_t kBigChunk = 65536;

clout::StoreOptions FuzzStoreOptions() {
  clout::StoreOptions options;
  options.now_millis = [] { return clout_fuzz::kNowMillis; };
  return options;
}

// Everything of a report that must not depend on the chunk size (not the
// timing, and not the commit counts when `with_commit` is false).
std::string ReportText(const LoadReport& r, bool with_commit = true) {
  std::string out = absl::StrCat(
      "source=", r.source, " format=", clout::DumpFormatName(r.format),
      " bytes=", r.bytes, " documents=", r.documents, " rejected=", r.rejected,
      " jobs=[", absl::StrJoin(r.jobs, "|"), "] errors=[",
      absl::StrJoin(r.errors, "|"), "] skipped=[");
  for (const auto& [type, n] : r.skipped)
    absl::StrAppend(&out, type, ":", n, ",");
  out.append("]");
  if (with_commit) {
    absl::StrAppend(&out, " added=", r.influencers_added,
                    " replaced=", r.replaced, " deleted=", r.deleted,
                    " unchanged=", r.unchanged);
  }
  return out;
}

std::string StatusText(const absl::StatusOr<LoadReport>& r) {
  return r.ok() ? ReportText(*r) : r.status().ToString();
}

struct Loaded {
  absl::StatusOr<LoadReport> report;
  std::string store_dump;
};

Loaded LoadFresh(absl::string_view dump, const LoadOptions& options) {
  clout::InfluencerStore store(FuzzStoreOptions());
  Loaded out{clout::LoadString(store, dump, options), ""};
  out.store_dump = DumpStore(store);
  if (!out.report.ok()) {
    CLOUT_FUZZ_CHECK(out.store_dump.empty(),
                     "failed load changed the store: ", out.store_dump);
  }
  return out;
}

void RunQueries(const clout::InfluencerStore& store, const LoadReport& report,
                uint8_t variant) {
  std::shared_ptr<const clout::StoreVersion> snapshot = store.Current();
  std::vector<std::string> jobs(report.jobs.begin(), report.jobs.end());
  if (jobs.size() > 2) jobs.resize(2);
  jobs.push_back("no-such-job");
  // A per-influencer field to sort on, if any.
  std::string field;
  for (const std::string& name : snapshot->influencer_field_names) {
    if (field.empty() || name < field) field = name;
  }
  static const char* const kSorts[] = {"influencer_score",
                                       "timestamp",
                                       "influencer_field_value",
                                       "probability",
                                       "initial_influencer_score",
                                       "bucket_span",
                                       "is_interim",
                                       "influencer_field_name",
                                       "job_id",
                                       "result_type"};
  for (const std::string& job : jobs) {
    clout::InfluencersRequest request;
    request.job_id = job;
    // The default request, and the first row it returns to filter on.
    clout_fuzz::RunQuery(store, request, true);
    absl::StatusOr<clout::InfluencersPage> first =
        store.GetInfluencers(request);

    request.sort = (variant & 1) && !field.empty()
                       ? field
                       : kSorts[(variant >> 1) % std::size(kSorts)];
    request.desc = variant & 1;
    request.from = variant % 3;
    request.size = (variant & 0x30) == 0x30 ? 0 : 1 + variant % 5;
    clout_fuzz::RunQuery(store, request, true);
    // Only exclude_interim (counts from the job's totals).
    request.exclude_interim = true;
    clout_fuzz::RunQuery(store, request, true);
    request.exclude_interim = false;

    if (!first.ok() || first->influencers.empty()) continue;
    const clout::Influencer& row = first->influencers.front();
    // Only a score threshold, on a score order (counts by binary search).
    clout::InfluencersRequest scored;
    scored.job_id = job;
    scored.desc = variant & 2;
    scored.influencer_score = row.influencer_score;
    scored.from = variant % 2;
    scored.size = 2;
    clout_fuzz::RunQuery(store, scored, true);
    // Only a time range, on a timestamp order.
    clout::InfluencersRequest timed;
    timed.job_id = job;
    timed.sort = "timestamp";
    timed.desc = variant & 4;
    timed.start = absl::StrCat(row.timestamp - (variant & 3));
    timed.end = (variant & 2) ? absl::StrCat(row.timestamp + 1)
                              : clout::FormatIsoMillis(row.timestamp + 600000);
    clout_fuzz::RunQuery(store, timed, true);
    // Everything at once.
    request.start = timed.start;
    request.end = timed.end;
    request.exclude_interim = variant & 4;
    request.influencer_score = (variant & 8) ? row.influencer_score : 0.0;
    request.from = 0;
    request.size = 3;
    clout_fuzz::RunQuery(store, request, true);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  std::string dump(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((mode & 8) && !dump.empty()) {
    const std::string unit = dump;
    while (dump.size() < 9000) dump += unit;
  }

  LoadOptions options;
  options.lenient = mode & 1;
  options.chunk_bytes = kChunks[(mode >> 1) & 3];
  options.max_reported_errors = (mode & 32) ? 1 : 10;
  const uint8_t variant =
      static_cast<uint8_t>(mode >> 6) | static_cast<uint8_t>(size << 2);

  clout::InfluencerStore store(FuzzStoreOptions());
  absl::StatusOr<LoadReport> report = clout::LoadString(store, dump, options);
  const std::string dumped = DumpStore(store);
  if (!report.ok()) {
    CLOUT_FUZZ_CHECK(dumped.empty(), "failed load changed the store");
    // The loader validated the UTF-8 of whatever its messages quote.
    CheckErrorJson(report.status(), true);
  } else {
    CLOUT_FUZZ_CHECK(options.lenient || report->rejected == 0,
                     "strict load rejected ", report->rejected);
    CLOUT_FUZZ_CHECK(report->errors.size() <= options.max_reported_errors,
                     report->errors.size(), " errors kept");
    CLOUT_FUZZ_CHECK(
        report->errors.size() ==
            std::min<uint64_t>(report->rejected, options.max_reported_errors),
        report->errors.size(), " errors for ", report->rejected, " rejected");
    // (A compressed dump reports its decompressed bytes.)
    CLOUT_FUZZ_CHECK(!report->compression.empty() || report->bytes == dump.size(),
                     "read ", report->bytes, " of ", dump.size(), " bytes");
    for (const std::string& e : report->errors) {
      CLOUT_FUZZ_CHECK(clout_fuzz::IsValidUtf8(e), "error not UTF-8: ", e);
    }
  }

  // The chunk size changes nothing.
  if (options.chunk_bytes != kBigChunk) {
    LoadOptions big = options;
    big.chunk_bytes = kBigChunk;
    Loaded other = LoadFresh(dump, big);
    CLOUT_FUZZ_CHECK(StatusText(report) == StatusText(other.report), "chunk ",
                     options.chunk_bytes, ": ", StatusText(report), "\nchunk ",
                     kBigChunk, ": ", StatusText(other.report));
    CLOUT_FUZZ_CHECK(dumped == other.store_dump, "stores differ by chunk size");
  }

  // Strict and lenient agree.
  {
    LoadOptions flipped = options;
    flipped.lenient = !options.lenient;
    flipped.chunk_bytes = kBigChunk;
    Loaded other = LoadFresh(dump, flipped);
    const absl::StatusOr<LoadReport>& strict =
        options.lenient ? other.report : report;
    const absl::StatusOr<LoadReport>& lenient =
        options.lenient ? report : other.report;
    if (strict.ok()) {
      CLOUT_FUZZ_CHECK(lenient.ok() && lenient->rejected == 0,
                       "strict ok but lenient: ", StatusText(lenient));
      CLOUT_FUZZ_CHECK(dumped == other.store_dump,
                       "strict and lenient stores differ");
    } else if (lenient.ok()) {
      CLOUT_FUZZ_CHECK(lenient->rejected > 0, "strict failed (",
                       strict.status().ToString(),
                       ") but lenient rejected nothing");
    }
    if (lenient.ok() && lenient->rejected == 0) {
      CLOUT_FUZZ_CHECK(strict.ok(), "lenient rejected nothing but strict: ",
                       strict.status().ToString());
    }
  }

  // Limits only ever fail a load: with a small max_document_bytes and a
  // memory budget, a load either does what the unlimited one did or fails
  // with a limit error (and leaves the store unchanged).
  {
    LoadOptions limited = options;
    limited.max_document_bytes = 4096 + 512 * (variant & 7);
    limited.memory_budget_bytes =
        (mode & 64) ? 0 : (size_t{1} << 14) * (1 + (variant & 3));
    Loaded other = LoadFresh(dump, limited);
    if (other.report.ok() || !report.ok() ||
        other.report.status().ToString() != report.status().ToString()) {
      const bool limit_error =
          !other.report.ok() &&
          (clout::HttpStatusOf(other.report.status()) == 429 ||
           absl::StrContains(other.report.status().message(),
                             "max_document_bytes"));
      if (!limit_error) {
        CLOUT_FUZZ_CHECK(
            StatusText(other.report) == StatusText(report),
            "limits changed the load:\nlimited: ", StatusText(other.report),
            "\nunlimited: ", StatusText(report));
        CLOUT_FUZZ_CHECK(other.store_dump == dumped,
                         "limits changed the stored rows");
      }
    }
  }

  if (!report.ok()) return 0;
  RunQueries(store, *report, variant);

  // Loading the same dump again changes nothing.
  LoadOptions again = options;
  again.replace_jobs = mode & 16;
  absl::StatusOr<LoadReport> second = clout::LoadString(store, dump, again);
  CLOUT_FUZZ_CHECK(second.ok(),
                   "second load failed: ", second.status().ToString());
  CLOUT_FUZZ_CHECK(ReportText(*report, false) == ReportText(*second, false),
                   "second load read differently: ", ReportText(*report),
                   "\nvs ", ReportText(*second));
  CLOUT_FUZZ_CHECK(second->influencers_added == 0 || again.replace_jobs,
                   "identical re-load added ", second->influencers_added);
  const std::string redumped = DumpStore(store);
  CLOUT_FUZZ_CHECK(
      dumped == redumped, "re-load (replace_jobs=", again.replace_jobs,
      ") changed the store:\n", dumped, "\n--- after ---\n", redumped);
  RunQueries(store, *second, static_cast<uint8_t>(variant + 1));
  return 0;
}
