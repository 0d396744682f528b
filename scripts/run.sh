#!/usr/bin/env bash
# `make run`: start the embedded MongoDB-compatible server (unless MONGO_URI is given), load the
# demo todos once, and run redis-server with the module from redis.conf in the foreground.
# Ctrl-C stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."

MONGO_PORT=${MONGO_PORT:-27017}
REDIS_PORT=${REDIS_PORT:-6379}
STATE=.run
mkdir -p "$STATE"
pids=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped."
}
trap cleanup EXIT INT TERM

wait_port() { # port name
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$2 did not start on port $1" >&2
  exit 1
}

if [ -z "${MONGO_URI:-}" ]; then
  if (exec 3<>"/dev/tcp/127.0.0.1/$MONGO_PORT") 2>/dev/null; then
    echo "port $MONGO_PORT is taken: stop what runs there, or set MONGO_PORT or MONGO_URI" >&2
    exit 1
  fi
  MONGO_URI="mongodb://127.0.0.1:$MONGO_PORT"
  echo "starting SecantusDB (MongoDB-compatible) on $MONGO_URI, data in $STATE/mongo-data"
  .venv/bin/secantusd-py --port "$MONGO_PORT" --storage-path "$STATE/mongo-data" \
    --log-level WARNING >"$STATE/mongo.log" 2>&1 &
  pids+=($!)
  wait_port "$MONGO_PORT" SecantusDB
fi

.venv/bin/python scripts/demo_data.py "$MONGO_URI" 200000

# RedisJSON (built by `make rejson`) goes before the module, and the original demo's mapping
# (RedisJSON documents under bare ids, without _id) beside todo:. Without RedisJSON, redis.conf
# as it is.
conf=redis.conf
if rejson=$(scripts/build_rejson.sh 2>/dev/null); then
  conf=$STATE/redis.conf
  {
    [ -n "$rejson" ] && echo "loadmodule $rejson"
    cat redis.conf
    echo 'readthrough.mappings "todo:=test.todos:id =test.todos:id;format=json;fields=-_id"'
  } >"$conf"
else
  echo "(RedisJSON not built: JSON.GET of bare ids is off; see make rejson)"
fi
echo "starting redis-server on port $REDIS_PORT with the readthrough module ($conf)"
redis-server "$conf" --port "$REDIS_PORT" --readthrough.mongo-uri "$MONGO_URI" &
pids+=($!)
wait_port "$REDIS_PORT" redis-server
.venv/bin/python scripts/tour.py "$REDIS_PORT" "$MONGO_URI" || echo "(the guided tour failed; Redis runs on)"
wait "${pids[-1]}"
