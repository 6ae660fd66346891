#!/usr/bin/env python3
"""Regenerates the seed corpora in fuzz/corpus/<target>/ from the repo's
test material: tests/golden/*.test requests, data/it_ops_new_kpi.ndjson,
the example documents of tests/loader_test.cc in every dump format, and a
few date strings. Run from anywhere: python3 fuzz/make_corpus.py

Files are named by content hash, so re-running adds nothing twice. Seeds
that fuzzing found worth keeping can be added by hand (keep the corpus
small: a few hundred KB at most).
"""
import hashlib
import os
import re
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- golden requests ---------------------------------------------------------
body_requests, param_requests = [], []
for name in sorted(os.listdir(os.path.join(ROOT, "tests", "golden"))):
    lines = open(os.path.join(ROOT, "tests", "golden", name)).read().split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"request: (body|params) (\S*)", lines[i])
        i += 1
        if not m:
            continue
        block = []
        while i < len(lines) and lines[i] != "expect:":
            block.append(lines[i])
            i += 1
        (body_requests if m.group(1) == "body" else param_requests).append(
            "\n".join(block))

for body in body_requests:
    write("request_body", body)
for extra in ['{"job_id":"web","sort":"host","desc":false,"page":{"from":1,"size":2}}',
              '{"start":null,"end":1464829200001,"influencer_score":"1e400",'
              '"exclude_interim":"true","sort":"timestamp.zone"}',
              '{"influencer_score":-0.0,"page":{"size":"7"},"desc":"false"}']:
    write("request_body", extra)

for params in param_requests:
    write("request_params", params)
    # The same as a query string.
    write("request_params", "&".join(params.split("\n")))
for extra in ["start=now-1M/w\nend=now%2B1d\nhuman\npretty=true\nsize=2",
              "?sort=client.ip&desc=false&influencer_score=+1.5e1d&from=1",
              "exclude_interim=\nsize=2147483647\nfrom=-0"]:
    write("request_params", extra)

# --- dates ---------------------------------------------------------------------
for text in ["2016-02-08T15:00:00.000Z", "2016", "2016-02", "2016-02-29",
             "2016-02-08T15", "2016-02-08T15:00", "2016-02-08T15:00:00",
             "2016-02-08T15:00:00.123456789+05:30", "2016-02-08T15:00-0830",
             "0000-01-01T00:00:00+18:00", "9999-12-31T23:59:59.999-18",
             "1454943600000", "-1.5", "8640000000000000", "-8640000000000000",
             "now", "now-2d/d", "now+1M/w", "now/y-1y+3w", "now+2147483647s",
             "2016-06-01||+1h", "1454943600000||/M", "2016-01-31||+1M",
             "-8640000000000000||/d", "now-200000y+200000y"]:
    write("dates", text)
# With an int64 prefix (formatted, used as "now"): the extremes.
for v in [-(2**63), 2**63 - 1, 8640000000000000, -8640000000000000, -1, 0]:
    write("dates", struct.pack("<q", v))
    write("dates", struct.pack("<q", v) + b"||+1d")

# --- loader --------------------------------------------------------------------
doc_a = ('{"job_id":"fmt","result_type":"influencer","influencer_field_name":"host",'
         '"influencer_field_value":"web-1","host":"web-1","influencer_score":94.1386,'
         '"initial_influencer_score":90.5,"probability":1.11612E-4,"bucket_span":600,'
         '"is_interim":false,"timestamp":1454943600000}')
doc_b = ('{"job_id":"fmt","result_type":"influencer","influencer_field_name":"user",'
         '"influencer_field_value":"caf\\u00e9 \\"q\\" \\\\ \\/","user":"x",'
         '"influencer_score":0.0512,"initial_influencer_score":0.0512,'
         '"probability":0.0133,"bucket_span":3600,"is_interim":true,'
         '"timestamp":1454940000000,"extra":{"nested":[1,{"a":null}]}}')
doc_c = ('{"timestamp":1454945400000,"bucket_span":600,"probability":0.5,'
         '"influencer_score":80.0,"initial_influencer_score":80.0,'
         '"influencer_field_value":"page_views","influencer_field_name":"kpi_indicator",'
         '"result_type":"influencer","job_id":"fmt","is_interim":false}')


def hit(source, i, trailing):
    return ('{"_index":".ml-anomalies-shared","_id":"fmt_influencer_%d","_score":1.0,'
            '"_source":%s%s' % (i, source,
                                ',"sort":[1454943600000,"x"],"fields":{"a":[1]}}'
                                if trailing else "}"))


hits = ",".join([hit(doc_a, 1, False), hit(doc_b, 2, True), hit(doc_c, 3, False)])
formats = [
    "\n".join([doc_a, doc_b, doc_c]) + "\n",
    "[" + ",".join([doc_a, doc_b, doc_c]) + "]",
    "[\n  " + ",\n  ".join([doc_a, doc_b, doc_c]) + "\n]\n",
    '{"count":3,"influencers":[' + ",".join([doc_a, doc_b, doc_c]) + "]}",
    '{\n  "count" : 3,\n  "influencers" : [\n' + ",\n".join([doc_a, doc_b, doc_c])
    + "\n  ]\n}\n",
    '{"took":1,"timed_out":false,"_shards":{"total":1,"successful":1,"skipped":0,'
    '"failed":0},"hits":{"total":{"value":3,"relation":"eq"},"max_score":1.0,"hits":['
    + hits + "]}}",
    '{\n  "took" : 1,\n  "timed_out" : false,\n  "hits" : {\n    "total" : 3,\n'
    '    "hits" : [\n' + hits + "\n    ]\n  }\n}\n",
    "\n".join([hit(doc_a, 1, False), hit(doc_b, 2, True),
               '{"_source":' + doc_c + ',"_id":"3"}']) + "\n",
    "\n".join(['{"index":{"_index":".ml-anomalies-shared","_id":"1"}}', doc_a,
               '{"delete":{"_index":".ml-anomalies-shared","_id":"0"}}',
               '{"create":{"_index":".ml-anomalies-shared","_id":"2"}}', doc_b,
               '{"index":{}}', doc_c]) + "\n",
    # Other result types, nulls, a bad line among good ones, CRLF and a BOM.
    '{"job_id":"rec_job","result_type":"record","probability":0.01,"record_score":50.0,'
    '"influencers":[{"influencer_field_name":"host","influencer_field_values":["web-1"]}],'
    '"timestamp":1454943600000,"bucket_span":600,"is_interim":false}\n'
    '{"job_id":"snap_job","snapshot_id":"1454943600","timestamp":1}\n'
    '{"job_id":"n","result_type":"influencer","influencer_field_name":"f",'
    '"influencer_field_value":"v","timestamp":"2016-02-08T15:00:00Z",'
    '"influencer_score":null,"initial_influencer_score":null,"probability":null,'
    '"bucket_span":null,"is_interim":null}\n',
    "\ufeff" + doc_a + "\r\n\r\n" + '{"job_id":"fmt","result_type":"influencer"}\r\n'
    + doc_c,
    '{"index":{"_id":"1"}}\n' + doc_a + '\n{"update":{"_id":"1"}}\n'
    '{"doc":{"influencer_score":1.0}}\n{"index":{"_id":"3"}}\n' + doc_c + "\n",
]
modes = [0x00, 0x01, 0x08, 0x09, 0x12, 0x1b, 0x25, 0x4c, 0x8e, 0xd7]
for i, text in enumerate(formats):
    write("loader", bytes([modes[i % len(modes)]]) + text.encode())
    write("loader", bytes([modes[(i + 3) % len(modes)]]) + text.encode())

data = open(os.path.join(ROOT, "data", "it_ops_new_kpi.ndjson"), "rb").read()
write("loader", b"\x00" + data)
write("loader", b"\x03" + data)
for i, line in enumerate(data.split(b"\n")[:8]):
    if line:
        write("loader", bytes([modes[i % len(modes)]]) + line + b"\n")
