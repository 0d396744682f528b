"""Every goal the bench checks, declared once: the report's summary and the chart read them
from here, so a goal cannot say one thing in the table and another in the picture."""
from dataclasses import dataclass
from typing import Callable, Optional


@dataclass(frozen=True)
class Goal:
    text: str
    check: Callable[[object], bool]
    # For the chart's goal line: the limit and whether higher values are better.
    limit: Optional[float] = None
    higher: bool = True

    def met(self, value):
        return self.check(value)

    def verdict(self, value):
        return "met" if self.met(value) else "**missed**"


def at_least(x):
    return Goal(f">= {x:g}", lambda v: v >= x, x, True)


def at_most(x, text=None):
    return Goal(text or f"<= {x:g}", lambda v: v <= x, x, False)


def exactly(x):
    return Goal(f"exactly {x:g}", lambda v: v == x, x, True)


def _wins(rows):
    return all(r.rps_ratio > 1 and r.p50_ratio < 1 for r in rows)


# 1, 2, 12, 14: a hit (RT.GET, transparent GET / JSON.GET / HGETALL) against the server's own
# read.
NATIVE_HIT = at_least(0.95)
# 2, 14: an unmapped command with the module loaded against a server without it.
MODULE_LOADED = at_least(0.98)
# 3, 3b: a cold miss against a direct find_one from the same client, p50 and p99.
MISS_VS_FIND = at_most(1.15)
# 3b, 13: the module's own cost of a miss (RT.GET p50 - find_one p50), in PING round trips.
MISS_COST_PINGS = at_most(1)
# 3b, 4: RT.GET against application cache-aside at 1, 16 and 64 clients.
BEATS_ASIDE = Goal("module wins at every level", _wins)
# 13: the same at one client against the stand-in MongoDB.
BEATS_ASIDE_ONCE = Goal("module wins", lambda row: _wins([row]))
# 5: MongoDB queries for 1,000 concurrent misses of one key.
SINGLE_FLIGHT = exactly(1)
# 6: 100 sequential RT.GET against one RT.MGET of 100.
BATCH_SPEEDUP = at_least(10)
# 7: PING p99 while 10,000 loads wait on a stalled MongoDB, against idle.
STALLED_PING = at_most(2)
# 8, 12: memory per document against the same value stored by hand with the same TTL.
MEMORY = at_most(1.05)
# 10: change in MongoDB to new value in Redis, p99 in ms.
CHANGE_VISIBLE_MS = at_most(2000, "within 2 s")
# 15: a compound-key cold miss against a single-field one, p50 (the key splits and the filter
# has one condition more: no extra round trip).
COMPOUND_MISS = at_most(1.10)
# 16: a `many` list's cold miss against the same find (sort, limit) from the client, p50.
LIST_MISS_VS_FIND = at_most(1.15)

# 17: Redis Cluster: MongoDB sees one change stream per mapped collection, whatever the number
# of masters.
CLUSTER_STREAMS = exactly(1)
