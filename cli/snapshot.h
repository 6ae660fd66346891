// `clout snapshot`: dumps into one snapshot file that later commands open
// in a fraction of a load's time.
#ifndef CLOUT_CLI_SNAPSHOT_H_
#define CLOUT_CLI_SNAPSHOT_H_

#include <string>
#include <vector>

namespace clout {

// The command's --help text.
extern const char kSnapshotHelp[];

// Loads `dumps` (dumps and snapshot files, as `clout query` does) and
// writes their results to `output` as one snapshot file (written to a
// temporary name, synced, renamed). Returns the exit code (common.h);
// errors are printed as one line of the error envelope.
int RunSnapshot(const std::vector<std::string>& dumps,
                const std::string& output, bool lenient, int load_threads);

}  // namespace clout

#endif  // CLOUT_CLI_SNAPSHOT_H_
