#!/usr/bin/env bash
# Builds a vendored server once, cached under target/servers/NAME, and prints the path of its
# server binary. NAME is a tarball of VENDOR (default ../shared/vendor) without `.tar.gz`:
# redis-7.0.15, redis-7.2.6, redis-7.4.1, valkey-8.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1
vendor=${VENDOR:-../shared/vendor}
dir=target/servers/$name
bin=$dir/src/redis-server
case $name in valkey-*) bin=$dir/src/valkey-server ;; esac
if [ ! -x "$bin" ]; then
  tarball=$vendor/$name.tar.gz
  if [ ! -f "$tarball" ]; then
    echo "missing $tarball: put the release tarball there (or set VENDOR to its folder)," >&2
    echo "e.g. from https://download.redis.io/releases/ or https://github.com/valkey-io/valkey/releases" >&2
    exit 2
  fi
  rm -rf "$dir" && mkdir -p "$dir"
  tar -xzf "$tarball" -C "$dir" --strip-components=1
  echo "building $name (a few minutes, once; log in $dir/build.log)" >&2
  make -C "$dir" -j2 >"$dir/build.log" 2>&1 || { tail -30 "$dir/build.log" >&2; exit 1; }
fi
realpath "$bin"
