"""4. Cache-aside (GET, find_one, SET from the client) vs RT.GET at 1, 16 and 64 clients, cold
misses. `versus_aside` is also step 3b's comparison on the SCRAM + TLS URI."""
from dataclasses import dataclass

from .. import goals
from ..report import Row
from ..stats import med, ratio_of_rounds

NUMBER, NAME = "4", "cache_aside"
CLIENTS = (1, 16, 64)


@dataclass
class VersusAside:
    clients: int
    rt_rps: float
    rt_p50_us: float
    rt_p99_us: float
    aside_rps: float
    aside_p50_us: float
    aside_p99_us: float
    rps_ratio: float  # RT.GET / cache-aside, median of rounds
    p50_ratio: float


def versus_aside(ctx, clients, rport=None, uri=None):
    """RT.GET against application cache-aside at `clients` clients (cold misses, alternating
    which runs first in each round)."""
    n = 500 if clients == 1 else 2000
    rt, aside = [], []
    for i in range(ctx.args.rounds):
        runs = [("rtget", rt), ("aside", aside)]
        for mode, out in runs if i % 2 == 0 else reversed(runs):
            out.append(ctx.loadgen(mode, rport, uri, start=ctx.ids.take(n), count=n, concurrency=clients))

    def side(xs):
        return [med([x[k] for x in xs]) for k in ("rps", "p50_us", "p99_us")]

    return VersusAside(clients, *side(rt), *side(aside), ratio_of_rounds(rt, aside, "rps"),
                       ratio_of_rounds(rt, aside, "p50_us"))


def ratios(rows):
    """`1: 1.21x (0.83), 16: ...`: rps ratio and, in parentheses, p50 ratio per client count."""
    return ", ".join(f"{r.clients}: {r.rps_ratio:.2f}x ({r.p50_ratio:.2f})" for r in rows)


@dataclass
class CacheAside:
    rows: list

    def summary(self):
        return [Row(NUMBER, "RT.GET vs app cache-aside at 1/16/64 clients: rps ratio (p50 latency ratio)",
                    goals.BEATS_ASIDE, ratios(self.rows), self.rows)]

    def section(self):
        return ["## 4. Against application cache-aside (cold misses; 500 reads a round at 1 client, 2000 at 16 "
                "and 64)", "",
                "Cache-aside is what apps do today: `GET`; on nil `find_one`, encode JSON, `SET ... EX`, from the "
                "client.", "",
                "| clients | RT.GET rps | cache-aside rps | rps ratio | RT.GET p50 / p99 µs | cache-aside p50 / p99 µs "
                "| p50 ratio |", "|---|---|---|---|---|---|---|",
                *[f"| {r.clients} | {r.rt_rps:,.0f} | {r.aside_rps:,.0f} | {r.rps_ratio:.2f}x | {r.rt_p50_us} / "
                  f"{r.rt_p99_us} | {r.aside_p50_us} / {r.aside_p99_us} | {r.p50_ratio:.2f} |" for r in self.rows], ""]

    def bars(self):
        return []


def run(ctx):
    rows = []
    for c in CLIENTS:
        row = versus_aside(ctx, c)
        rows.append(row)
        print(f"4. cache-aside, {c:>2} clients: RT.GET {row.rt_rps:,.0f} rps p50 {row.rt_p50_us} us; "
              f"cache-aside {row.aside_rps:,.0f} rps p50 {row.aside_p50_us} us; "
              f"ratios rps {row.rps_ratio:.2f}x, p50 {row.p50_ratio:.2f}")
    return CacheAside(rows)
