#include "cli/common.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/flags/flag.h"
#include "cli/flags.h"
#include "engine/dates.h"
#include "engine/error.h"
#include "engine/response.h"
#include "storage/snapshot.h"

namespace clout {
namespace {

void ProgressBar(uint64_t done, uint64_t total) {
  int width = 40;
  int filled = total ? static_cast<int>(width * done / total) : width;
  std::fprintf(stderr, "\rloading [%s%s] %3d%%", std::string(filled, '#').c_str(),
               std::string(width - filled, ' ').c_str(),
               total ? static_cast<int>(100 * done / total) : 100);
  std::fflush(stderr);
}

}  // namespace

// Prints `status` as one line of the error envelope on stderr and returns
// `code`.
int Fail(const absl::Status& status, int code) {
  std::fprintf(stderr, "%s\n", ErrorJson(status).c_str());
  return code;
}

int UsageError(absl::string_view message) {
  return Fail(EsError(400, "illegal_argument_exception", message), kUsage);
}

// Where a dump path is resolved from: under `bazel run` the user's own
// directory.
std::string ResolvePath(const std::string& path) {
  if (path == "-" || path.empty() || path[0] == '/') return path;
  const char* dir = std::getenv("BUILD_WORKING_DIRECTORY");
  if (dir == nullptr || *dir == '\0') return path;
  return absl::StrCat(dir, "/", path);
}

// Loads every dump in order into one store; each dump is one atomic load.
namespace {

// Whether the file at `path` starts as a snapshot file does.
bool IsSnapshotPath(const std::string& path) {
  // Only a regular file is sniffed: a FIFO's first bytes belong to the load.
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) return false;
  std::ifstream in(path, std::ios::binary);
  char prefix[8];
  return in.read(prefix, sizeof prefix) &&
         IsSnapshotFile(absl::string_view(prefix, sizeof prefix));
}

// A snapshot file loaded into `store`, reported as a dump's load is.
absl::StatusOr<LoadReport> LoadSnapshot(InfluencerStore& store,
                                        const std::string& path,
                                        const std::string& name) {
  LoadReport report;
  absl::StatusOr<uint64_t> results =
      LoadSnapshotFile(store, path, Env::Default(), &report.jobs);
  if (!results.ok()) return results.status();
  report.source = name;
  report.format = DumpFormat::kSnapshot;
  std::error_code error;
  report.bytes = std::filesystem::file_size(path, error);
  report.documents = *results;
  report.influencers_added = *results;
  report.threads = 1;
  return report;
}

}  // namespace

int LoadDumps(const std::vector<std::string>& dumps, StoreOptions options,
              bool lenient, int threads, Loaded* loaded,
              InfluencerStore* into) {
  if (dumps.empty()) return UsageError("no dump files given (use - for stdin)");
  if (into == nullptr) {
    loaded->store = std::make_unique<InfluencerStore>(std::move(options));
    into = loaded->store.get();
  }
  InfluencerStore& store = *into;
  LoadOptions load_options;
  load_options.lenient = lenient;
  load_options.threads = threads;
  if (load_options.threads == 0) {
    load_options.threads =
        static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
  }
  // A progress bar for big loads, only for a person watching.
  uint64_t total_bytes = 0;
  for (const std::string& dump : dumps) {
    if (dump == "-") continue;
    std::ifstream in(ResolvePath(dump), std::ios::binary | std::ios::ate);
    if (in) total_bytes += static_cast<uint64_t>(std::max<std::streamoff>(0, in.tellg()));
  }
  const bool progress = isatty(2) && total_bytes > (100u << 20);
  absl::Time start = absl::Now();
  for (const std::string& dump : dumps) {
    std::string path = ResolvePath(dump);
    // Errors name the source as "<stdin>:LINE: ...", not "-:LINE: ...".
    const std::string name = dump == "-" ? "<stdin>" : dump;
    load_options.source_name = name;
    absl::StatusOr<LoadReport> report =
        path == "-"              ? LoadStdin(store, load_options)
        : IsSnapshotPath(path)   ? LoadSnapshot(store, path, name)
                                 : LoadFile(store, path, load_options);
    if (!report.ok()) {
      if (progress) std::fprintf(stderr, "\n");
      return Fail(report.status(), kLoadFailure);
    }
    loaded->bytes += report->bytes;
    loaded->influencers += report->influencers_added;
    if (progress) ProgressBar(loaded->bytes, total_bytes);
    if (report->rejected > 0) {
      std::fprintf(stderr, "%s: skipped %llu bad document%s; first: %s\n",
                   name.c_str(),
                   static_cast<unsigned long long>(report->rejected),
                   report->rejected == 1 ? "" : "s",
                   report->errors.empty() ? "" : report->errors[0].c_str());
    }
    loaded->reports.push_back(*std::move(report));
  }
  if (progress) std::fprintf(stderr, "\n");
  loaded->seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return kOk;
}

// After an unknown job's error, for a person at a terminal only (stderr
// stays one line of the error envelope for programs): the jobs the dumps
// do hold, and documents skipped for having no result_type, whose job
// ids are not read (such as influencer documents wrapped in another
// object).
void HintAtJobs(const Loaded& loaded) {
  if (!isatty(2)) return;
  std::vector<std::string> jobs;
  uint64_t untyped = 0;
  for (const LoadReport& report : loaded.reports) {
    for (const std::string& job : report.jobs) {
      if (std::find(jobs.begin(), jobs.end(), job) == jobs.end()) {
        jobs.push_back(job);
      }
    }
    if (auto it = report.skipped.find("(none)"); it != report.skipped.end()) {
      untyped += it->second;
    }
  }
  constexpr size_t kShown = 10;
  std::string hint = "hint: ";
  if (jobs.empty()) {
    absl::StrAppend(&hint, "the dumps hold no job");
  } else {
    absl::StrAppend(&hint, "the dumps hold ", jobs.size(),
                    jobs.size() == 1 ? " job: " : " jobs: ");
    for (size_t i = 0; i < jobs.size() && i < kShown; ++i) {
      absl::StrAppend(&hint, i ? ", " : "", jobs[i]);
    }
    if (jobs.size() > kShown) absl::StrAppend(&hint, ", ...");
  }
  if (untyped > 0) {
    absl::StrAppend(&hint, "; ", untyped,
                    " documents without a result_type were skipped (only "
                    "\"result_type\":\"influencer\" documents are results)");
  }
  std::fprintf(stderr, "%s\n", hint.c_str());
}

// `s` for a line of text output: control characters (a newline in a
// value would forge a line) written as \n, \t or \xNN.
std::string Printable(absl::string_view s) {
  std::string out;
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

int ExitCodeFor(const absl::Status& status) {
  return HttpStatusOf(status) == 404 ? kUnknownJob : kUsage;
}

int StoreOptionsFromFlags(const std::set<std::string>& given,
                          StoreOptions* options) {
  StoreOptions made;
  if (given.count("now")) {
    const std::string text = absl::GetFlag(FLAGS_now);
    absl::StatusOr<int64_t> t = ParseIsoDate(text);
    if (!t.ok()) t = ParseEpochMillis(text);
    if (!t.ok()) {
      return Fail(EsError(400, "illegal_argument_exception",
                          absl::StrCat("--now: cannot parse [", text,
                                       "] as ISO 8601 or epoch milliseconds")),
                  kUsage);
    }
    made.now_millis = [now = *t] { return now; };
  }
  *options = std::move(made);
  return kOk;
}

std::string ReadWholeFile(const std::string& path, bool* ok) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    *ok = false;  // a directory opens, but reads as nothing
    return "";
  }
  std::ifstream in(path, std::ios::binary);
  *ok = static_cast<bool>(in);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace clout
