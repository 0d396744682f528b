"""11. Warm-up: RT.WARM of the 200,000 todos into an empty cache, documents/s, and PING
latency (one redis-py client in a loop) before and while it runs."""
import threading
import time
from dataclasses import dataclass

import redis

from ..report import Row
from ..stats import p99

NUMBER, NAME = "11", "warm"


@dataclass
class Warm:
    loaded: int
    secs: float
    rate: float  # documents/s
    idle_p99: float  # PING µs
    warm_p99: float
    warm_max: float
    pings: int
    dbsize: int

    def summary(self):
        return [Row(NUMBER, "warm-up rate; PING p99 during it / idle (goal: PING answers throughout)", None,
                    f"{self.rate:,.0f} docs/s; {self.warm_p99 / self.idle_p99:.2f}x")]

    def section(self):
        return ["## 11. Warm-up (`RT.WARM todo:` of the 200,000 demo documents into an empty cache)", "",
                "| documents | seconds | documents/s | PING p99 idle | PING p99 during | slowest PING during |",
                "|---|---|---|---|---|---|",
                f"| {self.loaded:,} | {self.secs:.1f} | {self.rate:,.0f} | {self.idle_p99:.0f} µs | "
                f"{self.warm_p99:.0f} µs | {self.warm_max:.0f} µs |", "",
                "PINGs from one redis-py client in a loop (its own overhead is in both columns).", ""]

    def bars(self):
        return []


def ping_latencies(port, seconds=None, until=None):
    """Sorted PING latencies (µs) of one client in a loop, for `seconds` or until `until()`
    returns."""
    pinger, stop, out = redis.Redis(port=port), threading.Event(), []

    def pings():
        while not stop.is_set():
            t = time.perf_counter()
            pinger.ping()
            out.append((time.perf_counter() - t) * 1e6)

    th = threading.Thread(target=pings)
    th.start()
    if seconds:
        time.sleep(seconds)
    else:
        until()
    stop.set()
    th.join()
    out.sort()
    return out


def run(ctx):
    r = ctx.r
    r.flushall()
    idle = ping_latencies(ctx.rport, seconds=3)
    t = time.perf_counter()
    assert r.execute_command("RT.WARM", "todo:") == "OK"

    def state():  # redis-py parses `warm_0:prefix=todo:,running=1,...` into a dict
        return r.info("readthrough").get("readthrough_warm_0") or {"running": 1}

    def wait_done():
        while int(state()["running"]):
            time.sleep(0.05)

    during = ping_latencies(ctx.rport, until=wait_done)
    secs = time.perf_counter() - t
    loaded = int(state()["loaded"])
    res = Warm(loaded, secs, loaded / secs, p99(idle), p99(during), during[-1], len(during), r.dbsize())
    print(f"11. warm-up: {loaded:,} documents in {secs:.1f} s ({res.rate:,.0f}/s); PING p99 idle "
          f"{res.idle_p99:.0f} us, during {res.warm_p99:.0f} us (redis-py, {len(during):,} PINGs)")
    return res
