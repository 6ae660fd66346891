#include "cli/snapshot.h"

#include <algorithm>
#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/common.h"
#include "engine/error.h"
#include "engine/executor.h"
#include "storage/env.h"
#include "storage/snapshot.h"

namespace clout {

const char kSnapshotHelp[] =
    R"(Usage: clout snapshot --output=FILE [--lenient] [--load_threads=N] DUMP...

Loads the dumps (any format `clout query` reads, and snapshot files) and
writes every result to FILE as one snapshot: a checksummed binary file of
the store's columns, dictionaries and each job's score order (the index
that serving and repeated queries use; 4 bytes a result). `clout query`,
`stats`, `bench` and `serve` take it wherever they take a dump (it is
told by its first bytes, not its name) and open it without parsing: in a
small fraction of the time the dumps take to load. It may be mixed with
dumps: given first, it becomes the store's content; after other sources,
its results are upserted as a dump's.

FILE is written under a temporary name, synced and renamed: an existing
FILE is replaced only by a complete snapshot. This build writes format
version 2 and reads versions 1 and 2; a snapshot of another format is
refused with a clear error, never misread: write it again from its
dumps.

Prints one line to stderr: results, bytes, seconds writing (and seconds
sorting before).

Example:
  clout snapshot --output=/tmp/kpi.clout data/it_ops_new_kpi.ndjson
  clout query --job=it_ops_new_kpi --size=3 /tmp/kpi.clout
)";

int RunSnapshot(const std::vector<std::string>& dumps,
                const std::string& output, bool lenient, int load_threads) {
  if (output.empty() || output == "-") {
    return UsageError("--output=FILE is required (a snapshot is written to a "
                      "file, not to stdout)");
  }
  Loaded loaded;
  if (int code = LoadDumps(dumps, StoreOptions(), lenient, load_threads,
                           &loaded);
      code != kOk) {
    return code;
  }
  std::shared_ptr<const StoreVersion> version = loaded.store->Current();
  // The score order of each job goes into the file: whoever opens it to
  // serve or repeat queries need not sort again.
  const absl::Time sort_start = absl::Now();
  WarmIndexes(*version,
              load_threads > 0
                  ? load_threads
                  : static_cast<int>(std::max(
                        1u, std::min(8u, std::thread::hardware_concurrency()))));
  const absl::Duration sorted = absl::Now() - sort_start;
  const absl::Time start = absl::Now();
  absl::StatusOr<uint64_t> bytes =
      WriteSnapshotBundle(Env::Default(), ResolvePath(output), *version);
  if (!bytes.ok()) {
    return Fail(EsError(500, "exception",
                        absl::StrCat("cannot write the snapshot: ",
                                     bytes.status().message())),
                kLoadFailure);
  }
  uint64_t results = 0;
  for (const auto& [id, job] : version->jobs) results += job->size();
  std::fprintf(stderr,
               "clout snapshot: %llu results of %zu jobs, %llu bytes, written "
               "to %s in %.3f s (score orders built in %.3f s before)\n",
               static_cast<unsigned long long>(results), version->jobs.size(),
               static_cast<unsigned long long>(*bytes), output.c_str(),
               absl::ToDoubleSeconds(absl::Now() - start),
               absl::ToDoubleSeconds(sorted));
  return kOk;
}

}  // namespace clout
