"""15. Compound keys: a cold miss of `order:TENANT:ID` (mapping `order:=test.orders:tenant,id`,
a compound index on MongoDB) against a cold miss of the single-field `todo:ID`, taking turns
read by read; and an RT.MGET of 100 compound keys (one tenant, then ten tenants) against 100
sequential compound misses."""
import time
from dataclasses import dataclass

from .. import goals
from ..report import Row
from ..stats import med, ratio_of_rounds

NUMBER, NAME = "15", "compound_keys"
ORDERS = 30_000
TENANTS = 50
PAIRS = 300  # cold reads a side a round


@dataclass
class CompoundKeys:
    compound_p50_us: float
    single_p50_us: float
    ratio: float  # compound / single p50, median of rounds
    mget_one_tenant_ms: float
    mget_ten_tenants_ms: float
    sequential_ms: float

    def summary(self):
        speedup = self.sequential_ms / self.mget_one_tenant_ms
        return [Row(NUMBER, "compound-key cold miss / single-field cold miss, p50", goals.COMPOUND_MISS,
                    f"{self.ratio:.3f}", self.ratio),
                Row(NUMBER, "100 sequential compound RT.GET / one RT.MGET of 100 (one tenant)",
                    goals.BATCH_SPEEDUP, f"{speedup:.1f}x", speedup)]

    def section(self):
        return [f"## 15. Compound keys ({PAIRS} cold reads a side a round, in turns)", "",
                "| | median |", "|---|---|",
                f"| RT.GET `order:TENANT:ID` cold miss, p50 | {self.compound_p50_us:.0f} µs |",
                f"| RT.GET `todo:ID` cold miss, p50, in turns with it | {self.single_p50_us:.0f} µs |",
                f"| ratio (median of per-round ratios) | {self.ratio:.3f} |",
                f"| RT.MGET of 100 cold compound keys of one tenant (one `$in`) | {self.mget_one_tenant_ms:.1f} ms |",
                f"| RT.MGET of 100 cold compound keys of ten tenants (ten `$in` at once) | "
                f"{self.mget_ten_tenants_ms:.1f} ms |",
                f"| 100 sequential compound RT.GET | {self.sequential_ms:.1f} ms |", "",
                "A batch is one `$in` per tenant, not one `$or`: SecantusDB scans the collection for an `$or` "
                "(100 compound ids took 17 s from pymongo) and uses the compound index for "
                "`{tenant: \"t\", id: {$in: [...]}}`.", ""]

    def bars(self):
        return [("compound miss/single miss", self.ratio, goals.COMPOUND_MISS)]


def seed(ctx):
    orders = ctx.mongo.test.orders
    orders.drop()
    orders.insert_many([{"tenant": f"t{i % TENANTS}", "id": i, "total": i} for i in range(ORDERS)])
    orders.create_index([("tenant", 1), ("id", 1)])


def run(ctx):
    seed(ctx)
    # Cold (tenant, id) pairs, tenant by tenant, each read once.
    by_tenant = [[i for i in range(ORDERS) if i % TENANTS == t] for t in range(TENANTS)]
    pool = [i for ids in by_tenant for i in ids]
    flat = iter(pool[::7])  # spread over the tenants for the latency pairs

    def key(i):
        return f"order:t{i % TENANTS}:{i}"

    taken = set()

    def take_tenant(t, n):
        out = [i for i in by_tenant[t] if i not in taken][:n]
        taken.update(out)
        return out

    comp, single, one_t, ten_t, seq_t = [], [], [], [], []
    with ctx.mapping_added("order:=test.orders:tenant,id"):
        for rnd in range(ctx.args.rounds):
            c_us, s_us = [], []
            start = ctx.ids.take(PAIRS)
            for k in range(PAIRS):
                i = next(flat)
                while i in taken:
                    i = next(flat)
                taken.add(i)
                t = time.perf_counter()
                assert ctx.r.execute_command("RT.GET", key(i)), key(i)
                c_us.append((time.perf_counter() - t) * 1e6)
                # Step 11 warmed every todo: make this one cold again.
                ctx.r.delete(f"todo:{start + k}")
                t = time.perf_counter()
                assert ctx.r.execute_command("RT.GET", f"todo:{start + k}")
                s_us.append((time.perf_counter() - t) * 1e6)
            comp.append(med(c_us))
            single.append(med(s_us))
            tenant = 40 + rnd % 10
            keys = [key(i) for i in take_tenant(tenant, 100)]
            t = time.perf_counter()
            assert all(ctx.r.execute_command("RT.MGET", *keys))
            one_t.append((time.perf_counter() - t) * 1000)
            keys = [key(i) for t_ in range(10) for i in take_tenant(t_ + 10 * (rnd % 3), 10)]
            t = time.perf_counter()
            assert all(ctx.r.execute_command("RT.MGET", *keys))
            ten_t.append((time.perf_counter() - t) * 1000)
            keys = [key(i) for i in take_tenant(tenant, 100)]
            t = time.perf_counter()
            for k in keys:
                assert ctx.r.execute_command("RT.GET", k)
            seq_t.append((time.perf_counter() - t) * 1000)
    res = CompoundKeys(med(comp), med(single), ratio_of_rounds(comp, single),
                       med(one_t), med(ten_t), med(seq_t))
    print(f"15. compound keys: miss p50 {res.compound_p50_us:.0f} µs vs single {res.single_p50_us:.0f} µs "
          f"({res.ratio:.3f}); RT.MGET 100 one tenant {res.mget_one_tenant_ms:.1f} ms, ten tenants "
          f"{res.mget_ten_tenants_ms:.1f} ms, 100 sequential {res.sequential_ms:.1f} ms")
    return res
