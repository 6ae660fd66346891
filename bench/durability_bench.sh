#!/usr/bin/env bash
# The write-ahead log's figures (the durability issue; see bench/README.md),
# in one run on one disk:
#   1. _bulk of 1,000 documents from 16 connections: documents/s with
#      --durability=request and =async against no log, and fdatasync calls
#      per batch (from /_clout/metrics);
#   2. recovery: the time to replay a log of at least 256 MiB at start.
#
#   bench/durability_bench.sh [OUT_DIR] [SECONDS]   (default
#       /tmp/clout-durability-bench, 10 s per wrk run)
#
# Needs wrk (apt-get install wrk). OUT_DIR must be on the disk to measure.
# Every throughput figure is the median of three alternating rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-/tmp/clout-durability-bench}"
DUR="${2:-10}"
ROUNDS=3
mkdir -p "$OUT"
command -v wrk >/dev/null || { echo "durability_bench: wrk missing (apt-get install wrk)" >&2; exit 2; }

bazel build --config=opt //cli:clout >/dev/null
CLOUT="$(bazel info --config=opt bazel-bin 2>/dev/null)/cli/clout"
[ -f "$OUT/1m.ndjson" ] || "$CLOUT" generate --records=1000000 --jobs=1 --seed=7 --output="$OUT/1m.ndjson"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# start NAME ARGS...: starts an empty server, sets PORT and PID.
start() {
  local name=$1; shift
  "$CLOUT" serve --port=0 --threads=2 "$@" 2>"$OUT/$name.err" &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 1200); do grep -q "listening on" "$OUT/$name.err" && break; sleep 0.1; done
  PORT=$(grep -o 'listening on .*' "$OUT/$name.err" | grep -o '[0-9]*$')
}
metric() { curl -sf "http://127.0.0.1:$1/_clout/metrics" | awk -v m="$2" '$1 == m {print $2}'; }

# 1,000 bodies of 1,000 documents each (the whole dump), sent in turn.
if [ ! -f "$OUT/bodies/999.ndjson" ]; then
  mkdir -p "$OUT/bodies"
  awk -v dir="$OUT/bodies" '{f = sprintf("%s/%d.ndjson", dir, int((NR - 1) / 1000)); print "{\"index\":{\"_index\":\".ml-anomalies-shared\"}}" > f; print > f; if (NR % 1000 == 0) close(f)}' "$OUT/1m.ndjson"
fi
cat >"$OUT/bulk.lua" <<'LUA'
local dir = os.getenv("BODIES")
local bodies = {}
for i = 0, 999 do
  local f = io.open(dir .. "/" .. i .. ".ndjson", "rb")
  bodies[#bodies + 1] = f:read("*a")
  f:close()
end
local n = 0
function setup(thread) thread:set("offset", n * 389); n = n + 1 end
local i = 0
request = function()
  i = i + 1
  local body = bodies[((offset or 0) + i) % #bodies + 1]
  return wrk.format("POST", "/_bulk", {["Content-Type"] = "application/x-ndjson"}, body)
end
LUA

rm -f "$OUT/runs.ndjson" "$OUT/recovery.txt"
for round in $(seq $ROUNDS); do
  echo "== round $round/$ROUNDS"
  for mode in none request async; do
    rm -rf "$OUT/data"
    case $mode in
      none) start $mode ;;
      *) start $mode --data_dir="$OUT/data" --durability=$mode ;;
    esac
    syncs0=$(metric "$PORT" clout_wal_syncs_total); syncs0=${syncs0:-0}
    BODIES="$OUT/bodies" wrk -t2 -c16 -d"${DUR}s" -s "$OUT/bulk.lua" "http://127.0.0.1:$PORT/_bulk" >"$OUT/wrk.txt"
    syncs1=$(metric "$PORT" clout_wal_syncs_total); syncs1=${syncs1:-0}
    appends=$(metric "$PORT" clout_wal_appends_total); appends=${appends:-0}
    rps=$(grep -o 'Requests/sec: *[0-9.]*' "$OUT/wrk.txt" | grep -o '[0-9.]*$')
    non2xx=$(grep -o 'Non-2xx or 3xx responses: [0-9]*' "$OUT/wrk.txt" | grep -o '[0-9]*$' || echo 0)
    echo "{\"mode\":\"$mode\",\"rps\":$rps,\"syncs\":$((syncs1 - syncs0)),\"appends\":$appends,\"non_2xx\":${non2xx:-0}}" >>"$OUT/runs.ndjson"
    kill -9 "$PID"; wait "$PID" 2>/dev/null || true
  done
done

# Recovery: fill a log past 256 MiB, kill -9, time the restart's replay.
rm -rf "$OUT/data"
start fill --data_dir="$OUT/data" --snapshot_log_bytes=1000000000000
BODIES="$OUT/bodies" wrk -t2 -c16 -d600s -s "$OUT/bulk.lua" "http://127.0.0.1:$PORT/_bulk" >/dev/null &
WRK=$!
for _ in $(seq 6000); do
  size=$(metric "$PORT" clout_wal_size_bytes)
  [ "${size:-0}" -ge $((256 << 20)) ] && break
  sleep 0.1
done
kill "$WRK"; wait "$WRK" 2>/dev/null || true
kill -9 "$PID"; wait "$PID" 2>/dev/null || true
sync
for r in 1 2 3; do
  start recover$r --data_dir="$OUT/data" --snapshot_log_bytes=1000000000000
  grep -o 'recovered .*' "$OUT/recover$r.err" >>"$OUT/recovery.txt"
  kill -9 "$PID"; wait "$PID" 2>/dev/null || true
done

/usr/bin/python3 - "$OUT" <<'PY'
import json, re, statistics, sys
out = sys.argv[1]
runs = [json.loads(l) for l in open(f"{out}/runs.ndjson")]
def med(mode, key):
    return statistics.median(r[key] for r in runs if r["mode"] == mode)
none = med("none", "rps") * 1000
print(f"{'figure':60} {'value':>12} {'ratio':>7}  target")
for mode, target in (("request", ">= 0.5"), ("async", "report")):
    docs = med(mode, "rps") * 1000
    print(f"{'_bulk 1,000 docs, 16 conns, docs/s, ' + mode + ' / no log':60} {docs:12.0f} {docs / none:7.2f}  {target}")
print(f"{'_bulk 1,000 docs, 16 conns, docs/s, no log':60} {none:12.0f}")
req = [r for r in runs if r["mode"] == "request"]
ratio = statistics.median(r["syncs"] / max(r["appends"], 1) for r in req)
print(f"{'fdatasync per batch, request (median of rounds)':60} {ratio:12.3f} {'':7}  <= 0.25")
found = [m for m in (re.search(r" in ([\d.]+) s: .* then \d+ log records \(([\d.]+) MiB\)", l) for l in open(f"{out}/recovery.txt")) if m]
times = [float(m.group(1)) for m in found]
mib = [float(m.group(2)) for m in found]
print(f"{'recovery of a %.0f MiB log, seconds (median of 3)' % mib[0]:60} {statistics.median(times):12.2f} {'':7}  < 2")
print(f"non-2xx responses: {sum(r['non_2xx'] for r in runs)}")
PY
