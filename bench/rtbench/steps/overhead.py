"""13. The module's own cost of a miss, without MongoDB's noise: against a stand-in MongoDB
that answers every find at once (`examples/mongo_standin.rs`), RT.GET miss p50 minus direct
find_one p50, next to PING p50, and RT.GET vs cache-aside at one client."""
from dataclasses import dataclass

from .. import goals
from ..context import free_port, wait_port
from ..paths import STANDIN
from ..report import Row
from ..stats import med, ratio_of_rounds

NUMBER, NAME = "13", "overhead"
READS = 2000  # cold reads per mode a round
MODES = ("direct", "rtget", "aside", "ping")


@dataclass
class Overhead:
    p50: dict  # per mode (direct, rtget, aside, ping), µs
    p99: dict
    overhead_us: float  # RT.GET p50 - find_one p50, median of rounds
    rps_ratio: float  # RT.GET / cache-aside
    p50_ratio: float

    @property
    def overhead_pings(self):
        return self.overhead_us / self.p50["ping"]

    def summary(self):
        return [Row(NUMBER, "stand-in MongoDB: module's cost of a miss (RT.GET p50 - find_one p50) / PING p50",
                    goals.MISS_COST_PINGS, f"{self.overhead_us} / {self.p50['ping']} us = {self.overhead_pings:.2f}",
                    self.overhead_pings),
                Row(NUMBER, "stand-in MongoDB: RT.GET vs cache-aside, 1 client: rps ratio (p50 latency ratio)",
                    goals.BEATS_ASIDE_ONCE, f"{self.rps_ratio:.2f}x ({self.p50_ratio:.2f})", self)]

    def section(self):
        q, q99 = self.p50, self.p99
        return ["## 13. The module's own cost of a miss (stand-in MongoDB)", "",
                "SecantusDB takes 0.5-1 ms per `find` and its speed drifts by a few hundred µs between runs, which "
                "hides what the module itself adds. Here the MongoDB side is `examples/mongo_standin.rs`, which "
                "answers every `find` at once with a made-up todo; a second redis-server with the module reads "
                f"through to it. One client, {READS:,} cold reads per mode a round, modes alternating. This step runs "
                "first, before the other steps leave servers running.", "",
                "| | p50 µs | p99 µs |", "|---|---|---|",
                f"| direct find_one (Rust driver, same filter as the module) | {q['direct']} | {q99['direct']} |",
                f"| RT.GET cold miss | {q['rtget']} | {q99['rtget']} |",
                f"| cache-aside (GET, find_one, SET from the client) | {q['aside']} | {q99['aside']} |",
                f"| PING (one Redis round trip) | {q['ping']} | {q99['ping']} |", "",
                f"The module's cost of a miss (RT.GET p50 minus find_one p50, median of per-round differences): "
                f"**{self.overhead_us} µs**, {self.overhead_pings:.2f}x a PING round trip. The physical limit of a "
                "miss is one client-Redis round trip plus one Redis-MongoDB round trip, so a ratio of 1 is the "
                f"limit. RT.GET / cache-aside: {self.rps_ratio:.2f}x the requests per second, {self.p50_ratio:.2f}x "
                "the p50.", ""]

    def bars(self):
        return []


def run(ctx):
    sport = free_port()
    uri = f"mongodb://127.0.0.1:{sport}/?directConnection=true"
    standin = ctx.spawn([STANDIN, "--port", str(sport)], "standin.log")
    wait_port(sport, "the MongoDB stand-in")
    # No change streams: the stand-in has none.
    server = ctx.redis_server("redis-standin.log", ctx.todo_configs(uri, invalidation="off"))
    start, runs = 1, {mode: [] for mode in MODES}
    for i in range(ctx.args.rounds):
        for mode in MODES if i % 2 == 0 else reversed(MODES):
            if mode == "ping":
                runs[mode].append(ctx.loadgen("ping", server.port, uri, count=READS))
            else:  # the stand-in makes up any id: every round reads new ones, all cold
                runs[mode].append(ctx.loadgen(mode, server.port, uri, start=start, count=READS, concurrency=1))
                start += READS
    for p in (server.proc, standin):
        p.terminate()
        p.wait(10)
    res = Overhead({k: med([x["p50_us"] for x in v]) for k, v in runs.items()},
                   {k: med([x["p99_us"] for x in v]) for k, v in runs.items()},
                   med([r["p50_us"] - d["p50_us"] for r, d in zip(runs["rtget"], runs["direct"])]),
                   ratio_of_rounds(runs["rtget"], runs["aside"], "rps"),
                   ratio_of_rounds(runs["rtget"], runs["aside"], "p50_us"))
    p50 = res.p50
    print(f"13. stand-in: find_one p50 {p50['direct']} us, RT.GET miss p50 {p50['rtget']} us, "
          f"cache-aside p50 {p50['aside']} us, PING p50 {p50['ping']} us; module's cost {res.overhead_us} us "
          f"= {res.overhead_pings:.2f} PING; RT.GET / cache-aside rps {res.rps_ratio:.2f}x")
    return res
