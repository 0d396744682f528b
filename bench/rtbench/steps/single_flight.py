"""5. Single-flight: 1000 concurrent RT.GET of one cold key -> MongoDB queries."""
import subprocess
from dataclasses import dataclass

from .. import goals
from ..report import Row

NUMBER, NAME = "5", "single_flight"


@dataclass
class SingleFlight:
    key: str
    queries: int  # serverStatus opcounters.query after - before

    def summary(self):
        return [Row(NUMBER, "MongoDB queries for 1000 concurrent misses on one key", goals.SINGLE_FLIGHT,
                    str(self.queries), self.queries)]

    def section(self):
        return ["## 5. Single-flight", "",
                f"`redis-benchmark -c 1000 -n 1000 RT.GET {self.key}` on a cold key: **{self.queries}** MongoDB "
                "query (serverStatus `opcounters.query` before and after).", ""]

    def bars(self):
        return []


def run(ctx):
    key = f"todo:{ctx.ids.take(1)}"
    q0 = ctx.queries()
    subprocess.run(["redis-benchmark", "-p", str(ctx.rport), "-c", "1000", "-n", "1000", "-q", "RT.GET", key],
                   capture_output=True, check=True)
    res = SingleFlight(key, ctx.queries() - q0)
    print(f"5. single-flight: 1000 concurrent RT.GET of one cold key -> {res.queries} MongoDB query(ies)")
    return res
