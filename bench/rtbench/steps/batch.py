"""6. Batch: RT.MGET of 100 cold keys vs 100 sequential RT.GET, next to the MongoDB server's
own speed-up for the same queries (100 find_one vs one `$in`), the limit of batching."""
import time
from dataclasses import dataclass

from .. import goals
from ..report import Row
from ..stats import med

NUMBER, NAME = "6", "batch"


@dataclass
class Batch:
    mget_ms: float  # RT.MGET of 100 cold keys
    sequential_ms: float  # 100 sequential RT.GET of cold keys
    server_speedup: float  # pymongo: 100 find_one / one $in

    @property
    def speedup(self):
        return self.sequential_ms / self.mget_ms

    def summary(self):
        return [Row(NUMBER, "100 sequential RT.GET / one RT.MGET of 100", goals.BATCH_SPEEDUP,
                    f"{self.speedup:.1f}x", self.speedup)]

    def section(self):
        return ["## 6. Batch", "", "| | median |", "|---|---|",
                f"| RT.MGET of 100 cold keys | {self.mget_ms:.1f} ms |",
                f"| 100 sequential RT.GET of cold keys | {self.sequential_ms:.1f} ms |",
                f"| speed-up | {self.speedup:.1f}x |",
                f"| the MongoDB server's own speed-up for the same queries from pymongo (100 find_one vs one `$in`) "
                f"| {self.server_speedup:.1f}x |", "",
                "The module cannot batch faster than the server answers one `$in`: the last row is that limit.", ""]

    def bars(self):
        return []


def run(ctx):
    mget_t, seq_t, in_t, one_t = [], [], [], []
    todos = ctx.mongo.test.todos

    def cold(n):
        start = ctx.ids.take(n)
        return range(start, start + n)

    for _ in range(ctx.args.rounds):
        keys = [f"todo:{i}" for i in cold(100)]
        t = time.perf_counter()
        got = ctx.r.execute_command("RT.MGET", *keys)
        mget_t.append(time.perf_counter() - t)
        assert all(got), "RT.MGET missed a document"
        keys = [f"todo:{i}" for i in cold(100)]
        t = time.perf_counter()
        for k in keys:
            assert ctx.r.execute_command("RT.GET", k)
        seq_t.append(time.perf_counter() - t)
        # The server's own limit: the same filters straight from pymongo.
        ids = [str(i) for i in cold(100)]
        t = time.perf_counter()
        assert len(list(todos.find({"id": {"$in": ids + [int(i) for i in ids]}}))) == 100
        in_t.append(time.perf_counter() - t)
        ids = [str(i) for i in cold(100)]
        t = time.perf_counter()
        for i in ids:
            todos.find_one({"id": {"$in": [i, int(i)]}})
        one_t.append(time.perf_counter() - t)
    res = Batch(med(mget_t) * 1000, med(seq_t) * 1000, med(one_t) / med(in_t))
    print(f"6. batch: RT.MGET 100 cold {res.mget_ms:.1f} ms, 100 sequential RT.GET {res.sequential_ms:.1f} ms, "
          f"{res.speedup:.1f}x (server's own $in speed-up {res.server_speedup:.1f}x)")
    return res
