// clout: Get Influencers over result dumps, from the shell.
//
//   clout query --job=ID [request] DUMP...   the API response for one request
//   clout stats DUMP...                       what a dump holds
//   clout generate --records=N ...            a synthetic dump
//   clout bench --queries=FILE DUMP...        queries per second on your data
//   clout serve [--port=N] [DUMP...]          the REST API over HTTP
//   clout snapshot --output=FILE DUMP...      dumps into one snapshot file
//
// Exit codes: 0 success, 1 load or I/O failure, 2 invalid request or usage,
// 3 unknown job. Errors go to stderr as one line of Elasticsearch's error
// envelope; stdout then stays empty.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cli/bench.h"
#include "cli/common.h"
#include "cli/flags.h"
#include "cli/generate.h"
#include "cli/query.h"
#include "cli/serve.h"
#include "cli/snapshot.h"
#include "cli/stats.h"
#include "engine/build_info.h"

namespace clout {
namespace {

struct Command {
  const char* name;
  const char* summary;
  const char* help;
  std::vector<std::string> flags;
};

const std::vector<Command>& Commands() {
  static const std::vector<Command> commands = {
      {"query", "print the Get Influencers response for one request",
       kQueryHelp,
       {"job", "body", "body_file", "start", "end", "from", "size", "sort",
        "desc", "exclude_interim", "influencer_score", "pretty", "human",
        "format", "lenient", "load_threads", "now"}},
      {"stats", "summarise what dumps hold, per job",
       kStatsHelp,
       {"format", "lenient", "load_threads"}},
      {"generate", "write a deterministic synthetic dump",
       kGenerateHelp,
       {"records", "jobs", "seed", "mixed", "compress", "output"}},
      {"bench", "measure load throughput and queries per second",
       kBenchHelp,
       {"queries", "repeat", "threads", "format", "lenient", "load_threads",
        "now"}},
      {"serve", "serve Elasticsearch's REST API for influencers over HTTP",
       kServeHelp, ServeFlags()},
      {"snapshot", "write dumps as one snapshot file that opens fast",
       kSnapshotHelp, {"output", "lenient", "load_threads"}},
  };
  return commands;
}

void PrintMainHelp(std::FILE* out) {
  std::fprintf(out,
               "clout: Elasticsearch's Get Influencers over result dumps, in "
               "memory.\n\nUsage: clout <command> [flags] [DUMP...]\n\n"
               "Commands:\n");
  for (const Command& c : Commands()) {
    std::fprintf(out, "  %-9s %s\n", c.name, c.summary);
  }
  std::fprintf(out,
               "  version   the version, the build and simdjson's parsing "
               "kernel (also --version)\n");
  std::fprintf(out,
               "  help      this text; `clout help <command>` or `clout "
               "<command> --help` for one\n\nExample:\n  clout query "
               "--job=it_ops_new_kpi --pretty data/it_ops_new_kpi.ndjson\n");
}

// Which flags the command line names, with bare request booleans rewritten
// to "--desc=" (a present but empty parameter, which means true). Returns an
// error message for a flag the command does not take.
std::string ScanFlags(const Command& command, std::vector<char*>& argv,
                      std::vector<std::string>& storage,
                      std::set<std::string>* given) {
  static const std::set<std::string> kBareBooleans = {"desc",
                                                      "exclude_interim"};
  for (size_t i = 1; i < argv.size(); ++i) {
    std::string arg = argv[i];
    if (arg == "--") break;
    if (arg.size() < 3 || arg[0] != '-' || arg[1] != '-') continue;
    std::string name = arg.substr(2, arg.find('=') - 2);
    bool has_value = arg.find('=') != std::string::npos;
    // absl would exit(1) on a bad value; a usage error is exit code 2.
    static const std::set<std::string> kNumbers = {"records", "jobs", "seed",
                                                   "repeat", "threads", "port",
                                                   "shutdown_grace_seconds",
                                                   "max_content_length",
                                                   "idle_timeout_seconds",
                                                   "request_timeout_seconds",
                                                   "load_threads"};
    static const std::set<std::string> kInts = {"jobs", "repeat", "threads", "port",
                                                "shutdown_grace_seconds",
                                                "idle_timeout_seconds",
                                                "request_timeout_seconds",
                                                "load_threads"};
    static const std::set<std::string> kBools = {"pretty", "human", "lenient",
                                                 "mixed",
                                                 "insecure_listen_anywhere"};
    std::string plain = name;
    // Only boolean flags have a negative form, and it takes no value.
    if (absl::StartsWith(plain, "no") && !has_value &&
        kBools.count(plain.substr(2)) &&
        std::find(command.flags.begin(), command.flags.end(), plain) ==
            command.flags.end()) {
      plain = plain.substr(2);  // --nopretty
    }
    if (std::find(command.flags.begin(), command.flags.end(), plain) ==
        command.flags.end()) {
      std::vector<std::string> candidates(command.flags.begin(),
                                          command.flags.end());
      if (std::string(command.name) == "query") {
        // The flags are the API's parameters: Elasticsearch's words, with
        // its "did you mean" suggestions.
        std::string job = "{job_id}";
        for (size_t j = 1; j < argv.size(); ++j) {
          absl::string_view a = argv[j];
          if (absl::ConsumePrefix(&a, "--job=")) job = std::string(a);
        }
        return UnrecognizedParametersReason(
            absl::StrCat("/_ml/anomaly_detectors/", job,
                         "/results/influencers"),
            {name}, candidates);
      }
      // The same suggestions, as flags: "... -> did you mean [a]?" or
      // "... -> did you mean any of [a, b]?".
      const std::string reason =
          UnrecognizedParametersReason("", {name}, candidates);
      std::string hint;
      if (size_t at = reason.find("did you mean "); at != std::string::npos) {
        absl::string_view names = absl::string_view(reason).substr(at + 13);
        absl::ConsumePrefix(&names, "any of ");
        absl::ConsumePrefix(&names, "[");
        absl::ConsumeSuffix(&names, "?");
        absl::ConsumeSuffix(&names, "]");
        std::vector<std::string> flags;
        for (absl::string_view n : absl::StrSplit(names, ", ")) {
          flags.push_back(absl::StrCat("--", n));
        }
        hint = absl::StrCat(" (did you mean ", absl::StrJoin(flags, " or "), "?)");
      }
      return absl::StrCat("clout ", command.name, " does not take --", name,
                          hint, "; see clout ", command.name, " --help");
    }
    given->insert(plain);
    if (!has_value && !kBools.count(plain) && !kBareBooleans.count(plain) &&
        i + 1 >= argv.size()) {
      return absl::StrCat("--", name, " needs a value");
    }
    std::string value = has_value ? arg.substr(arg.find('=') + 1) : "";
    if (kNumbers.count(plain)) {
      if (!has_value && i + 1 < argv.size()) value = argv[i + 1];
      uint64_t number;
      if (!absl::SimpleAtoi(value, &number) ||
          (kInts.count(plain) && number > 2147483647u)) {
        return absl::StrCat("--", name, " needs a non-negative integer",
                            kInts.count(plain) ? " below 2^31" : "", ", not [",
                            value, "]");
      }
    }
    if (kBools.count(plain) && has_value) {
      static const std::set<std::string> kBoolText = {
          "true", "false", "1", "0", "yes", "no", "t", "f", "y", "n"};
      if (!kBoolText.count(value)) {
        return absl::StrCat("--", name, " is true or false, not [", value,
                            "]");
      }
    }
    if (!has_value && kBareBooleans.count(name)) {
      storage.push_back(arg + "=");
      argv[i] = storage.back().data();
    }
  }
  return "";
}

int Main(int argc, char** argv) {
  if (argc < 2) {
    PrintMainHelp(stderr);
    return kUsage;
  }
  std::string name = argv[1];
  if (name == "version" || name == "--version") {
    std::fputs(BuildInfoText().c_str(), stdout);
    return kOk;
  }
  if (name == "help" || name == "--help" || name == "-h") {
    if (argc >= 3) {
      for (const Command& c : Commands()) {
        if (argv[2] == std::string(c.name)) {
          std::fputs(c.help, stdout);
          return kOk;
        }
      }
      return UsageError(absl::StrCat("no command [", argv[2],
                                     "]: see clout help"));
    }
    PrintMainHelp(stdout);
    return kOk;
  }
  const Command* command = nullptr;
  for (const Command& c : Commands()) {
    if (name == c.name) command = &c;
  }
  if (command == nullptr) {
    // One line of the error envelope, like every other error.
    return UsageError(absl::StrCat("unknown command [", name,
                                   "]: see clout help"));
  }
  std::vector<char*> args(argv + 1, argv + argc);  // argv[0] = the command
  std::vector<std::string> storage;
  storage.reserve(2 * args.size());
  for (size_t i = 1; i < args.size(); ++i) {
    std::string s = args[i];
    if (s == "--") break;  // what follows are file names
    if (s == "-h") s = "--help";
    // absl also takes -flag for --flag: spell it --flag so that every flag
    // is checked here (and so that its errors are usage errors, exit 2).
    if (s.size() >= 2 && s[0] == '-' && absl::ascii_isalpha(s[1])) {
      storage.push_back("-" + s);
      args[i] = storage.back().data();
      s = storage.back();
    }
    if (s == "--help" || s == "--helpfull" || s == "--helpshort") {
      std::fputs(command->help, stdout);
      return kOk;
    }
  }
  std::set<std::string> given;
  std::string error = ScanFlags(*command, args, storage, &given);
  if (!error.empty()) return UsageError(error);
  std::vector<char*> rest =
      absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  std::vector<std::string> positional(rest.begin() + 1, rest.end());
  if (name == "query") return RunQuery(positional, given);
  if (name == "stats") return RunStats(positional);
  if (name == "generate") return RunGenerate(positional);
  if (name == "snapshot") {
    return RunSnapshot(positional, absl::GetFlag(FLAGS_output),
                       absl::GetFlag(FLAGS_lenient),
                       absl::GetFlag(FLAGS_load_threads));
  }
  if (name == "serve") {
    ServeArgs serve;
    serve.dumps = positional;
    serve.threads = given.count("threads") ? absl::GetFlag(FLAGS_threads) : 0;
    serve.lenient = absl::GetFlag(FLAGS_lenient);
    serve.load_threads = absl::GetFlag(FLAGS_load_threads);
    return RunServe(serve);
  }
  return RunBench(positional, given);
}

}  // namespace
}  // namespace clout

int main(int argc, char** argv) { return clout::Main(argc, argv); }
