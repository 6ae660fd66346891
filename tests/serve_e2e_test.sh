#!/usr/bin/env bash
# End-to-end tests of `clout serve`: the real server on a free loopback
# port, driven by the official Python client (Debian's python3-elasticsearch
# 7.17), curl and raw sockets. The second argument names another pytest
# file of tests/ to run the same way (durability_e2e_test.py). Debian's /usr/bin/python3 on purpose: another
# python3 on the PATH would not see Debian's packages.
set -euo pipefail
export CLOUT_BIN="$PWD/$1"
export CLOUT_DATA="$PWD/data/it_ops_new_kpi.ndjson"
export TMPDIR="${TEST_TMPDIR:-${TMPDIR:-/tmp}}"
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider \
  --junitxml="${XML_OUTPUT_FILE:-$TMPDIR/serve_e2e.xml}" "tests/${2:-serve_e2e_test.py}"
