#include "engine/build_info.h"

#include "absl/strings/str_cat.h"
#include "simdjson.h"

namespace clout {

BuildInfo GetBuildInfo() {
  BuildInfo info;
  info.version = kCloutVersion;
#if defined(__clang__)
  info.compiler = absl::StrCat("clang ", __clang_major__, ".", __clang_minor__,
                               ".", __clang_patchlevel__);
#elif defined(__GNUC__)
  info.compiler = absl::StrCat("gcc ", __GNUC__, ".", __GNUC_MINOR__, ".",
                               __GNUC_PATCHLEVEL__);
#else
  info.compiler = "unknown";
#endif
#if defined(__OPTIMIZE__)
  info.optimized = true;
#endif
#if defined(NDEBUG)
  info.assertions = false;
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  info.sanitizers = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  info.sanitizers = true;
#endif
#endif
  info.simdjson_version =
      absl::StrCat(static_cast<int>(simdjson::SIMDJSON_VERSION_MAJOR), ".",
                   static_cast<int>(simdjson::SIMDJSON_VERSION_MINOR), ".",
                   static_cast<int>(simdjson::SIMDJSON_VERSION_REVISION));
  const simdjson::implementation* builtin = simdjson::builtin_implementation();
  info.parse_kernel = builtin->name();
  info.parse_kernel_description = builtin->description();
  info.cpu_best_kernel = simdjson::get_active_implementation()->name();
  info.slow_parse_kernel =
      info.parse_kernel == "fallback" && info.cpu_best_kernel != "fallback";
  return info;
}

std::string BuildInfoText() {
  const BuildInfo info = GetBuildInfo();
  std::string text = absl::StrCat("clout ", info.version, "\n");
  absl::StrAppend(&text, "build: ", info.compiler, ", ",
                  info.optimized ? "optimized" : "not optimized (debug)",
                  info.assertions ? ", assertions on" : "",
                  info.sanitizers ? ", sanitizers" : "", "\n");
  absl::StrAppend(&text, "simdjson ", info.simdjson_version,
                  ": parsing kernel ", info.parse_kernel, " (",
                  info.parse_kernel_description, "); this CPU's best: ",
                  info.cpu_best_kernel, "\n");
  if (info.slow_parse_kernel) {
    absl::StrAppend(&text,
                    "warning: this build parses with simdjson's portable "
                    "fallback kernel, several times slower than ",
                    info.cpu_best_kernel,
                    ": build with bazel build --config=opt (-march=native)\n");
  }
  return text;
}

}  // namespace clout
