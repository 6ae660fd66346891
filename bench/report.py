#!/usr/bin/env python3
"""Summarises one run of bench/suite.sh: every figure of the ingest and
indexes issues next to its target, with Google Benchmark medians (or the
single run of one-shot benchmarks) and ratios taken within the same run.

  bench/report.py OUT_DIR     (OUT_DIR holds the suite's JSON files)
"""
import json
import os
import sys

UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def load(path):
    """run_name -> the median entry (or the only run), from a benchmark JSON."""
    with open(path) as f:
        data = json.load(f)
    runs = {}
    for b in data["benchmarks"]:
        name = b["run_name"]
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                runs[name] = b
        elif name not in runs or runs[name].get("run_type") != "aggregate":
            runs.setdefault(name, b)
    return runs


def seconds(entry):
    return entry["real_time"] * UNIT[entry["time_unit"]]


def find(runs, prefix):
    for name, entry in runs.items():
        if name.startswith(prefix):
            return entry
    raise KeyError(prefix)


def fmt_time(s):
    if s < 1e-3:
        return "%.2f us" % (s * 1e6)
    if s < 1:
        return "%.2f ms" % (s * 1e3)
    return "%.2f s" % s


ROWS = []


def row(issue, figure, value, target, ok):
    ROWS.append((issue, figure, value, target, "met" if ok else "MISSED"))


def main(out):
    # The baseline process's one-thread load pairs with its raw walk; the
    # other figures come from a fresh process per load configuration.
    baseline = load(os.path.join(out, "ingest_baseline.json"))
    ingest = {}
    for name in sorted(os.listdir(out)):
        if name.startswith("ingest_threads") and name.endswith(".json"):
            ingest.update(load(os.path.join(out, name)))
    q10 = load(os.path.join(out, "query_10m.json"))
    q1 = load(os.path.join(out, "query_1m_4jobs.json"))
    with open(os.path.join(out, "clout_bench_1.json")) as f:
        cb1 = json.load(f)
    with open(os.path.join(out, "clout_bench_2.json")) as f:
        cb2 = json.load(f)

    raw = find(baseline, "BM_RawSimdjsonWalk")
    paired = find(baseline, "BM_Load/threads:1/warm:0")
    load1 = find(ingest, "BM_Load/threads:1/warm:0")
    load2 = find(ingest, "BM_Load/threads:2/warm:0")
    warm1 = find(ingest, "BM_Load/threads:1/warm:1")
    warm2 = find(ingest, "BM_Load/threads:2/warm:1")
    gbs = lambda e: e["bytes_per_second"] / 1e9
    row(2, "ingest, 1 thread (1M influencers, 296 MB)", "%.2f GB/s" % gbs(load1),
        ">= 1 GB/s", gbs(load1) >= 1.0)
    ratio = seconds(raw) / seconds(paired)
    row(2, "ingest vs raw simdjson walk, one process (%.2f vs %.2f GB/s)" % (
        gbs(paired), gbs(raw)), "%.2fx" % ratio, ">= 0.6x", ratio >= 0.6)
    reload = find(baseline, "BM_Reload")
    row(2, "re-load of the same dump (every result unchanged)",
        "%s (%.2f GB/s)" % (fmt_time(seconds(reload)), gbs(reload)), "report", True)
    cols = load1["column_bytes_per_influencer"]
    row(2, "column bytes per influencer (capacity)", "%.1f B" % cols, "<= 48 B",
        cols <= 48)

    names = ["Q1", "Q2", "Q3", "Q4", "Q5", "Q6", "Q7"]
    limits = {0: 20e-6, 1: 100e-6, 2: 20e-6, 3: 20e-6, 4: 50e-6, 5: 20e-6,
              6: 2e-3}
    for i, q in enumerate(names):
        t = seconds(find(q10, "BM_GetInfluencers/%d" % i))
        row(5, "%s via GetInfluencers, order built (10M)" % q, fmt_time(t),
            "<= " + fmt_time(limits[i]), t <= limits[i])
    first_q5 = seconds(find(q10, "BM_FirstQuery/4"))
    row(5, "Q5 first time (no order yet, 10M)", fmt_time(first_q5), "<= 5.00 ms",
        first_q5 <= 5e-3)
    build_q5 = seconds(find(q10, "BM_BuildOrder/4"))
    row(5, "Q5 order build (10M); score order + TimeIndex %s" % fmt_time(
        seconds(find(q10, "BM_BuildOrder/-1"))), fmt_time(build_q5), "report", True)
    for i in [0, 1, 2, 3, 5]:
        ref = seconds(find(q10, "BM_Reference/%d/" % i))
        t = seconds(find(q10, "BM_GetInfluencers/%d" % i))
        row(5, "%s vs naive reference (%s)" % (names[i], fmt_time(ref)),
            "{:,.0f}x".format(ref / t), ">= 100x", ref / t >= 100)
    for i, q in enumerate(names):
        sql = seconds(find(q10, "BM_Sqlite/%d" % i))
        t = seconds(find(q10, "BM_GetInfluencers/%d" % i))
        first = seconds(find(q10, "BM_FirstQuery/%d" % i))
        row(5, "%s vs SQLite (%s); first-time scan %s" % (q, fmt_time(sql), fmt_time(first)),
            "{:,.0f}x".format(sql / t), "report", True)
    mem = find(q10, "BM_Memory")
    row(5, "bytes/influencer: columns + warm indexes", "%.1f B" % mem["warm_B_per_row"],
        "<= 64 B", mem["warm_B_per_row"] <= 64)
    row(5, "bytes/influencer: + every order Q1-Q7 use", "%.1f B" % mem["all_orders_B_per_row"],
        "<= 64 B", mem["all_orders_B_per_row"] <= 64)
    row(5, "load + index builds, 1 thread", "%.2f GB/s" % gbs(warm1), ">= 0.8 GB/s",
        gbs(warm1) >= 0.8)
    speedup = seconds(warm1) / seconds(warm2)
    row(5, "load + index builds, 2 threads vs 1", "%.2fx (%.2f GB/s)" % (speedup, gbs(warm2)),
        ">= 1.5x", speedup >= 1.5)
    plain = seconds(load1) / seconds(load2)
    row(5, "load only, 2 threads vs 1", "%.2fx (%.2f GB/s)" % (plain, gbs(load2)),
        "report", True)
    scale = cb2["qps"] / cb1["qps"]
    row(5, "clout bench QPS, 2 threads vs 1 (1M/4 jobs)",
        "%.2fx (%.0f vs %.0f QPS)" % (scale, cb2["qps"], cb1["qps"]), ">= 1.8x",
        scale >= 1.8)
    writer = find(q10, "BM_WriteResponse")["bytes_per_second"] / 1e6
    row(5, "response JSON writer", "%.0f MB/s" % writer, ">= 300 MB/s", writer >= 300)
    for i, q in enumerate(names):
        t = seconds(find(q1, "BM_GetInfluencers/%d" % i))
        sql = seconds(find(q1, "BM_Sqlite/%d" % i))
        row(5, "%s on 1M/4 jobs (job-0): vs SQLite %s" % (q, fmt_time(sql)), fmt_time(t),
            "report", True)

    widths = [max(len(str(r[k])) for r in ROWS + [("issue", "figure", "value", "target", "")])
              for k in range(5)]
    header = ("issue", "figure", "value", "target", "")
    for r in [header] + ROWS:
        print("  ".join(str(v).ljust(widths[k]) for k, v in enumerate(r)).rstrip())
    missed = sum(1 for r in ROWS if r[4] == "MISSED")
    print("\n%d figures, %d targets missed" % (len(ROWS), missed))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/clout-suite")
