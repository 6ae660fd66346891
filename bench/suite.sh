#!/bin/sh
# Runs every benchmark of the ingest and indexes issues in one go and prints
# each figure next to its target (bench/report.py).
#
#   bench/suite.sh [OUT_DIR]      (default /tmp/clout-suite; 7 to 15 minutes;
#                                  fits the 24 GiB VM)
#
# Nothing else should run meanwhile: the machine has two cores.
set -eu
cd "$(dirname "$0")/.."
OUT="${1:-/tmp/clout-suite}"
mkdir -p "$OUT"
REPS="--benchmark_repetitions=3 --benchmark_report_aggregates_only=true --benchmark_out_format=json"

bazel build --config=opt //bench:ingest_bench //bench:query_bench //cli:clout
BIN="$(bazel info --config=opt bazel-bin)"

echo "== ingest (1M influencers, 4 jobs)"
# Each load configuration in a fresh process, as a user's load would run: in
# one process, later benchmarks reuse memory the earlier ones faulted in.
# The ratio to the raw simdjson walk is taken within one process (this one
# also runs the one-thread load): this VM's cores change speed from one
# process to the next, by up to 1.6x.
"$BIN/bench/ingest_bench" $REPS \
  --benchmark_filter='BM_Load/threads:1/warm:0|BM_RawSimdjsonWalk|BM_Reload' \
  --benchmark_out="$OUT/ingest_baseline.json"
for config in threads:1/warm:0 threads:2/warm:0 threads:1/warm:1 threads:2/warm:1; do
  "$BIN/bench/ingest_bench" $REPS --benchmark_filter="BM_Load/$config" \
    --benchmark_out="$OUT/ingest_$(echo "$config" | tr ':/' '__').json"
done
echo "== queries (10M influencers, 1 job)"
"$BIN/bench/query_bench" $REPS --benchmark_out="$OUT/query_10m.json"
echo "== queries (1M influencers, 4 jobs)"
"$BIN/bench/query_bench" --records=1000000 --jobs=4 $REPS \
  --benchmark_filter='BM_GetInfluencers|BM_FirstQuery|BM_Sqlite' \
  --benchmark_out="$OUT/query_1m_4jobs.json"
echo "== clout bench (1M influencers, 4 jobs)"
"$BIN/cli/clout" generate --records=1000000 --jobs=4 --seed=42 --output="$OUT/1m.ndjson"
for threads in 1 2; do
  "$BIN/cli/clout" bench --queries=bench/queries.ndjson --repeat=300 \
    --threads=$threads --format=json "$OUT/1m.ndjson" >"$OUT/clout_bench_$threads.json"
done
rm -f "$OUT/1m.ndjson"
echo "== summary"
python3 bench/report.py "$OUT" | tee "$OUT/summary.txt"
