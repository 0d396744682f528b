"""2. Transparent path: GET of a mapped hot key vs GET of an unmapped key, and GET of an
unmapped key with the module loaded vs a redis-server without it."""
from dataclasses import dataclass

from .. import goals
from ..report import Row
from ..stats import med, ratio_of_rounds
from ..tools import pinned, redis_benchmark

NUMBER, NAME = "2", "transparent"


@dataclass
class Transparent:
    mapped_rps: float  # GET of a mapped cached key (rewritten by the command filter)
    unmapped_rps: float  # GET of an unmapped key, module loaded
    bare_rps: float  # the same GET on a redis-server without the module
    mapped_ratio: float  # mapped / unmapped
    module_ratio: float  # unmapped with the module / without

    def summary(self):
        return [Row(NUMBER, "GET mapped hot key / GET unmapped key", goals.NATIVE_HIT,
                    f"{self.mapped_ratio:.3f}", self.mapped_ratio),
                Row(NUMBER, "GET unmapped key, module / no module", goals.MODULE_LOADED,
                    f"{self.module_ratio:.3f}", self.module_ratio)]

    def section(self):
        return ["## 2. Transparent path (plain GET, no pipelining)", "", "| | rps |", "|---|---|",
                f"| GET of a mapped cached key (rewritten to the module by the command filter) | {self.mapped_rps:,.0f} |",
                f"| GET of an unmapped key, module loaded | {self.unmapped_rps:,.0f} |",
                f"| GET of the same key, redis-server without the module | {self.bare_rps:,.0f} |", ""]

    def bars(self):
        return [("mapped GET/GET", self.mapped_ratio, goals.NATIVE_HIT),
                ("GET w/ module/w/o", self.module_ratio, goals.MODULE_LOADED)]


def run(ctx):
    a = ctx.args
    ctx.r.set("plain:1", ctx.value)
    bare = ctx.redis_server("redis-bare.log")
    bare.client().set("plain:1", ctx.value)
    tget, plain, without = [], [], []
    with pinned(ctx.server.proc, bare.proc):
        for _ in range(a.rounds):
            tget.append(redis_benchmark(ctx.rport, 50, a.requests, 1, "GET", "todo:1"))
            plain.append(redis_benchmark(ctx.rport, 50, a.requests, 1, "GET", "plain:1"))
            without.append(redis_benchmark(bare.port, 50, a.requests, 1, "GET", "plain:1"))
    res = Transparent(med(tget), med(plain), med(without), ratio_of_rounds(tget, plain),
                      ratio_of_rounds(plain, without))
    print(f"2. transparent: GET mapped hit / GET unmapped {res.mapped_ratio:.3f}; unmapped GET with module / "
          f"without {res.module_ratio:.3f}")
    return res
