// `clout stats`: what dumps hold, per job.
#ifndef CLOUT_CLI_STATS_H_
#define CLOUT_CLI_STATS_H_

#include <set>
#include <string>
#include <vector>

namespace clout {

// The command's --help text.
extern const char kStatsHelp[];

// Runs `clout stats` over `dumps`. Returns the exit code (common.h).
int RunStats(const std::vector<std::string>& dumps);

}  // namespace clout

#endif  // CLOUT_CLI_STATS_H_
