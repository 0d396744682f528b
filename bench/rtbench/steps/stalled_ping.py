"""7. The main thread never waits on MongoDB: PING p99 while 10,000 loads wait on a stalled
(SIGSTOPped) SecantusDB, against idle PING p99."""
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from .. import goals
from ..paths import LOADGEN
from ..report import Row, Skipped
from ..stats import med

NUMBER, NAME = "7", "stalled_ping"
TITLE = "The main thread never waits on MongoDB"
LOADS = 10_000


@dataclass
class StalledPing:
    idle_p50: float
    idle_p99: float
    stalled_p50: float
    stalled_p99: float
    stalled_max: float
    inflight: int  # INFO readthrough_inflight while stalled
    blocked: int
    flood_errors: int
    flood_secs: float

    @property
    def ratio(self):
        return self.stalled_p99 / self.idle_p99

    def summary(self):
        return [Row(NUMBER, f"PING p99 with {self.blocked:,} loads on a stalled MongoDB / idle", goals.STALLED_PING,
                    f"{self.ratio:.2f}x", self.ratio)]

    def section(self):
        return [f"## 7. {TITLE}", "",
                f"SecantusDB is SIGSTOPped; {self.blocked:,} clients (`loadgen flood`) each send `RT.GET` of their "
                f"own cold key and block ({self.inflight:,} loads in flight per INFO); meanwhile one client sends "
                "3 × 20,000 `PING`s (`loadgen ping`).", "", "| | PING p50 µs | PING p99 µs |", "|---|---|---|",
                f"| idle | {self.idle_p50} | {self.idle_p99} |",
                f"| {self.blocked:,} loads waiting on a stalled MongoDB | {self.stalled_p50} | {self.stalled_p99} |",
                "", f"Worst single PING while stalled: {self.stalled_max} µs. After SIGCONT all {self.blocked:,} "
                f"clients were answered ({self.flood_errors} errors).", ""]

    def bars(self):
        return [("PING p99 stalled/idle", self.ratio, goals.STALLED_PING)]


def run(ctx):
    n = LOADS
    idle = [ctx.loadgen("ping", count=20_000) for _ in range(3)]
    if not ctx.mongo_proc:
        print("7. skipped: MongoDB is external (MONGO_URI), the bench cannot stall it")
        return Skipped(NUMBER, "PING p99 under a stalled MongoDB", TITLE, "external MongoDB, the bench cannot stall it")
    start = ctx.ids.take(n)
    os.kill(ctx.mongo_proc.pid, signal.SIGSTOP)
    try:
        flood = subprocess.Popen(
            [LOADGEN, "flood", "--redis", f"redis://127.0.0.1:{ctx.rport}/", "--prefix", "todo:",
             "--start", str(start), "--count", str(n)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        end = time.time() + 120
        while int(ctx.r.info("clients")["blocked_clients"]) < n:
            if time.time() > end or flood.poll() is not None:
                sys.exit(f"7. only {ctx.r.info('clients')['blocked_clients']} clients blocked")
            time.sleep(0.2)
        inflight = int(ctx.r.info("readthrough")["readthrough_inflight"])
        stalled = [ctx.loadgen("ping", count=20_000) for _ in range(3)]
    finally:
        os.kill(ctx.mongo_proc.pid, signal.SIGCONT)
    out = json.loads(flood.communicate(timeout=180)[0].splitlines()[-1])
    res = StalledPing(med([x["p50_us"] for x in idle]), med([x["p99_us"] for x in idle]),
                      med([x["p50_us"] for x in stalled]), med([x["p99_us"] for x in stalled]),
                      max(x["max_us"] for x in stalled), inflight, n, out["errors"], out["secs"])
    print(f"7. PING p99 idle {res.idle_p99} us, with {n} loads on a stalled MongoDB {res.stalled_p99} us "
          f"({res.ratio:.2f}x); all {n} answered after resume, {res.flood_errors} errors")
    return res
