// `clout bench`: load throughput and queries per second on a user's data.
#ifndef CLOUT_CLI_BENCH_H_
#define CLOUT_CLI_BENCH_H_

#include <set>
#include <string>
#include <vector>

namespace clout {

// The command's --help text.
extern const char kBenchHelp[];

// Runs `clout bench` over `dumps` with the flags on the command line
// (`given` names those given). Returns the exit code (common.h).
int RunBench(const std::vector<std::string>& dumps,
             const std::set<std::string>& given);

}  // namespace clout

#endif  // CLOUT_CLI_BENCH_H_
