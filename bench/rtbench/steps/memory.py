"""8. Memory per cached document: used_memory per document loaded by the module vs the same
JSON stored by plain SET (with the same TTL, and without), on a fresh server of its own so
nothing else frees or allocates meanwhile."""
import statistics
import time
from dataclasses import dataclass

from .. import goals
from ..report import Row

NUMBER, NAME = "8", "memory"
DOCS = 10_000


@dataclass
class Memory:
    module: float  # bytes per document, stored by the module (value + TTL)
    set_px: float  # plain SET key json PX ttl, same key length
    set: float  # plain SET, no TTL
    json: float  # the JSON's own length

    @property
    def ratio(self):
        return self.module / self.set_px

    def summary(self):
        return [Row(NUMBER, "used_memory per document / plain SET of the same JSON with the same TTL", goals.MEMORY,
                    f"{self.ratio:.3f}x", self.ratio)]

    def section(self):
        return [f"## 8. Memory per cached document ({DOCS:,} documents, `used_memory` deltas)", "",
                "| stored by | bytes per document |", "|---|---|",
                f"| the module (`RT.MGET`, value + TTL) | {self.module:.0f} |",
                f"| plain `SET key json PX ttl`, same key length | {self.set_px:.0f} |",
                f"| plain `SET key json`, no TTL | {self.set:.0f} |",
                f"| (the JSON itself) | {self.json:.0f} |", ""]

    def bars(self):
        return [("memory/SET PX", self.ratio, goals.MEMORY)]


def used_memory(r):
    time.sleep(0.5)  # let the load tasks' buffers be freed
    return r.info("memory")["used_memory"]


def run(ctx):
    n = DOCS
    r = ctx.redis_server("redis-memory.log", ctx.todo_configs()).client()
    r.execute_command("RT.GET", "todo:1")  # the module's MongoDB client and pool exist now
    ttl_ms = int(r.config_get("readthrough.ttl")["readthrough.ttl"]) * 1000
    start = ctx.ids.take(n)
    keys = [f"todo:{i}" for i in range(start, start + n)]
    m0 = used_memory(r)
    values = []
    for i in range(0, n, 500):
        values += r.execute_command("RT.MGET", *keys[i:i + 500])
    assert all(values)
    m1 = used_memory(r)
    pipe = r.pipeline(transaction=False)
    for k, v in zip(keys, values):
        pipe.set("todx" + k[4:], v, px=ttl_ms)  # same key length, same TTL
    pipe.execute()
    m2 = used_memory(r)
    pipe = r.pipeline(transaction=False)
    for k, v in zip(keys, values):
        pipe.set("tody" + k[4:], v)  # no TTL
    pipe.execute()
    m3 = used_memory(r)
    res = Memory((m1 - m0) / n, (m2 - m1) / n, (m3 - m2) / n, statistics.mean(len(v) for v in values))
    print(f"8. memory per document: module {res.module:.0f} B, SET PX {res.set_px:.0f} B "
          f"({res.ratio:.3f}x), SET {res.set:.0f} B; JSON {res.json:.0f} B")
    return res
