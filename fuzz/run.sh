#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang + ASan + UBSan, replays
# fuzz/regressions/<target>/, then fuzzes each target for SECONDS.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# SECONDS defaults to 30 (0: build and replay regressions only). TARGETs are
# loader, request_body, request_params, dates, bulk, rest, wal and snapshot
# (default: all), one at a
# time. Exits non-zero if a target fails to build, a regression input fails,
# or fuzzing finds a crash, hang, leak or sanitizer report; the input that
# did it is left in the build directory's artifacts/<target>/ (see
# fuzz/README.md to reproduce it).
#
# Nothing is written into the source tree: objects, binaries, the working
# corpus (seeded from fuzz/corpus/<target>/, grown across runs) and artifacts
# go to $CLOUT_FUZZ_DIR (default ${TMPDIR:-/tmp}/clout-fuzz).
#
# Needs Debian's clang (package clang, clang++ 14), the libFuzzer/sanitizer
# runtime (libclang-rt-14-dev) and the project's libraries (libabsl-dev,
# libsimdjson-dev, zlib1g-dev, libzstd-dev, libyaml-cpp-dev, libcrypt-dev, libssl-dev;
# tools/setup.sh installs those).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

ALL_TARGETS=(loader request_body request_params dates bulk rest wal snapshot)

seconds=30
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=("${ALL_TARGETS[@]}")
for i in "${!targets[@]}"; do
  t=${targets[$i]%_fuzzer}
  t=${t%.cc}
  t=${t#fuzz/}
  if [[ ! -f fuzz/${t}_fuzzer.cc ]]; then
    echo "run.sh: unknown target '${targets[$i]}' (targets: ${ALL_TARGETS[*]})" >&2
    exit 2
  fi
  targets[$i]=$t
done

BUILD=${CLOUT_FUZZ_DIR:-${TMPDIR:-/tmp}/clout-fuzz}
CXX=${CLOUT_FUZZ_CXX:-clang++}
mkdir -p "$BUILD/obj" "$BUILD/bin" "$BUILD/gen" || exit 2

# --- Toolchain checks -------------------------------------------------------
if ! command -v "$CXX" >/dev/null 2>&1; then
  echo "run.sh: $CXX not found. Install Debian's clang:" >&2
  echo "  apt-get update && apt-get install -y clang libclang-rt-14-dev" >&2
  exit 2
fi
for header in /usr/include/simdjson.h /usr/include/absl/status/status.h; do
  if [[ ! -f $header ]]; then
    echo "run.sh: $header missing: run tools/setup.sh" \
         "(or apt-get install -y libsimdjson-dev libabsl-dev)" >&2
    exit 2
  fi
done
probe="$BUILD/probe"
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' \
  >"$probe.cc"
if ! "$CXX" -fsanitize=fuzzer,address,undefined "$probe.cc" -o "$probe" \
     >"$probe.log" 2>&1; then
  cat "$probe.log" >&2
  echo "run.sh: $CXX cannot link a libFuzzer + ASan + UBSan binary: the" \
       "fuzzer runtime is missing. Install it:" >&2
  echo "  apt-get update && apt-get install -y libclang-rt-14-dev" >&2
  exit 2
fi

CXXFLAGS=(-std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined
          -fno-sanitize-recover=undefined -DSIMDJSON_THREADS_ENABLED=1
          -I. -I"$BUILD/gen")
# Debian ships abseil as one shared object per component: link them all.
mapfile -t ABSL_LIBS < <(ls /usr/lib/x86_64-linux-gnu/libabsl_*.so |
                         sed 's#.*/lib\(absl_.*\)\.so#-l\1#')
LIBS=(-lsimdjson -lz -lzstd -lyaml-cpp -lcrypt -lcrypto -lxxhash "${ABSL_LIBS[@]}")

# --- Build ------------------------------------------------------------------
# data/it_ops_new_kpi.ndjson as a C++ raw string literal, for fixed_store.h.
gen="$BUILD/gen/it_ops_new_kpi.inc"
{ printf 'R"clout_dump('; cat data/it_ops_new_kpi.ndjson; printf ')clout_dump"\n'; } \
  >"$gen.tmp" && { cmp -s "$gen.tmp" "$gen" || mv "$gen.tmp" "$gen"; }
rm -f "$gen.tmp"

# Rebuild everything when the compiler or flags change; otherwise an object
# is rebuilt when its source or any header of engine/ or fuzz/ is newer.
stamp="$BUILD/obj/flags"
flags_now="$("$CXX" --version | head -1) ${CXXFLAGS[*]}"
if [[ ! -f $stamp || $(cat "$stamp") != "$flags_now" ]]; then
  rm -f "$BUILD"/obj/*.o "$BUILD"/bin/*
  printf '%s' "$flags_now" >"$stamp"
fi
newest_header=$(ls -t engine/*.h server/*.h storage/*.h fuzz/*.h "$gen" | head -1)
compile() {  # compile SRC OBJ
  if [[ -f $2 && $2 -nt $1 && $2 -nt $newest_header ]]; then return 0; fi
  "$CXX" "${CXXFLAGS[@]}" -c "$1" -o "$2" || { echo "run.sh: failed to compile $1" >&2; return 1; }
}
echo "== building engine objects in $BUILD/obj"
engine_ok=1
pids=()
for src in engine/*.cc; do
  compile "$src" "$BUILD/obj/engine_$(basename "$src" .cc).o" &
  pids+=($!)
  if [[ ${#pids[@]} -ge 2 ]]; then  # two compilers at a time
    wait "${pids[0]}" || engine_ok=0
    pids=("${pids[@]:1}")
  fi
done
for pid in "${pids[@]}"; do wait "$pid" || engine_ok=0; done
# The REST layer, for the rest target (no Beast: the transport is not
# fuzzed here).
for src in server/rest_api.cc server/json_filter.cc server/gzip.cc server/security.cc; do
  compile "$src" "$BUILD/obj/server_$(basename "$src" .cc).o" || engine_ok=0
done
# Storage (the log, snapshots, the in-memory Env), for the wal and snapshot
# targets.
for src in storage/env.cc storage/fault_env.cc storage/wal.cc storage/snapshot.cc; do
  compile "$src" "$BUILD/obj/storage_$(basename "$src" .cc).o" || engine_ok=0
done
# Objects of engine files that no longer exist must not be linked.
for obj in "$BUILD"/obj/engine_*.o; do
  [[ -f engine/$(basename "$obj" .o | sed 's/^engine_//').cc ]] || rm -f "$obj"
done

failed=()
passed=()
declare -A built
for t in "${targets[@]}"; do
  built[$t]=0
  if [[ $engine_ok -eq 0 ]]; then
    failed+=("$t(build)")
    continue
  fi
  echo "== building ${t}_fuzzer"
  obj="$BUILD/obj/${t}_fuzzer.o"
  if compile "fuzz/${t}_fuzzer.cc" "$obj" &&
     "$CXX" "${CXXFLAGS[@]}" "$BUILD"/obj/engine_*.o \
       $([[ $t == rest ]] && echo "$BUILD"/obj/server_*.o) \
       $([[ $t == wal || $t == snapshot ]] && echo "$BUILD"/obj/storage_*.o) "$obj" \
       -o "$BUILD/bin/${t}_fuzzer" "${LIBS[@]}"; then
    built[$t]=1
  else
    echo "run.sh: ${t}_fuzzer failed to build" >&2
    failed+=("$t(build)")
  fi
done

# --- Run --------------------------------------------------------------------
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

max_len_of() {
  case $1 in
    loader) echo 16384 ;;  # bit 3 of byte 0 repeats the dump past 9000 bytes
    wal|snapshot) echo 16384 ;;  # the seeds are a few KB
    *) echo 4096 ;;
  esac
}

for t in "${targets[@]}"; do
  [[ ${built[$t]} -eq 1 ]] || continue
  bin="$BUILD/bin/${t}_fuzzer"
  ok=1

  # Regressions: every file must run clean.
  shopt -s nullglob
  regressions=("$ROOT/fuzz/regressions/$t"/*)
  shopt -u nullglob
  if [[ ${#regressions[@]} -gt 0 ]]; then
    echo "== $t: replaying ${#regressions[@]} regression input(s)"
    if ! "$bin" -rss_limit_mb=2048 -timeout=10 "${regressions[@]}" \
         >"$BUILD/$t.regressions.log" 2>&1; then
      tail -50 "$BUILD/$t.regressions.log" >&2
      echo "run.sh: $t: a regression input failed (log: $BUILD/$t.regressions.log)" >&2
      ok=0
    fi
  fi

  if [[ $ok -eq 1 && $seconds -gt 0 ]]; then
    corpus="$BUILD/corpus/$t"
    artifacts="$BUILD/artifacts/$t"
    mkdir -p "$corpus" "$artifacts"
    # A writable copy: seeds are added, what fuzzing found is kept.
    cp -n "$ROOT/fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null
    dict=()
    [[ -f $ROOT/fuzz/dict/$t.dict ]] && dict=(-dict="$ROOT/fuzz/dict/$t.dict")
    echo "== $t: fuzzing for ${seconds}s (corpus $corpus, artifacts $artifacts)"
    if ! (cd "$BUILD" && "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 \
            -timeout=10 -max_len="$(max_len_of "$t")" \
            -artifact_prefix="$artifacts/" -print_final_stats=1 "${dict[@]}" \
            "$corpus" >"$BUILD/$t.log" 2>&1); then
      tail -60 "$BUILD/$t.log" >&2
      echo "run.sh: $t: fuzzing found a failure (log: $BUILD/$t.log," \
           "input in $artifacts/)" >&2
      ok=0
    else
      grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' \
        "$BUILD/$t.log" | tr '\n' ' '
      echo
    fi
  fi
  if [[ $ok -eq 1 ]]; then passed+=("$t"); else failed+=("$t"); fi
done

echo "fuzz: passed: ${passed[*]:-none}; failed: ${failed[*]:-none}"
echo "${#passed[@]} passed, ${#failed[@]} failed"
[[ ${#failed[@]} -eq 0 ]]
