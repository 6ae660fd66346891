#!/usr/bin/env bash
# Installs the Debian packages Clout builds with. Idempotent: packages that
# are already installed are left alone and nothing is downloaded.
set -euo pipefail
packages=(bazel-bootstrap libabsl-dev libsimdjson-dev libgtest-dev libgmock-dev
          libbenchmark-dev libsqlite3-dev g++ clang libclang-rt-14-dev python3
          libboost-dev zlib1g-dev libssl-dev libcrypt-dev libyaml-cpp-dev
          libxxhash-dev libzstd-dev pybind11-dev python3-dev python3-numpy python3-pandas
          tzdata curl openssl python3-pytest python3-elasticsearch)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q "${missing[@]}"
fi
echo "setup: all packages present (${packages[*]})"
