#!/usr/bin/env bash
# Builds valkey-json 1.0.2 (Valkey's JSON module: module `json`, data type `ReJSON-RL`) once from
# VENDOR (default ../shared/vendor), cached under target/valkey-json, and prints the path of
# libjson.so. Offline: its CMake build would download RapidJSON and clone Valkey for
# valkeymodule.h, so the sources are compiled directly with the vendored RapidJSON commit and
# Valkey 8.0.1's header (as ../shared/vendor/README says). With VALKEY_JSON_MODULE set (your own
# build), prints that and builds nothing. Exit 2 when a tarball is missing: the JSON tests on
# Valkey then say they are skipped and why.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${VALKEY_JSON_MODULE+set}" ]; then
  echo "$VALKEY_JSON_MODULE"
  exit 0
fi
vendor=${VENDOR:-../shared/vendor}
out=target/valkey-json
lib=$out/libjson.so
if [ ! -f "$lib" ]; then
  for t in valkey-json-1.0.2 rapidjson-ebd87cb valkey-8.0.1; do
    if [ ! -f "$vendor/$t.tar.gz" ]; then
      echo "missing $vendor/$t.tar.gz: valkey-json needs it (or set VENDOR, or" >&2
      echo "VALKEY_JSON_MODULE=/path/to/libjson.so)" >&2
      exit 2
    fi
  done
  command -v g++ >/dev/null || { echo "g++ not found (make deps installs it)" >&2; exit 1; }
  rm -rf "$out/src" && mkdir -p "$out/src"
  tar -xzf "$vendor/valkey-json-1.0.2.tar.gz" -C "$out/src"
  tar -xzf "$vendor/rapidjson-ebd87cb.tar.gz" -C "$out/src"
  tar -xzf "$vendor/valkey-8.0.1.tar.gz" -C "$out/src" valkey-8.0.1/src/valkeymodule.h
  src=$out/src/valkey-json-1.0.2/src
  mkdir -p "$src/include"
  cp "$out/src/valkey-8.0.1/src/valkeymodule.h" "$src/include/"
  echo "building valkey-json 1.0.2 (about 30 seconds, once; log in $out/build.log)" >&2
  g++ -std=c++17 -O2 -march=nehalem -fPIC -shared -Wno-mismatched-tags -Wno-format \
    -I "$src" -I "$src/include" -I "$out/src/rapidjson-ebd87cb/include" \
    "$src"/json/*.cc -o "$lib.tmp" >"$out/build.log" 2>&1 || { tail -30 "$out/build.log" >&2; exit 1; }
  mv "$lib.tmp" "$lib"
fi
realpath "$lib"
