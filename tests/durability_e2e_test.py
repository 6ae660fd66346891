"""End-to-end durability of `clout serve --data_dir` (see serve_e2e_test.sh).

The real server is killed with SIGKILL in the middle of `_bulk` traffic and
restarted: every acknowledged write must be there. A kill -9 cannot catch a
missing fsync (the page cache survives it): tests/wal_test.cc's fault
injection does that. Loops are bounded by counts and deadlines.
"""
import json
import os
import random
import signal
import subprocess
import threading
import time

from serve_e2e_test import CLOUT, DATA, Server, http

WRITERS = 4
VALUES = 60  # distinct influencer values per writer


def bulk_body(job, ops):
    """NDJSON for `ops`: ("index", value, ts, score) or ("delete", value, ts)."""
    lines = []
    for op in ops:
        if op[0] == "index":
            _, value, ts, score = op
            lines.append({"index": {"_index": ".ml-anomalies-shared"}})
            lines.append({"job_id": job, "result_type": "influencer",
                          "timestamp": ts, "bucket_span": 900,
                          "influencer_field_name": "host",
                          "influencer_field_value": value,
                          "influencer_score": score,
                          "initial_influencer_score": score,
                          "probability": 0.5, "is_interim": False})
        else:
            _, value, ts = op
            lines.append({"delete": {"_index": ".ml-anomalies-shared",
                                     "_id": doc_id(job, value, ts)}})
    return "".join(json.dumps(x) + "\n" for x in lines).encode()


def post_bulk(port, job, ops):
    """POSTs `ops` (bulk_body) for `job`; asserts a 200."""
    status, _, body = http(port, "POST", "/_bulk", bulk_body(job, ops),
                           {"Content-Type": "application/x-ndjson"})
    assert status == 200, body


def java_hash(s):
    h = 0
    for ch in s:  # ASCII values only here
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def doc_id(job, value, ts):
    return f"{job}_influencer_{ts}_900_host_{java_hash(value)}_{len(value)}"


def stored(port, job):
    """{(value, ts): score} of every result of `job` ({} if unknown)."""
    status, _, body = http(
        port, "GET",
        f"/_ml/anomaly_detectors/{job}/results/influencers?size=10000")
    if status == 404:
        return {}
    assert status == 200, body
    return {(d["influencer_field_value"], d["timestamp"]): d["influencer_score"]
            for d in json.loads(body)["influencers"]}


class Writer(threading.Thread):
    """Sends _bulk requests for its own job, one at a time, until the
    server goes away; keeps what was acknowledged and what was in flight."""

    def __init__(self, port, job, model, rng):
        super().__init__(daemon=True)
        self.port, self.job, self.model, self.rng = port, job, model, rng
        self.in_flight = {}  # (value, ts) -> score or None (deleted)
        self.acknowledged = 0

    def run(self):
        import http.client
        deadline = time.monotonic() + 30
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            while time.monotonic() < deadline:
                ops, effect = [], {}
                for _ in range(self.rng.randint(1, 40)):
                    key = (f"v{self.rng.randrange(VALUES)}",
                           1000 * self.rng.randrange(3))
                    if self.rng.random() < 0.15:
                        ops.append(("delete", *key))
                        effect[key] = None
                    else:
                        score = float(self.rng.randrange(1, 100000)) / 1000
                        ops.append(("index", *key, score))
                        effect[key] = score
                self.in_flight = effect
                conn.request("POST", "/_bulk", body=bulk_body(self.job, ops),
                             headers={"Content-Type": "application/x-ndjson"})
                response = conn.getresponse()
                body = response.read()
                assert response.status == 200, body
                items = json.loads(body)["items"]
                assert not json.loads(body)["errors"], body
                assert len(items) == len(ops)
                for key, score in effect.items():
                    if score is None:
                        self.model.pop(key, None)
                    else:
                        self.model[key] = score
                self.in_flight = {}
                self.acknowledged += 1
        except (OSError, http.client.HTTPException):
            return  # the server was killed


def check(port, models, in_flight):
    for job, model in models.items():
        got = stored(port, job)
        maybe = in_flight.get(job, {})
        for key in set(got) | set(model) | set(maybe):
            expected = model.get(key)
            actual = got.get(key)
            if actual == expected:
                continue
            # Only a write that was never acknowledged may differ.
            assert key in maybe and actual == maybe[key], (
                job, key, "stored", actual, "acknowledged", expected)
            if actual is None:
                model.pop(key, None)
            else:
                model[key] = actual


def test_acknowledged_writes_survive_kill_9(tmp_path):
    rng = random.Random(int(os.environ.get("CLOUT_CRASH_SEED", "1234")))
    data = tmp_path / "data"
    models = {f"crash_{w}": {} for w in range(WRITERS)}
    in_flight = {}
    total_acknowledged = 0
    for round_ in range(4):
        # Small snapshot thresholds in some rounds: snapshots, and the log
        # they drop, happen under the traffic and the kill.
        extra = ["--snapshot_log_bytes=300000"] if round_ % 2 else []
        server = Server(f"--data_dir={data}", *extra, dumps=())
        try:
            check(server.port, models, in_flight)
            writers = [Writer(server.port, job, models[job],
                              random.Random(rng.random()))
                       for job in models]
            for w in writers:
                w.start()
            time.sleep(rng.uniform(0.3, 1.5))
            server.proc.send_signal(signal.SIGKILL)
            server.proc.wait(timeout=30)
            for w in writers:
                w.join(timeout=30)
                assert not w.is_alive()
            in_flight = {w.job: w.in_flight for w in writers}
            acknowledged = sum(w.acknowledged for w in writers)
            assert acknowledged > 0, "no write was acknowledged before the kill"
            total_acknowledged += acknowledged
        finally:
            if server.proc.poll() is None:
                server.proc.kill()
                server.proc.wait()
    # The last recovery, then a clean restart that must answer identically.
    server = Server(f"--data_dir={data}", dumps=())
    check(server.port, models, in_flight)
    before = {job: http(server.port, "GET",
                        f"/_ml/anomaly_detectors/{job}/results/influencers"
                        "?size=10000&sort=timestamp")[2]
              for job in models}
    assert server.stop() == 0
    server = Server(f"--data_dir={data}", dumps=())
    after = {job: http(server.port, "GET",
                       f"/_ml/anomaly_detectors/{job}/results/influencers"
                       "?size=10000&sort=timestamp")[2]
             for job in models}
    assert server.stop() == 0
    assert before == after
    assert total_acknowledged >= 4


def test_dumps_only_seed_an_empty_data_dir(tmp_path):
    data = tmp_path / "data"
    server = Server(f"--data_dir={data}")  # seeded from the sample
    assert len(stored(server.port, "it_ops_new_kpi")) == 28
    assert server.stop() == 0
    refused = subprocess.run(
        [CLOUT, "serve", "--port=0", f"--data_dir={data}", DATA],
        capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    error = json.loads(refused.stderr.strip().splitlines()[-1])
    assert "already holds results" in error["error"]["reason"]
    # Without the dump it serves what it holds.
    server = Server(f"--data_dir={data}", dumps=())
    assert len(stored(server.port, "it_ops_new_kpi")) == 28
    assert server.stop() == 0


def segment(data):
    log = data / "log"
    names = sorted(p for p in log.iterdir() if p.name.startswith("wal-"))
    return names[-1]


def kill(server):
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=30)


def test_a_torn_tail_is_dropped_and_corruption_refused(tmp_path):
    data = tmp_path / "data"
    server = Server(f"--data_dir={data}")  # seeded, then a snapshot
    ops = [("index", "extra", 5000, 1.5)]
    post_bulk(server.port, "it_ops_new_kpi", ops)
    kill(server)  # no shutdown snapshot: the _bulk is in the log only
    last = segment(data)
    good = last.read_bytes()
    assert len(good) > 16
    # Half a record at the end: dropped with a warning.
    last.write_bytes(good + b"\x01\x02\x03\x04\x40\x00\x00\x00\x03")
    server = Server(f"--data_dir={data}", dumps=())
    assert len(stored(server.port, "it_ops_new_kpi")) == 29
    assert any("dropped a torn log tail" in line for line in server.first_lines)
    kill(server)
    assert last.read_bytes() == good  # cut back
    torn = last.parent / (last.name + ".torn")
    assert torn.read_bytes() == b"\x01\x02\x03\x04\x40\x00\x00\x00\x03"
    # Later starts say the evidence is still there (it is never deleted).
    server = Server(f"--data_dir={data}", dumps=())
    assert any("1 file(s) of damaged log bytes" in line and torn.name in line
               for line in server.first_lines), server.first_lines
    kill(server)
    assert torn.exists()
    # A flipped byte inside the record: refused, naming file and offset.
    damaged = bytearray(good)
    damaged[40] ^= 0x10
    last.write_bytes(bytes(damaged))
    refused = subprocess.run(
        [CLOUT, "serve", "--port=0", f"--data_dir={data}"],
        capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    error = json.loads(refused.stderr.strip().splitlines()[-1])
    assert error["error"]["type"] == "translog_corrupted_exception"
    assert f"[{last}] is corrupted at offset 16" in error["error"]["reason"]
    assert "--recover=skip_corrupt" in error["error"]["reason"]
    server = Server(f"--data_dir={data}", "--recover=skip_corrupt", dumps=())
    # The snapshot's results, without the damaged record's.
    assert len(stored(server.port, "it_ops_new_kpi")) == 28
    assert any("skip_corrupt skipped" in line for line in server.first_lines)
    assert server.stop() == 0
    assert (last.parent / (last.name + ".corrupt")).exists()


def test_damage_in_a_log_segment_the_snapshot_holds_is_ignored(tmp_path):
    # A crash between a snapshot and the removal of the log it covers
    # leaves that log behind; damage in it must not stop the start.
    data = tmp_path / "data"
    server = Server(f"--data_dir={data}")
    ops = [("index", f"i{i}", 1000 * i, float(i)) for i in range(20)]
    post_bulk(server.port, "ignored_job", ops)
    covered = segment(data)
    kept = covered.read_bytes()
    status, _, body = http(server.port, "POST", "/_clout/snapshot")
    assert status == 200, body
    before = stored(server.port, "ignored_job")
    assert len(before) == 20
    assert server.stop() == 0
    assert not covered.exists()  # the snapshot's log was removed
    damaged = bytearray(kept)
    damaged[60] ^= 0x08
    covered.write_bytes(bytes(damaged))
    server = Server(f"--data_dir={data}", dumps=())
    assert stored(server.port, "ignored_job") == before
    assert any("snapshot already holds were ignored" in line and
               str(covered) in line for line in server.first_lines), \
        server.first_lines
    assert server.stop() == 0
    assert not covered.exists()  # removed with the next snapshot


def test_a_log_that_cannot_grow_fails_writes_and_keeps_serving(tmp_path):
    """A real write error on the log (not an injected one): the server runs
    under a file-size limit (`ulimit -f`, with SIGXFSZ ignored), so that
    once the log reaches it write() fails with EFBIG. Each write past it
    fails alone in Elasticsearch's shape; the log is cut back, the store
    is as it was, queries go on; and after a restart without the limit
    every acknowledged write, and none of the failed ones, is there."""
    data = tmp_path / "data"
    # 512 blocks: 256 KiB under dash (/bin/sh), 512 KiB under bash.
    wrapper = ("sh", "-c", 'trap "" XFSZ; ulimit -f 512; exec "$0" "$@"')
    server = Server(f"--data_dir={data}", dumps=(), wrapper=wrapper)
    model = {}
    failure = None
    logged = 0  # the log's bytes after the last acknowledged write
    rng = random.Random(7)
    for batch in range(2000):  # 40 documents are a few KiB of log
        ops = [("index", f"f{rng.randrange(2000)}", 1000 * rng.randrange(4),
                float(rng.randrange(1, 100000)) / 1000) for _ in range(40)]
        status, _, body = http(server.port, "POST", "/_bulk",
                               bulk_body("full_job", ops),
                               {"Content-Type": "application/x-ndjson"})
        if status != 200:
            failure = (status, json.loads(body), ops)
            break
        assert not json.loads(body)["errors"], body
        for _, value, ts, score in ops:
            model[(value, ts)] = score
        logged = segment(data).stat().st_size
    assert failure is not None, "the log never reached the limit"
    status, error, ops = failure
    assert status == 500, error
    assert error["status"] == 500
    assert error["error"]["type"] == "translog_exception"
    assert error["error"]["root_cause"][0]["type"] == "translog_exception"
    reason = error["error"]["reason"]
    assert "the write-ahead log could not be written" in reason
    assert "File too large" in reason
    assert "refused until a restart" not in reason
    # The log was cut back to its last whole record.
    assert segment(data).stat().st_size == logged
    # The store is as it was, and answers; the same write fails again,
    # alone (the log takes writes that fit), and so does one document
    # unless the room left takes its record.
    assert stored(server.port, "full_job") == model
    for attempt in (ops, ops[:1]):
        status, _, body = http(server.port, "POST", "/_bulk",
                               bulk_body("full_job", attempt),
                               {"Content-Type": "application/x-ndjson"})
        if status == 200 and len(attempt) == 1:
            model[attempt[0][1:3]] = attempt[0][3]
            logged = segment(data).stat().st_size
        else:
            assert status == 500, body
            reason = json.loads(body)["error"]["reason"]
            assert "File too large" in reason, reason
            assert "refused until a restart" not in reason, reason
        assert segment(data).stat().st_size == logged
        assert stored(server.port, "full_job") == model
    kill(server)
    server = Server(f"--data_dir={data}", dumps=())
    assert stored(server.port, "full_job") == model
    assert not any("dropped a torn log tail" in line
                   for line in server.first_lines), server.first_lines
    post_bulk(server.port, "full_job", ops)
    for _, value, ts, score in ops:
        model[(value, ts)] = score
    assert stored(server.port, "full_job") == model
    assert server.stop() == 0


def test_snapshot_endpoint_and_restart_from_it(tmp_path):
    data = tmp_path / "data"
    server = Server(f"--data_dir={data}")
    ops = [("index", f"s{i}", 1000 * i, float(i)) for i in range(50)]
    post_bulk(server.port, "snap_job", ops)
    status, _, body = http(server.port, "POST", "/_clout/snapshot")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["acknowledged"] is True
    assert answer["generation"] == 2  # the seed, then the _bulk
    assert answer["segments"] >= 2
    status, _, _ = http(server.port, "GET", "/_clout/snapshot")
    assert status == 405
    before = stored(server.port, "snap_job")
    # Killed: the restart opens the snapshot and replays nothing.
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=30)
    server = Server(f"--data_dir={data}", dumps=())
    assert stored(server.port, "snap_job") == before
    assert len(stored(server.port, "it_ops_new_kpi")) == 28
    assert any("snapshot of generation 2, then 0 log records" in line
               for line in server.first_lines), server.first_lines
    assert server.stop() == 0
    snapshots = sorted(p.name for p in (data / "snapshots").iterdir())
    assert sum(name.startswith("MANIFEST-") for name in snapshots) == 1


def test_a_damaged_snapshot_segment_is_refused_or_left_out(tmp_path):
    data = tmp_path / "data"
    server = Server(f"--data_dir={data}")  # seeded, then a snapshot
    post_bulk(server.port, "snap_job",
              [("index", f"s{i}", 1000 * i, float(i)) for i in range(20)])
    status, _, body = http(server.port, "POST", "/_clout/snapshot")
    assert status == 200, body
    kill(server)
    segments = [p for p in (data / "snapshots").iterdir()
                if p.name.startswith("seg-")]
    [damaged] = [p for p in segments if b"snap_job" in p.read_bytes()]
    raw = bytearray(damaged.read_bytes())
    raw[len(raw) // 2] ^= 0x04
    damaged.write_bytes(bytes(raw))
    refused = subprocess.run(
        [CLOUT, "serve", "--port=0", f"--data_dir={data}"],
        capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    error = json.loads(refused.stderr.strip().splitlines()[-1])
    assert error["error"]["type"] == "snapshot_corrupted_exception"
    assert damaged.name in error["error"]["reason"]
    assert "--recover=skip_corrupt" in error["error"]["reason"]
    server = Server(f"--data_dir={data}", "--recover=skip_corrupt", dumps=())
    # The other job is whole; the damaged segment's rows are lost, and
    # the start says so.
    assert len(stored(server.port, "it_ops_new_kpi")) == 28
    assert stored(server.port, "snap_job") == {}
    assert any("left out a damaged snapshot segment" in line and
               damaged.name in line for line in server.first_lines), \
        server.first_lines
    assert server.stop() == 0  # a clean stop: a snapshot without it
    aside = damaged.parent / (damaged.name + ".corrupt")
    assert aside.exists() and not damaged.exists()
    # A plain start now: nothing damaged is named; the evidence is kept.
    server = Server(f"--data_dir={data}", dumps=())
    assert len(stored(server.port, "it_ops_new_kpi")) == 28
    assert any("damaged snapshot file(s)" in line and aside.name in line
               for line in server.first_lines), server.first_lines
    assert server.stop() == 0
    assert aside.exists()
    # A damaged MANIFEST is refused even with skip_corrupt: it alone says
    # which rows of the other segments are deleted.
    [manifest] = [p for p in (data / "snapshots").iterdir()
                  if p.name.startswith("MANIFEST-")]
    raw = bytearray(manifest.read_bytes())
    raw[len(raw) // 2] ^= 0x10
    manifest.write_bytes(bytes(raw))
    for recover in ((), ("--recover=skip_corrupt",)):
        refused = subprocess.run(
            [CLOUT, "serve", "--port=0", f"--data_dir={data}", *recover],
            capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1, refused.stderr
        error = json.loads(refused.stderr.strip().splitlines()[-1])
        assert error["error"]["type"] == "snapshot_corrupted_exception"
        assert manifest.name in error["error"]["reason"]
        assert "damaged MANIFEST" in error["error"]["reason"]
        assert ("Restore the data directory from a backup"
                in error["error"]["reason"])


def test_snapshot_files_load_like_dumps(tmp_path):
    snap = tmp_path / "kpi.clout"
    made = subprocess.run([CLOUT, "snapshot", f"--output={snap}", DATA],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    assert "28 results of 1 jobs" in made.stderr
    query = ["query", "--job=it_ops_new_kpi", "--size=100", "--sort=timestamp"]
    from_dump = subprocess.run([CLOUT, *query, DATA], capture_output=True,
                               timeout=60)
    from_snap = subprocess.run([CLOUT, *query, str(snap)], capture_output=True,
                               timeout=60)
    assert from_snap.returncode == 0, from_snap.stderr
    assert from_snap.stdout == from_dump.stdout
    # A damaged snapshot is refused, never misread.
    damaged = bytearray(snap.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01
    snap.write_bytes(bytes(damaged))
    refused = subprocess.run([CLOUT, *query, str(snap)], capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 1
    assert "snapshot_corrupted_exception" in refused.stderr


def test_api_keys_survive_restarts_as_digests_only(tmp_path):
    from serve_e2e_test import bcrypt
    config = tmp_path / "config"
    config.mkdir()
    (config / "users").write_text(f"elastic:{bcrypt('pw-elastic')}\n")
    (config / "users_roles").write_text("superuser:elastic\n")
    data = tmp_path / "data"
    args = (f"--config_dir={config}", f"--data_dir={data}")
    from elasticsearch import Elasticsearch
    server = Server(*args)
    es = Elasticsearch(f"http://127.0.0.1:{server.port}",
                       http_auth=("elastic", "pw-elastic"))
    kept = es.security.create_api_key(body={"name": "kept"})
    narrowed = es.security.create_api_key(body={
        "name": "narrowed", "role_descriptors": {"none": {"cluster": []}}})
    dropped = es.security.create_api_key(body={"name": "dropped"})
    es.security.invalidate_api_key(body={"ids": [dropped["id"]]})
    kill(server)  # no clean shutdown: the keys were stored when made
    state = (data / "state" / "api_keys").read_text()
    for key in (kept, narrowed, dropped):
        assert key["api_key"] not in state  # digests only, never the key
    server = Server(*args, dumps=())

    def as_key(key):
        return Elasticsearch(f"http://127.0.0.1:{server.port}",
                             api_key=(key["id"], key["api_key"]))
    assert as_key(kept).security.authenticate()["api_key"]["name"] == "kept"
    assert as_key(kept).ml.get_influencers(job_id="it_ops_new_kpi",
                                           size=1)["count"] == 28
    # The narrowed key keeps its descriptors: no cluster privilege.
    status, _, _ = http(server.port, "GET",
                        "/_ml/anomaly_detectors/it_ops_new_kpi/results/influencers",
                        headers={"Authorization": "ApiKey " + narrowed["encoded"]})
    assert status == 403
    status, _, body = http(server.port, "GET", "/",
                           headers={"Authorization": "ApiKey " + dropped["encoded"]})
    assert status == 401 and b"has been invalidated" in body
    listed = Elasticsearch(f"http://127.0.0.1:{server.port}",
                           http_auth=("elastic", "pw-elastic")
                           ).security.get_api_key(owner=True)
    assert sorted(k["name"] for k in listed["api_keys"]) == [
        "dropped", "kept", "narrowed"]
    assert server.stop() == 0


def test_a_snapshot_file_seeds_a_data_dir_that_then_takes_writes(tmp_path):
    snap = tmp_path / "kpi.clout"
    made = subprocess.run([CLOUT, "snapshot", f"--output={snap}", DATA],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    data = tmp_path / "data"
    server = Server(f"--data_dir={data}", dumps=(str(snap),))
    ops = [("index", "after-seed", 5000, 2.5)]
    status, _, body = http(server.port, "POST", "/_bulk",
                           bulk_body("it_ops_new_kpi", ops),
                           {"Content-Type": "application/x-ndjson"})
    assert status == 200 and not json.loads(body)["errors"], body
    kill(server)
    server = Server(f"--data_dir={data}", dumps=())
    assert len(stored(server.port, "it_ops_new_kpi")) == 29
    assert server.stop() == 0
