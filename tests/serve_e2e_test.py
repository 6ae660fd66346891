"""End-to-end tests of `clout serve` (see serve_e2e_test.sh).

Every test talks to a real server process started on a free loopback port
(--port=0) over the bundled sample; loops are bounded by deadlines.
"""
import gzip
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.parse

import pytest

CLOUT = os.environ["CLOUT_BIN"]
DATA = os.environ["CLOUT_DATA"]
JOB = "it_ops_new_kpi"
GI = f"/_ml/anomaly_detectors/{JOB}/results/influencers"


class Server:
    """A `clout serve` process; stop() sends SIGTERM and returns its code."""

    def __init__(self, *args, dumps=(DATA,), wrapper=()):
        """`wrapper`: a command that runs the server's command line."""
        self.proc = subprocess.Popen(
            [*wrapper, CLOUT, "serve", "--port=0", *args, *dumps],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        deadline = time.monotonic() + 30
        line = ""
        self.first_lines = []  # stderr up to "listening on"
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            self.first_lines.append(line)
            if "listening on" in line or not line:
                break
        assert "listening on http://127.0.0.1:" in line, line
        self.port = int(line.rsplit(":", 1)[1])
        self.stderr_rest = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self):
        for line in self.proc.stderr:
            self.stderr_rest.append(line)

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    assert s.stop() == 0


def raw(port, data, read_until_close=True, timeout=10):
    """Sends `data` on a new connection; returns every byte answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
        c.sendall(data)
        if not read_until_close:
            return c.recv(65536)
        chunks = []
        while True:
            try:
                chunk = c.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def http(port, method, target, body=None, headers=None):
    """One request with http.client: (status, headers dict, body bytes)."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, target, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    out = (resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    conn.close()
    return out


def clout_query(*args):
    return subprocess.run([CLOUT, "query", f"--job={JOB}", *args, DATA],
                          capture_output=True, check=True).stdout


# ---------------------------------------------------------------- the client

@pytest.fixture(params=["plain", "compat"])
def es(server, request, monkeypatch):
    if request.param == "compat":
        monkeypatch.setenv("ELASTIC_CLIENT_APIVERSIONING", "1")
    else:
        monkeypatch.delenv("ELASTIC_CLIENT_APIVERSIONING", raising=False)
    from elasticsearch import Elasticsearch
    client = Elasticsearch(f"http://127.0.0.1:{server.port}")
    yield client
    client.close()


def test_client_info(es):
    info = es.info()
    assert info["version"]["number"].startswith("8.")
    assert info["tagline"] == "You Know, for Search"


def test_client_get_influencers_param_mode(es, server):
    got = es.ml.get_influencers(job_id=JOB, size=5, sort="timestamp",
                                desc=False)
    want = clout_query("--size=5", "--sort=timestamp", "--desc=false")
    assert got == json.loads(want)
    # Byte for byte, through the client's own connection.
    conn = es.transport.get_connection()
    status, _, data = conn.perform_request(
        "POST", GI, params={"size": "5", "sort": "timestamp", "desc": "false"})
    assert status == 200
    assert data.encode() == want.rstrip(b"\n")


def test_client_get_influencers_body_mode(es):
    body = {"sort": "influencer_score", "desc": True, "page": {"size": 3},
            "start": "2016-02-08T15:00:00Z"}
    got = es.ml.get_influencers(job_id=JOB, body=body)
    want = clout_query(f"--body={json.dumps(body)}")
    assert got == json.loads(want)
    conn = es.transport.get_connection()
    _, _, data = conn.perform_request("POST", GI, body=json.dumps(body).encode(),
                                      headers={"content-type": "application/json"})
    assert data.encode() == want.rstrip(b"\n")


def test_client_errors(es):
    from elasticsearch import exceptions as ex
    with pytest.raises(ex.NotFoundError) as e:
        es.ml.get_influencers(job_id="no_such_job")
    assert e.value.status_code == 404
    assert e.value.error == "resource_not_found_exception"
    assert "No known job with id 'no_such_job'" in e.value.info["error"]["reason"]
    with pytest.raises(ex.RequestError) as e:
        es.ml.get_influencers(job_id=JOB, sort="no_such_field")
    assert e.value.status_code == 400
    assert e.value.error == "search_phase_execution_exception"
    with pytest.raises(ex.RequestError) as e:
        es.ml.get_influencers(job_id=JOB, body={"page": {"size": -1}})
    assert e.value.status_code == 400
    with pytest.raises(ex.RequestError) as e:
        es.ml.get_influencers(job_id=JOB, params={"siz": "1"})
    assert "did you mean [size]?" in e.value.info["error"]["reason"]


def test_client_bulk_then_query(es):
    job = f"bulk_job_{os.getpid()}_{id(es)}"
    lines = []
    for i in range(3):
        lines.append(json.dumps({"index": {"_index": ".ml-anomalies-shared"}}))
        lines.append(json.dumps({
            "job_id": job, "result_type": "influencer",
            "influencer_field_name": "host", "influencer_field_value": f"h{i}",
            "influencer_score": 10.0 * i, "initial_influencer_score": 1.0,
            "probability": 0.5, "bucket_span": 60, "is_interim": False,
            "timestamp": 1_600_000_000_000 + i * 60_000}))
    result = es.bulk(body="\n".join(lines) + "\n")
    assert result["errors"] is False
    assert [i["index"]["result"] for i in result["items"]] == ["created"] * 3
    page = es.ml.get_influencers(job_id=job)
    assert page["count"] == 3
    assert [r["influencer_field_value"] for r in page["influencers"]] == \
        ["h2", "h1", "h0"]
    # The same documents again: updated, _version 2.
    again = es.bulk(body="\n".join(lines) + "\n")
    assert [i["index"]["_version"] for i in again["items"]] == [2, 2, 2]
    # create on an existing result: a 409 item.
    conflict = es.bulk(body=lines[0].replace('"index"', '"create"') + "\n" +
                       lines[1] + "\n")
    assert conflict["errors"] is True
    assert conflict["items"][0]["create"]["status"] == 409
    assert conflict["items"][0]["create"]["error"]["type"] == \
        "version_conflict_engine_exception"


# ------------------------------------------------------ curl: the spec's rules

def curl(*args):
    return subprocess.run(["curl", "-s", "-S", *args], capture_output=True,
                          check=True).stdout


def test_curl_media_types(server):
    base = f"http://127.0.0.1:{server.port}{GI}"
    out = curl("-w", "%{http_code}", "-H", "Content-Type: text/plain",
               "-d", "{}", base)
    assert out == b'{"error":"Content-Type header [text/plain] is not supported","status":406}406'
    # No Content-Type at all (curl -d always sends one; send it empty).
    out = curl("-w", "%{http_code}", "-H", "Content-Type:", "-d", "{}", base)
    assert out == b'{"error":"Content-Type header is missing","status":406}406'
    for ct in ["application/json", "application/json; charset=UTF-8"]:
        assert json.loads(curl("-H", f"Content-Type: {ct}", "-d", "{}", base))["count"] == 28
    vnd = "application/vnd.elasticsearch+json; compatible-with=8"
    headers = curl("-D", "-", "-o", "/dev/null", "-H", f"Content-Type: {vnd}",
                   "-H", f"Accept: {vnd}", "-d", "{}", base).decode()
    assert "Content-Type: application/vnd.elasticsearch+json;compatible-with=8" in headers
    mismatch = json.loads(curl("-H", f"Content-Type: {vnd}", "-H",
                               "Accept: application/vnd.elasticsearch+json; compatible-with=7",
                               "-d", "{}", base))
    assert mismatch["status"] == 400
    assert mismatch["error"]["type"] == "media_type_header_exception"


def test_curl_source_parameter(server):
    body = json.dumps({"page": {"size": 1}, "sort": "timestamp"})
    q = urllib.parse.urlencode({"source": body,
                                "source_content_type": "application/json"})
    got = curl(f"http://127.0.0.1:{server.port}{GI}?{q}")
    assert got == clout_query(f"--body={body}").rstrip(b"\n")
    q = urllib.parse.urlencode({"source": body})
    err = json.loads(curl(f"http://127.0.0.1:{server.port}{GI}?{q}"))
    assert err["status"] == 400
    assert err["error"]["reason"] == \
        "source and source_content_type parameters are required"


def test_curl_filter_path_pretty_human(server):
    base = f"http://127.0.0.1:{server.port}{GI}"
    out = curl(base + "?size=2&filter_path=count,influencers.influencer_score")
    assert out == b'{"count":28,"influencers":[{"influencer_score":94.1386},{"influencer_score":88.0473}]}'
    out = json.loads(curl(base + "?size=1&filter_path=-influencers.job_id,-count"))
    assert "count" not in out and "job_id" not in out["influencers"][0]
    assert out["influencers"][0]["probability"] == 1.11612e-4
    out = curl(base + "?size=1&filter_path=**.probability&pretty")
    assert out == b'{\n  "influencers" : [\n    {\n      "probability" : 1.11612E-4\n    }\n  ]\n}\n'
    out = curl(base + "?size=1&filter_path=nothing.here")
    assert out == b"{}"
    # human adds timestamp_string; errors are never filtered.
    out = json.loads(curl(base + "?size=1&human"))
    assert out["influencers"][0]["timestamp_string"] == "2016-02-08T15:00:00.000Z"
    err = json.loads(curl(f"http://127.0.0.1:{server.port}/_ml/anomaly_detectors/x/results/influencers?filter_path=count"))
    assert err["status"] == 404


def test_curl_gzip_both_ways(server):
    base = f"http://127.0.0.1:{server.port}{GI}"
    plain = curl(base + "?size=3")
    headers = curl("-D", "-", "-o", "/dev/null", "-H", "Accept-Encoding: gzip",
                   base + "?size=3").decode()
    assert "Content-Encoding: gzip" in headers
    assert curl("--compressed", base + "?size=3") == plain
    status, _, data = http(server.port, "POST", GI,
                           body=gzip.compress(b'{"page":{"size":3}}'),
                           headers={"Content-Type": "application/json",
                                    "Content-Encoding": "gzip"})
    assert status == 200 and data == plain
    status, _, data = http(server.port, "POST", GI, body=b"\x1f\x8b\x08garbage",
                           headers={"Content-Type": "application/json",
                                    "Content-Encoding": "gzip"})
    assert status == 400 and b"not valid gzip" in data


def test_curl_errors_405_413_unknown(server):
    base = f"http://127.0.0.1:{server.port}"
    out = curl("-D", "-", "-X", "DELETE", base + GI).decode()
    assert "405 Method Not Allowed" in out and "Allow: GET,POST" in out
    out = json.loads(curl(base + "/_nope"))
    assert out == {"error": "no handler found for uri [/_nope] and method [GET]"}
    out = json.loads(curl(base + GI + "?size=1&sizee=2&sortt=x&zzz=1"))
    assert out["error"]["reason"] == (
        f"request [{GI}] contains unrecognized parameters: [sizee] -> did you "
        "mean [size]?, [sortt] -> did you mean [sort]?, [zzz]")
    # Body mode: a parameter-mode parameter next to a body is unrecognized.
    out = json.loads(curl("-H", "Content-Type: application/json", "-d", "{}",
                          base + GI + "?size=1"))
    assert "unrecognized parameter: [size]" in out["error"]["reason"]


def test_413_closes(tmp_path):
    s = Server("--max_content_length=1000")
    try:
        status, headers, data = http(s.port, "POST", GI, body=b"x" * 2000,
                                     headers={"Content-Type": "application/json"})
        assert status == 413
        assert json.loads(data)["error"]["type"] == "content_too_long_exception"
        # gzip that inflates past the limit: 413 too.
        status, _, _ = http(s.port, "POST", GI, body=gzip.compress(b" " * 5000),
                            headers={"Content-Type": "application/json",
                                     "Content-Encoding": "gzip"})
        assert status == 413
    finally:
        assert s.stop() == 0


def test_pipelining_and_keep_alive(server):
    req = (f"GET {GI}?size=1&filter_path=influencers.timestamp HTTP/1.1\r\n"
           "Host: x\r\n\r\n"
           f"GET {GI}?size=1&sort=timestamp&desc=false&filter_path=count HTTP/1.1\r\n"
           "Host: x\r\n\r\n"
           "GET /_nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").encode()
    out = raw(server.port, req).decode()
    assert out.count("HTTP/1.1 ") == 3
    first = out.index('{"influencers":[{"timestamp":1454943600000}]}')
    second = out.index('{"count":28}')
    third = out.index("no handler found")
    assert first < second < third


def test_expect_continue_and_chunked(server):
    body = b'{"page":{"size":2}}'
    # curl sends Expect: 100-continue for big bodies; force it for a small one.
    out = curl("-H", "Expect: 100-continue", "-H", "Content-Type: application/json",
               "--data-binary", body, f"http://127.0.0.1:{server.port}{GI}")
    assert json.loads(out)["count"] == 28
    chunked = (f"POST {GI} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               "5\r\n{\"pag\r\n" + f"{len(body) - 5:x}\r\n" +
               body[5:].decode() + "\r\n0\r\n\r\n").encode()
    out = raw(server.port, chunked).decode()
    assert out.startswith("HTTP/1.1 200 OK")
    assert '"count":28' in out


def test_head_and_opaque_id(server):
    status, headers, data = http(server.port, "HEAD", "/",
                                 headers={"X-Opaque-Id": "abc"})
    assert status == 200 and data == b""
    assert headers["x-opaque-id"] == "abc"
    assert headers["x-elastic-product"] == "Elasticsearch"
    assert int(headers["content-length"]) > 100


def test_xpack_path_warns(server):
    status, headers, data = http(server.port, "GET",
                                 f"/_xpack/ml/anomaly_detectors/{JOB}/results/influencers?size=1")
    assert status == 200 and "deprecated" in headers["warning"]
    assert json.loads(data)["count"] == 28


def test_bulk_whole_request_errors(server):
    base = f"http://127.0.0.1:{server.port}/_bulk"
    out = json.loads(curl("-H", "Content-Type: application/x-ndjson",
                          "--data-binary", '{"index":{}}', base))
    assert out["status"] == 400
    out = json.loads(curl("-H", "Content-Type: application/x-ndjson",
                          "--data-binary", '"x"\n', base))
    assert "Malformed action/metadata line [1]" in out["error"]["reason"]
    out = json.loads(curl("-H", "Content-Type: application/x-ndjson",
                          "--data-binary", "\n", base + "?refresh=maybe"))
    assert out["status"] == 400


def test_metrics(server):
    curl(f"http://127.0.0.1:{server.port}{GI}?size=1")
    out = curl(f"http://127.0.0.1:{server.port}/_clout/metrics").decode()
    assert 'clout_http_requests_total{endpoint="get_influencers",status="200"}' in out
    assert f'clout_job_results{{job="{JOB}"}} 28' in out
    assert "clout_http_request_duration_seconds_bucket" in out


# ------------------------------------------------------ bad and hostile input

def still_answers(port):
    status, _, data = http(port, "GET", GI + "?size=1")
    assert status == 200 and json.loads(data)["count"] == 28


def test_malformed_http(server):
    out = raw(server.port, b"NOT HTTP AT ALL\r\n\r\n").decode()
    assert out.startswith("HTTP/1.1 400")
    out = raw(server.port, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n").decode()
    assert out.startswith("HTTP/1.1 400")
    still_answers(server.port)


def test_oversized_header_and_line(server):
    out = raw(server.port, b"GET /?" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")
    out = raw(server.port, b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")
    still_answers(server.port)


def test_bad_paths(server):
    status, _, data = http(server.port, "GET", "/_ml/anomaly_detectors/%zz/results/influencers")
    assert status == 400 and b"invalid escape sequence" in data
    status, _, data = http(server.port, "GET", "/_ml/anomaly_detectors/%FF/results/influencers")
    assert status == 404
    assert "\ufffd" in json.loads(data)["error"]["reason"]
    status, _, data = http(server.port, "GET", "/_ml/anomaly_detectors/a%2Fb/results/influencers")
    assert status == 404 and b"'a/b'" in data
    still_answers(server.port)


def test_slow_clients_and_timeouts():
    s = Server("--idle_timeout_seconds=1", "--request_timeout_seconds=1")
    try:
        # A client trickling its header is dropped after the timeout.
        c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        c.sendall(b"GET / HT")
        start = time.monotonic()
        assert c.recv(100) == b""
        assert time.monotonic() - start < 5
        c.close()
        # An idle keep-alive connection is closed after the idle timeout.
        c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        assert c.recv(100) == b""
        c.close()
        still_answers(s.port)
    finally:
        assert s.stop() == 0


def test_client_that_never_reads(server):
    c = socket.create_connection(("127.0.0.1", server.port))
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    req = f"GET {GI}?size=28 HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    c.setblocking(False)
    sent = 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and sent < 2000:
        try:
            c.send(req)
            sent += 1
        except BlockingIOError:
            break
    still_answers(server.port)
    c.close()


def test_thousand_idle_connections(server):
    conns = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(1000)]
    try:
        still_answers(server.port)
    finally:
        for c in conns:
            c.close()
    still_answers(server.port)


def test_connection_cut_mid_body(server):
    c = socket.create_connection(("127.0.0.1", server.port))
    c.sendall(f"POST /_bulk HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
              "Content-Length: 1000\r\n\r\n{\"index\":{}}\n".encode())
    c.close()
    still_answers(server.port)


# ------------------------------------------------------------- the process

def test_refuses_non_loopback_without_security():
    out = subprocess.run([CLOUT, "serve", "--host=0.0.0.0", "--port=0"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "only loopback addresses" in out.stderr


def test_port_taken_is_an_error(server):
    out = subprocess.run([CLOUT, "serve", f"--port={server.port}"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert json.loads(out.stderr.splitlines()[-1])["error"]["type"] == "exception"


def test_bad_dump_is_an_error(tmp_path):
    bad = tmp_path / "bad.ndjson"
    bad.write_text("{not json\n")
    out = subprocess.run([CLOUT, "serve", "--port=0", str(bad)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "bad.ndjson" in out.stderr
    assert json.loads(out.stderr.splitlines()[-1])["status"] == 400


def test_sigint_finishes_in_flight_request():
    s = Server(dumps=())
    # A request whose body is still arriving when the signal comes: it is
    # answered, then the server exits 0.
    c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    doc = json.dumps({"job_id": "j", "result_type": "influencer",
                      "influencer_field_name": "f", "influencer_field_value": "v",
                      "influencer_score": 1.0, "initial_influencer_score": 1.0,
                      "probability": 0.1, "bucket_span": 60, "is_interim": False,
                      "timestamp": 0})
    body = ('{"index":{"_index":".ml-anomalies-shared"}}\n' + doc + "\n").encode()
    c.sendall(f"POST /_bulk HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
              f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:10])
    time.sleep(0.3)
    s.proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    c.sendall(body[10:])
    out = b""
    while b"\r\n\r\n" not in out or not out.rstrip().endswith(b"}"):
        chunk = c.recv(65536)
        if not chunk:
            break
        out += chunk
    assert out.startswith(b"HTTP/1.1 200 OK"), out
    assert b'"result":"created"' in out
    assert s.proc.wait(timeout=30) == 0


# ---------------------------------------------------------------- security

def bcrypt(password):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    # Cost 4 keeps the test fast; the server takes any bcrypt cost.
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))


USERS = {"elastic": ("pw-elastic", "superuser"),
         "mladmin": ("pw-mladmin", "machine_learning_admin"),
         "mluser": ("pw-mluser", "machine_learning_user"),
         "noread": ("pw-noread", "ml_no_read"),
         "writer": ("pw-writer", "ml_writer"),
         "nobody": ("pw-nobody", None)}


@pytest.fixture(scope="module")
def secure(tmp_path_factory):
    config = tmp_path_factory.mktemp("config")
    (config / "users").write_text(
        "".join(f"{u}:{bcrypt(p)}\n" for u, (p, _) in USERS.items()))
    roles = {}
    for user, (_, role) in USERS.items():
        if role:
            roles.setdefault(role, []).append(user)
    (config / "users_roles").write_text(
        "".join(f"{r}:{','.join(us)}\n" for r, us in roles.items()))
    (config / "roles.yml").write_text(
        "ml_no_read:\n  cluster: [monitor_ml]\n  indices:\n"
        "    - names: ['.ml-notifications*']\n      privileges: [read]\n"
        "ml_writer:\n  cluster: [monitor_ml, manage_own_api_key]\n  indices:\n"
        "    - names: ['.ml-anomalies*']\n      privileges: [read, index, delete]\n")
    s = Server(f"--config_dir={config}")
    s.config = config
    yield s
    assert s.stop() == 0


def client(port, user=None, api_key=None):
    from elasticsearch import Elasticsearch
    if user:
        return Elasticsearch(f"http://127.0.0.1:{port}",
                             http_auth=(user, USERS[user][0]))
    if api_key:
        return Elasticsearch(f"http://127.0.0.1:{port}", api_key=api_key)
    return Elasticsearch(f"http://127.0.0.1:{port}")


BULK_DELETE = ('{"delete":{"_index":".ml-anomalies-shared","_id":'
               '"it_ops_new_kpi_influencer_1_600_f_0_0"}}\n')


@pytest.mark.parametrize("user,can_query,can_write,can_info", [
    ("elastic", True, True, True),
    ("mladmin", True, False, False),
    ("mluser", True, False, False),
    ("noread", False, False, False),
    ("writer", True, True, False),
    ("nobody", False, False, False),
])
def test_security_role_matrix(secure, user, can_query, can_write, can_info):
    from elasticsearch import exceptions as ex
    es = client(secure.port, user=user)
    if can_query:
        assert es.ml.get_influencers(job_id=JOB, size=1)["count"] == 28
    else:
        with pytest.raises(ex.AuthorizationException) as e:
            es.ml.get_influencers(job_id=JOB, size=1)
        assert e.value.status_code == 403
        reason = e.value.info["error"]["reason"]
        assert f"is unauthorized for user [{user}]" in reason
        if user == "noread":
            assert "on indices [.ml-anomalies-it_ops_new_kpi]" in reason
        else:
            assert "granted by the cluster privileges [monitor_ml,monitor," \
                   "manage_ml,manage,all]" in reason
    result = es.bulk(body=BULK_DELETE)
    status = result["items"][0]["delete"]["status"]
    assert status == (404 if can_write else 403)
    status, headers, data = http(secure.port, "GET", "/", headers={
        "Authorization": "Basic " + __import__("base64").b64encode(
            f"{user}:{USERS[user][0]}".encode()).decode()})
    assert status == (200 if can_info else 403)
    if status == 403:
        assert "x-elastic-product" not in headers


def test_security_401s(secure):
    from elasticsearch import exceptions as ex
    for method, target in [("GET", "/"), ("GET", GI), ("POST", GI),
                           ("POST", "/_bulk"), ("GET", "/_security/_authenticate"),
                           ("POST", "/_security/api_key"), ("GET", "/_security/api_key"),
                           ("DELETE", "/_security/api_key"), ("GET", "/_clout/metrics"),
                           ("GET", f"/_xpack/ml/anomaly_detectors/{JOB}/results/influencers")]:
        status, headers, data = http(secure.port, method, target)
        assert status == 401, (method, target)
        body = json.loads(data)
        assert body["error"]["reason"] == \
            f"missing authentication credentials for REST request [{target}]"
        assert body["error"]["header"]["WWW-Authenticate"] == \
            ['Basic realm="security", charset="UTF-8"', "ApiKey"]
        assert "x-elastic-product" not in headers
    # Unknown paths stay 400 without credentials, as in Elasticsearch.
    assert http(secure.port, "GET", "/_nope")[0] == 400
    with pytest.raises(ex.AuthenticationException) as e:
        client(secure.port).ml.get_influencers(job_id=JOB)
    assert e.value.status_code == 401
    from elasticsearch import Elasticsearch
    wrong = Elasticsearch(f"http://127.0.0.1:{secure.port}",
                          http_auth=("elastic", "wrong"))
    with pytest.raises(ex.AuthenticationException) as e:
        wrong.ml.get_influencers(job_id=JOB)
    assert e.value.info["error"]["reason"] == (
        f"unable to authenticate user [elastic] for REST request "
        f"[/_ml/anomaly_detectors/{JOB}/results/influencers]")
    unknown = Elasticsearch(f"http://127.0.0.1:{secure.port}",
                            http_auth=("ghost", "x"))
    with pytest.raises(ex.AuthenticationException) as e:
        unknown.ml.get_influencers(job_id=JOB)
    assert "unable to authenticate user [ghost]" in e.value.info["error"]["reason"]


def test_security_api_keys(secure):
    from elasticsearch import exceptions as ex
    admin = client(secure.port, user="elastic")
    key = admin.security.create_api_key(body={"name": "reader"})
    assert list(key) == ["id", "name", "api_key", "encoded"]
    es = client(secure.port, api_key=(key["id"], key["api_key"]))
    assert es.ml.get_influencers(job_id=JOB, size=1)["count"] == 28
    who = es.security.authenticate()
    assert who["authentication_type"] == "api_key"
    assert who["api_key"] == {"id": key["id"], "name": "reader"}
    # Descriptors narrow the owner's rights: no write, no other jobs.
    narrow = admin.security.create_api_key(body={
        "name": "narrow", "role_descriptors": {"r": {
            "cluster": ["monitor_ml"],
            "indices": [{"names": [".ml-anomalies-it_ops*"], "privileges": ["read"]}]}}})
    es = client(secure.port, api_key=(narrow["id"], narrow["api_key"]))
    assert es.ml.get_influencers(job_id=JOB, size=1)["count"] == 28
    result = es.bulk(body=BULK_DELETE)
    assert result["items"][0]["delete"]["status"] == 403
    assert f"API key id [{narrow['id']}] of user [elastic]" in \
        result["items"][0]["delete"]["error"]["reason"]
    with pytest.raises(ex.AuthorizationException):
        es.info()
    # A key cannot exceed its owner: mluser's key with superuser descriptors.
    ml = client(secure.port, user="writer")
    own = ml.security.create_api_key(body={"name": "mine", "role_descriptors": {
        "r": {"cluster": ["all"], "indices": [{"names": ["*"], "privileges": ["all"]}]}}})
    es = client(secure.port, api_key=(own["id"], own["api_key"]))
    with pytest.raises(ex.AuthorizationException):
        es.info()
    # Listing: the admin sees every key, writer its own; never a secret.
    listed = admin.security.get_api_key()["api_keys"]
    assert {k["name"] for k in listed} >= {"reader", "narrow", "mine"}
    assert all("api_key" not in k for k in listed)
    assert [k["name"] for k in ml.security.get_api_key()["api_keys"]] == ["mine"]
    # Invalidation: the key stops working at once.
    out = admin.security.invalidate_api_key(body={"ids": [key["id"]]})
    assert out["invalidated_api_keys"] == [key["id"]]
    with pytest.raises(ex.AuthenticationException) as e:
        client(secure.port, api_key=(key["id"], key["api_key"])).ml.get_influencers(job_id=JOB)
    assert "has been invalidated" in e.value.info["error"]["additional_unsuccessful_credentials"]
    # A wrong secret for a known id, and an unknown id.
    with pytest.raises(ex.AuthenticationException) as e:
        client(secure.port, api_key=(narrow["id"], "wrong")).ml.get_influencers(job_id=JOB)
    assert e.value.info["error"]["additional_unsuccessful_credentials"] == \
        f"API key: invalid credentials for API key [{narrow['id']}]"
    # An expired key.
    short = admin.security.create_api_key(body={"name": "short", "expiration": "1ms"})
    assert "expiration" in short
    time.sleep(0.05)
    with pytest.raises(ex.AuthenticationException) as e:
        client(secure.port, api_key=(short["id"], short["api_key"])).ml.get_influencers(job_id=JOB)
    assert e.value.info["error"]["additional_unsuccessful_credentials"] == \
        "API key: api key is expired"
    # Users without an API key privilege cannot make keys.
    with pytest.raises(ex.AuthorizationException):
        client(secure.port, user="mluser").security.create_api_key(body={"name": "x"})


def test_security_realm_reloads(secure):
    from elasticsearch import exceptions as ex
    es = client(secure.port, user="nobody")
    with pytest.raises(ex.AuthorizationException):
        es.ml.get_influencers(job_id=JOB, size=1)
    roles = secure.config / "users_roles"
    before = roles.read_text()
    try:
        roles.write_text(before + "machine_learning_user:nobody\n")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                es.ml.get_influencers(job_id=JOB, size=1)
                break
            except ex.AuthorizationException:
                time.sleep(0.2)
        assert es.ml.get_influencers(job_id=JOB, size=1)["count"] == 28
    finally:
        roles.write_text(before)


def test_security_secrets_never_logged(tmp_path, secure):
    log = tmp_path / "access.log"
    s = Server(f"--config_dir={secure.config}", f"--access_log={log}")
    try:
        curl("-u", "elastic:pw-elastic", f"http://127.0.0.1:{s.port}{GI}?size=1")
        curl("-u", "elastic:nope", f"http://127.0.0.1:{s.port}{GI}?secret=1")
    finally:
        assert s.stop() == 0
    text = log.read_text() + "".join(s.stderr_rest)
    assert "pw-elastic" not in text and "nope" not in text and "secret" not in text
    lines = [json.loads(l) for l in log.read_text().splitlines()]
    assert [l["status"] for l in lines] == [200, 401]
    assert lines[0]["user"] == "elastic" and lines[0]["path"] == GI
    assert lines[0]["micros"] > 0 and lines[0]["bytes"] > 0


def test_security_refuses_bad_realm(tmp_path):
    (tmp_path / "users").write_text("elastic:plaintext\n")
    out = subprocess.run([CLOUT, "serve", "--port=0", f"--config_dir={tmp_path}"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "users:1: expected name:hash with a bcrypt hash" in out.stderr
    assert "plaintext" not in out.stderr


def test_tls(tmp_path, secure):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2",
                    "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    proc = subprocess.Popen(
        [CLOUT, "serve", "--port=0", f"--config_dir={secure.config}",
         f"--tls_cert={cert}", f"--tls_key={key}", DATA],
        stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert "listening on https://127.0.0.1:" in line, line
        port = int(line.rsplit(":", 1)[1])
        from elasticsearch import Elasticsearch
        es = Elasticsearch(f"https://127.0.0.1:{port}", ca_certs=str(cert),
                           http_auth=("elastic", USERS["elastic"][0]))
        assert es.ml.get_influencers(job_id=JOB, size=1)["count"] == 28
        assert es.info()["tagline"] == "You Know, for Search"
        # Plain HTTP to the TLS port gets nothing.
        with pytest.raises(subprocess.CalledProcessError):
            curl(f"http://127.0.0.1:{port}/")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    # TLS without security, and a certificate without its key, are refused.
    out = subprocess.run([CLOUT, "serve", "--port=0", f"--tls_cert={cert}",
                          f"--tls_key={key}"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 2 and "without --config_dir" in out.stderr
    out = subprocess.run([CLOUT, "serve", "--port=0", f"--tls_cert={cert}"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2


def test_security_review_fixes(secure):
    from elasticsearch import exceptions as ex
    admin = client(secure.port, user="elastic")
    # An expiration past ~100 years is a 400, not an overflow.
    with pytest.raises(ex.RequestError):
        admin.security.create_api_key(body={"name": "x", "expiration": "1000000000000d"})
    ok = admin.security.create_api_key(body={"name": "y", "expiration": "3650d"})
    assert ok["expiration"] > time.time() * 1000
    # A key goes with its owner: remove writer from the realm, its key stops.
    es = client(secure.port, user="writer")
    key = es.security.create_api_key(body={"name": "owner-goes"})
    by_key = client(secure.port, api_key=(key["id"], key["api_key"]))
    assert by_key.ml.get_influencers(job_id=JOB, size=1)["count"] == 28
    users = secure.config / "users"
    before = users.read_text()
    try:
        users.write_text("".join(l + "\n" for l in before.splitlines()
                                 if not l.startswith("writer:")))
        deadline = time.monotonic() + 10
        refused = False
        while time.monotonic() < deadline and not refused:
            try:
                by_key.ml.get_influencers(job_id=JOB, size=1)
                time.sleep(0.2)
            except ex.AuthenticationException as e:
                assert "no longer a user" in \
                    e.info["error"]["additional_unsuccessful_credentials"]
                refused = True
        assert refused
    finally:
        users.write_text(before)
    # A changed password: the old one stops working once the realm reloads.
    old = client(secure.port, user="mluser")
    assert old.ml.get_influencers(job_id=JOB, size=1)["count"] == 28  # cached
    try:
        users.write_text(before.replace(
            [l for l in before.splitlines() if l.startswith("mluser:")][0],
            "mluser:" + bcrypt("a-new-password")))
        deadline = time.monotonic() + 10
        refused = False
        while time.monotonic() < deadline and not refused:
            try:
                old.ml.get_influencers(job_id=JOB, size=1)
                time.sleep(0.2)
            except ex.AuthenticationException:
                refused = True
        assert refused
    finally:
        users.write_text(before)
