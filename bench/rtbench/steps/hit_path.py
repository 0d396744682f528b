"""1. Hit path: RT.GET hit vs Redis's own GET of the same value, pipelined and not.

The GET side reads an unmapped key holding the same value: a GET of the mapped key itself is
rewritten to the module by the command filter (transparent mode, step 2), so it would not be
Redis's own GET. Until 2026-11-28 it was, which flattered RT.GET."""
from dataclasses import dataclass

from .. import goals
from ..report import Row
from ..stats import med, ratio_of_rounds
from ..tools import cpu_ticks, pinned, redis_benchmark

NUMBER, NAME = "1", "hit_path"


@dataclass
class PipelineRow:
    pipeline: int
    get_rps: float
    rtget_rps: float
    ratio: float  # RT.GET rps / GET rps, median of rounds
    cpu_ratio: float  # GET's server CPU time / RT.GET's, all rounds


@dataclass
class HitPath:
    rows: list

    def summary(self):
        out = []
        for r in self.rows:
            where = "no pipelining" if r.pipeline == 1 else f"pipeline {r.pipeline}"
            out += [Row(NUMBER, f"RT.GET hit / GET, {where}", goals.NATIVE_HIT, f"{r.ratio:.3f}", r.ratio),
                    Row(NUMBER, f"same, by the server's CPU time per request (GET's / RT.GET's), {where}",
                        goals.NATIVE_HIT, f"{r.cpu_ratio:.3f}", r.cpu_ratio)]
        return out

    def section(self):
        return ["## 1. Hit path: RT.GET hit vs Redis's own GET (same server, same value; the GET reads an "
                "unmapped key, which the module leaves alone)", "",
                "The last column compares the server's CPU time for the same number of requests (GET's / "
                "RT.GET's, all rounds): the throughput ratio of a server with a core to itself, which the shared "
                "host's noise moves far less than the rps.", "",
                "| pipeline | GET rps | RT.GET hit rps | ratio | by server CPU per request |", "|---|---|---|---|---|",
                *[f"| {r.pipeline} | {r.get_rps:,.0f} | {r.rtget_rps:,.0f} | {r.ratio:.3f} | {r.cpu_ratio:.3f} |"
                  for r in self.rows], ""]

    def bars(self):
        return [(f"RT.GET hit/GET{'' if r.pipeline == 1 else f' P{r.pipeline}'}", r.ratio, goals.NATIVE_HIT)
                for r in self.rows]


def run(ctx):
    a, rows = ctx.args, []
    ctx.r.set("plain:1", ctx.value)
    for pipeline in (1, 16):
        n = a.requests * (5 if pipeline > 1 else 1)
        get, rtget = [], []
        # The server's CPU time per side, too: throughput moves with what else the shared host
        # runs (rounds of one build ranged 0.57 to 1.45), the server's own work for the same
        # number of requests much less. Their ratio is the throughput ratio of a server that has
        # a core to itself.
        ticks = {"GET": 0, "RT.GET": 0}
        pid = ctx.server.proc.pid

        def measured(cmd, key):
            before = cpu_ticks(pid)
            rps = redis_benchmark(ctx.rport, 50, n, pipeline, cmd, key)
            ticks[cmd] += cpu_ticks(pid) - before
            return rps

        with pinned(ctx.server.proc):
            for _ in range(a.rounds):  # alternate so drift hits both alike
                get.append(measured("GET", "plain:1"))
                rtget.append(measured("RT.GET", "todo:1"))
        row = PipelineRow(pipeline, med(get), med(rtget), ratio_of_rounds(rtget, get),
                          ticks["GET"] / max(ticks["RT.GET"], 1))
        rows.append(row)
        print(f"1. hit path, pipeline {pipeline:>2}: GET {row.get_rps:,.0f} rps, RT.GET hit {row.rtget_rps:,.0f} rps, "
              f"ratio {row.ratio:.3f}; by the server's CPU time per request {row.cpu_ratio:.3f} "
              f"({ticks['GET']} / {ticks['RT.GET']} ticks)")
    return HitPath(rows)
