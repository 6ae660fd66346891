// What this build of Clout is: its version, compiler, optimisation, and
// the simdjson kernel its loader parses with (a build without -march falls
// back to simdjson's portable kernel, several times slower). Pure and
// thread-safe.
#ifndef CLOUT_ENGINE_BUILD_INFO_H_
#define CLOUT_ENGINE_BUILD_INFO_H_

#include <string>

namespace clout {

// Clout's version.
inline constexpr char kCloutVersion[] = "0.9.0";

struct BuildInfo {
  std::string version;         // kCloutVersion
  std::string compiler;        // e.g. "gcc 12.2.0"
  bool optimized = false;      // built with optimisation (-O1 or more)
  bool assertions = true;      // built without NDEBUG
  bool sanitizers = false;     // AddressSanitizer or ThreadSanitizer
  std::string simdjson_version;   // the library's, e.g. "3.0.1"
  // The kernel the loader's on-demand parser was compiled for ("haswell",
  // "westmere", "icelake", "fallback", ...), and its description.
  std::string parse_kernel;
  std::string parse_kernel_description;
  // The best kernel this CPU supports (simdjson's runtime detection).
  std::string cpu_best_kernel;
  // True when the loader parses with the portable fallback kernel although
  // the CPU has a faster one: a build without -march (bazel build
  // --config=opt sets it).
  bool slow_parse_kernel = false;
};

BuildInfo GetBuildInfo();

// GetBuildInfo() as a few human-readable lines (for `clout version`).
std::string BuildInfoText();

}  // namespace clout

#endif  // CLOUT_ENGINE_BUILD_INFO_H_
