#!/usr/bin/python3
"""The Python binding against its baselines, as ratios in one run.

    bazel build --config=opt //python:clout //cli:clout
    PYTHONPATH=bazel-bin/python /usr/bin/python3 bench/python_bench.py [--records=N]

Generates N influencers in one job (default 1,000,000; seed 42) and
prints medians of 5 (7 for to_pandas, 3 for the slow baselines):
  - a 10-influencer query as a dict from Python against the same query and
    response text in C++ (the extension's _time_query_json loop);
  - to_pandas of the whole job against pandas.DataFrame built from the
    same rows as dicts (what get_influencers-style dicts give);
  - a load of the dump through Python against the CLI's (clout stats
    --load_threads=0 reports its load time);
  - pandas.read_json(lines=True), then sort_values/head for the seven
    query shapes of bench/queries.ndjson, beside Clout's answers.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import pandas as pd

import clout

CLOUT = os.environ.get("CLOUT_BIN", "bazel-bin/cli/clout")


def naive_utc(text):
    # read_json gives naive UTC timestamps.
    t = pd.Timestamp(text)
    return t.tz_convert(None) if t.tzinfo is not None else t


def median_of(n, fn):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="clout-pybench-")
    dump = os.path.join(tmp, "dump.ndjson")
    subprocess.run([CLOUT, "generate", f"--records={args.records}", "--jobs=1",
                    "--seed=42", f"--output={dump}"], check=True)
    job = "job-0"
    out = {}

    # Loads: Python against the CLI, both with the default threads. Each
    # times the load alone: the store is made before the clock starts and
    # freed after it stops (the CLI's figure is its own load's seconds).
    def python_load():
        store = clout.Store()
        t = time.perf_counter()
        store.load(dump)
        elapsed = time.perf_counter() - t
        del store
        return elapsed
    out["load_python_s"] = statistics.median(python_load() for _ in range(5))

    def cli_load():
        r = subprocess.run([CLOUT, "stats", "--format=json", dump],
                           capture_output=True, check=True)
        return json.loads(r.stdout)["load"]["seconds"]
    out["load_cli_s"] = statistics.median(cli_load() for _ in range(5))

    store = clout.Store()
    store.load(dump)

    # A query of 10 influencers as a dict, against C++.
    store.get_influencers(job, size=10)
    n = 2000
    def queries():
        for _ in range(n):  # each answer dropped, as a caller would
            store.get_influencers(job, size=10)
    out["query_python_us"] = median_of(5, queries) / n * 1e6
    out["query_cpp_us"] = statistics.median(
        store._store._time_query_json(job, [("size", "10")], n) for _ in range(5)) * 1e6

    # to_pandas against a DataFrame from dicts.
    store.to_pandas(job)
    out["to_pandas_s"] = median_of(7, lambda: store.to_pandas(job))
    with open(dump) as f:
        rows = [json.loads(line) for line in f]
    out["frame_from_dicts_s"] = median_of(3, lambda: pd.DataFrame(rows))
    del rows

    # pandas.read_json and the seven query shapes.
    t = time.perf_counter()
    frame = pd.read_json(dump, lines=True)
    out["pandas_read_json_s"] = time.perf_counter() - t
    shapes = []
    with open(os.path.join(os.path.dirname(__file__), "queries.ndjson")) as f:
        for line in f:
            q = json.loads(line)
            name = q.pop("name")
            q.pop("job_id")
            page = q.pop("page", {})

            def pandas_shape(q=q, page=page):
                d = frame
                if "start" in q:
                    d = d[d.timestamp >= naive_utc(q["start"])]
                if "end" in q:
                    d = d[d.timestamp < naive_utc(q["end"])]
                if q.get("exclude_interim"):
                    d = d[~d.is_interim]
                if q.get("influencer_score", 0) > 0:
                    d = d[d.influencer_score >= q["influencer_score"]]
                d = d.sort_values(q.get("sort", "influencer_score"),
                                  ascending=not q.get("desc", True), kind="stable")
                start = page.get("from", 0)
                return d.iloc[start:start + page.get("size", 100)]

            body = dict(q, page=page) if page else q
            clout_s = median_of(5, lambda: store.get_influencers(job, body=body))
            shapes.append({"shape": name, "pandas_ms": median_of(3, pandas_shape) * 1e3,
                           "clout_ms": clout_s * 1e3})
    out["shapes"] = shapes

    out["ratio_query_python_over_cpp"] = out["query_python_us"] / out["query_cpp_us"]
    out["ratio_frame_from_dicts_over_to_pandas"] = out["frame_from_dicts_s"] / out["to_pandas_s"]
    out["ratio_load_python_over_cli"] = out["load_python_s"] / out["load_cli_s"]
    print(json.dumps(out, indent=2))
    print(f"query of 10 as a dict: {out['query_python_us']:.1f} us from Python, "
          f"{out['query_cpp_us']:.1f} us in C++: {out['ratio_query_python_over_cpp']:.2f}x (target <= 2x)")
    print(f"to_pandas of {args.records}: {out['to_pandas_s'] * 1e3:.0f} ms (target <= 100 ms); "
          f"DataFrame from dicts {out['frame_from_dicts_s']:.2f} s: "
          f"{out['ratio_frame_from_dicts_over_to_pandas']:.1f}x faster (target >= 20x)")
    print(f"load: Python {out['load_python_s']:.2f} s, CLI {out['load_cli_s']:.2f} s: "
          f"{out['ratio_load_python_over_cli']:.3f} (target within 5%)")
    print(f"pandas.read_json(lines=True): {out['pandas_read_json_s']:.1f} s")
    for s in shapes:
        print(f"  {s['shape']:40s} pandas {s['pandas_ms']:9.1f} ms   clout {s['clout_ms']:8.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
