#!/usr/bin/env bash
# End-to-end test of the `clout` binary: every command, output format, exit
# code and error envelope, run the way a user runs it.
#
#   bazel test //tests:cli_test
#
# $1 is the binary; the working directory is the runfiles workspace root, so
# data/, bench/ and tests/cli/ resolve. Scratch files go to $TEST_TMPDIR.
set -u

CLOUT="$1"
case "$CLOUT" in /*) ;; *) CLOUT="$PWD/$CLOUT" ;; esac
T="${TEST_TMPDIR:-$(mktemp -d)}"
SAMPLE=data/it_ops_new_kpi.ndjson
JOB=it_ops_new_kpi
OUT="$T/stdout"
ERR="$T/stderr"

# python3 checks JSON; resolved once (a pyenv shim costs ~0.3 s a call), -S
# skips site-packages, which the standard library checks do not need.
PY="$(python3 -S -c 'import sys; print(sys.executable)')"
python3() { "$PY" -S "$@"; }

PASSED=0
FAILED=0
RC=0

pass() { PASSED=$((PASSED + 1)); }
fail() {
  FAILED=$((FAILED + 1))
  printf 'FAIL: %s\n' "$1"
  shift
  local line
  for line in "$@"; do printf '    %s\n' "$line"; done
}

# Shortens a value for a failure message.
clip() {
  local s="$1"
  if [ "${#s}" -gt 400 ]; then s="${s:0:400}... (${#1} chars)"; fi
  printf '%s' "$s"
}

# expect_eq DESC EXPECTED ACTUAL
expect_eq() {
  if [ "$2" == "$3" ]; then
    pass
  else
    fail "$1" "expected: $(clip "$2")" "got:      $(clip "$3")"
  fi
}

# expect_contains DESC NEEDLE HAYSTACK
expect_contains() {
  if [[ "$3" == *"$2"* ]]; then
    pass
  else
    fail "$1" "expected to contain: $(clip "$2")" "got: $(clip "$3")"
  fi
}

# check DESC COMMAND...: passes when COMMAND succeeds.
check() {
  local desc="$1"
  shift
  if "$@" >"$T/check.out" 2>&1; then
    pass
  else
    fail "$desc" "command failed: $*" "$(clip "$(cat "$T/check.out")")"
  fi
}

# run ARGS...: runs clout with stdin from /dev/null (or from $STDIN when
# set); leaves RC, $OUT and $ERR.
run() {
  "$CLOUT" "$@" <"${STDIN:-/dev/null}" >"$OUT" 2>"$ERR"
  RC=$?
}

# Runs python3 code on stdin; the code may use `d`, the parsed JSON, and
# `keys(obj)`, an object's keys in document order.
py() {
  python3 -c '
import collections, json, sys
def keys(o): return list(o.keys())
d = json.load(sys.stdin, object_pairs_hook=collections.OrderedDict)
'"$1"
}

is_json() { python3 -c 'import json,sys; json.load(sys.stdin)' <"$1"; }

# expect_error DESC EXIT STATUS TYPE [REASON_PART]: the last run exited with
# EXIT, wrote nothing on stdout and exactly one line of the error envelope on
# stderr, with STATUS and TYPE (the top-level or the root cause's type).
expect_error() {
  local desc="$1" code="$2" status="$3" type="$4" reason="${5:-}"
  expect_eq "$desc: exit code" "$code" "$RC"
  expect_eq "$desc: stdout is empty" "" "$(cat "$OUT")"
  expect_eq "$desc: stderr is one line" "1" "$(wc -l <"$ERR" | tr -d ' ')"
  local got
  if ! got=$(py 'e = d["error"]
assert keys(d) == ["error", "status"], keys(d)
assert keys(e) in (["root_cause", "type", "reason"],
                  ["root_cause", "type", "reason", "caused_by"]), keys(e)
print(d["status"], e["type"], e["root_cause"][0]["type"])
print(e["reason"], "|", e["root_cause"][0]["reason"], "|", e.get("caused_by", ""))' <"$ERR" 2>/dev/null); then
    fail "$desc: stderr is not the error envelope" "got: $(clip "$(cat "$ERR")")"
    return
  fi
  local first="${got%%$'\n'*}"
  expect_eq "$desc: status" "$status" "${first%% *}"
  expect_contains "$desc: error type" " $type" "$first"
  if [ -n "$reason" ]; then
    expect_contains "$desc: reason" "$reason" "$got"
  fi
}

echo "== query: default JSON"
run query --job=$JOB "$SAMPLE"
expect_eq "query exit code" 0 "$RC"
expect_eq "query stderr is empty" "" "$(cat "$ERR")"
DEFAULT_JSON="$(cat "$OUT")"
expect_contains "query starts with count 28" '{"count":28,"influencers":[{' "$DEFAULT_JSON"
expect_eq "query first influencer is the seed record" \
  '{"count":28,"influencers":[{"job_id":"it_ops_new_kpi","result_type":"influencer","influencer_field_name":"kpi_indicator","influencer_field_value":"online_purchases","kpi_indicator":"online_purchases","influencer_score":94.1386,"initial_influencer_score":94.1386,"probability":1.11612E-4,"bucket_span":600,"is_interim":false,"timestamp":1454943600000},' \
  "${DEFAULT_JSON%%\},*}},"
expect_contains "query writes the probability as Java does" '"influencer_score":94.1386,"initial_influencer_score":94.1386,"probability":1.11612E-4,' "$DEFAULT_JSON"
expect_eq "query output is one line" 1 "$(wc -l <"$OUT" | tr -d ' ')"
expect_eq "query returns 28 influencers, sorted by score desc" "28 True" \
  "$(py 's = [i["influencer_score"] for i in d["influencers"]]
print(len(s), s == sorted(s, reverse=True))' <"$OUT")"
expect_eq "query key order" "count influencers" "$(py 'print(*keys(d))' <"$OUT")"

echo "== query: --pretty and --human"
run query --job=$JOB --pretty "$SAMPLE"
expect_eq "--pretty exit code" 0 "$RC"
expect_eq "--pretty first line" "{" "$(head -1 "$OUT")"
expect_eq "--pretty count line" '  "count" : 28,' "$(sed -n 2p "$OUT")"
expect_contains "--pretty probability" '"probability" : 1.11612E-4,' "$(cat "$OUT")"
check "--pretty is the same JSON as the compact output" \
  python3 -c 'import json,sys; assert json.load(open(sys.argv[1])) == json.loads(sys.argv[2])' "$OUT" "$DEFAULT_JSON"
run query --job=$JOB --human --size=1 "$SAMPLE"
expect_eq "--human exit code" 0 "$RC"
expect_contains "--human adds timestamp_string before timestamp" \
  '"is_interim":false,"timestamp_string":"2016-02-08T15:00:00.000Z","timestamp":1454943600000}' "$(cat "$OUT")"
run query --job=$JOB "$SAMPLE"
if grep -q timestamp_string "$OUT"; then fail "no timestamp_string without --human"; else pass; fi

echo "== query: parameter mode equals body mode"
# same_as_body DESC BODY FLAGS...: both exit 0 with byte-identical stdout.
same_as_body() {
  local desc="$1" body="$2"
  shift 2
  run query --job=$JOB "$@" "$SAMPLE"
  local rc_flags=$RC
  cp "$OUT" "$T/flags.out"
  run query --job=$JOB --body="$body" "$SAMPLE"
  expect_eq "$desc: flags exit code" 0 "$rc_flags"
  expect_eq "$desc: body exit code" 0 "$RC"
  if cmp -s "$T/flags.out" "$OUT"; then
    pass
  else
    fail "$desc: flags and body differ" "flags: $(clip "$(cat "$T/flags.out")")" \
      "body:  $(clip "$(cat "$OUT")")"
  fi
}
same_as_body "sort/desc/size" '{"sort":"timestamp","desc":false,"page":{"size":3}}' \
  --sort=timestamp --desc=false --size=3
expect_eq "--sort=timestamp --desc=false --size=3 gives the 3 earliest" \
  "28 3 [1454939400000, 1454939400000, 1454940000000]" \
  "$(py 'print(d["count"], len(d["influencers"]), [i["timestamp"] for i in d["influencers"]])' <"$OUT")"
same_as_body "bare --desc" '{"sort":"timestamp","desc":true}' --desc --sort=timestamp
same_as_body "bare --desc last" '{"desc":true,"page":{"size":4}}' --size=4 --desc
same_as_body "--desc=false" '{"desc":false}' --desc=false
same_as_body "bare --exclude_interim" '{"exclude_interim":true}' --exclude_interim
expect_eq "--exclude_interim drops the interim result" 27 "$(py 'print(d["count"])' <"$OUT")"
same_as_body "--start/--end" '{"start":"2016-02-08T15:00:00Z","end":1454950000000}' \
  --start=2016-02-08T15:00:00Z --end=1454950000000
expect_eq "--start/--end count" 13 "$(py 'print(d["count"])' <"$OUT")"
same_as_body "--influencer_score" '{"influencer_score":50}' --influencer_score=50
expect_eq "--influencer_score=50 count" 7 "$(py 'print(d["count"])' <"$OUT")"
same_as_body "--from/--size" '{"page":{"from":5,"size":4}}' --from=5 --size=4
same_as_body "no flags and {}" '{}'
same_as_body "space-separated values" '{"sort":"probability","page":{"size":2}}' \
  --sort probability --size 2
run query --job=$JOB --body_file=tests/cli/body.json "$SAMPLE"
expect_eq "--body_file exit code" 0 "$RC"
cp "$OUT" "$T/body_file.out"
run query --job=$JOB --sort=timestamp --desc=false --size=3 "$SAMPLE"
check "--body_file equals the same flags" cmp "$T/body_file.out" "$OUT"
# An empty body is no body (Elasticsearch's reading of zero bytes): defaults.
run query --job=$JOB --body= "$SAMPLE"
expect_eq "--body= exit code" 0 "$RC"
cp "$OUT" "$T/empty_body.out"
run query --job=$JOB "$SAMPLE"
check "--body= equals no flags" cmp "$T/empty_body.out" "$OUT"
: >"$T/empty.json"
run query --job=$JOB --body_file="$T/empty.json" "$SAMPLE"
check "an empty --body_file equals no flags" cmp "$T/empty_body.out" "$OUT"

echo "== query: output formats"
run query --job=$JOB --size=5 "$SAMPLE"
cp "$OUT" "$T/json5.out"
run query --job=$JOB --size=5 --format=ndjson "$SAMPLE"
expect_eq "ndjson exit code" 0 "$RC"
expect_eq "ndjson has one line per influencer" 5 "$(wc -l <"$OUT" | tr -d ' ')"
# The JSON response is the NDJSON lines joined inside the envelope.
expect_eq "ndjson lines are the response's influencers" "$(cat "$T/json5.out")" \
  "{\"count\":28,\"influencers\":[$(paste -sd, "$OUT")]}"
check "every ndjson line is JSON" python3 -c '
import json, sys
for line in open(sys.argv[1]): json.loads(line)' "$OUT"
run query --job=$JOB --size=0 --format=ndjson "$SAMPLE"
expect_eq "ndjson with size 0 is empty" "0:" "$RC:$(cat "$OUT")"
run query --job=$JOB --size=2 --human --format=ndjson "$SAMPLE"
expect_contains "ndjson --human" '"timestamp_string":"2016-02-08T15:00:00.000Z"' "$(head -1 "$OUT")"

run query --job=$JOB --size=3 --format=csv "$SAMPLE"
expect_eq "csv exit code" 0 "$RC"
expect_eq "csv has a header and 3 rows" 4 "$(wc -l <"$OUT" | tr -d ' ')"
expect_eq "csv header" \
  "job_id,result_type,influencer_field_name,influencer_field_value,influencer_score,initial_influencer_score,probability,bucket_span,is_interim,timestamp" \
  "$(head -1 "$OUT")"
expect_eq "csv first row" \
  "it_ops_new_kpi,influencer,kpi_indicator,online_purchases,94.1386,94.1386,1.11612E-4,600,false,1454943600000" \
  "$(sed -n 2p "$OUT")"

run query --job=$JOB --size=3 --format=table "$SAMPLE"
expect_eq "table exit code" 0 "$RC"
expect_eq "table has header, 3 rows, footer" 5 "$(wc -l <"$OUT" | tr -d ' ')"
expect_eq "table footer" "3 of 28 influencers" "$(tail -1 "$OUT")"
expect_contains "table header" "timestamp" "$(head -1 "$OUT")"
expect_contains "table first row" "online_purchases" "$(sed -n 2p "$OUT")"
# Aligned: each column starts where its header starts (left-aligned text) or
# ends where its header ends (right-aligned numbers).
check "table columns are aligned" python3 -c '
import sys
lines = open(sys.argv[1]).read().splitlines()
header, rows = lines[0], lines[1:-1]
for row in rows:
    assert row.index("2016-") == header.index("timestamp"), (header, row)
    assert row.index("kpi_indicator") == header.index("field"), (header, row)
    assert len(row) - 2 == header.index("interim"), (header, row)
    end = header.index("score") + len("score")
    assert row[end - 1] != " " and row[end] == " ", (header, row)
' "$OUT"
run query --job=$JOB --from=26 --format=table "$SAMPLE"
expect_eq "table past the middle: footer" "2 of 28 influencers" "$(tail -1 "$OUT")"
expect_eq "table numbers rows from --from" "27" "$(sed -n 2p "$OUT" | awk '{print $1}')"

run query --job=$JOB --format=xml "$SAMPLE"
expect_error "bad --format" 2 400 illegal_argument_exception "xml"

echo "== query: stdin and several dumps"
STDIN="$SAMPLE" run query --job=$JOB -
expect_eq "stdin exit code" 0 "$RC"
expect_eq "stdin equals the file" "$DEFAULT_JSON" "$(cat "$OUT")"
cat "$SAMPLE" | "$CLOUT" query --job=$JOB --format=csv - >"$T/pipe.csv" 2>"$ERR"
expect_eq "piped stdin exit code" 0 "$?"
run query --job=$JOB --format=csv "$SAMPLE"
check "piped csv equals the file's" cmp "$T/pipe.csv" "$OUT"

# Two small dumps: alpha (3 influencers, a bucket) and beta (2 influencers,
# plus one more for alpha).
inf() {  # job value score timestamp
  printf '{"job_id":"%s","result_type":"influencer","influencer_field_name":"host","influencer_field_value":"%s","host":"%s","influencer_score":%s,"initial_influencer_score":%s,"probability":0.01,"bucket_span":300,"is_interim":false,"timestamp":%s}\n' \
    "$1" "$2" "$2" "$3" "$3" "$4"
}
{
  inf alpha a1 10.0 1500000000000
  printf '{"job_id":"alpha","result_type":"bucket","timestamp":1500000000000,"anomaly_score":10.0,"bucket_span":300,"is_interim":false}\n'
  inf alpha a2 30.0 1500000300000
  inf alpha a3 20.0 1500000600000
} >"$T/alpha.ndjson"
{
  inf beta b1 5.5 1500000000000
  inf alpha a4 40.0 1500000900000
  inf beta 'db,\"primary\"' 7.5 1500000300000
} >"$T/beta.ndjson"
run query --job=alpha "$T/alpha.ndjson" "$T/beta.ndjson"
expect_eq "two dumps: alpha counts rows of both" "0 4" "$RC $(py 'print(d["count"])' <"$OUT")"
expect_eq "two dumps: alpha order" "a4 a2 a3 a1" \
  "$(py 'print(*[i["host"] for i in d["influencers"]])' <"$OUT")"
run query --job=beta "$T/alpha.ndjson" "$T/beta.ndjson" "$SAMPLE"
expect_eq "three dumps: beta" "0 2" "$RC $(py 'print(d["count"])' <"$OUT")"
run query --job=$JOB --size=0 "$T/alpha.ndjson" "$T/beta.ndjson" "$SAMPLE"
expect_eq "three dumps: sample job" '0 {"count":28,"influencers":[]}' "$RC $(cat "$OUT")"
STDIN="$T/alpha.ndjson" run query --job=alpha --size=0 - "$T/beta.ndjson"
expect_eq "stdin plus a file" '0 {"count":4,"influencers":[]}' "$RC $(cat "$OUT")"
run stats --format=json "$T/alpha.ndjson" "$T/beta.ndjson"
expect_eq "stats over two dumps" "6 ['alpha', 'beta'] [4, 2] {'bucket': 1}" \
  "$(py 'print(d["influencers"], [j["job_id"] for j in d["jobs"]], [j["influencers"] for j in d["jobs"]], dict(d["skipped"]))' <"$OUT")"
run query --job=beta --format=csv --sort=influencer_field_value --desc=false "$T/beta.ndjson"
check "csv quotes a value with a comma and quotes" python3 -c '
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
assert len(rows) == 3, rows
assert [r[3] for r in rows[1:]] == ["b1", "db,\"primary\""], rows
assert all(len(r) == 10 for r in rows), rows
' "$OUT"

echo "== query: errors"
run query --job=no_such_job "$SAMPLE"
expect_error "unknown job" 3 404 resource_not_found_exception "No known job with id 'no_such_job'"
# At a terminal only, a hint follows: the jobs the dumps hold, and
# documents skipped for want of a result_type.
if command -v script >/dev/null; then
  printf '{"doc":{"job_id":"j"}}\n{"job_id":"other","result_type":"bucket"}\n' >"$T/wrapped.ndjson"
  script -qec "$CLOUT query --job=j $T/wrapped.ndjson" /dev/null >"$T/tty.out" 2>&1
  expect_contains "unknown job at a terminal: hint" \
    "hint: the dumps hold 1 job: other; 1 documents without a result_type were skipped" \
    "$(cat "$T/tty.out")"
fi
run query --job=$JOB --size=-1 "$SAMPLE"
expect_error "--size=-1" 2 400 illegal_argument_exception "Parameter [size] cannot be < 0"
run query --job=$JOB --from=x "$SAMPLE"
expect_error "--from=x" 2 400 illegal_argument_exception "Failed to parse int parameter [from] with value [x]"
run query --job=$JOB --desc=maybe "$SAMPLE"
expect_error "--desc=maybe" 2 400 illegal_argument_exception \
  "Failed to parse value [maybe] as only [true] or [false] are allowed."
run query --job=$JOB --sort=no_such_field "$SAMPLE"
expect_error "unknown sort field" 2 400 search_phase_execution_exception \
  "No mapping found for [no_such_field] in order to sort on"
expect_contains "unknown sort field: root cause" "query_shard_exception" "$(cat "$ERR")"
run query --job=$JOB --start=yesterdayish "$SAMPLE"
expect_error "bad date" 2 400 search_phase_execution_exception "yesterdayish"
run query --job=$JOB --body='{"sort":"timestamp"}' --size=3 "$SAMPLE"
expect_error "body and flag mixed" 2 400 illegal_argument_exception "--size"
run query --job=$JOB --body='{}' --body_file=tests/cli/body.json "$SAMPLE"
expect_error "--body and --body_file" 2 400 illegal_argument_exception
run query --job=$JOB --body='{"size":3}' "$SAMPLE"
expect_error "unknown body key" 2 400 x_content_parse_exception "unknown field [size]"
run query --job=$JOB --body='{"page":{"size":' "$SAMPLE"
expect_error "malformed body" 2 400 x_content_parse_exception
run query "$SAMPLE"
expect_error "missing --job" 2 400 illegal_argument_exception "--job"
run query "$SAMPLE" --job
expect_error "--job without a value" 2 400 illegal_argument_exception "--job"
run query --job=$JOB --records=5 "$SAMPLE"
expect_error "query --records" 2 400 illegal_argument_exception \
  "request [/_ml/anomaly_detectors/$JOB/results/influencers] contains unrecognized parameter: [records]"
run query --job=$JOB --nodesc "$SAMPLE"
expect_error "query --nodesc" 2 400 illegal_argument_exception \
  "contains unrecognized parameter: [nodesc] -> did you mean [desc]?"
run query --job=$JOB --sizee=3 "$SAMPLE"
expect_error "query --sizee" 2 400 illegal_argument_exception \
  "request [/_ml/anomaly_detectors/$JOB/results/influencers] contains unrecognized parameter: [sizee] -> did you mean [size]?"
run stats --formt=json "$SAMPLE"
expect_error "stats --formt" 2 400 illegal_argument_exception \
  "clout stats does not take --formt (did you mean --format?); see clout stats --help"
run query --job=$JOB --pretty=sometimes "$SAMPLE"
expect_error "--pretty=sometimes" 2 400 illegal_argument_exception "sometimes"
run query --job=$JOB --now=whenever "$SAMPLE"
expect_error "bad --now" 2 400 illegal_argument_exception "whenever"
run query --job=$JOB
expect_error "no dumps" 2 400 illegal_argument_exception
run query --job=$JOB --body_file="$T/no_such_body.json" "$SAMPLE"
expect_error "missing body file" 1 500 io_exception "$T/no_such_body.json"
run query --job=$JOB "$T/no_such_dump.ndjson"
expect_error "missing dump" 1 500 io_exception "$T/no_such_dump.ndjson"
run query --job=$JOB "$SAMPLE" "$T/no_such_dump.ndjson"
expect_error "missing second dump" 1 500 io_exception "$T/no_such_dump.ndjson"
# A malformed line 2 (an influencer): all-or-nothing unless --lenient.
sed '2s/.*/{"job_id":"it_ops_new_kpi","result_type":"influencer",/' "$SAMPLE" >"$T/bad.ndjson"
run query --job=$JOB "$T/bad.ndjson"
expect_error "malformed dump" 1 400 x_content_parse_exception "bad.ndjson:2:"
run query --job=$JOB --lenient --size=0 "$T/bad.ndjson"
expect_eq "--lenient exit code" 0 "$RC"
expect_eq "--lenient skips the bad line" '{"count":27,"influencers":[]}' "$(cat "$OUT")"
expect_contains "--lenient notes the skip on stderr" "skipped 1 bad document; first:" "$(cat "$ERR")"
expect_contains "--lenient note names the line" "bad.ndjson:2:" "$(cat "$ERR")"
STDIN="$T/bad.ndjson" run query --job=$JOB -
expect_error "malformed dump on stdin" 1 400 x_content_parse_exception "<stdin>:2:"
STDIN="$T/bad.ndjson" run query --job=$JOB --lenient --size=0 -
expect_contains "--lenient on stdin names it" "<stdin>: skipped 1 bad document; first: <stdin>:2:" "$(cat "$ERR")"
run stats --lenient "$T/bad.ndjson"
expect_contains "stats --lenient" "influencers: 27" "$RC $(cat "$OUT")"

echo "== stats"
run stats "$SAMPLE"
expect_eq "stats exit code" 0 "$RC"
expect_eq "stats stderr is empty" "" "$(cat "$ERR")"
STATS="$(cat "$OUT")"
expect_contains "stats names the job" "job $JOB" "$STATS"
expect_contains "stats counts influencers" "influencers: 28 (1 interim)" "$STATS"
expect_contains "stats top influencer" "94.1386  kpi_indicator=online_purchases" "$STATS"
SKIPPED="$(grep '^skipped result types:' "$OUT")"
expect_contains "stats skipped bucket" "bucket=1" "$SKIPPED"
expect_contains "stats skipped record" "record=1" "$SKIPPED"
run stats --format=json "$SAMPLE"
expect_eq "stats json exit code" 0 "$RC"
check "stats json parses" is_json "$OUT"
expect_eq "stats json is one line" 1 "$(wc -l <"$OUT" | tr -d ' ')"
expect_eq "stats json content" "it_ops_new_kpi 28 1 28 32 1 1 5" \
  "$(py 'j = d["jobs"][0]
print(j["job_id"], j["influencers"], j["interim"], d["influencers"], d["documents"],
      d["skipped"]["bucket"], d["skipped"]["record"], len(j["top"]))' <"$OUT")"
run stats --format=xml "$SAMPLE"
expect_error "stats bad --format" 2 400 illegal_argument_exception
run stats
expect_error "stats without dumps" 2 400 illegal_argument_exception
# Flags written with one dash are checked like --flags (absl takes both).
run stats -bogus "$SAMPLE"
expect_error "stats -bogus" 2 400 illegal_argument_exception "does not take --bogus"
run stats -load_threads=-1 "$SAMPLE"
expect_error "stats -load_threads=-1" 2 400 illegal_argument_exception "--load_threads"
# Spans of rows the job still holds: a deleted result's span is gone.
printf '%s\n%s\n' \
  '{"job_id":"sp","result_type":"influencer","influencer_field_name":"f","influencer_field_value":"a","bucket_span":60,"timestamp":1000}' \
  '{"job_id":"sp","result_type":"influencer","influencer_field_name":"f","influencer_field_value":"b","bucket_span":3600,"timestamp":0}' \
  >"$T/sp1.ndjson"
printf '%s\n' '{"delete":{"_id":"sp_influencer_0_3600_f_98_1"}}' >"$T/sp2.ndjson"
run stats "$T/sp1.ndjson" "$T/sp2.ndjson"
expect_contains "stats spans after a delete" "bucket spans: 60 s" "$(cat "$OUT")"
# A newline in a value cannot forge a line of the text output.
printf '%s\n' '{"job_id":"nl","result_type":"influencer","influencer_field_name":"f","influencer_field_value":"a\nfake  line","timestamp":1}' >"$T/nl.ndjson"
run stats "$T/nl.ndjson"
expect_contains "stats escapes a newline" 'f=a\nfake  line' "$(cat "$OUT")"

echo "== version"
run version
expect_eq "version: exit 0" 0 "$RC"
expect_contains "version names the version" "clout 0." "$(cat "$OUT")"
expect_contains "version names simdjson's kernel" "parsing kernel" "$(cat "$OUT")"
run --version
expect_contains "--version is version" "simdjson 3." "$(cat "$OUT")"
if grep -q "parsing kernel fallback" "$OUT" && ! grep -q "best: fallback" "$OUT"; then
  run stats "$SAMPLE"
  expect_contains "stats warns about the fallback kernel" "portable fallback kernel" "$(cat "$OUT")"
  run stats --format=json "$SAMPLE"
  expect_eq "stats --format=json: slow_parse_kernel" "fallback True" \
    "$(py 'print(d["load"]["parse_kernel"], d["load"]["slow_parse_kernel"])' <"$OUT")"
fi
echo "== generate"
run generate --records=200 --jobs=2 --seed=7
expect_eq "generate exit code" 0 "$RC"
cp "$OUT" "$T/gen_a.ndjson"
run generate --records=200 --jobs=2 --seed=7
check "generate is deterministic" cmp "$T/gen_a.ndjson" "$OUT"
run generate --records=200 --jobs=2 --seed=8
if cmp -s "$T/gen_a.ndjson" "$OUT"; then
  fail "a different seed gives different bytes"
else
  pass
fi
run generate --records=100 --jobs=2
expect_eq "generate writes one line per record" 100 "$(wc -l <"$OUT" | tr -d ' ')"
cp "$OUT" "$T/gen100.ndjson"
run stats --format=json "$T/gen100.ndjson"
expect_eq "generated dump: 100 influencers over 2 jobs" "100 2 100" \
  "$(py 'print(d["influencers"], len(d["jobs"]), sum(j["influencers"] for j in d["jobs"]))' <"$OUT")"
run generate --records=100 --jobs=2 --output="$T/gen100_file.ndjson"
expect_eq "generate --output: exit 0, stdout empty" "0:" "$RC:$(cat "$OUT")"
check "generate --output writes the same bytes" cmp "$T/gen100.ndjson" "$T/gen100_file.ndjson"
run generate --records=50 --mixed --output="$T/mixed.ndjson"
run stats --format=json "$T/mixed.ndjson"
expect_eq "generate --mixed: influencers and other types" "50 True" \
  "$(py 'print(d["influencers"], len(d["skipped"]) > 0)' <"$OUT")"
# Parallel parsing: a dump of several 4 MiB pieces gives the same answers
# on 1 and 2 parsing threads, and stats says how many parsed it.
run generate --records=40000 --jobs=3 --mixed --output="$T/big.ndjson"
for threads in 1 2; do
  run query --job=job-1 --load_threads=$threads --sort=timestamp --size=500 "$T/big.ndjson"
  cp "$OUT" "$T/big_query_$threads.json"
  run stats --format=json --load_threads=$threads "$T/big.ndjson"
  expect_eq "stats --load_threads=$threads: parse threads" "$threads" \
    "$(py 'print(d["load"]["parse_threads"])' <"$OUT")"
  py 'del d["load"]; print(json.dumps(d))' <"$OUT" >"$T/big_stats_$threads.json"
done
check "query: same response on 1 and 2 parsing threads" cmp "$T/big_query_1.json" "$T/big_query_2.json"
check "stats: same summary on 1 and 2 parsing threads" cmp "$T/big_stats_1.json" "$T/big_stats_2.json"
# Compressed dumps: generate --compress writes them, every command reads
# them by their magic bytes (the name says nothing), and a truncated one
# fails whole with the compressed offset.
for codec in gzip zstd; do
  run generate --records=40000 --jobs=3 --mixed --compress=$codec --output="$T/big.$codec.bin"
  expect_eq "generate --compress=$codec: exit 0" 0 "$RC"
  run query --job=job-1 --sort=timestamp --size=500 "$T/big.$codec.bin"
  check "query of a $codec dump answers as the plain dump" cmp "$T/big_query_1.json" "$OUT"
  STDIN="$T/big.$codec.bin" run query --job=job-1 --sort=timestamp --size=500 -
  check "query of a $codec dump on stdin answers as the plain dump" cmp "$T/big_query_1.json" "$OUT"
  head -c 5000 "$T/big.$codec.bin" >"$T/cut.$codec.bin"
  run query --job=job-1 --lenient "$T/cut.$codec.bin"
  expect_error "a truncated $codec dump" 1 400 parse_exception "ends inside a"
done
run generate --records=10 --compress=bzip2
expect_error "generate --compress=bzip2" 2 400 illegal_argument_exception "--compress must be gzip or zstd"
run stats --load_threads=-2 "$T/gen100.ndjson"
expect_error "stats --load_threads=-2" 2 400 illegal_argument_exception

run generate --records=-1
expect_error "generate --records=-1" 2 400 illegal_argument_exception
run generate --jobs=0
expect_error "generate --jobs=0" 2 400 illegal_argument_exception
run generate --jobs=99999999999
expect_error "generate --jobs too big" 2 400 illegal_argument_exception
run generate --job=x
expect_error "generate --job" 2 400 illegal_argument_exception "--job"
run generate extra
expect_error "generate with an argument" 2 400 illegal_argument_exception
run generate --records=1 --output="$T/no_such_dir/x.ndjson"
expect_error "generate to a bad path" 1 500 io_exception "$T/no_such_dir/x.ndjson"

echo "== bench"
run generate --records=2000 --jobs=2 --seed=5 --output="$T/bench.ndjson"
QUERIES=tests/cli/bench_queries.ndjson
run bench --format=json --repeat=2 --queries=$QUERIES "$T/bench.ndjson"
expect_eq "bench json exit code" 0 "$RC"
expect_eq "bench json is one line" 1 "$(wc -l <"$OUT" | tr -d ' ')"
check "bench json parses" is_json "$OUT"
BYTES=$(wc -c <"$T/bench.ndjson" | tr -d ' ')
check "bench json keys, order and values" py '
assert keys(d) == ["load", "queries", "qps"], keys(d)
assert keys(d["load"]) == ["bytes", "seconds", "influencers"], keys(d["load"])
assert d["load"]["bytes"] == '"$BYTES"', d["load"]
assert d["load"]["influencers"] == 2000, d["load"]
assert d["load"]["seconds"] >= 0, d["load"]
assert [q["name"] for q in d["queries"]] == ["top10", "job1 by time, final", "line4"], d["queries"]
for q in d["queries"]:
    assert keys(q) == ["name", "count", "first_us", "p50_us", "p99_us", "qps"], keys(q)
    assert 0 < q["p50_us"] <= q["p99_us"] and q["first_us"] > 0, q
    assert q["qps"] > 0, q
assert d["qps"] > 0, d
' <"$OUT"
cp "$OUT" "$T/bench.json"
# Each reported count is the count `clout query` gives for that request.
run query --job=job-0 --size=0 "$T/bench.ndjson"
expect_eq "bench count of top10" "$(py 'print(d["count"])' <"$OUT")" \
  "$(py 'print(d["queries"][0]["count"])' <"$T/bench.json")"
run query --job=job-1 --body='{"sort":"timestamp","desc":false,"exclude_interim":true,"page":{"size":0}}' "$T/bench.ndjson"
expect_eq "bench count of job1" "$(py 'print(d["count"])' <"$OUT")" \
  "$(py 'print(d["queries"][1]["count"])' <"$T/bench.json")"
run query --job=job-0 --influencer_score=50 --size=0 "$T/bench.ndjson"
expect_eq "bench count of line4" "$(py 'print(d["count"])' <"$OUT")" \
  "$(py 'print(d["queries"][2]["count"])' <"$T/bench.json")"

run bench --repeat=2 --queries=$QUERIES "$T/bench.ndjson"
expect_eq "bench text exit code" 0 "$RC"
BENCH_TEXT="$(cat "$OUT")"
expect_contains "bench text load line" "load: $BYTES bytes in" "$BENCH_TEXT"
expect_contains "bench text runs" "1 thread(s) x 2 runs per request" "$BENCH_TEXT"
expect_contains "bench text names the queries" "job1 by time, final" "$BENCH_TEXT"
expect_contains "bench text total" "total: " "$BENCH_TEXT"
run bench --repeat=2 --threads=2 --format=json --queries=$QUERIES "$T/bench.ndjson"
expect_eq "bench --threads=2 exit code" 0 "$RC"
check "bench --threads=2 json" py 'assert len(d["queries"]) == 3 and d["qps"] > 0, d' <"$OUT"
run bench --repeat=2 --threads=2 --queries=$QUERIES "$T/bench.ndjson"
expect_contains "bench --threads=2 text" "2 thread(s) x 2 runs per request" "$RC $(cat "$OUT")"
run bench --repeat=2 --format=json --queries=bench/queries.ndjson "$T/bench.ndjson"
expect_eq "bench with bench/queries.ndjson" "0 7" "$RC $(py 'print(len(d["queries"]))' <"$OUT")"
printf '{"name":"ghost","job_id":"no_such_job"}\n' >"$T/ghost.ndjson"
run bench --repeat=2 --queries="$T/ghost.ndjson" "$T/bench.ndjson"
expect_error "bench unknown job" 3 404 resource_not_found_exception "no_such_job"
printf '{"name":"bad","job_id":"job-0","page":{"size":-1}}\n' >"$T/badq.ndjson"
run bench --repeat=2 --queries="$T/badq.ndjson" "$T/bench.ndjson"
expect_error "bench bad request" 2 400 x_content_parse_exception \
  "Parameter [size] cannot be < 0"
printf '{"name":"no job"}\n' >"$T/nojob.ndjson"
run bench --repeat=2 --queries="$T/nojob.ndjson" "$T/bench.ndjson"
expect_error "bench request without job_id" 2 400 x_content_parse_exception "job_id"
run bench --repeat=2 --queries="$T/no_such_queries.ndjson" "$T/bench.ndjson"
expect_error "bench missing queries file" 1 500 io_exception "no_such_queries.ndjson"
run bench "$T/bench.ndjson"
expect_error "bench without --queries" 2 400 illegal_argument_exception "--queries"
run bench --repeat=0 --queries=$QUERIES "$T/bench.ndjson"
expect_error "bench --repeat=0" 2 400 illegal_argument_exception "--repeat"
run bench --repeat=3000000000 --queries=$QUERIES "$T/bench.ndjson"
expect_error "bench --repeat too big" 2 400 illegal_argument_exception "--repeat"
run bench --threads=0 --queries=$QUERIES "$T/bench.ndjson"
expect_error "bench --threads=0" 2 400 illegal_argument_exception "--threads"
run bench --format=table --queries=$QUERIES "$T/bench.ndjson"
expect_error "bench bad --format" 2 400 illegal_argument_exception
# A bad request names its FILE:LINE and fails before any dump is read. The
# [1:column] is the column in that line, whatever surrounds the key.
printf '{"job_id":"job-0"}\n  {"job_id":"job-0", "name":"a","exclude_interm":true}\n' >"$T/typo.ndjson"
run bench --repeat=2 --queries="$T/typo.ndjson" "$T/no_such_dump.ndjson"
expect_error "bench typo names the line" 2 400 x_content_parse_exception \
  "typo.ndjson:2: [1:33] [cluster:monitor/xpack/ml/job/results/influencers/get] unknown field [exclude_interm] did you mean [exclude_interim]?"
printf '{"exclude_interim":tru, "job_id":"job-0"}\n' >"$T/typo.ndjson"
run bench --repeat=2 --queries="$T/typo.ndjson" "$T/no_such_dump.ndjson"
expect_error "bench malformed request" 2 400 x_content_parse_exception \
  "typo.ndjson:1: "
printf '{"page":{"size":"x"},"job_id":"job-0"}\n' >"$T/typo.ndjson"
run bench --repeat=2 --queries="$T/typo.ndjson" "$T/no_such_dump.ndjson"
expect_error "bench nested error keeps its chain" 2 400 x_content_parse_exception \
  "typo.ndjson:1: [1:17] [page] failed to parse field [size]"
run bench --repeat=2 --queries="$T/ghost.ndjson" "$T/bench.ndjson"
expect_error "bench unknown job names the line" 3 404 resource_not_found_exception \
  "ghost.ndjson:1: No known job"
printf '{"job_id":"job-0"}{"job_id":"job-1"}\n' >"$T/two.ndjson"
run bench --repeat=2 --queries="$T/two.ndjson" "$T/bench.ndjson"
expect_error "bench two requests on a line" 2 400 x_content_parse_exception \
  "two.ndjson:1: more than one JSON value on the line"
printf '{"job_id":"job-0","job_id":"job-1"}\n' >"$T/twice.ndjson"
run bench --repeat=2 --queries="$T/twice.ndjson" "$T/bench.ndjson"
expect_error "bench job_id twice" 2 400 x_content_parse_exception "duplicate [job_id]"
run bench --repeat=2 --queries="$T" "$T/bench.ndjson"
expect_error "bench --queries=a directory" 1 500 io_exception "cannot read"

run generate --records=3 --jobs=10
expect_error "generate --jobs above --records" 2 400 illegal_argument_exception \
  "--jobs=10 is more than --records=3"
run generate -records=-5
expect_error "generate -records=-5" 2 400 illegal_argument_exception "--records"

echo "== help"
run help no_such_command
expect_error "help of an unknown command" 2 400 illegal_argument_exception \
  "no command [no_such_command]"
run stats -- --help
expect_error "a --help after -- is a file name" 1 500 io_exception "--help"
run help
expect_eq "help exit code" 0 "$RC"
HELP="$(cat "$OUT")"
for c in query stats generate bench; do
  expect_contains "help lists $c" "  $c " "$HELP"
done
run query --help
expect_eq "query --help exit code" 0 "$RC"
expect_contains "query --help usage" "Usage: clout query" "$(cat "$OUT")"
expect_contains "query --help examples" "Examples:" "$(cat "$OUT")"
cp "$OUT" "$T/query_help.out"
run help query
check "help query equals query --help" cmp "$T/query_help.out" "$OUT"
run query --job=$JOB --size=-1 --help
expect_eq "--help wins over a bad request" 0 "$RC"
for c in stats generate bench; do
  run $c --help
  expect_contains "$c --help" "$RC Usage: clout $c" "$RC $(cat "$OUT")"
done
run no_such_command
expect_error "unknown command" 2 400 illegal_argument_exception \
  "unknown command [no_such_command]"
run
expect_eq "no command: exit code" 2 "$RC"
expect_contains "no command: usage on stderr" "Usage: clout <command>" "$(cat "$ERR")"

# ---------------------------------------------------------------- identity
# The same dump twice: every result is loaded once, the second time unchanged.
run stats data/it_ops_new_kpi.ndjson data/it_ops_new_kpi.ndjson
expect_eq "stats of a dump loaded twice: exit code" 0 "$RC"
expect_contains "stats of a dump loaded twice: 28 influencers" "influencers: 28 (1 interim)" "$(cat "$OUT")"
expect_contains "stats of a dump loaded twice: counts" "28 added, 0 replaced, 0 deleted, 28 unchanged" "$(cat "$OUT")"
run query --job=it_ops_new_kpi --size=0 data/it_ops_new_kpi.ndjson data/it_ops_new_kpi.ndjson
expect_eq "query over a dump loaded twice counts each result once" '{"count":28,"influencers":[]}' "$(cat "$OUT")"

echo
echo "cli_test: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
