#!/usr/bin/env bash
# Builds RedisJSON once from VENDOR (default ../shared/vendor)/RedisJSON-2.4.19.tar.gz, cached
# under target/rejson, and prints the path of librejson.so. With REJSON_MODULE set (your own
# RedisJSON build, or empty on a server with JSON built in), prints that and builds nothing.
# Exit 2 when the tarball is missing: tests that need JSON then say they are skipped and why.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${REJSON_MODULE+set}" ]; then
  echo "$REJSON_MODULE"
  exit 0
fi
name=RedisJSON-2.4.19
vendor=${VENDOR:-../shared/vendor}
dir=target/rejson/src
lib=target/rejson/librejson.so
if [ ! -f "$lib" ]; then
  tarball=$vendor/$name.tar.gz
  if [ ! -f "$tarball" ]; then
    echo "missing $tarball: put RedisJSON 2.4.19's source tarball there (or set VENDOR, or" >&2
    echo "REJSON_MODULE=/path/to/librejson.so)" >&2
    exit 2
  fi
  rm -rf "$dir" && mkdir -p "$dir"
  tar -xzf "$tarball" -C "$dir" --strip-components=1
  echo "building $name (about 4 minutes, once; log in target/rejson/build.log)" >&2
  # Its own target dir: its Cargo.lock is not ours.
  (cd "$dir" && CARGO_TARGET_DIR=../target cargo build --release --offline) \
    >target/rejson/build.log 2>&1 ||
    (cd "$dir" && CARGO_TARGET_DIR=../target cargo build --release) \
      >>target/rejson/build.log 2>&1 || { tail -30 target/rejson/build.log >&2; exit 1; }
  cp target/rejson/target/release/librejson.so "$lib"
fi
realpath "$lib"
