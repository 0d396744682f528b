#!/usr/bin/env bash
# `make test-redis-suite`: each server's own test suite (`./runtest` from its source) with the
# module loaded, transparent mode on, and a live MongoDB-compatible server behind it.
#   SUITE_SERVERS  which trees: redis-7.0.15 (run against Debian's installed binaries, the same
#                  version), redis-7.2.6, redis-7.4.1, valkey-8.0.1 (their own builds)
#   SUITE_UNITS    the units (default: the list below)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
servers=${SUITE_SERVERS:-redis-7.0.15 redis-7.2.6 redis-7.4.1 valkey-8.0.1}
units=${SUITE_UNITS:-unit/type/string unit/keyspace unit/multi unit/expire unit/introspection unit/acl unit/other unit/type/hash unit/tracking unit/scripting unit/info}
module=$root/target/release/libreadthrough.so
logs=$root/target/redis-suite
mkdir -p "$logs"

# One MongoDB-compatible server for every run, with a few todos behind the mapping.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rm -rf "$logs/mongo-data"
.venv/bin/secantusd-py --port "$port" --storage-path "$logs/mongo-data" --log-level WARNING \
  >"$logs/mongo.log" 2>&1 &
mongo_pid=$!
trap 'kill $mongo_pid 2>/dev/null' EXIT
for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
uri="mongodb://127.0.0.1:$port"
.venv/bin/python -c "import pymongo; pymongo.MongoClient('$uri').test.todos.insert_many([{'id': str(i)} for i in range(100)])"

rows=()
failed_total=0
ok_total=0
for name in $servers; do
  if ! scripts/build_server.sh "$name" >/dev/null; then
    rows+=("| $name | not built (see above) | | |")
    failed_total=$((failed_total + 1))
    continue
  fi
  tree=$root/target/servers/$name
  if [ "$name" = redis-7.0.15 ]; then
    # The suite of Debian's own version, run against the installed binaries.
    for b in redis-server redis-cli redis-benchmark redis-check-aof redis-check-rdb; do
      ln -sf "$(command -v $b)" "$tree/src/$b"
    done
  fi
  args=(--config loadmodule "$module" --config readthrough.mongo-uri "$uri"
        --config readthrough.mappings "todo:=test.todos:id" --clients 2 --timeout 600
        --dont-clean)
  for u in $units; do args+=(--single "$u"); done
  echo "== $name: ${units// /, }"
  rm -rf "$tree/tests/tmp"/*
  (cd "$tree" && ./runtest "${args[@]}") 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >"$logs/$name.log"
  rc=${PIPESTATUS[0]}
  ok=$(grep -c '^\[ok\]' "$logs/$name.log")
  err=$(grep -cE '^\[(err|exception)\]' "$logs/$name.log")
  grep -E '^\[(err|exception)\]' "$logs/$name.log" | head -20 | sed 's/^/   /'
  [ $rc -ne 0 ] && [ "$err" -eq 0 ] && err=1
  # Proof that the module was there: the servers the suite started that loaded it.
  started=$(find "$tree/tests/tmp" -name stdout | wc -l)
  loaded=$(grep -l "Module 'readthrough' loaded" $(find "$tree/tests/tmp" -name stdout) 2>/dev/null | wc -l)
  rm -rf "$tree/tests/tmp"/*
  rows+=("| $name | $ok | $err | $loaded of $started |")
  failed_total=$((failed_total + err))
  ok_total=$((ok_total + ok))
done
echo
echo "| suite | [ok] | [err] | servers that loaded the module |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo "logs: $logs/"
echo
echo "suites: $ok_total passed, $failed_total failed"
[ "$failed_total" -eq 0 ]
