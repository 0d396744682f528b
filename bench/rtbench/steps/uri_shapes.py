"""3b. The miss path on the URI shapes users run: a plain one-host URI (inline loads on and
off) and the production shape, SCRAM + TLS + a replica set (Atlas; self-hosted replica sets
with auth), where only the driver serves. The module and the client use the same URI. Each
round interleaves RT.GET, find_one and a PING read by read (loadgen pair) on every shape."""
import os
import sys
import time
from dataclasses import dataclass

from .. import goals
from ..context import free_port, wait_port
from ..report import Row, Skipped
from ..paths import SECURE_MONGO
from ..stats import med, ratio_of_rounds
from .cache_aside import CLIENTS, ratios, versus_aside
from .miss_path import MISS_READS

NUMBER, NAME = "3b", "uri_shapes"
TITLE = "The miss path on each URI shape (one client, cold ids, interleaved with find_one and a PING)"


@dataclass
class Shape:
    shape: str
    rt_p50_us: float
    rt_p99_us: float
    find_p50_us: float
    find_p99_us: float
    p50_ratio: float  # RT.GET / find_one, median of rounds
    p99_ratio: float
    ping_p50_us: float
    cost_pings: float  # (RT.GET p50 - find_one p50) / PING p50, median of rounds
    # The floor: each turn's find_one plus its PING (a Redis round trip and the query, the least
    # any read through Redis takes). Its own p99 against find_one's says where the p99 goal
    # stands against the physical limit on this machine; RT.GET's p99 is then held against it.
    floor_p99_us: float
    floor_p99_ratio: float  # floor p99 / find_one p99, median of rounds
    rt_floor_p99_ratio: float  # RT.GET p99 / floor p99, median of rounds


@dataclass
class UriShapes:
    rows: list
    aside: list  # cache_aside.VersusAside on the SCRAM + TLS URI

    def summary(self):
        out = []
        for r in self.rows:
            out += [Row(NUMBER, f"{r.shape}: module's own cost of a miss (RT.GET p50 - find_one p50) in PINGs",
                        goals.MISS_COST_PINGS, f"{r.cost_pings:.2f}", r.cost_pings),
                    Row(NUMBER, f"{r.shape}: RT.GET / find_one, p99", goals.MISS_VS_FIND,
                        f"{r.p99_ratio:.3f}", r.p99_ratio),
                    Row(NUMBER, f"{r.shape}: p99 of the floor (find_one + PING, turn by turn) / "
                        "find_one; RT.GET / the floor", None,
                        f"{r.floor_p99_ratio:.3f}; {r.rt_floor_p99_ratio:.3f}")]
        out.append(Row(NUMBER, "SCRAM + TLS + replica set: RT.GET vs cache-aside at 1/16/64 clients: rps ratio "
                       "(p50 ratio)", goals.BEATS_ASIDE, ratios(self.aside), self.aside))
        return out

    def section(self):
        return [f"## 3b. {TITLE}", "",
                "The module and the client use the same URI. The production shape is SecantusDB with `--auth` "
                "(SCRAM-SHA-256), TLS and its one-node replica set (`scripts/secure_mongo.py`): what Atlas and "
                "self-hosted replica sets look like to a client. Only the driver serves it.", "",
                "The floor is each turn's `find_one` plus its `PING`: a Redis round trip and the query, the least "
                "any read through Redis can take. Its p99 against `find_one`'s is where the physical limit lies "
                "on this machine; `RT.GET`'s p99 is also shown against it.", "",
                "| URI shape | RT.GET p50 µs | find_one p50 µs | PING p50 µs | module's own cost (PINGs) | p50 ratio "
                "| p99 ratio | RT.GET / find_one / floor p99 µs | floor / find_one p99 | RT.GET / floor p99 |",
                "|---|---|---|---|---|---|---|---|---|---|",
                *[f"| {r.shape} | {r.rt_p50_us} | {r.find_p50_us} | {r.ping_p50_us} | {r.cost_pings:.2f} | "
                  f"{r.p50_ratio:.3f} | {r.p99_ratio:.3f} | {r.rt_p99_us} / {r.find_p99_us} / {r.floor_p99_us} | "
                  f"{r.floor_p99_ratio:.3f} | {r.rt_floor_p99_ratio:.3f} |" for r in self.rows], ""]

    def bars(self):
        return []


def secure_uri(ctx):
    """MONGO_URI_SECURE, or a SecantusDB with SCRAM and TLS started here (None with an external
    MongoDB and no secure URI)."""
    secure = os.environ.get("MONGO_URI_SECURE")
    if secure or not ctx.mongo_proc:
        return secure
    sport, sdir = free_port(), os.path.join(ctx.tmp, "secure-mongo")
    ctx.spawn([sys.executable, SECURE_MONGO, "--port", str(sport), "--dir", sdir], "secure-mongo.log")
    # The script writes the URI once the user exists and the first (open) start has stopped.
    uri_file, end = os.path.join(sdir, "uri"), time.time() + 120
    while not os.path.exists(uri_file) and time.time() < end:
        time.sleep(0.1)
    wait_port(sport, "SecantusDB with SCRAM and TLS")
    secure = open(uri_file).read().strip()
    ctx.load_demo_data(secure)
    return secure


def run(ctx):
    secure = secure_uri(ctx)
    if not secure:
        print("3b. URI shapes: skipped (set MONGO_URI_SECURE to a SCRAM + TLS URI of the external MongoDB)")
        return Skipped(NUMBER, "the miss path on the SCRAM + TLS URI", TITLE,
                       "set MONGO_URI_SECURE to a SCRAM + TLS URI of the external MongoDB")
    server = ctx.redis_server("redis-secure.log", {"mongo-uri": secure, "mappings": "todo:=test.todos:id",
                                                   "timeout": 60000, "invalidation": "off"})
    # The plain URI with a read preference, which only the driver serves: the driver on Redis's main
    # thread against the inline connection on the same MongoDB (the client's find_one is the same).
    sep = "&" if "?" in ctx.uri else "?"
    plain_driver = ctx.redis_server("redis-plain-driver.log", {
        "mongo-uri": f"{ctx.uri}{sep}readPreference=primary", "mappings": "todo:=test.todos:id",
        "timeout": 60000, "invalidation": "off"})
    shapes = [("plain one-host URI, inline loads (default)", ctx.rport, ctx.uri, "yes"),
              ("plain one-host URI, inline loads off (the driver)", ctx.rport, ctx.uri, "no"),
              ("plain one-host URI + readPreference=primary (the driver on Redis's main thread)",
               plain_driver.port, ctx.uri, None),
              ("SCRAM + TLS + replica set (the driver on Redis's main thread, default)", server.port, secure, "yes"),
              ("SCRAM + TLS + replica set (the driver on the loader thread: inline loads off)", server.port, secure,
               "no")]
    n, runs = MISS_READS, {name: [] for name, *_ in shapes}
    for i in range(ctx.args.rounds):
        for name, port, uri, inline in shapes if i % 2 == 0 else reversed(shapes):
            if inline:
                (ctx.r if port == ctx.rport else server.client()).config_set("readthrough.inline-loads", inline)
            runs[name].append(ctx.loadgen("pair", port, uri, start=ctx.ids.take(2 * n), count=2 * n))
    ctx.r.config_set("readthrough.inline-loads", "yes")
    server.client().config_set("readthrough.inline-loads", "yes")
    rows = []
    for name, *_ in shapes:
        rt, direct, ping, floor = zip(*runs[name])
        row = Shape(name, med([x["p50_us"] for x in rt]), med([x["p99_us"] for x in rt]),
                    med([x["p50_us"] for x in direct]), med([x["p99_us"] for x in direct]),
                    ratio_of_rounds(rt, direct, "p50_us"), ratio_of_rounds(rt, direct, "p99_us"),
                    med([x["p50_us"] for x in ping]),
                    med([(r["p50_us"] - d["p50_us"]) / p["p50_us"] for r, d, p in zip(rt, direct, ping)]),
                    med([x["p99_us"] for x in floor]), ratio_of_rounds(floor, direct, "p99_us"),
                    ratio_of_rounds(rt, floor, "p99_us"))
        rows.append(row)
        print(f"3b. {name}: RT.GET p50 {row.rt_p50_us} us, find_one {row.find_p50_us} us, PING "
              f"{row.ping_p50_us} us: module's own cost {row.cost_pings:.2f} PING; ratios p50 "
              f"{row.p50_ratio:.3f}, p99 {row.p99_ratio:.3f}; p99 of the floor (find_one + PING) / find_one "
              f"{row.floor_p99_ratio:.3f}, RT.GET / the floor {row.rt_floor_p99_ratio:.3f}")
    aside = []
    for c in CLIENTS:
        aside.append(versus_aside(ctx, c, server.port, secure))
        print(f"3b. SCRAM + TLS, cache-aside at {c:>2} clients: rps ratio {aside[-1].rps_ratio:.2f}x, "
              f"p50 ratio {aside[-1].p50_ratio:.2f}")
    return UriShapes(rows, aside)
