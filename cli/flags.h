// The flags the query, stats, generate, bench and snapshot commands share
// (serve.cc defines the server's own). Each command checks which of them it
// takes (clout.cc's command table).
#ifndef CLOUT_CLI_FLAGS_H_
#define CLOUT_CLI_FLAGS_H_

#include <cstdint>
#include <string>

#include "absl/flags/declare.h"

ABSL_DECLARE_FLAG(std::string, job);
ABSL_DECLARE_FLAG(std::string, body);
ABSL_DECLARE_FLAG(std::string, body_file);
ABSL_DECLARE_FLAG(std::string, start);
ABSL_DECLARE_FLAG(std::string, end);
ABSL_DECLARE_FLAG(std::string, from);
ABSL_DECLARE_FLAG(std::string, size);
ABSL_DECLARE_FLAG(std::string, sort);
ABSL_DECLARE_FLAG(std::string, desc);
ABSL_DECLARE_FLAG(std::string, exclude_interim);
ABSL_DECLARE_FLAG(std::string, influencer_score);
ABSL_DECLARE_FLAG(bool, pretty);
ABSL_DECLARE_FLAG(bool, human);
ABSL_DECLARE_FLAG(std::string, format);
ABSL_DECLARE_FLAG(bool, lenient);
ABSL_DECLARE_FLAG(uint64_t, records);
ABSL_DECLARE_FLAG(int, jobs);
ABSL_DECLARE_FLAG(uint64_t, seed);
ABSL_DECLARE_FLAG(bool, mixed);
ABSL_DECLARE_FLAG(std::string, output);
ABSL_DECLARE_FLAG(std::string, compress);
ABSL_DECLARE_FLAG(std::string, queries);
ABSL_DECLARE_FLAG(int, repeat);
ABSL_DECLARE_FLAG(int, threads);
ABSL_DECLARE_FLAG(int, load_threads);
ABSL_DECLARE_FLAG(std::string, now);

#endif  // CLOUT_CLI_FLAGS_H_
