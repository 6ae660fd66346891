"""Tests of the Python binding (`import clout`), under Debian's /usr/bin/python3.

Run by tests/python_binding_test.sh (bazel test //tests:python_binding_test),
which puts the built package on the path and names the clout CLI in
CLOUT_BIN.
"""

import concurrent.futures
import datetime
import gc
import io
import json
import os
import pathlib
import random
import subprocess
import threading
import time

import numpy as np
import pandas as pd
import pytest

import clout

CLOUT = os.environ["CLOUT_BIN"]
DATA = pathlib.Path("data/it_ops_new_kpi.ndjson")
JOB = "it_ops_new_kpi"
GOLDEN = sorted(pathlib.Path("tests/golden").glob("*.test"))


@pytest.fixture(scope="module")
def store():
    s = clout.Store()
    s.load(DATA)
    return s


def dump_rows(path=DATA):
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            doc = json.loads(line)
            if doc.get("result_type") == "influencer":
                rows.append(doc)
    return rows


# --- Golden cases: the same bytes as the engine and `clout query`. ---------

def iso_millis(text):
    t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return round(t.timestamp() * 1000)


def golden_cases(path):
    """Yields (setup, request) pairs of a golden file, as golden_test.cc reads
    them: setup is (now, max_result_window, dumps), request is (mode, job,
    flags, lines, expect)."""
    lines = path.read_text().split("\n")
    now, window, dumps = 0, 10000, []
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        i += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith("now: "):
            now = iso_millis(line[5:])
        elif line.startswith("max_result_window: "):
            window = int(line[len("max_result_window: "):])
        elif line.startswith("dump: "):
            name = line[6:]
            if name == "inline":
                text = []
                while lines[i] != "end":
                    text.append(lines[i] + "\n")
                    i += 1
                i += 1
                dumps.append("".join(text).encode())
            else:
                dumps.append(pathlib.Path(name))
        elif line.startswith("request: "):
            words = line[len("request: "):].split(" ")
            body = []
            while lines[i] != "expect:":
                body.append(lines[i])
                i += 1
            i += 1
            expect = []
            while i < len(lines) and not lines[i].startswith(("request: ", "dump: ", "now: ", "#")) \
                    and lines[i] != "---":
                expect.append(lines[i])
                i += 1
            yield ((now, window, tuple(dumps)),
                   (words[0], words[1], words[2:], body, "\n".join(expect).strip()))
        elif line == "---":
            now, window, dumps = 0, 10000, []


def as_kwargs(params):
    """The Pythonic arguments of parameter-mode lines, or None when one of
    them cannot be said with Python types (an unknown name, `size=one`)."""
    kwargs, flags = {}, {}
    for p in params:
        if not p or p.startswith("#"):
            continue
        name, _, value = p.partition("=")
        try:
            if name in ("from", "size"):
                kwargs["from_" if name == "from" else name] = int(value)
            elif name in ("desc", "exclude_interim", "pretty", "human"):
                if value not in ("", "true", "false"):
                    return None
                (flags if name in ("pretty", "human") else kwargs)[name] = value != "false"
            elif name == "influencer_score":
                kwargs[name] = float(value)
            elif name in ("start", "end", "sort"):
                kwargs[name] = value
            else:
                return None
        except ValueError:
            return None
    return kwargs, flags


def python_answer(setup, request):
    now, window, dumps = setup
    mode, job, words, body, _ = request
    s = clout.Store(max_result_window=window)
    for d in dumps:
        s.load(d)
    flags = {"pretty": "pretty" in words, "human": "human" in words}
    if mode == "body":
        kwargs = {"body": "\n".join(body).strip()}
    else:
        converted = as_kwargs(body)
        if converted is None:
            return None
        kwargs, given = converted
        flags.update(given)
    try:
        return s.get_influencers_json(job, now=now, **kwargs, **flags)
    except clout.ApiError as e:
        if flags["pretty"]:
            return None  # errors are compared compact
        return json.dumps(e.body, separators=(",", ":"), ensure_ascii=False)


ALL_CASES = [(p.name, n, setup, req) for p in GOLDEN
             for n, (setup, req) in enumerate(golden_cases(p))]


def test_golden_cases_are_found():
    assert len(ALL_CASES) > 50


@pytest.mark.parametrize("name,n,setup,request_", ALL_CASES,
                         ids=[f"{c[0]}#{c[1]}" for c in ALL_CASES])
def test_golden_case_is_byte_identical(name, n, setup, request_):
    answer = python_answer(setup, request_)
    if answer is None:
        pytest.skip("the request has no Pythonic form (an unknown or malformed parameter)")
    expect = request_[4]
    if answer.startswith('{"error"'):
        # The engine's envelope, re-serialised: compare as JSON.
        assert json.loads(answer) == json.loads(expect)
    else:
        assert answer == expect


def test_golden_cases_match_clout_query_bytes():
    """The same request through `clout query` (its flags, or --body) prints
    the same bytes, or the same error envelope."""
    compared = 0
    for name, n, (now, window, dumps), request_ in ALL_CASES:
        mode, job, words, body, _ = request_
        if window != 10000 or not all(isinstance(d, pathlib.Path) for d in dumps):
            continue
        flags = {"pretty": "pretty" in words, "human": "human" in words}
        args = [CLOUT, "query", f"--job={job}", f"--now={now}"]
        if mode == "body":
            text = "\n".join(body).strip()
            kwargs = {"body": text}
            args.append(f"--body={text}")
        else:
            converted = as_kwargs(body)
            if converted is None:
                continue
            kwargs, given = converted
            flags.update(given)
            for p in body:
                if p and not p.startswith("#"):
                    key, _, value = p.partition("=")
                    if key not in ("pretty", "human"):
                        args.append(f"--{key}={value or 'true'}")
        args += [f"--{f}" for f, on in flags.items() if on]
        cli = subprocess.run(args + [str(d) for d in dumps], capture_output=True, timeout=60)
        s = clout.Store()
        for d in dumps:
            s.load(d)
        try:
            mine = s.get_influencers_json(job, now=now, **kwargs, **flags)
            assert cli.returncode == 0, (name, n, cli.stderr)
            assert cli.stdout.decode() == mine + "\n", (name, n)
        except clout.ApiError as e:
            assert cli.returncode != 0, (name, n)
            assert json.loads(cli.stderr.decode().strip().splitlines()[-1]) == e.body, (name, n)
        compared += 1
    assert compared >= 25


def test_get_influencers_is_json_loads_of_the_json(store):
    for kwargs in ({}, {"size": 3, "sort": "timestamp", "desc": False},
                   {"influencer_score": 50.0, "exclude_interim": True},
                   {"start": "2016-02-08T15:00:00Z", "end": 1454946000000},
                   {"body": {"page": {"from": 2, "size": 4}, "sort": "probability"}}):
        got = store.get_influencers(JOB, **kwargs)
        assert got == json.loads(store.get_influencers_json(JOB, **kwargs))
        assert list(got) == ["count", "influencers"]
    first = store.get_influencers(JOB, size=1)["influencers"][0]
    assert list(first) == ["job_id", "result_type", "influencer_field_name",
                           "influencer_field_value", "kpi_indicator", "influencer_score",
                           "initial_influencer_score", "probability", "bucket_span",
                           "is_interim", "timestamp"]


def test_dates_accept_datetime_epoch_millis_and_date_math(store):
    start = datetime.datetime(2016, 2, 8, 15, tzinfo=datetime.timezone.utc)
    as_text = store.get_influencers(JOB, start="2016-02-08T15:00:00Z", size=0)["count"]
    assert store.get_influencers(JOB, start=start, size=0)["count"] == as_text
    assert store.get_influencers(JOB, start=start.replace(tzinfo=None), size=0)["count"] == as_text
    assert store.get_influencers(JOB, start=1454943600000, size=0)["count"] == as_text
    paris = datetime.timezone(datetime.timedelta(hours=1))
    assert store.get_influencers(JOB, start=start.astimezone(paris), size=0)["count"] == as_text
    now = datetime.datetime(2016, 2, 8, 16, tzinfo=datetime.timezone.utc)
    assert (store.get_influencers(JOB, start="now-1h", now=now, size=0)["count"]
            == as_text)
    assert (store.get_influencers(JOB, start="now-1h", now=1454947200000, size=0)["count"]
            == as_text)
    assert 0 < as_text < 28


# --- Errors. ---------------------------------------------------------------

def test_unknown_job_is_not_found_error_with_every_field(store):
    with pytest.raises(clout.NotFoundError) as info:
        store.get_influencers("no-such-job")
    e = info.value
    assert isinstance(e, clout.ApiError) and isinstance(e, clout.TransportError)
    assert e.status == e.status_code == 404
    assert e.error_type == e.error == "resource_not_found_exception"
    assert e.reason == "No known job with id 'no-such-job'"
    assert e.body == e.info == {
        "error": {"root_cause": [{"type": "resource_not_found_exception",
                                  "reason": "No known job with id 'no-such-job'"}],
                  "type": "resource_not_found_exception",
                  "reason": "No known job with id 'no-such-job'"},
        "status": 404}


@pytest.mark.parametrize("kwargs,error_type,root_cause", [
    ({"size": -1}, "illegal_argument_exception", "illegal_argument_exception"),
    ({"from_": -5}, "illegal_argument_exception", "illegal_argument_exception"),
    ({"sort": "colour"}, "search_phase_execution_exception", "query_shard_exception"),
    ({"start": "not a date"}, "search_phase_execution_exception", "parse_exception"),
    ({"size": 10001}, "search_phase_execution_exception", "illegal_argument_exception"),
    ({"influencer_score": float("nan")}, "number_format_exception", "number_format_exception"),
    ({"body": "{\"size\": 1}"}, "x_content_parse_exception", "x_content_parse_exception"),
    ({"body": "{"}, "x_content_parse_exception", "x_content_parse_exception"),
])
def test_bad_values_raise_bad_request_as_elasticsearch(store, kwargs, error_type, root_cause):
    with pytest.raises(clout.BadRequestError) as info:
        store.get_influencers(JOB, **kwargs)
    e = info.value
    assert isinstance(e, clout.RequestError)
    assert e.status == 400 and e.error_type == error_type
    assert e.body["error"]["root_cause"][0]["type"] == root_cause


@pytest.mark.parametrize("kwargs", [
    {"size": "10"}, {"size": 1.5}, {"size": True}, {"from_": None},
    {"desc": "false"}, {"exclude_interim": 1}, {"influencer_score": "50"},
    {"influencer_score": True}, {"sort": 3}, {"start": 1.5}, {"end": object()},
    {"now": "2016-01-01"}, {"body": 42}, {"pretty": "yes"},
])
def test_wrong_types_raise_type_error(store, kwargs):
    with pytest.raises(TypeError):
        store.get_influencers_json(JOB, **kwargs)


def test_misuse_raises_value_or_type_error(store):
    with pytest.raises(TypeError):
        store.get_influencers(123)
    with pytest.raises(ValueError):
        store.get_influencers(JOB, body={"sort": "timestamp"}, size=5)
    with pytest.raises(ValueError):
        store.to_pandas(JOB, columns=["timestamp", "colour"])
    with pytest.raises(TypeError):
        store.to_pandas(JOB, columns="timestamp")
    with pytest.raises(TypeError):
        store.load(42)
    with pytest.raises(ValueError):
        store.load(DATA, threads=-1)
    with pytest.raises(TypeError):
        clout.Store(max_result_window="10")
    with pytest.raises(ValueError):
        clout.Store(max_result_window=-1)
    with pytest.raises(clout.NotFoundError):
        store.to_pandas("no-such-job")
    with pytest.raises(clout.BadRequestError):
        store.to_numpy(JOB, start="garbage")


def test_load_errors_name_the_source_and_line(tmp_path):
    s = clout.Store()
    good = DATA.read_bytes().splitlines(keepends=True)
    bad = tmp_path / "bad.ndjson"
    bad.write_bytes(b"".join(good[:3]) + b'{"job_id":"j","result_type":"influencer"}\n')
    with pytest.raises(clout.LoadError) as info:
        s.load(bad)
    e = info.value
    assert e.source == str(bad) and e.line == 4
    assert e.status == 400 and e.error_type == "mapper_parsing_exception"
    assert s.jobs() == []  # nothing loaded: a load is atomic
    with pytest.raises(clout.LoadError) as info:
        s.load(tmp_path / "missing.ndjson")
    assert info.value.status == 500 and info.value.source == str(tmp_path / "missing.ndjson")
    with pytest.raises(clout.LoadError) as info:
        s.load(b"not json\n")
    assert info.value.source == "<bytes>"
    report = s.load(bad, lenient=True)
    assert report.rejected == 1 and report.influencers_added == 3
    assert "bad.ndjson:4" in report.errors[0]


# --- Loading. --------------------------------------------------------------

def test_load_accepts_paths_bytes_file_objects_and_snapshots(tmp_path):
    expect = clout.Store()
    expect.load(str(DATA))
    want = expect.get_influencers_json(JOB, size=100)
    for source in (DATA, DATA.read_bytes(), io.BytesIO(DATA.read_bytes()),
                   io.StringIO(DATA.read_text())):
        s = clout.Store()
        report = s.load(source)
        assert report.influencers_added == 28 and report.jobs == [JOB]
        assert s.get_influencers_json(JOB, size=100) == want
    with open(DATA, "rb") as f:
        s = clout.Store()
        assert s.load(f).sources[0].source == str(DATA)
    snap = tmp_path / "kpi.clout"
    made = subprocess.run([CLOUT, "snapshot", f"--output={snap}", str(DATA)],
                          capture_output=True, timeout=60)
    assert made.returncode == 0, made.stderr
    s = clout.Store()
    loaded = s.load(snap)
    assert loaded.influencers_added == 28
    # Reported as a dump's load: its format and the jobs it brought.
    assert loaded.sources[0].format == "snapshot"
    assert loaded.jobs == [JOB]
    assert s.get_influencers_json(JOB, size=100) == want
    # Into a store that holds results already: upserted, same report.
    busy = clout.Store()
    busy.load(DATA)
    again = busy.load(snap)
    assert again.jobs == [JOB] and again.sources[0].format == "snapshot"
    # Compressed dumps, from a path or bytes, recognised by their content.
    import gzip
    packed = tmp_path / "kpi.bin"
    packed.write_bytes(gzip.compress(DATA.read_bytes()))
    for source in (packed, packed.read_bytes()):
        s = clout.Store()
        report = s.load(source)
        assert report.sources[0].compression == "gzip"
        assert s.get_influencers_json(JOB, size=100) == want
    with pytest.raises(clout.LoadError) as info:
        clout.Store().load(packed.read_bytes()[:200])
    assert info.value.error_type == "parse_exception"
    assert "compressed byte 200" in info.value.reason
    # Several sources: each atomic, reported one by one.
    s = clout.Store()
    report = s.load(snap, DATA)
    assert [r.influencers_added for r in report.sources] == [28, 0]
    assert report.sources[1].unchanged == 28


def test_jobs_stats_delete_job():
    s = clout.Store()
    assert s.jobs() == [] and s.stats()["influencers"] == 0
    s.load(DATA)
    stats = s.stats()
    assert s.jobs() == [JOB]
    assert stats["influencers"] == 28 and stats["generation"] == 1
    assert stats["jobs"][JOB]["influencers"] == 28
    assert stats["jobs"][JOB]["min_timestamp"] == min(r["timestamp"] for r in dump_rows())
    assert stats["influencer_field_names"] == ["kpi_indicator"]
    s.delete_job(JOB)
    assert s.jobs() == []
    with pytest.raises(clout.NotFoundError):
        s.delete_job(JOB)
    assert "0 jobs" in repr(s)


def bulk_line(action, doc=None, index=".ml-anomalies-shared"):
    out = json.dumps({action: {"_index": index}}) + "\n"
    if doc is not None:
        out += json.dumps(doc) + "\n"
    return out


def test_apply_bulk_answers_as_bulk():
    s = clout.Store()
    s.load(DATA)
    doc = dump_rows()[0]
    changed = dict(doc, influencer_score=99.5)
    new = dict(doc, timestamp=doc["timestamp"] + 600_000 * 1000)
    body = bulk_line("index", changed) + bulk_line("index", new) + bulk_line("create", new)
    response = s.apply_bulk(body)
    assert response["errors"] is True
    results = [next(iter(item.values())) for item in response["items"]]
    assert [r["status"] for r in results] == [200, 201, 409]
    assert [r.get("result") for r in results[:2]] == ["updated", "created"]
    assert results[2]["error"]["type"] == "version_conflict_engine_exception"
    assert s.get_influencers(JOB, size=0)["count"] == 29
    with pytest.raises(clout.BadRequestError) as info:
        s.apply_bulk(b"")
    assert info.value.error_type == "parse_exception"
    with pytest.raises(clout.BadRequestError):
        s.apply_bulk(b'{"index":{}}\n{}\n')  # no index


# --- Frames and arrays. ----------------------------------------------------

def naive_frame(rows):
    frame = pd.DataFrame({
        "job_id": [r["job_id"] for r in rows],
        "result_type": [r["result_type"] for r in rows],
        "influencer_field_name": [r["influencer_field_name"] for r in rows],
        "influencer_field_value": [r["influencer_field_value"] for r in rows],
        "influencer_score": [float(r["influencer_score"]) for r in rows],
        "initial_influencer_score": [float(r["initial_influencer_score"]) for r in rows],
        "probability": [float(r["probability"]) for r in rows],
        "bucket_span": np.array([r["bucket_span"] for r in rows], dtype=np.int64),
        "is_interim": np.array([r["is_interim"] for r in rows], dtype=bool),
        "timestamp": pd.to_datetime([r["timestamp"] for r in rows], unit="ms", utc=True),
    })
    for c in ("job_id", "result_type", "influencer_field_name", "influencer_field_value"):
        frame[c] = frame[c].astype("category")
    return frame


def test_to_pandas_equals_a_frame_built_naively_from_the_dump(store):
    rows = dump_rows()
    got = store.to_pandas(JOB)
    want = naive_frame(rows)
    pd.testing.assert_frame_equal(got, want)
    assert str(got["timestamp"].dtype) == "datetime64[ns, UTC]"
    # Filters, as get_influencers applies them, rows still in ingest order.
    start, end = 1454943000000, 1454946000000
    kept = [r for r in rows if start <= r["timestamp"] < end
            and r["influencer_score"] >= 1.5 and not r["is_interim"]]
    got = store.to_pandas(JOB, start=start, end=end, influencer_score=1.5,
                          exclude_interim=True)
    pd.testing.assert_frame_equal(got, naive_frame(kept))
    sub = store.to_pandas(JOB, columns=["timestamp", "influencer_score"])
    assert list(sub.columns) == ["timestamp", "influencer_score"]


def test_to_numpy_gives_plain_arrays(store):
    arrays = store.to_numpy(JOB)
    rows = dump_rows()
    assert list(arrays) == list(clout.COLUMNS)
    assert arrays["timestamp"].dtype == np.dtype("datetime64[ms]")
    assert arrays["timestamp"].astype(np.int64).tolist() == [r["timestamp"] for r in rows]
    assert arrays["influencer_field_value"].tolist() == [r["influencer_field_value"] for r in rows]
    assert arrays["is_interim"].dtype == bool
    assert arrays["probability"].tolist() == [r["probability"] for r in rows]


def test_timestamps_pandas_cannot_hold_raise_value_error():
    s = clout.Store()
    doc = dump_rows()[0]
    s.load(json.dumps(dict(doc, timestamp=-10_000_000_000_000)).encode() + b"\n")
    with pytest.raises(ValueError, match=r"\[-10000000000000\]"):
        s.to_pandas(JOB)
    assert s.to_numpy(JOB)["timestamp"].astype(np.int64).tolist() == [-10_000_000_000_000]
    assert len(s.to_pandas(JOB, start=0)) == 0


def test_frames_follow_random_mutation_histories():
    """After random upserts and deletes (which leave jobs in segments), the
    frame is the query's rows in ingest order, which a sort on job_id pages."""
    rng = random.Random(20261205)
    base = dump_rows()
    s = clout.Store()
    s.load(DATA)
    segmented = 0  # steps that left the job in segments
    for step in range(40):
        body = ""
        for _ in range(rng.randint(1, 6)):
            doc = dict(rng.choice(base))
            doc["timestamp"] += rng.choice([0, 0, 600_000, 1_200_000])
            doc["influencer_score"] = round(rng.uniform(0, 100), 3)
            doc["is_interim"] = rng.random() < 0.2
            if rng.random() < 0.25:
                ident = "_".join([doc["job_id"], "influencer", str(doc["timestamp"]),
                                  str(doc["bucket_span"]), doc["influencer_field_name"],
                                  doc["influencer_field_value"]])
                body += json.dumps({"delete": {"_index": ".ml-anomalies-shared", "_id": ident}}) + "\n"
            else:
                body += bulk_line("index", doc)
        s.apply_bulk(body)
        frame = s.to_pandas(JOB, influencer_score=20.0)
        page = s.get_influencers(JOB, sort="job_id", desc=False, influencer_score=20.0,
                                 size=10000)
        assert len(frame) == page["count"]
        assert frame["influencer_score"].tolist() == [i["influencer_score"] for i in page["influencers"]]
        assert (frame["timestamp"].astype("int64") // 1_000_000).tolist() == \
            [i["timestamp"] for i in page["influencers"]]
        assert frame["influencer_field_value"].tolist() == \
            [i["influencer_field_value"] for i in page["influencers"]]
        assert frame["is_interim"].tolist() == [i["is_interim"] for i in page["influencers"]]
        # Stats count and bound the live rows of the job's segments.
        everything = s.to_pandas(JOB)["timestamp"].astype("int64") // 1_000_000
        stats = s.stats()["jobs"][JOB]
        assert stats["influencers"] == len(everything)
        assert (stats["min_timestamp"], stats["max_timestamp"]) == \
            (everything.min(), everything.max())
        segmented += stats["segments"] >= 2
    assert segmented >= 10
    assert s.stats()["generation"] == 41


def test_arrays_outlive_the_store_and_its_writes():
    s = clout.Store()
    s.load(DATA)
    arrays = s.to_numpy(JOB)
    frame = s.to_pandas(JOB)
    copies = {k: v.copy() for k, v in arrays.items()}
    frame_copy = frame.copy(deep=True)
    s.delete_job(JOB)
    s.load(DATA)
    s.apply_bulk(bulk_line("index", dict(dump_rows()[0], influencer_score=1.25)))
    del s
    gc.collect()
    for k, v in arrays.items():
        assert np.array_equal(v, copies[k]), k
    pd.testing.assert_frame_equal(frame, frame_copy)


# --- Threads and memory. ---------------------------------------------------

def test_threads_share_a_store_and_see_the_same_answers(store):
    calls = [dict(size=5), dict(sort="timestamp", desc=False, size=7),
             dict(influencer_score=10.0), dict(start="2016-02-08T15:00:00Z")]
    want = [store.get_influencers_json(JOB, **c) for c in calls]
    frame = store.to_pandas(JOB)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        futures = [(i % len(calls), pool.submit(store.get_influencers_json, JOB, **calls[i % len(calls)]))
                   for i in range(2000)]
        frames = [pool.submit(store.to_pandas, JOB) for _ in range(50)]
        for i, f in futures:
            assert f.result() == want[i]
        for f in frames:
            pd.testing.assert_frame_equal(f.result(), frame)


def test_loads_and_queries_run_together_from_threads():
    s = clout.Store()
    s.load(DATA)
    rows = dump_rows()
    errors = []

    def writer(k):
        for step in range(20):
            doc = dict(rows[(k * 7 + step) % len(rows)], influencer_score=float(k * 100 + step))
            s.load(json.dumps(doc).encode() + b"\n")

    def reader():
        for _ in range(200):
            page = s.get_influencers(JOB, size=100)
            if page["count"] != 28 or len(page["influencers"]) != 28:
                errors.append(page["count"])

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        done = [pool.submit(writer, k) for k in range(3)] + [pool.submit(reader) for _ in range(3)]
        for f in done:
            f.result()
    assert errors == []
    assert s.stats()["generation"] == 61


def big_dump(rows):
    template = dump_rows()[0]
    lines = []
    for i in range(rows):
        doc = dict(template, influencer_field_value=f"v{i % 5000}",
                   timestamp=template["timestamp"] + (i // 5000) * 600_000,
                   influencer_score=(i * 37 % 1000) / 10.0)
        lines.append(json.dumps(doc))
    return ("\n".join(lines) + "\n").encode()


def test_the_gil_is_released_during_a_load():
    """While one thread loads, another keeps running Python: with the GIL
    held the other thread would stop for the whole load."""
    data = big_dump(200_000)
    while True:
        probe = clout.Store()
        started = time.perf_counter()
        probe.load(data, threads=1)
        if time.perf_counter() - started >= 0.15 or len(data) > 400_000_000:
            break
        data = data * 2  # repeats are upserts of the same results: still work
    s = clout.Store()
    inside = threading.Event()
    finished = threading.Event()
    timing = {}

    def load():
        inside.set()
        t0 = time.perf_counter()
        s.load(data, threads=1)
        timing["seconds"] = time.perf_counter() - t0
        finished.set()

    worker = threading.Thread(target=load)
    worker.start()
    inside.wait()
    last = time.perf_counter()
    longest_gap = 0.0
    while not finished.is_set():
        now = time.perf_counter()
        longest_gap = max(longest_gap, now - last)
        last = now
    worker.join()
    assert timing["seconds"] >= 0.1
    assert longest_gap < timing["seconds"] / 2, (longest_gap, timing)


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(os.environ.get("CLOUT_UNDER_ASAN") == "1",
                    reason="ASan's quarantine keeps freed memory: RSS is meaningless")
def test_memory_stays_flat_over_100k_calls(store):
    def calls(n):
        for i in range(n):
            if i % 4 == 0:
                store.get_influencers(JOB, size=3)
            elif i % 4 == 1:
                store.get_influencers_json(JOB, sort="timestamp")
            elif i % 4 == 2:
                store.to_numpy(JOB, columns=["timestamp", "influencer_field_value"])
            else:
                try:
                    store.get_influencers("no-such-job")
                except clout.NotFoundError:
                    pass

    calls(5_000)  # warm-up: caches, allocator pools
    gc.collect()
    before = rss_bytes()
    calls(100_000)
    gc.collect()
    grown = rss_bytes() - before
    assert grown < 10 * 1024 * 1024, f"RSS grew by {grown} bytes"


# --- Review fixes: pickling, windows, odd paths, numpy scalars. -------------

def test_exceptions_pickle_and_copy_with_every_field(store):
    import copy
    import pickle
    with pytest.raises(clout.NotFoundError) as info:
        store.get_influencers("no-such-job")
    for clone in (pickle.loads(pickle.dumps(info.value)), copy.copy(info.value)):
        assert type(clone) is clout.NotFoundError
        assert (clone.status, clone.error_type, clone.reason, clone.body) == \
            (404, info.value.error_type, info.value.reason, info.value.body)
    with pytest.raises(clout.LoadError) as info:
        clout.Store().load(b'{"job_id":1}\n')
    clone = pickle.loads(pickle.dumps(info.value))
    assert (clone.source, clone.line) == ("<bytes>", 1)


def query_unknown_job():
    return clout.Store().get_influencers("no-such-job")


def test_exceptions_cross_a_process_pool():
    with concurrent.futures.ProcessPoolExecutor(max_workers=1) as pool:
        with pytest.raises(clout.NotFoundError) as info:
            pool.submit(query_unknown_job).result(timeout=60)
    assert info.value.reason == "No known job with id 'no-such-job'"


def test_frames_ignore_the_result_window():
    s = clout.Store(max_result_window=10)
    s.load(DATA)
    assert len(s.to_pandas(JOB)) == 28
    assert len(s.to_numpy(JOB, columns=["timestamp"])["timestamp"]) == 28
    with pytest.raises(clout.BadRequestError):
        s.get_influencers(JOB, size=11)


def test_paths_that_are_not_utf8_load(tmp_path):
    name = os.fsencode(str(tmp_path)) + b"/\xff-dump.ndjson"
    with open(name, "wb") as f:
        f.write(DATA.read_bytes())
    s = clout.Store()
    assert s.load(os.fsdecode(name)).influencers_added == 28
    assert clout.Store().load(pathlib.Path(os.fsdecode(name))).influencers_added == 28


def test_a_fifo_loads_what_is_written_to_it(tmp_path):
    fifo = tmp_path / "dump.fifo"
    os.mkfifo(fifo)

    def writer():
        with open(fifo, "wb") as f:
            f.write(DATA.read_bytes())

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    s = clout.Store()
    assert s.load(fifo, threads=1).influencers_added == 28
    t.join(timeout=30)


def test_numpy_scalars_and_range_errors(store):
    want = store.get_influencers(JOB, size=5, start=1454943000000, influencer_score=1.5)
    assert store.get_influencers(JOB, size=np.int64(5), start=np.int64(1454943000000),
                                 influencer_score=np.float32(1.5)) == want
    assert store.get_influencers(JOB, size=5, influencer_score=1.5,
                                 start=np.datetime64(1454943000000, "ms")) == want
    assert store.get_influencers(JOB, size=5, desc=np.bool_(True), start=1454943000000,
                                 influencer_score=1.5) == want
    with pytest.raises(ValueError):
        store.get_influencers(JOB, influencer_score=10**400)
    with pytest.raises(ValueError):
        store.get_influencers(JOB, now=10**30)
    with pytest.raises(ValueError):
        clout.Store(max_result_window=2**63)
    with pytest.raises(ValueError):
        store.get_influencers(JOB, start=np.datetime64("NaT"))
    with pytest.raises(TypeError):
        store.get_influencers(JOB, size=np.bool_(True))


def test_a_bad_source_type_loads_nothing():
    s = clout.Store()
    with pytest.raises(TypeError):
        s.load(DATA, 42)
    assert s.jobs() == []
