#!/usr/bin/env python3
"""The short guided tour `make run` prints once Redis is up: one cold and one warm read with
their latencies, the INFO counters, and what to try next.

Usage: tour.py REDIS_PORT
"""
import random
import sys
import time

import redis


def main():
    port = int(sys.argv[1])
    r = redis.Redis(port=port, decode_responses=True)
    r.ping()  # connect first, so the timings below are the reads alone
    key = f"todo:{random.randint(1, 200_000)}"
    r.execute_command("RT.INVALIDATE", key)  # make the first read a cold one
    t = time.perf_counter()
    value = r.execute_command("RT.GET", key)
    cold = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    again = r.execute_command("RT.GET", key)
    warm = (time.perf_counter() - t) * 1000
    assert value == again, "the warm read differs from the cold one"
    info = r.info("readthrough")
    counters = ", ".join(
        f"{k}={info['readthrough_' + k]}" for k in ("hits", "misses", "loads", "coalesced", "inflight")
    )
    uri = sys.argv[2] if len(sys.argv) > 2 else "mongodb://127.0.0.1:27017"
    if "@" in uri:
        uri = "YOUR_MONGO_URI"  # never print credentials
    line = "-" * 78
    print(f"""
{line}
redis-readthrough is running: Redis on port {port}, module loaded, MongoDB behind it.

  RT.GET {key}   cold (loaded from MongoDB, then stored): {cold:6.2f} ms
  RT.GET {key}   warm (answered by Redis):                {warm:6.2f} ms
  value: {value[:90]}{'...' if len(value) > 90 else ''}
  INFO readthrough: {counters}

Try, from another terminal:
  redis-cli -p {port} RT.GET todo:42            # read through
  redis-cli -p {port} GET todo:43               # plain GET reads through too (transparent mode)
  redis-cli -p {port} RT.MGET todo:1 todo:2 todo:999999
  redis-cli -p {port} JSON.GET 44 '$.name'      # the original demo: a RedisJSON document under
                                                # the bare id, without _id (when RedisJSON is built)
  redis-cli -p {port} RT.WARM todo:             # load all 200,000 todos in the background
  redis-cli -p {port} INFO readthrough          # counters, watchers, warm-up progress
  .venv/bin/python -c "import pymongo; pymongo.MongoClient('{uri}').test.todos.update_one({{'id': '42'}}, {{'\\$set': {{'name': 'changed'}}}})"
                                                # then RT.GET todo:42 again: the change stream updated it
Ctrl-C stops everything.
{line}""")


if __name__ == "__main__":
    main()
