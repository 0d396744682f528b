"""16. Query results (`many`): a cold list miss (`ol:=test.orders_many:user_id;many;sort=-created;
limit=10`) against the same `find().sort().limit()` from pymongo, taking turns read by read; a
warm hit (RT.GET, and a plain GET of the mapped key) against a GET of an unmapped key holding
the same array, in turns; and change to visible for a list key over `--updates` updates."""
import sys
import time
from dataclasses import dataclass

from .. import goals
from ..report import Row
from ..stats import med, p99, ratio_of_rounds

NUMBER, NAME = "16", "many_lists"
USERS, PER_USER, LIMIT = 2_000, 20, 10
PAIRS = 300  # cold reads a side a round
HITS = 2_000  # warm reads a side a round
MAPPING = f"ol:=test.orders_many:user_id;many;sort=-created;limit={LIMIT}"


@dataclass
class ManyLists:
    miss_p50_us: float
    find_p50_us: float
    miss_ratio: float
    hit_p50_us: float
    get_p50_us: float
    native_p50_us: float
    hit_ratio: float  # RT.GET hit / GET of the unmapped key, p50
    get_ratio: float  # plain GET of the mapped key / the same, p50
    fresh_n: int
    fresh_p50_ms: float
    fresh_p99_ms: float

    def summary(self):
        return [Row(NUMBER, "many: cold list miss / the same find from pymongo, p50", goals.LIST_MISS_VS_FIND,
                    f"{self.miss_ratio:.3f}", self.miss_ratio),
                Row(NUMBER, "many: change to visible for a list key, p99", goals.CHANGE_VISIBLE_MS,
                    f"{self.fresh_p50_ms:.1f} / {self.fresh_p99_ms:.1f} ms (p50 / p99)", self.fresh_p99_ms)]

    def section(self):
        return [f"## 16. Query results (`many`: {LIMIT} of {PER_USER} orders a user, sorted)", "",
                "| | p50 | ratio (median of rounds) |", "|---|---|---|",
                f"| RT.GET of a cold list key | {self.miss_p50_us:.0f} µs | {self.miss_ratio:.3f} |",
                f"| the same find (filter, sort, limit) from pymongo, in turns with it | {self.find_p50_us:.0f} µs | |",
                f"| RT.GET of a cached list key | {self.hit_p50_us:.0f} µs | {self.hit_ratio:.3f} |",
                f"| GET of the cached list key (transparent mode) | {self.get_p50_us:.0f} µs | {self.get_ratio:.3f} |",
                f"| GET of an unmapped key holding the same array, in turns | {self.native_p50_us:.0f} µs | |", "",
                f"Change to visible over {self.fresh_n:,} updates of one order of a cached list (mode `delete`; "
                f"`RT.GET` polled until it shows the new total): p50 {self.fresh_p50_ms:.1f} ms, "
                f"p99 {self.fresh_p99_ms:.1f} ms. An update event names the changed fields, so no query is made "
                "to place it: the next read's query is the only one.", ""]

    def bars(self):
        return [("list miss/find", self.miss_ratio, goals.LIST_MISS_VS_FIND)]


def seed(ctx):
    orders = ctx.mongo.test.orders_many
    orders.drop()
    orders.insert_many([{"user_id": f"u{u}", "created": k, "total": u * 100 + k}
                        for u in range(USERS) for k in range(PER_USER)])
    orders.create_index([("user_id", 1), ("created", -1)])
    return orders


def run(ctx):
    orders = seed(ctx)
    users = iter(range(USERS))
    miss, find, hit, get, native = [], [], [], [], []
    with ctx.mapping_added(MAPPING):
        for _ in range(ctx.args.rounds):
            m_us, f_us = [], []
            cached = []
            for _ in range(PAIRS // 2):
                u, v = next(users), next(users)
                t = time.perf_counter()
                value = ctx.r.execute_command("RT.GET", f"ol:u{u}")
                m_us.append((time.perf_counter() - t) * 1e6)
                assert value.startswith("[{"), value
                t = time.perf_counter()
                docs = list(orders.find({"user_id": f"u{v}"}).sort([("created", -1), ("_id", 1)]).limit(LIMIT))
                f_us.append((time.perf_counter() - t) * 1e6)
                assert len(docs) == LIMIT
                cached.append((u, value))
            miss.append(med(m_us))
            find.append(med(f_us))
            u0, value = cached[0]
            ctx.r.set("plain:list", value)
            h_us, g_us, n_us = [], [], []
            for _ in range(HITS):
                t = time.perf_counter()
                ctx.r.execute_command("RT.GET", f"ol:u{u0}")
                h_us.append((time.perf_counter() - t) * 1e6)
                t = time.perf_counter()
                ctx.r.execute_command("GET", f"ol:u{u0}")
                g_us.append((time.perf_counter() - t) * 1e6)
                t = time.perf_counter()
                ctx.r.execute_command("GET", "plain:list")
                n_us.append((time.perf_counter() - t) * 1e6)
            hit.append(med(h_us))
            get.append(med(g_us))
            native.append(med(n_us))
        fresh = []
        n = ctx.args.updates
        for k in range(n):
            u = k % USERS
            key = f"ol:u{u}"
            assert ctx.r.execute_command("RT.GET", key)
            new_total = 10_000_000 + k
            t = time.perf_counter()
            orders.update_one({"user_id": f"u{u}", "created": PER_USER - 1}, {"$set": {"total": new_total}})
            while f'"total":{new_total}' not in ctx.r.execute_command("RT.GET", key):
                if time.perf_counter() - t > 10:
                    sys.exit(f"16. the update of {key} was not visible after 10 s")
            fresh.append((time.perf_counter() - t) * 1e6)
        fresh.sort()
    res = ManyLists(med(miss), med(find), ratio_of_rounds(miss, find), med(hit), med(get), med(native),
                    ratio_of_rounds(hit, native), ratio_of_rounds(get, native),
                    len(fresh), fresh[len(fresh) // 2] / 1000, p99(fresh) / 1000)
    print(f"16. many: cold list miss p50 {res.miss_p50_us:.0f} µs vs find {res.find_p50_us:.0f} µs "
          f"({res.miss_ratio:.3f}); hit RT.GET {res.hit_p50_us:.0f} µs, GET {res.get_p50_us:.0f} µs vs unmapped "
          f"GET {res.native_p50_us:.0f} µs ({res.hit_ratio:.3f}, {res.get_ratio:.3f}); change to visible "
          f"p50 {res.fresh_p50_ms:.1f} ms, p99 {res.fresh_p99_ms:.1f} ms over {res.fresh_n}")
    return res
