"""9. The demo workload from a cold cache: 32 clients read random ids over the 200,000 todos;
throughput and hit ratio per second."""
from dataclasses import dataclass

from ..paths import DOCS
from ..report import Row

NUMBER, NAME = "9", "demo"


@dataclass
class Demo:
    seconds: list  # one loadgen line a second: {"rps", "hit_ratio", ...}

    def summary(self):
        first, last = self.seconds[0], self.seconds[-1]
        return [Row(NUMBER, "demo workload, cold start (goal: hit ratio rises to warm)", None,
                    f"{first['hit_ratio']:.2f} -> {last['hit_ratio']:.2f} in {len(self.seconds)} s")]

    def section(self):
        out = [f"## 9. The demo workload: 32 clients, `RT.GET todo:<uniform random id in 1..{DOCS}>`, cold start", "",
               "| second | rps | hit ratio |", "|---|---|---|"]
        for i, row in enumerate(self.seconds):
            if i < 5 or (i + 1) % 10 == 0 or i == len(self.seconds) - 1:
                out.append(f"| {i + 1} | {row['rps']:,} | {row['hit_ratio']:.3f} |")
        return out + ["", "With uniform ids over 200,000 documents the hit ratio after n reads is about "
                      "1 − e^(−n/200,000): throughput climbs as the hit ratio does, because hits never leave Redis. "
                      "Misses of different keys share `$in` queries while MongoDB is busy, which is why the cold "
                      "phase runs at several thousand misses per second.", ""]

    def bars(self):
        return []


def run(ctx):
    ctx.r.flushall()
    res = Demo(ctx.loadgen("demo", seconds=ctx.args.demo_seconds, concurrency=32, ids=DOCS))
    first, last = res.seconds[0], res.seconds[-1]
    print(f"9. demo: {first['rps']:,} rps at hit ratio {first['hit_ratio']:.2f} in the first second, "
          f"{last['rps']:,} rps at {last['hit_ratio']:.2f} in the last")
    return res
