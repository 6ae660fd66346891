// `clout generate`: a deterministic synthetic dump.
#ifndef CLOUT_CLI_GENERATE_H_
#define CLOUT_CLI_GENERATE_H_

#include <set>
#include <string>
#include <vector>

namespace clout {

// The command's --help text.
extern const char kGenerateHelp[];

// Runs `clout generate` (`args`: positional arguments, which it refuses).
// Returns the exit code (common.h).
int RunGenerate(const std::vector<std::string>& args);

}  // namespace clout

#endif  // CLOUT_CLI_GENERATE_H_
