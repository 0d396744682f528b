"""10. Change-stream invalidation: an update in MongoDB -> the new value from RT.GET, p50/p99
over `--updates` updates (mode `delete`)."""
import sys
import time
from dataclasses import dataclass

from .. import goals
from ..report import Row
from ..stats import p99

NUMBER, NAME = "10", "change_visible"


@dataclass
class ChangeVisible:
    n: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    def summary(self):
        return [Row(NUMBER, "change to visible (MongoDB update -> RT.GET), p99", goals.CHANGE_VISIBLE_MS,
                    f"{self.p50_ms:.1f} / {self.p99_ms:.1f} ms (p50 / p99)", self.p99_ms)]

    def section(self):
        return [f"## 10. Change-stream invalidation: change to visible ({self.n:,} updates, mode `delete`)", "",
                "Each round: `RT.GET` caches the key, pymongo updates the document, then `RT.GET` is polled until "
                "it returns the new value (the watcher deleted the key, so the next read loaded the new document).",
                "", "| p50 | p99 | max |", "|---|---|---|",
                f"| {self.p50_ms:.1f} ms | {self.p99_ms:.1f} ms | {self.max_ms:.1f} ms |", ""]

    def bars(self):
        return []


def run(ctx):
    n = ctx.args.updates
    todos = ctx.mongo.test.todos
    start = ctx.ids.take(n)
    lat = []
    for i in range(start, start + n):
        key = f"todo:{i}"
        assert ctx.r.execute_command("RT.GET", key)
        t = time.perf_counter()
        todos.update_one({"id": str(i)}, {"$set": {"name": f"changed {i}"}})
        while f"changed {i}" not in ctx.r.execute_command("RT.GET", key):
            if time.perf_counter() - t > 10:
                sys.exit(f"10. the update of {key} was not visible after 10 s")
        lat.append((time.perf_counter() - t) * 1e6)
    lat.sort()
    res = ChangeVisible(n, lat[n // 2] / 1000, p99(lat) / 1000, lat[-1] / 1000)
    print(f"10. change to visible (update in MongoDB -> new value from RT.GET), {n} updates: "
          f"p50 {res.p50_ms:.1f} ms, p99 {res.p99_ms:.1f} ms")
    return res
