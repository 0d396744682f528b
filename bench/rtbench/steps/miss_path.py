"""3. Miss path: RT.GET cold-miss latency vs a direct find_one from the same Rust client, the
two taking turns read by read, and the same with readthrough.inline-loads off."""
from dataclasses import dataclass

from .. import goals
from ..report import Row
from ..stats import med, ratio_of_rounds

NUMBER, NAME = "3", "miss_path"
# Cold reads a side a round. The p99 of 300 reads (the count until 2026-11-28) is their 3rd
# slowest, so three stray slow reads decide it; of 1,000 reads it is the 10th slowest.
MISS_READS = 1000


@dataclass
class Latency:
    rtget_us: float
    find_us: float
    ratio: float  # RT.GET / find_one, median of rounds


@dataclass
class MissPath:
    p50: Latency  # inline loads on (the default)
    p99: Latency
    loader_p50: Latency  # inline loads off: every query on the loader thread
    loader_p99: Latency

    def summary(self):
        return [Row(NUMBER, "RT.GET cold miss / direct find_one, p50", goals.MISS_VS_FIND,
                    f"{self.p50.ratio:.3f}", self.p50.ratio),
                Row(NUMBER, "RT.GET cold miss / direct find_one, p99", goals.MISS_VS_FIND,
                    f"{self.p99.ratio:.3f}", self.p99.ratio)]

    def section(self):
        return [f"## 3. Miss path vs the limit (one client, cold ids, {MISS_READS:,} reads a side a round)", "",
                "RT.GET and find_one take turns read by read on one client (`loadgen pair`), so a slow moment "
                "of MongoDB or the machine hits both alike. At one client every miss is an inline load (README, "
                "Design); the last two rows turn them off, in a second interleaved run of each round, against "
                "that run's own find_one reads.", "",
                "| | p50 µs | p99 µs |", "|---|---|---|",
                f"| RT.GET cold miss (client → Redis → module → MongoDB → store → reply) | {self.p50.rtget_us} | "
                f"{self.p99.rtget_us} |",
                f"| direct find_one from the same Rust client, same filter, in turns with RT.GET | "
                f"{self.p50.find_us} | {self.p99.find_us} |",
                f"| ratio (median of per-round ratios) | {self.p50.ratio:.3f} | {self.p99.ratio:.3f} |",
                f"| RT.GET cold miss with `readthrough.inline-loads no` (every query on the loader thread), same "
                f"rounds | {self.loader_p50.rtget_us} | {self.loader_p99.rtget_us} |",
                f"| its ratio to find_one | {self.loader_p50.ratio:.3f} | {self.loader_p99.ratio:.3f} |", ""]

    def bars(self):
        return [("miss p50/find_one", self.p50.ratio, goals.MISS_VS_FIND)]


def run(ctx):
    n = MISS_READS
    sides = {"yes": ([], []), "no": ([], [])}
    for i in range(ctx.args.rounds):
        # Each run interleaves RT.GET and find_one read by read (loadgen `pair`): a moment in
        # which MongoDB or the machine is slow hits both alike. The second run does it with
        # readthrough.inline-loads off: every query on the loader thread. Which run goes first
        # alternates.
        for inline in ("yes", "no") if i % 2 == 0 else ("no", "yes"):
            ctx.r.config_set("readthrough.inline-loads", inline)
            rows = ctx.loadgen("pair", start=ctx.ids.take(2 * n), count=2 * n)
            for out, row in zip(sides[inline], rows):
                out.append(row)
    ctx.r.config_set("readthrough.inline-loads", "yes")

    def latency(rt, direct, k):
        return Latency(med([x[k] for x in rt]), med([x[k] for x in direct]), ratio_of_rounds(rt, direct, k))

    (rt, direct), (loader, direct_off) = sides["yes"], sides["no"]
    res = MissPath(latency(rt, direct, "p50_us"), latency(rt, direct, "p99_us"),
                   latency(loader, direct_off, "p50_us"), latency(loader, direct_off, "p99_us"))
    print(f"3. miss path: RT.GET cold p50 {res.p50.rtget_us} us / find_one {res.p50.find_us} us "
          f"= {res.p50.ratio:.3f}; p99 {res.p99.ratio:.3f}; inline loads off: p50 "
          f"{res.loader_p50.ratio:.3f}, p99 {res.loader_p99.ratio:.3f}")
    return res
