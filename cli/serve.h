// `clout serve`: Elasticsearch's REST API for influencers over HTTP.
#ifndef CLOUT_CLI_SERVE_H_
#define CLOUT_CLI_SERVE_H_

#include <string>
#include <vector>

namespace clout {

// The command's --help text.
extern const char kServeHelp[];

// The flags `clout serve` takes (for the command line's checks).
const std::vector<std::string>& ServeFlags();

struct ServeArgs {
  std::vector<std::string> dumps;
  int threads = 0;  // I/O threads; 0: one per core
  bool lenient = false;
  int load_threads = 0;
};

// Loads the dumps, serves until SIGINT or SIGTERM, and returns the exit
// code (0 after a clean shutdown; errors before serving are printed as one
// line of the error envelope, with the codes of common.h).
int RunServe(const ServeArgs& args);

}  // namespace clout

#endif  // CLOUT_CLI_SERVE_H_
