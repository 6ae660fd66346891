// What the `clout` commands share: exit codes, errors on stderr, and
// loading the dumps named on the command line. Not thread-safe (a command
// line's helpers).
#ifndef CLOUT_CLI_COMMON_H_
#define CLOUT_CLI_COMMON_H_

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/loader.h"
#include "engine/store.h"

namespace clout {

enum ExitCode { kOk = 0, kLoadFailure = 1, kUsage = 2, kUnknownJob = 3 };

// Prints `status` as one line of the error envelope on stderr and returns
// `code`.
int Fail(const absl::Status& status, int code);

// Fail() with a 400 illegal_argument_exception and exit code kUsage.
int UsageError(absl::string_view message);

// `path` as the user meant it: under `bazel run`, relative to the
// directory they ran it in. "-" (stdin) and absolute paths are unchanged.
std::string ResolvePath(const std::string& path);

struct Loaded {
  std::unique_ptr<InfluencerStore> store;
  std::vector<LoadReport> reports;
  uint64_t bytes = 0;
  uint64_t influencers = 0;
  double seconds = 0;
};

// Loads every dump in order ("-" is stdin) into `into`, or, when that is
// null, into a new store made with `options` (loaded->store). Snapshot
// files (`clout snapshot`'s, told by their magic bytes) load too: into a
// store given nothing yet, the snapshot becomes its content without a
// copy; otherwise its results are upserted as a dump's; each dump is one atomic load (`lenient` skips bad documents,
// `threads` parsing threads, 0: one per core up to 8). Returns kOk, or
// prints the error and returns its exit code (kUsage when `dumps` is
// empty, kLoadFailure for a load error).
int LoadDumps(const std::vector<std::string>& dumps, StoreOptions options,
              bool lenient, int threads, Loaded* loaded,
              InfluencerStore* into = nullptr);

// After an unknown job's error, for a person at a terminal only (stderr
// stays one line of the error envelope for programs): prints the jobs the
// dumps hold and how many documents had no result_type.
void HintAtJobs(const Loaded& loaded);

// `s` for a line of text output: control characters (a newline in a
// value would forge a line) written as \n, \t or \xNN.
std::string Printable(absl::string_view s);

// The exit code of a query's error: kUnknownJob for a 404, else kUsage.
int ExitCodeFor(const absl::Status& status);

// Store options for a command that takes --now (ISO 8601 or epoch
// milliseconds; `given` names the flags on the command line): "now" is
// fixed at that time when --now is given. Returns kOk with *options set,
// or prints a 400 and returns kUsage, leaving *options unchanged.
int StoreOptionsFromFlags(const std::set<std::string>& given,
                          StoreOptions* options);

// The whole of the file at `path`; *ok is false when it cannot be read (a
// directory included).
std::string ReadWholeFile(const std::string& path, bool* ok);

}  // namespace clout

#endif  // CLOUT_CLI_COMMON_H_
