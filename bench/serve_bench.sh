#!/usr/bin/env bash
# `clout serve` under load: wrk on loopback against clout and, for the same
# response bytes, nginx serving them as a static file, in one run (the
# figures of the serve issue; see bench/README.md).
#
#   bench/serve_bench.sh [OUT_DIR] [SECONDS]   (default /tmp/clout-serve-bench,
#                                               10 s per wrk run; ~6 minutes)
#
# Needs wrk and nginx (apt-get install wrk nginx-light; nginx is for this
# benchmark only). Nothing else should run meanwhile: the machine has two
# cores, and wrk shares them with the server, so the server's CPU time per
# request is reported too. Every figure is the median of three alternating
# rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-/tmp/clout-serve-bench}"
DUR="${2:-10}"
ROUNDS=3
mkdir -p "$OUT/www"
for tool in wrk nginx curl; do
  command -v "$tool" >/dev/null || { echo "serve_bench: $tool missing (apt-get install wrk nginx-light curl)" >&2; exit 2; }
done

bazel build --config=opt //cli:clout >/dev/null
CLOUT="$(bazel info --config=opt bazel-bin 2>/dev/null)/cli/clout"
[ -f "$OUT/1m.ndjson" ] || "$CLOUT" generate --records=1000000 --jobs=1 --seed=7 --output="$OUT/1m.ndjson"
JOB=job-0
GI="/_ml/anomaly_detectors/$JOB/results/influencers"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# start_clout NAME ARGS...: starts a server, sets PORT_<NAME> and PID_<NAME>.
start_clout() {
  local name=$1; shift
  "$CLOUT" serve --port=0 --threads=2 "$@" "$OUT/1m.ndjson" 2>"$OUT/$name.err" &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 600); do grep -q "listening on" "$OUT/$name.err" && break; sleep 0.1; done
  local port
  port=$(grep -o '[0-9]*$' "$OUT/$name.err" | head -1)
  printf -v "PORT_$name" %s "$port"
  printf -v "PID_$name" %s "$pid"
}

# A realm with one superuser (bcrypt cost 10, as elasticsearch-users writes).
mkdir -p "$OUT/config"
/usr/bin/python3 -W ignore -c '
import crypt
print("bench:" + crypt.crypt("bench-password", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1024)))' >"$OUT/config/users"
echo "superuser:bench" >"$OUT/config/users_roles"
AUTH="Authorization: Basic $(printf 'bench:bench-password' | base64)"

start_clout plain
start_clout secure --config_dir="$OUT/config"

curl -sf "http://127.0.0.1:$PORT_plain$GI?size=10" >"$OUT/www/size10.json"
curl -sf "http://127.0.0.1:$PORT_plain$GI?size=100" >"$OUT/www/size100.json"

NGINX_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$OUT/nginx.conf" <<NGINX
worker_processes 2;
pid $OUT/nginx.pid;
error_log $OUT/nginx.error.log;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_temp_path $OUT/nginx-tmp;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / { root $OUT/www; default_type application/json; }
  }
}
NGINX
nginx -c "$OUT/nginx.conf" -p "$OUT" &
PIDS+=($!)
sleep 0.5
curl -sf "http://127.0.0.1:$NGINX_PORT/size10.json" | cmp - "$OUT/www/size10.json"

# The _bulk body: 1,000 documents of the dump, as index actions.
head -1000 "$OUT/1m.ndjson" | awk '{print "{\"index\":{\"_index\":\".ml-anomalies-shared\"}}"; print}' >"$OUT/bulk.ndjson"
cat >"$OUT/bulk.lua" <<'LUA'
local f = io.open(os.getenv("BULK_FILE"), "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/x-ndjson"
LUA

# User + system CPU ticks of a process and its children (nginx's workers).
cpu_ticks() {
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$total"
}

# run LABEL PID URL [wrk args...]: one wrk run; appends a JSON line.
run() {
  local label=$1 pid=$2 url=$3; shift 3
  local before after
  before=$(cpu_ticks "$pid")
  wrk -t2 -c16 -d"${DUR}s" --latency "$@" "$url" >"$OUT/wrk.txt"
  after=$(cpu_ticks "$pid")
  /usr/bin/python3 - "$label" "$before" "$after" "$OUT/wrk.txt" >>"$OUT/runs.ndjson" <<'PY'
import json, os, re, sys
label, before, after, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
text = open(path).read()
def unit(v, u):
    return float(v) * {"us": 1, "ms": 1e3, "s": 1e6}[u]
lat = {p: unit(v, u) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)}
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
req = int(re.search(r"(\d+) requests in", text).group(1))
mb = re.search(r"Transfer/sec:\s+([\d.]+)(B|KB|MB|GB)", text)
mbps = float(mb.group(1)) * {"B": 1e-6, "KB": 1e-3, "MB": 1, "GB": 1e3}[mb.group(2)]
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
tick = os.sysconf("SC_CLK_TCK")
print(json.dumps({"label": label, "rps": rps, "p50_us": lat.get("50"), "p99_us": lat.get("99"),
                  "mb_s": mbps, "cpu_us_per_req": (after - before) * 1e6 / tick / max(req, 1),
                  "non_2xx": int(errors.group(1)) if errors else 0}))
PY
}

rm -f "$OUT/runs.ndjson"
for round in $(seq $ROUNDS); do
  echo "== round $round/$ROUNDS"
  run nginx_size10 "$(cat "$OUT/nginx.pid")" "http://127.0.0.1:$NGINX_PORT/size10.json"
  run clout_size10 "$PID_plain" "http://127.0.0.1:$PORT_plain$GI?size=10"
  run clout_size10_secure "$PID_secure" "http://127.0.0.1:$PORT_secure$GI?size=10" -H "$AUTH"
  run nginx_size100 "$(cat "$OUT/nginx.pid")" "http://127.0.0.1:$NGINX_PORT/size100.json"
  run clout_size100 "$PID_plain" "http://127.0.0.1:$PORT_plain$GI?size=100"
  BULK_FILE="$OUT/bulk.ndjson" run clout_bulk1000 "$PID_plain" "http://127.0.0.1:$PORT_plain/_bulk" -s "$OUT/bulk.lua" -c1 -t1
  # Four writers at once: their batches commit as groups.
  BULK_FILE="$OUT/bulk.ndjson" run clout_bulk1000_c4 "$PID_plain" "http://127.0.0.1:$PORT_plain/_bulk" -s "$OUT/bulk.lua" -c4 -t1
  # Queries while one connection sends 1,000-document _bulk requests.
  BULK_FILE="$OUT/bulk.ndjson" wrk -t1 -c1 -d"$((DUR + 1))s" -s "$OUT/bulk.lua" "http://127.0.0.1:$PORT_plain/_bulk" >"$OUT/wrk_bulk_bg.txt" &
  bg=$!
  sleep 0.5
  run clout_size10_under_bulk "$PID_plain" "http://127.0.0.1:$PORT_plain$GI?size=10"
  wait "$bg"
done

# LoadFile's documents/s on the same dump, one parsing thread, in this run.
echo '{"job_id":"job-0","page":{"size":1}}' >"$OUT/one_query.ndjson"
for _ in 1 2 3; do
  "$CLOUT" bench --queries="$OUT/one_query.ndjson" --repeat=1 --format=json --load_threads=1 "$OUT/1m.ndjson"
  echo
done >"$OUT/load.ndjson"

/usr/bin/python3 - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]
runs = [json.loads(l) for l in open(f"{out}/runs.ndjson")]
def med(label, key):
    return statistics.median(r[key] for r in runs if r["label"] == label)
loads = [json.loads(l)["load"] for l in open(f"{out}/load.ndjson") if l.strip()]
load_docs_s = statistics.median(l["influencers"] / l["seconds"] for l in loads)
bulk_docs_s = med("clout_bulk1000", "rps") * 1000
bulk_docs_s_c4 = med("clout_bulk1000_c4", "rps") * 1000
bad = sum(r["non_2xx"] for r in runs)
rows = [
  ("size 10: requests/s, clout / nginx", med("clout_size10", "rps"), med("nginx_size10", "rps"), ">= 0.7"),
  ("size 10: p99 us, clout / nginx", med("clout_size10", "p99_us"), med("nginx_size10", "p99_us"), "<= 1.5"),
  ("size 10: requests/s, security (Basic, cached) / none", med("clout_size10_secure", "rps"), med("clout_size10", "rps"), ">= 0.8"),
  ("size 100: requests/s, clout / nginx", med("clout_size100", "rps"), med("nginx_size100", "rps"), "report"),
  ("size 100: MB/s, clout / nginx", med("clout_size100", "mb_s"), med("nginx_size100", "mb_s"), "report"),
  ("_bulk 1,000 docs, 1 connection: docs/s / LoadFile", bulk_docs_s, load_docs_s, "report"),
  ("_bulk 1,000 docs, 4 connections: docs/s / LoadFile", bulk_docs_s_c4, load_docs_s, ">= 0.3"),
  ("size 10: p50 us, under _bulk / quiet", med("clout_size10_under_bulk", "p50_us"), med("clout_size10", "p50_us"), "<= 2"),
]
print(f"{'figure':58} {'value':>12} {'baseline':>12} {'ratio':>7}  target")
for name, a, b, target in rows:
    print(f"{name:58} {a:12.1f} {b:12.1f} {a / b:7.2f}  {target}")
print()
for label in ["nginx_size10", "clout_size10", "clout_size10_secure", "clout_size100", "nginx_size100", "clout_bulk1000", "clout_bulk1000_c4", "clout_size10_under_bulk"]:
    print(f"{label:26} rps {med(label, 'rps'):10.0f}  p50 {med(label, 'p50_us'):8.0f} us  p99 {med(label, 'p99_us'):8.0f} us  server CPU {med(label, 'cpu_us_per_req'):8.1f} us/request")
print(f"LoadFile, 1 thread: {load_docs_s:.0f} documents/s (median of 3)")
print(f"non-2xx responses in all runs: {bad}")
PY
