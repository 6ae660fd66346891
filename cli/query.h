// `clout query`: the exact Get Influencers response for one request over
// dumps.
#ifndef CLOUT_CLI_QUERY_H_
#define CLOUT_CLI_QUERY_H_

#include <set>
#include <string>
#include <vector>

namespace clout {

// The command's --help text.
extern const char kQueryHelp[];

// The request flags: a body (--body, --body_file) or parameters.
extern const std::vector<std::string> kRequestFlags;

// Runs `clout query` over `dumps` with the flags on the command line
// (`given` names those given). Returns the exit code (common.h); errors
// are printed as one line of the error envelope.
int RunQuery(const std::vector<std::string>& dumps,
             const std::set<std::string>& given);

}  // namespace clout

#endif  // CLOUT_CLI_QUERY_H_
