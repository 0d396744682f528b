"""12. Formats, JSON (RedisJSON) and hash, against the same commands by hand: transparent hit
(JSON.GET / HGETALL of a mapped cached key) vs the same command on an unmapped key; cold-miss
p50 vs RT.GET of the string format; memory per document vs storing the same document by hand
(JSON.SET / HSET + PEXPIRE)."""
import time
from dataclasses import dataclass

from .. import goals
from ..report import Row, Skipped
from ..stats import med, ratio_of_rounds
from ..tools import pinned, redis_benchmark

NUMBER, NAME = "12", "formats"
TITLE = "Formats: RedisJSON documents and hashes"
COMMANDS = {"json": "JSON.GET", "hash": "HGETALL"}
MISS_READS = 200  # cold ids a round per format
DOCS = 5000  # documents per format in the memory measure


@dataclass
class Format:
    hit: float  # transparent hit / the same command on an unmapped key, median of rounds
    hit_rps: tuple  # (mapped, unmapped)
    miss_p50_us: float
    miss_ratio: float  # cold miss p50 / RT.GET (string) cold miss p50
    mem: tuple  # used_memory delta per document: (module, by hand)
    mem_ratio: float
    usage: tuple  # MEMORY USAGE per key: (module, by hand)
    usage_ratio: float


@dataclass
class Formats:
    json: Format
    hash: Format
    string_miss_p50_us: float

    def each(self):
        return (("json", self.json), ("hash", self.hash))

    def summary(self):
        out = []
        for name, x in self.each():
            out += [Row(NUMBER, f"{name}: transparent {COMMANDS[name]} of a mapped cached key / of an unmapped key",
                        goals.NATIVE_HIT, f"{x.hit:.3f}", x.hit),
                    Row(NUMBER, f"{name}: memory per document (MEMORY USAGE) / stored by hand with a TTL",
                        goals.MEMORY, f"{x.usage_ratio:.3f}x", x.usage_ratio)]
        return out

    def section(self):
        out = [f"## 12. {TITLE}", "",
               "Mappings `j:=test.todos:id;format=json` and `h:=test.todos:id;format=hash` beside `todo:` on one "
               "redis-server with RedisJSON 2.4.19 loaded before the module. Transparent hit: `redis-benchmark -c 50` "
               "of the command on a mapped cached key vs on an unmapped key holding the same document (stored by "
               f"hand). Cold miss: one redis-py client, {MISS_READS} cold ids a round per format, alternating. "
               f"Memory: {DOCS:,} documents loaded by `RT.MGET` vs the same documents stored by hand with "
               "`JSON.SET`/`HSET` + `PEXPIRE`.",
               "", "| format | transparent hit / unmapped (goal >= 0.95) | cold miss p50 / RT.GET string | "
               "memory per document, module / by hand (goal <= 1.05): `MEMORY USAGE` | the same from `used_memory` "
               "deltas |", "|---|---|---|---|---|"]
        for name, x in self.each():
            out.append(f"| {name} (`{COMMANDS[name]}`) | {x.hit:.3f} ({x.hit_rps[0]:,.0f} / {x.hit_rps[1]:,.0f} rps) "
                       f"{goals.NATIVE_HIT.verdict(x.hit)} | {x.miss_ratio:.3f} ({x.miss_p50_us:.0f} / "
                       f"{self.string_miss_p50_us:.0f} µs) | {x.usage_ratio:.3f} ({x.usage[0]:.0f} / "
                       f"{x.usage[1]:.0f} B) {goals.MEMORY.verdict(x.usage_ratio)} | {x.mem_ratio:.3f} "
                       f"({x.mem[0]:.0f} / {x.mem[1]:.0f} B) |")
        return out + ["", "`MEMORY USAGE` counts each key exactly and is the measure of the goal. The `used_memory` "
                      "deltas favour whatever is stored second: the by-hand copies are made after the module's "
                      "documents, so for JSON they reuse the strings RedisJSON 2.4 interns (its values share one copy "
                      "of equal strings: the same by-hand step measured 370 and 690 B per document depending on what "
                      "was stored before it), and for both formats the module's step pays the keyspace tables' "
                      "growth.", ""]

    def bars(self):
        return []


def used_memory(r):
    time.sleep(0.5)
    return r.info("memory")["used_memory"]


def memory_usage(r, keys):
    """MEMORY USAGE per key (value, key and its entry; RedisJSON reports its own document size):
    exact, where used_memory deltas also move with RedisJSON's and the allocator's own state."""
    p = r.pipeline(transaction=False)
    for k in keys:
        p.execute_command("MEMORY", "USAGE", k, "SAMPLES", "0")
    return sum(p.execute()) / len(keys)


def run(ctx):
    modules = ctx.json_modules()
    if modules is None:
        return Skipped(NUMBER, "formats (json, hash)", TITLE, "RedisJSON not available (`make rejson`)")
    server = ctx.redis_server(
        "redis-formats.log",
        ctx.todo_configs(mappings="todo:=test.todos:id j:=test.todos:id;format=json h:=test.todos:id;format=hash"),
        modules=modules)
    r = server.client()
    r.execute_command("RT.GET", "todo:1")  # the module's MongoDB client and pool exist now
    ttl_ms = int(r.config_get("readthrough.ttl")["readthrough.ttl"]) * 1000
    a, hits = ctx.args, {}
    # Transparent hit: the mapped cached key vs the same document stored by hand, unmapped.
    r.execute_command("JSON.SET", "x:1", "$", r.execute_command("JSON.GET", "j:1"))
    r.hset("y:1", mapping=r.hgetall("h:1"))
    for name, mapped, plain in (("json", "j:1", "x:1"), ("hash", "h:1", "y:1")):
        m, p = [], []
        with pinned(server.proc):
            for _ in range(a.rounds):
                m.append(redis_benchmark(server.port, 50, a.requests, 1, COMMANDS[name], mapped))
                p.append(redis_benchmark(server.port, 50, a.requests, 1, COMMANDS[name], plain))
        hits[name] = (ratio_of_rounds(m, p), (med(m), med(p)))
    # Cold miss p50, one client, alternating: RT.GET (string) vs the format's transparent read.
    lat = {"string": [], "json": [], "hash": []}
    reads = {"string": ("RT.GET", "todo:"), "json": ("JSON.GET", "j:"), "hash": ("HGETALL", "h:")}
    for _ in range(a.rounds):
        for name, (cmd, prefix) in reads.items():
            start = ctx.ids.take(MISS_READS)
            for i in range(start, start + MISS_READS):
                t = time.perf_counter()
                v = r.execute_command(cmd, f"{prefix}{i}")
                lat[name].append((time.perf_counter() - t) * 1e6)
                assert v, (cmd, prefix, i)
    p50 = {k: med(v) for k, v in lat.items()}
    # Memory per document: loaded by the module vs the same value stored by hand with a TTL.
    res = {}
    for name, prefix, by_hand in (("json", "j", "x"), ("hash", "h", "y")):
        start = ctx.ids.take(DOCS)
        keys = [f"{prefix}:{i}" for i in range(start, start + DOCS)]
        m0 = used_memory(r)
        for i in range(0, DOCS, 500):
            r.execute_command("RT.MGET", *keys[i:i + 500])
        m1 = used_memory(r)
        pipe = r.pipeline(transaction=False)
        for k in keys:
            hk = by_hand + k[1:]
            if name == "json":
                pipe.execute_command("JSON.SET", hk, "$", r.execute_command("JSON.GET", k))
            else:
                pipe.hset(hk, mapping=r.hgetall(k))
            pipe.pexpire(hk, ttl_ms)
        pipe.execute()
        m2 = used_memory(r)
        usage = (memory_usage(r, keys), memory_usage(r, [by_hand + k[1:] for k in keys]))
        res[name] = Format(hits[name][0], hits[name][1], p50[name], p50[name] / p50["string"],
                           ((m1 - m0) / DOCS, (m2 - m1) / DOCS), (m1 - m0) / (m2 - m1), usage, usage[0] / usage[1])
    out = Formats(res["json"], res["hash"], p50["string"])
    for name, x in out.each():
        print(f"12. format {name}: transparent hit / unmapped {x.hit:.3f}; cold miss p50 {x.miss_p50_us:.0f} us "
              f"/ RT.GET string {out.string_miss_p50_us:.0f} us = {x.miss_ratio:.3f}; memory "
              f"{x.mem[0]:.0f} B / by hand {x.mem[1]:.0f} B = {x.mem_ratio:.3f} (used_memory); "
              f"MEMORY USAGE {x.usage[0]:.0f} B / {x.usage[1]:.0f} B = {x.usage_ratio:.3f}")
    return out
