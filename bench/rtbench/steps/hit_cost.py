"""14. What a hit costs the server, against the server's own read of the same value: RT.GET,
transparent GET, JSON.GET and HGETALL of a mapped cached key vs GET / JSON.GET / HGETALL of an
unmapped key holding the same value, and an unmapped GET with the module loaded vs a server
without it; unpipelined and at -P 16.

Two measures, each native / module (1.0: the same cost; the goal is >= 0.95):
- the server's CPU time (utime + stime) for the same number of requests, rounds alternating;
- instructions per request counted by valgrind's callgrind on a second server, the same
  config (RedisJSON is loaded on every server, the one without readthrough too), zeroed before
  and dumped after each side's requests (callgrind_control). Counts do not move with the shared
  host's noise. They count Redis's main thread only, where every command runs, and leave out the
  kernel (the same syscalls on both sides) and the server's cron (`processTimeEvents`, module
  timers included): both the cron and the module's own threads (its runtimes, change streams,
  the driver's monitors) work by the clock, not by the request, and under callgrind a side takes
  ~50 times its real wall time, so per request they would count tens of times what they cost.
  The other threads' count is shown beside. Debian's redis-server is stripped of its static
  names: there the cron is `serverCron`, which `processTimeEvents` calls.

The floors: bench/floor/floor.c, the least any module adds to serve a hit through the module API
(a filter that checks the key is cached and leaves the native read; a module command that replies
from the key), measured on a server of their own beside readthrough, so the rows above can be read
against what is reachable.
"""
import glob
import os
import re
import subprocess
import time
from dataclasses import dataclass

import redis

from .. import goals
from ..context import free_port, wait_port
from ..paths import MODULE, ROOT, SERVER
from ..report import Row, Skipped
from ..tools import cpu_ticks, pinned, redis_benchmark

NUMBER, NAME = "14", "hit_cost"
TITLE = "What a hit costs the server, by CPU time and by instructions"
CLIENTS = 50
CALLGRIND_REQUESTS = 20_000
FLOOR = "unmapped GET, module with transparent off / no module"
# (label, module side: command and key, native side: command and key, the servers each side
# runs on: "module" (readthrough on), "floor" (readthrough with transparent mode off) or "bare"
# (no readthrough)).
READS = (
    ("RT.GET hit / GET", ("RT.GET", "todo:1"), ("GET", "plain:1"), ("module", "module")),
    ("transparent GET hit / GET", ("GET", "todo:1"), ("GET", "plain:1"), ("module", "module")),
    ("transparent JSON.GET hit / JSON.GET", ("JSON.GET", "j:1"), ("JSON.GET", "x:1"), ("module", "module")),
    ("transparent HGETALL hit / HGETALL", ("HGETALL", "h:1"), ("HGETALL", "y:1"), ("module", "module")),
    ("unmapped GET, module loaded / not", ("GET", "plain:1"), ("GET", "plain:1"), ("module", "bare")),
    # The floor of any command filter: the module with transparent mode off still has its filter
    # registered, which returns at its first checks.
    (FLOOR, ("GET", "plain:1"), ("GET", "plain:1"), ("floor", "bare")),
    # The floors of the module API (bench/floor/floor.c, "peek" mode).
    ("floor: GET hit, a filter that checks the key is cached / GET", ("GET", "todo:1"), ("GET", "plain:1"),
     ("peek", "peek")),
    ("floor: a module command's hit (FLOOR.GET) / GET", ("FLOOR.GET", "plain:1"), ("GET", "plain:1"),
     ("peek", "peek")),
    ("floor: unmapped GET, a filter that reads the name and key / no module", ("GET", "plain:1"),
     ("GET", "plain:1"), ("peek", "bare")),
)
FLOOR_SOURCE = os.path.join(ROOT, "bench/floor/floor.c")
FLOOR_MODULE = os.path.join(ROOT, "target/floor/floor.so")


def build_floor():
    """bench/floor/floor.c built into target/floor/ with the redis-module crate's redismodule.h
    (cargo fetched it for the module's own build); the path, or None with the reason printed."""
    headers = sorted(glob.glob(os.path.expanduser("~/.cargo/registry/src/*/redis-module-2.*/src/include/redismodule.h")))
    if not headers:
        print("14. floors skipped: no redismodule.h from the redis-module crate (cargo build first)")
        return None
    os.makedirs(os.path.dirname(FLOOR_MODULE), exist_ok=True)
    cc = subprocess.run(["gcc", "-O2", "-fPIC", "-shared", "-Wall", "-o", FLOOR_MODULE, FLOOR_SOURCE,
                         "-I", os.path.dirname(headers[-1])], capture_output=True, text=True)
    if cc.returncode != 0:
        print(f"14. floors skipped: gcc failed: {cc.stderr.strip()}")
        return None
    return FLOOR_MODULE


@dataclass
class Cost:
    read: str
    pipeline: int
    cpu: float  # native ticks / module ticks, same requests
    instructions: float  # native Ir per request / module Ir per request
    module_ir: float
    native_ir: float
    module_others: float  # the module side's other threads, instructions per request (by the clock)


@dataclass
class HitCost:
    rows: list

    def goal(self, read):
        if read == FLOOR or read.startswith("floor"):
            return None  # a floor, shown for what the goals above can reach
        return goals.MODULE_LOADED if read.startswith("unmapped") else goals.NATIVE_HIT

    def summary(self):
        out = []
        for r in self.rows:
            where = "no pipelining" if r.pipeline == 1 else f"pipeline {r.pipeline}"
            shown = f"CPU {r.cpu:.3f}; instructions {r.instructions:.3f}"
            goal = self.goal(r.read)
            out.append(Row(NUMBER, f"{r.read}, {where} (native / module)", goal, shown,
                           min(r.cpu, r.instructions) if goal else None))
        return out

    def section(self):
        return [f"## 14. {TITLE}", "",
                "Native / module, so 1.0 is the same cost and the goal is >= 0.95 (>= 0.98 for an unmapped "
                "command with the module loaded). CPU: the server's utime + stime for the same number of "
                "requests (`redis-benchmark -c 50`), all rounds. Instructions: callgrind on a second server with "
                f"the same config, {CALLGRIND_REQUESTS:,} requests a side, counters zeroed before and dumped "
                "after each side, Redis's main thread only (where commands run), its cron (`processTimeEvents`) "
                "left out; the module side's other threads work by the clock and are shown apart. Rows named "
                "`floor:` are bench/floor/floor.c, the least any module adds to a read through the module API "
                "(no goal: what the rows above can reach).", "",
                "| read | pipeline | by CPU | by instructions | instructions per request, module / native | "
                "module side's other threads |",
                "|---|---|---|---|---|---|",
                *[f"| {r.read} | {r.pipeline} | {r.cpu:.3f} | {r.instructions:.3f} | {r.module_ir:,.0f} / "
                  f"{r.native_ir:,.0f} | {r.module_others:,.0f} |" for r in self.rows], ""]

    def bars(self):
        return []


def configs(ctx):
    return ctx.todo_configs(mappings="todo:=test.todos:id j:=test.todos:id;format=json h:=test.todos:id;format=hash")


def prepare(r):
    """The mapped keys cached, and the same values under unmapped keys."""
    value = r.execute_command("RT.GET", "todo:1")
    r.set("plain:1", value)
    r.execute_command("JSON.SET", "x:1", "$", r.execute_command("JSON.GET", "j:1"))
    r.hset("y:1", mapping=r.hgetall("h:1"))
    # No expiry during the measure (a hit near its TTL would start a refresh in grace).
    for k in ("todo:1", "j:1", "h:1"):
        r.persist(k)


class Callgrind:
    """A redis-server under callgrind; `count` runs requests and returns instructions each."""

    def __init__(self, ctx, args, log):
        self.out = os.path.join(ctx.tmp, f"callgrind-{log}")
        self.port = free_port()
        self.proc = ctx.spawn(["valgrind", "--tool=callgrind", "--separate-threads=yes",
                               f"--callgrind-out-file={self.out}.%p", SERVER, "--port", str(self.port),
                               "--save", "", "--appendonly", "no", "--dir", ctx.tmp, *args], log)
        wait_port(self.port, f"redis-server under callgrind ({log})", timeout=180)

    def count(self, pipeline, cmd, key):
        """Instructions per request on the main thread (cron left out), and in the other threads."""
        pid = str(self.proc.pid)
        subprocess.run(["callgrind_control", "-z", pid], capture_output=True, check=True)
        subprocess.run(["redis-benchmark", "-p", str(self.port), "-c", str(CLIENTS), "-n", str(CALLGRIND_REQUESTS),
                        "-P", str(pipeline), "-q", cmd, key], capture_output=True, check=True)
        before = set(glob.glob(f"{self.out}.{pid}*"))
        subprocess.run(["callgrind_control", "-d", pid], capture_output=True, check=True)
        end = time.time() + 60
        seen = None
        while time.time() < end:
            new = sorted(set(glob.glob(f"{self.out}.{pid}*")) - before)
            # One file a thread (suffix -01: the main thread), each complete once it has totals;
            # the dump is over when no new file has appeared since the last look.
            totals = {f: total_of(f) for f in new}
            done = new == seen and all(t is not None for t in totals.values())
            seen = new
            if done and any(f.endswith("-01") for f in new):
                main = sum(t - cron_of(f) for f, t in totals.items() if f.endswith("-01"))
                others = sum(t for f, t in totals.items() if not f.endswith("-01"))
                for f in new:
                    os.remove(f)
                return main / CALLGRIND_REQUESTS, others / CALLGRIND_REQUESTS
            time.sleep(0.3)
        raise RuntimeError("callgrind wrote no dump")


def total_of(dump):
    """A dump's instruction total, or None while callgrind is still writing it."""
    if os.path.getsize(dump) == 0:
        return None
    m = re.search(r"^(?:summary|totals): (\d+)", open(dump).read(), re.M)
    return int(m.group(1)) if m else None


def cron_of(dump):
    """Instructions a callgrind dump spent in the server's cron, inclusive: `processTimeEvents`
    (module timers too), or where the server is stripped (Debian's package keeps only exported
    names) `serverCron`, which it calls."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", dump],
                         capture_output=True, text=True, check=True).stdout
    for name in (r"ae\.c:processTimeEvents", r":serverCron"):
        m = re.search(r"^\s*([\d,]+) .*" + name + r" \[", out, re.M)
        if m:
            return int(m.group(1).replace(",", ""))
    return 0


def load_args(modules):
    return [a for m in modules for a in ("--loadmodule", m)]


def module_args(ctx, modules, **more):
    args = load_args(modules) + ["--loadmodule", MODULE]
    for k, v in {**configs(ctx), **more}.items():
        args += [f"--readthrough.{k}", str(v)]
    return args


def run(ctx):
    modules = ctx.json_modules()
    if modules is None:
        return Skipped(NUMBER, "hit cost", TITLE, "RedisJSON not available (`make rejson`)")
    a = ctx.args
    server = ctx.redis_server("redis-hitcost.log", configs(ctx), modules=modules)
    floor = ctx.redis_server("redis-hitcost-floor.log", {**configs(ctx), "transparent": "no"},
                             modules=modules)
    # RedisJSON on every server, so the last two rows compare with and without readthrough only.
    bare = ctx.redis_server("redis-hitcost-bare.log", modules=modules)
    floor_module = build_floor()
    reads = [r for r in READS if floor_module or "peek" not in r[3]]
    peek_args = ["--loadmodule", floor_module, "peek"] if floor_module else []
    peek = ctx.redis_server("redis-hitcost-peek.log", modules=modules, extra=peek_args) if floor_module else None
    r = server.client()
    prepare(r)
    for other in (bare, floor, peek):
        if other:
            other.client().set("plain:1", r.get("plain:1"))
    if peek:
        peek.client().set("todo:1", r.get("plain:1"))
    at = {"module": server, "bare": bare, "floor": floor, "peek": peek}
    ports = {k: v.port for k, v in at.items() if v}
    procs = {k: v.proc for k, v in at.items() if v}
    # By CPU: ticks of each side over all rounds, sides alternating.
    cpu = {}
    with pinned(*procs.values()):
        for pipeline in (1, 16):
            n = a.requests * (5 if pipeline > 1 else 1)
            for label, mod, nat, (m_at, n_at) in reads:
                ticks = [0, 0]
                for _ in range(a.rounds):
                    for i, (cmd, key), at in ((0, mod, m_at), (1, nat, n_at)):
                        port, proc = ports[at], procs[at]
                        before = cpu_ticks(proc.pid)
                        redis_benchmark(port, CLIENTS, n, pipeline, cmd, key)
                        ticks[i] += cpu_ticks(proc.pid) - before
                cpu[(label, pipeline)] = ticks[1] / max(ticks[0], 1)
    # By instructions: the same on servers under callgrind.
    cg = Callgrind(ctx, module_args(ctx, modules), "redis-callgrind.log")
    cg_floor = Callgrind(ctx, module_args(ctx, modules, transparent="no"), "redis-callgrind-floor.log")
    cg_bare = Callgrind(ctx, load_args(modules), "redis-callgrind-bare.log")
    cg_peek = Callgrind(ctx, load_args(modules) + peek_args, "redis-callgrind-peek.log") if peek else None
    rc = redis.Redis(port=cg.port, decode_responses=True)
    prepare(rc)
    for other in (cg_bare, cg_floor, cg_peek):
        if other:
            redis.Redis(port=other.port).set("plain:1", rc.get("plain:1"))
    if cg_peek:
        redis.Redis(port=cg_peek.port).set("todo:1", rc.get("plain:1"))
    servers = {"module": cg, "bare": cg_bare, "floor": cg_floor, "peek": cg_peek}
    rows = []
    for pipeline in (1, 16):
        for label, mod, nat, (m_at, n_at) in reads:
            m_ir, m_others = servers[m_at].count(pipeline, *mod)
            n_ir, _ = servers[n_at].count(pipeline, *nat)
            row = Cost(label, pipeline, cpu[(label, pipeline)], n_ir / m_ir, m_ir, n_ir, m_others)
            rows.append(row)
            print(f"14. {label}, pipeline {pipeline:>2}: by CPU {row.cpu:.3f}, by instructions "
                  f"{row.instructions:.3f} ({m_ir:,.0f} / {n_ir:,.0f} per request; the module side's "
                  f"other threads {m_others:,.0f})")
    for p in [s.proc for s in servers.values() if s]:
        p.terminate()
        p.wait(30)
    return HitCost(rows)
