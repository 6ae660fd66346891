#include "cli/generate.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/common.h"
#include "cli/flags.h"
#include "engine/dates.h"
#include "engine/error.h"
#include "engine/java_format.h"
#include "engine/loader.h"
#include "engine/request.h"
#include "engine/response.h"
#include "engine/store.h"
#include "tools/compress.h"
#include "tools/generator.h"

namespace clout {

const char kGenerateHelp[] = R"(Usage: clout generate [--records=N] [--jobs=J] [--seed=S] [--mixed] [--compress=gzip|zstd] [--output=F]

Writes NDJSON result documents: N influencer results (default 1000) over J
jobs (default 1; at most N), the same bytes for the same flags (--seed
default 1). --mixed interleaves bucket and record results and some ISO 8601
timestamps. --compress writes the dump gzip- or zstd-compressed (every
command reads either, recognised by its content). Without --output, the
dump goes to stdout.

Examples:
  clout generate --records=1000000 --jobs=4 --output=/tmp/1m.ndjson
  clout generate --records=1000000 --compress=zstd --output=/tmp/1m.ndjson.zst
)";

int RunGenerate(const std::vector<std::string>& args) {
  if (!args.empty()) {
    return UsageError(absl::StrCat("generate takes no arguments, got [",
                                   args[0], "]"));
  }
  GeneratorOptions options;
  options.records = absl::GetFlag(FLAGS_records);
  options.jobs = absl::GetFlag(FLAGS_jobs);
  options.seed = absl::GetFlag(FLAGS_seed);
  options.mixed = absl::GetFlag(FLAGS_mixed);
  if (options.jobs < 1) return UsageError("--jobs must be at least 1");
  if (static_cast<uint64_t>(options.jobs) > options.records) {
    return UsageError(absl::StrCat("--jobs=", options.jobs, " is more than --records=",
                                   options.records, ": every job needs a result"));
  }
  const std::string compress = absl::GetFlag(FLAGS_compress);
  if (!compress.empty() && compress != "gzip" && compress != "zstd") {
    return UsageError(absl::StrCat("--compress must be gzip or zstd, not [",
                                   compress, "]"));
  }
  std::string path = absl::GetFlag(FLAGS_output);
  std::FILE* out = stdout;
  if (!path.empty()) {
    path = ResolvePath(path);
    out = std::fopen(path.c_str(), "wb");
    if (out == nullptr) {
      return Fail(EsError(500, "io_exception",
                          absl::StrCat(path, ": ", std::strerror(errno))),
                  kLoadFailure);
    }
  }
  bool write_failed = false;
  std::unique_ptr<CompressingWriter> writer;
  if (!compress.empty()) writer = *NewCompressingWriter(compress, out);
  GenerateDump(options, [&](absl::string_view piece) {
    if (write_failed) return;
    if (writer != nullptr) {
      write_failed = !writer->Write(piece).ok();
    } else if (std::fwrite(piece.data(), 1, piece.size(), out) !=
               piece.size()) {
      write_failed = true;
    }
  });
  if (writer != nullptr && !write_failed) write_failed = !writer->Finish().ok();
  if (std::fflush(out) != 0) write_failed = true;
  if (out != stdout && std::fclose(out) != 0) write_failed = true;
  if (write_failed) {
    return Fail(EsError(500, "io_exception",
                        absl::StrCat(path.empty() ? "<stdout>" : path,
                                     ": write failed")),
                kLoadFailure);
  }
  return kOk;
}

}  // namespace clout
