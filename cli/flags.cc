#include "cli/flags.h"

#include "absl/flags/flag.h"

// Request flags are strings passed through verbatim to the parameter-mode
// parser, so they behave exactly as the REST parameters (`--desc` alone is
// `?desc`, which means true).
ABSL_FLAG(std::string, job, "", "job id to query");
ABSL_FLAG(std::string, body, "", "request body (JSON), body mode");
ABSL_FLAG(std::string, body_file, "", "file holding the request body");
ABSL_FLAG(std::string, start, "", "keep timestamp >= start");
ABSL_FLAG(std::string, end, "", "keep timestamp < end");
ABSL_FLAG(std::string, from, "", "skip this many matches");
ABSL_FLAG(std::string, size, "", "return at most this many");
ABSL_FLAG(std::string, sort, "", "field to sort on");
ABSL_FLAG(std::string, desc, "", "descending order (true|false)");
ABSL_FLAG(std::string, exclude_interim, "", "drop interim results");
ABSL_FLAG(std::string, influencer_score, "", "keep influencer_score >= this");
ABSL_FLAG(bool, pretty, false, "indent the JSON response");
ABSL_FLAG(bool, human, false, "add timestamp_string to each influencer");
ABSL_FLAG(std::string, format, "", "output format");
ABSL_FLAG(bool, lenient, false, "skip bad documents instead of failing");
ABSL_FLAG(uint64_t, records, 1000, "influencer results to generate");
ABSL_FLAG(int, jobs, 1, "jobs to generate");
ABSL_FLAG(uint64_t, seed, 1, "generator seed");
ABSL_FLAG(bool, mixed, false, "interleave other result types, ISO timestamps");
ABSL_FLAG(std::string, output, "", "output file (default: stdout)");
ABSL_FLAG(std::string, compress, "", "compress the generated dump: gzip or zstd");
ABSL_FLAG(std::string, queries, "", "NDJSON file of requests");
ABSL_FLAG(int, repeat, 100, "times each thread runs each request");
ABSL_FLAG(int, threads, 1, "threads running requests concurrently");
ABSL_FLAG(int, load_threads, 0,
          "threads parsing each NDJSON dump (0: one per core, at most 8)");
ABSL_FLAG(std::string, now, "", "fix \"now\" for date math (ISO 8601 or epoch ms)");
