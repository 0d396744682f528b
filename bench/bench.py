#!/usr/bin/env python3
"""Benchmarks, measured side by side in one run on one machine (`make bench`).

Starts its own SecantusDB (or uses MONGO_URI), loads the 200,000 demo todos
(scripts/demo_data.py), starts a redis-server with the module, and measures with
`redis-benchmark` and the Rust load generator (`examples/loadgen.rs`):

1. hit path: RT.GET hit vs a native GET of the same value under an unmapped key, pipelined
   and not;
2. transparent path: GET of a mapped hot key vs GET of an unmapped key, and GET of an unmapped
   key with the module loaded vs a redis-server without it;
3. miss path: RT.GET cold-miss latency vs a direct find_one from the same Rust client, the two
   taking turns read by read, and the same with readthrough.inline-loads off;
4. cache-aside (GET, find_one, SET from the client) vs RT.GET at 1, 16 and 64 clients;
5. single-flight: 1000 concurrent RT.GET of one cold key -> MongoDB queries;
6. batch: RT.MGET of 100 cold keys vs 100 sequential RT.GET;
7. PING p99 while 10,000 loads wait on a stalled (SIGSTOPped) MongoDB vs idle PING p99;
8. memory: used_memory per cached document vs the same JSON stored by plain SET;
9. the demo workload: random ids over the 200,000 todos from a cold cache, per second;
10. change-stream invalidation: update in MongoDB -> new value from RT.GET, p50/p99 over 1000 updates;
11. warm-up: RT.WARM of the 200,000 todos, documents/s and PING p99 while it runs;
12. formats (json with RedisJSON, hash): transparent hit (JSON.GET / HGETALL of a mapped cached
    key) vs the same command on an unmapped key, cold-miss p50 vs RT.GET of the string format,
    and memory per document vs storing the same document by hand (JSON.SET / HSET + PEXPIRE);
13. the module's own cost of a miss, without MongoDB's noise: against a stand-in MongoDB that
    answers every find at once (`examples/mongo_standin.rs`), RT.GET miss p50 minus direct
    find_one p50, next to PING p50, and RT.GET vs cache-aside at one client.

Every timing is a median over alternating rounds; read the ratios, not absolute numbers (the
machine is shared and noisy). Writes bench/results/report.md and bench/results/bench.png.

Usage: bench/bench.py [--rounds N] [--requests N] [--demo-seconds N] [--out-dir DIR] [--steps a,b]
(--steps runs only the named steps, e.g. `formats`, and prints them without writing the report)
"""
import argparse
import csv
import io
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULE = os.environ.get("READTHROUGH_MODULE", os.path.join(ROOT, "target/release/libreadthrough.so"))
LOADGEN = os.path.join(ROOT, "target/release/examples/loadgen")
STANDIN = os.path.join(ROOT, "target/release/examples/mongo_standin")
DOCS = 200_000
# Cold reads a side a round in step 3 (the miss path).
MISS_READS = 1000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, what, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not start on port {port}")


# Hit-path numbers swung by ±20% between runs (the pipelined RT.GET/GET ratio from 0.77 to 1.14)
# when the server and redis-benchmark, each nearly one core's worth of work, were moved between
# the two cores by the scheduler. Measured pinned: the server on CPU 0 and redis-benchmark on
# CPU 1 (see `pinned`).
PIN = (os.cpu_count() or 1) >= 2


def redis_benchmark(port, clients, requests, pipeline, *command):
    pin = ["taskset", "-c", "1"] if PIN else []
    out = subprocess.run(
        [*pin, "redis-benchmark", "-p", str(port), "-c", str(clients), "-n", str(requests),
         "-P", str(pipeline), "--csv", *command],
        capture_output=True, text=True, check=True,
    ).stdout
    return float(list(csv.DictReader(io.StringIO(out)))[-1]["rps"])


def cpu_ticks(pid):
    """CPU time (user + system, all threads) `pid` has used, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


class pinned:
    """Pins the given servers (every thread) to CPU 0 while hit paths are measured; the
    load generator runs on CPU 1 (`redis_benchmark`). Undone on exit."""

    def __init__(self, *procs):
        self.pids = [p.pid for p in procs]

    def _set(self, cpus):
        if PIN:
            for pid in self.pids:
                subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(pid)], capture_output=True)

    def __enter__(self):
        self._set("0")

    def __exit__(self, *exc):
        self._set(f"0-{(os.cpu_count() or 1) - 1}")


class Ids:
    """Hands out ranges of ids never read before, so every load is a cold miss."""

    def __init__(self, first=10):
        self.next = first

    def take(self, n):
        start = self.next
        self.next += n
        if self.next > DOCS:
            sys.exit("bench ran out of cold ids")
        return start


def med(xs):
    return statistics.median(xs)


def p99(sorted_xs):
    """Nearest-rank 99th percentile of an ascending list."""
    n = len(sorted_xs)
    return sorted_xs[min(n - 1, (n * 99 + 99) // 100 - 1)]


class Bench:
    def __init__(self, a, tmp):
        self.a, self.tmp, self.procs = a, tmp, []
        self.ids = Ids()
        self.results = {}
        self.mongo_proc = None

    def spawn(self, args, log):
        p = subprocess.Popen(args, stdout=open(os.path.join(self.tmp, log), "w"), stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def loadgen(self, mode, rport=None, uri=None, **kw):
        """Runs the load generator against the bench's servers, or the given Redis port and URI."""
        args = [LOADGEN, mode, "--redis", f"redis://127.0.0.1:{rport or self.rport}/", "--mongo", uri or self.uri,
                "--mapping", "test.todos:id", "--prefix", "todo:"]
        for k, v in kw.items():
            args += [f"--{k}", str(v)]
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
        rows = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
        return rows if mode in ("demo", "pair") else rows[-1]

    def queries(self):
        return self.mongo.admin.command("serverStatus")["opcounters"]["query"]

    def setup(self):
        import pymongo
        self.uri = os.environ.get("MONGO_URI")
        if not self.uri:
            mport = free_port()
            self.mongo_proc = self.spawn(
                [os.path.join(ROOT, ".venv/bin/secantusd-py"), "--port", str(mport),
                 "--storage-path", os.path.join(self.tmp, "mongo"), "--log-level", "WARNING"], "mongo.log")
            wait_port(mport, "SecantusDB")
            self.uri = f"mongodb://127.0.0.1:{mport}"
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/demo_data.py"), self.uri, str(DOCS)], check=True)
        self.mongo = pymongo.MongoClient(self.uri)
        build = self.mongo.admin.command("buildInfo")
        self.mongo_version = build.get("version", "?")
        self.mongo_name = "SecantusDB (embedded)" if self.mongo_proc else f"external MongoDB ({self.uri.split('@')[-1]})"
        self.rport = free_port()
        self.redis_proc = self.spawn(["redis-server", "--port", str(self.rport), "--save", "", "--appendonly", "no",
                    "--dir", self.tmp, "--maxclients", "12000",
                    "--loadmodule", MODULE, "--readthrough.inline-loads", "yes", "--readthrough.mongo-uri", self.uri,
                    "--readthrough.mappings", "todo:=test.todos:id", "--readthrough.timeout", "60000",
                    "--readthrough.max-inflight", "20000"], "redis.log")
        wait_port(self.rport, "redis-server")
        self.r = redis.Redis(port=self.rport, decode_responses=True)
        self.value = self.r.execute_command("RT.GET", "todo:1")
        assert self.value.startswith("{"), self.value

    # 1. Hit path. The GET side reads an unmapped key holding the same value: a GET of the mapped
    # key itself is rewritten to the module by the command filter (transparent mode, step 2), so
    # it would not be Redis's own GET. Until 2026-11-28 it was, which flattered RT.GET.
    def hit_path(self):
        a, rows = self.a, []
        self.r.set("plain:1", self.value)
        for pipeline in (1, 16):
            n = a.requests * (5 if pipeline > 1 else 1)
            get, rtget = [], []
            # The server's CPU time per side, too: throughput moves with what else the shared
            # host runs (rounds of one build ranged 0.57 to 1.45), the server's own work for the
            # same number of requests much less. Their ratio is the throughput ratio of a server
            # that has a core to itself.
            ticks = {"GET": 0, "RT.GET": 0}
            pid = self.redis_proc.pid

            def measured(cmd, key):
                before = cpu_ticks(pid)
                rps = redis_benchmark(self.rport, 50, n, pipeline, cmd, key)
                ticks[cmd] += cpu_ticks(pid) - before
                return rps

            with pinned(self.redis_proc):
                for _ in range(a.rounds):  # alternate so drift hits both alike
                    get.append(measured("GET", "plain:1"))
                    rtget.append(measured("RT.GET", "todo:1"))
            # The ratio is the median of per-round ratios: each pair ran back to back, so slow
            # drift of a shared machine cancels out.
            g, r = med(get), med(rtget)
            cpu = ticks["GET"] / max(ticks["RT.GET"], 1)
            rows.append((pipeline, g, r, med([y / x for x, y in zip(get, rtget)]), cpu))
            print(f"1. hit path, pipeline {pipeline:>2}: GET {g:,.0f} rps, RT.GET hit {r:,.0f} rps, ratio {rows[-1][3]:.3f}; "
                  f"by the server's CPU time per request {cpu:.3f} ({ticks['GET']} / {ticks['RT.GET']} ticks)")
        self.results["hit"] = rows

    # 2. Transparent path.
    def transparent(self):
        a = self.a
        self.r.set("plain:1", self.value)
        bport = free_port()
        bare_proc = self.spawn(["redis-server", "--port", str(bport), "--save", "", "--appendonly", "no",
                                "--dir", self.tmp], "redis-bare.log")
        wait_port(bport, "redis-server without the module")
        redis.Redis(port=bport).set("plain:1", self.value)
        tget, plain, bare = [], [], []
        with pinned(self.redis_proc, bare_proc):
            for _ in range(a.rounds):
                tget.append(redis_benchmark(self.rport, 50, a.requests, 1, "GET", "todo:1"))
                plain.append(redis_benchmark(self.rport, 50, a.requests, 1, "GET", "plain:1"))
                bare.append(redis_benchmark(bport, 50, a.requests, 1, "GET", "plain:1"))
        tg, pl, ba = med(tget), med(plain), med(bare)
        mapped = med([x / y for x, y in zip(tget, plain)])
        module = med([x / y for x, y in zip(plain, bare)])
        print(f"2. transparent: GET mapped hit / GET unmapped {mapped:.3f}; unmapped GET with module / without {module:.3f}")
        self.results["transparent"] = (tg, pl, ba, mapped, module)

    # 3. Miss path vs a direct find_one.
    def miss_path(self):
        # The p99 of 300 reads (this step's count until 2026-11-28) is their 3rd slowest, so
        # three stray slow reads decide it; of 1,000 reads it is the 10th slowest.
        n = MISS_READS
        sides = {"yes": ([], []), "no": ([], [])}
        for i in range(self.a.rounds):
            # Each run interleaves RT.GET and find_one read by read (loadgen `pair`): a moment in
            # which MongoDB or the machine is slow hits both alike. The second run does it with
            # readthrough.inline-loads off: every query on the loader thread. Which run goes
            # first alternates.
            for inline in ("yes", "no") if i % 2 == 0 else ("no", "yes"):
                self.r.config_set("readthrough.inline-loads", inline)
                rows = self.loadgen("pair", start=self.ids.take(2 * n), count=2 * n)
                for out, row in zip(sides[inline], rows):
                    out.append(row)
        self.r.config_set("readthrough.inline-loads", "yes")
        (rt, direct), (loader, direct_off) = sides["yes"], sides["no"]
        res = {k: (med([x[k] for x in rt]), med([x[k] for x in direct]),
                   med([x[k] / y[k] for x, y in zip(rt, direct)])) for k in ("p50_us", "p99_us")}
        res["loader"] = {k: (med([x[k] for x in loader]), med([x[k] / y[k] for x, y in zip(loader, direct_off)]))
                         for k in ("p50_us", "p99_us")}
        print(f"3. miss path: RT.GET cold p50 {res['p50_us'][0]} us / find_one {res['p50_us'][1]} us "
              f"= {res['p50_us'][2]:.3f}; p99 {res['p99_us'][2]:.3f}; inline loads off: p50 "
              f"{res['loader']['p50_us'][1]:.3f}, p99 {res['loader']['p99_us'][1]:.3f}")
        self.results["miss"] = res

    # 3b. The miss path on the URI shapes users run: a plain one-host URI (inline loads on and
    # off) and the production shape, SCRAM + TLS + a replica set (Atlas; self-hosted replica sets
    # with auth), where only the driver serves. The module and the client use the same URI. Each
    # round interleaves RT.GET, find_one and a PING read by read (loadgen pair) on every shape.
    def uri_shapes(self):
        secure = os.environ.get("MONGO_URI_SECURE")
        if not secure and self.mongo_proc:
            sport, sdir = free_port(), os.path.join(self.tmp, "secure-mongo")
            self.spawn([sys.executable, os.path.join(ROOT, "scripts/secure_mongo.py"), "--port", str(sport),
                        "--dir", sdir], "secure-mongo.log")
            # The script writes the URI once the user exists and the first (open) start has stopped.
            uri_file, end = os.path.join(sdir, "uri"), time.time() + 120
            while not os.path.exists(uri_file) and time.time() < end:
                time.sleep(0.1)
            wait_port(sport, "SecantusDB with SCRAM and TLS")
            secure = open(uri_file).read().strip()
            subprocess.run([sys.executable, os.path.join(ROOT, "scripts/demo_data.py"), secure, str(DOCS)], check=True)
        if not secure:
            print("3b. URI shapes: skipped (set MONGO_URI_SECURE to a SCRAM + TLS URI of the external MongoDB)")
            self.results["shapes"] = None
            return
        sport = free_port()
        self.spawn(["redis-server", "--port", str(sport), "--save", "", "--appendonly", "no", "--dir", self.tmp,
                    "--loadmodule", MODULE, "--readthrough.mongo-uri", secure, "--readthrough.mappings",
                    "todo:=test.todos:id", "--readthrough.timeout", "60000", "--readthrough.invalidation", "off"],
                   "redis-secure.log")
        wait_port(sport, "redis-server on the SCRAM + TLS URI")
        shapes = [("plain one-host URI, inline loads (default)", self.rport, self.uri, "yes"),
                  ("plain one-host URI, inline loads off (the driver)", self.rport, self.uri, "no"),
                  ("SCRAM + TLS + replica set (the driver)", sport, secure, None)]
        n, runs = MISS_READS, {name: [] for name, *_ in shapes}
        for i in range(self.a.rounds):
            for name, port, uri, inline in shapes if i % 2 == 0 else reversed(shapes):
                if inline:
                    self.r.config_set("readthrough.inline-loads", inline)
                rt, direct, ping = self.loadgen("pair", port, uri, start=self.ids.take(2 * n), count=2 * n)
                runs[name].append((rt, direct, ping))
        self.r.config_set("readthrough.inline-loads", "yes")
        res = []
        for name, *_ in shapes:
            xs = runs[name]
            row = {"shape": name}
            for k in ("p50_us", "p99_us"):
                row[f"rt_{k}"] = med([rt[k] for rt, _, _ in xs])
                row[f"find_{k}"] = med([d[k] for _, d, _ in xs])
                row[f"{k}_ratio"] = med([rt[k] / d[k] for rt, d, _ in xs])
            row["ping_p50_us"] = med([p["p50_us"] for _, _, p in xs])
            row["cost_pings"] = med([(rt["p50_us"] - d["p50_us"]) / p["p50_us"] for rt, d, p in xs])
            res.append(row)
            print(f"3b. {name}: RT.GET p50 {row['rt_p50_us']} us, find_one {row['find_p50_us']} us, PING "
                  f"{row['ping_p50_us']} us: module's own cost {row['cost_pings']:.2f} PING; ratios p50 "
                  f"{row['p50_us_ratio']:.3f}, p99 {row['p99_us_ratio']:.3f}")
        aside = []
        for c in (1, 16, 64):
            aside.append(self.versus_aside(c, sport, secure))
            print(f"3b. SCRAM + TLS, cache-aside at {c:>2} clients: rps ratio {aside[-1]['rps_ratio']:.2f}x, "
                  f"p50 ratio {aside[-1]['p50_ratio']:.2f}")
        self.results["shapes"] = {"rows": res, "aside": aside}

    def versus_aside(self, c, rport=None, uri=None):
        """RT.GET against application cache-aside at `c` clients (cold misses, alternating which
        runs first in each round): medians of each side and of the per-round ratios."""
        n = 500 if c == 1 else 2000
        rt, aside = [], []
        for i in range(self.a.rounds):
            runs = [("rtget", rt), ("aside", aside)]
            for mode, out in runs if i % 2 == 0 else reversed(runs):
                out.append(self.loadgen(mode, rport, uri, start=self.ids.take(n), count=n, concurrency=c))
        row = {"c": c}
        for name, xs in (("rt", rt), ("aside", aside)):
            for k in ("rps", "p50_us", "p99_us"):
                row[f"{name}_{k}"] = med([x[k] for x in xs])
        row["rps_ratio"] = med([x["rps"] / y["rps"] for x, y in zip(rt, aside)])
        row["p50_ratio"] = med([x["p50_us"] / y["p50_us"] for x, y in zip(rt, aside)])
        return row

    # 4. Cache-aside vs the module, cold misses.
    def cache_aside(self):
        rows = []
        for c in (1, 16, 64):
            row = self.versus_aside(c)
            rows.append(row)
            print(f"4. cache-aside, {c:>2} clients: RT.GET {row['rt_rps']:,.0f} rps p50 {row['rt_p50_us']} us; "
                  f"cache-aside {row['aside_rps']:,.0f} rps p50 {row['aside_p50_us']} us; "
                  f"ratios rps {row['rps_ratio']:.2f}x, p50 {row['p50_ratio']:.2f}")
        self.results["aside"] = rows

    # 5. Single-flight.
    def single_flight(self):
        key = f"todo:{self.ids.take(1)}"
        q0 = self.queries()
        subprocess.run(["redis-benchmark", "-p", str(self.rport), "-c", "1000", "-n", "1000", "-q", "RT.GET", key],
                       capture_output=True, check=True)
        q = self.queries() - q0
        print(f"5. single-flight: 1000 concurrent RT.GET of one cold key -> {q} MongoDB query(ies)")
        self.results["single_flight"] = (key, q)

    # 6. Batch.
    def batch(self):
        mget_t, seq_t, in_t, one_t = [], [], [], []
        todos = self.mongo.test.todos
        for _ in range(self.a.rounds):
            keys = [f"todo:{i}" for i in range(self.ids.take(100), self.ids.next)]
            t = time.perf_counter()
            got = self.r.execute_command("RT.MGET", *keys)
            mget_t.append(time.perf_counter() - t)
            assert all(got), "RT.MGET missed a document"
            keys = [f"todo:{i}" for i in range(self.ids.take(100), self.ids.next)]
            t = time.perf_counter()
            for k in keys:
                assert self.r.execute_command("RT.GET", k)
            seq_t.append(time.perf_counter() - t)
            # The server's own limit: the same filters straight from pymongo.
            ids = [str(i) for i in range(self.ids.take(100), self.ids.next)]
            t = time.perf_counter()
            assert len(list(todos.find({"id": {"$in": ids + [int(i) for i in ids]}}))) == 100
            in_t.append(time.perf_counter() - t)
            ids = [str(i) for i in range(self.ids.take(100), self.ids.next)]
            t = time.perf_counter()
            for i in ids:
                todos.find_one({"id": {"$in": [i, int(i)]}})
            one_t.append(time.perf_counter() - t)
        res = (med(mget_t) * 1000, med(seq_t) * 1000, med(one_t) / med(in_t))
        print(f"6. batch: RT.MGET 100 cold {res[0]:.1f} ms, 100 sequential RT.GET {res[1]:.1f} ms, "
              f"{res[1] / res[0]:.1f}x (server's own $in speed-up {res[2]:.1f}x)")
        self.results["batch"] = res

    # 7. PING while 10,000 loads wait on a stalled MongoDB.
    def stalled_ping(self):
        n = 10_000
        idle = [self.loadgen("ping", count=20_000) for _ in range(3)]
        if not self.mongo_proc:
            print("7. skipped: MongoDB is external (MONGO_URI), the bench cannot stall it")
            self.results["stall"] = None
            return
        start = self.ids.take(n)
        os.kill(self.mongo_proc.pid, signal.SIGSTOP)
        try:
            flood = subprocess.Popen(
                [LOADGEN, "flood", "--redis", f"redis://127.0.0.1:{self.rport}/", "--prefix", "todo:",
                 "--start", str(start), "--count", str(n)],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            end = time.time() + 120
            while int(self.r.info("clients")["blocked_clients"]) < n:
                if time.time() > end or flood.poll() is not None:
                    sys.exit(f"7. only {self.r.info('clients')['blocked_clients']} clients blocked")
                time.sleep(0.2)
            inflight = int(self.r.info("readthrough")["readthrough_inflight"])
            stalled = [self.loadgen("ping", count=20_000) for _ in range(3)]
        finally:
            os.kill(self.mongo_proc.pid, signal.SIGCONT)
        out = json.loads(flood.communicate(timeout=180)[0].splitlines()[-1])
        res = {"idle_p99": med([x["p99_us"] for x in idle]), "idle_p50": med([x["p50_us"] for x in idle]),
               "stalled_p99": med([x["p99_us"] for x in stalled]), "stalled_p50": med([x["p50_us"] for x in stalled]),
               "stalled_max": max(x["max_us"] for x in stalled), "inflight": inflight, "blocked": n,
               "flood_errors": out["errors"], "flood_secs": out["secs"]}
        print(f"7. PING p99 idle {res['idle_p99']} us, with {n} loads on a stalled MongoDB {res['stalled_p99']} us "
              f"({res['stalled_p99'] / res['idle_p99']:.2f}x); all {n} answered after resume, {out['errors']} errors")
        self.results["stall"] = res

    # 8. Memory per cached document, on a fresh server of its own so nothing else frees or
    # allocates meanwhile.
    def memory(self):
        n = 10_000
        port = free_port()
        self.spawn(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", self.tmp,
                    "--loadmodule", MODULE, "--readthrough.inline-loads", "yes", "--readthrough.mongo-uri", self.uri,
                    "--readthrough.mappings", "todo:=test.todos:id"], "redis-memory.log")
        wait_port(port, "redis-server for the memory test")
        r = redis.Redis(port=port, decode_responses=True)
        r.execute_command("RT.GET", "todo:1")  # the module's MongoDB client and pool exist now
        ttl_ms = int(r.config_get("readthrough.ttl")["readthrough.ttl"]) * 1000

        def used():
            time.sleep(0.5)  # let the load tasks' buffers be freed
            return r.info("memory")["used_memory"]

        start = self.ids.take(n)
        keys = [f"todo:{i}" for i in range(start, start + n)]
        m0 = used()
        values = []
        for i in range(0, n, 500):
            values += r.execute_command("RT.MGET", *keys[i:i + 500])
        assert all(values)
        m1 = used()
        pipe = r.pipeline(transaction=False)
        for k, v in zip(keys, values):
            pipe.set("todx" + k[4:], v, px=ttl_ms)  # same key length, same TTL
        pipe.execute()
        m2 = used()
        pipe = r.pipeline(transaction=False)
        for k, v in zip(keys, values):
            pipe.set("tody" + k[4:], v)  # no TTL
        pipe.execute()
        m3 = used()
        res = {"module": (m1 - m0) / n, "set_px": (m2 - m1) / n, "set": (m3 - m2) / n,
               "json": statistics.mean(len(v) for v in values)}
        print(f"8. memory per document: module {res['module']:.0f} B, SET PX {res['set_px']:.0f} B "
              f"({res['module'] / res['set_px']:.3f}x), SET {res['set']:.0f} B; JSON {res['json']:.0f} B")
        self.results["memory"] = res

    # 9. The demo workload from a cold cache.
    def demo(self):
        self.r.flushall()
        rows = self.loadgen("demo", seconds=self.a.demo_seconds, concurrency=32, ids=DOCS)
        print(f"9. demo: {rows[0]['rps']:,} rps at hit ratio {rows[0]['hit_ratio']:.2f} in the first second, "
              f"{rows[-1]['rps']:,} rps at {rows[-1]['hit_ratio']:.2f} in the last")
        self.results["demo"] = rows

    # 10. Change-to-visible latency of change-stream invalidation.
    def change_visible(self):
        n = self.a.updates
        todos = self.mongo.test.todos
        start = self.ids.take(n)
        lat = []
        for i in range(start, start + n):
            key = f"todo:{i}"
            assert self.r.execute_command("RT.GET", key)
            t = time.perf_counter()
            todos.update_one({"id": str(i)}, {"$set": {"name": f"changed {i}"}})
            while f"changed {i}" not in self.r.execute_command("RT.GET", key):
                if time.perf_counter() - t > 10:
                    sys.exit(f"10. the update of {key} was not visible after 10 s")
            lat.append((time.perf_counter() - t) * 1e6)
        lat.sort()
        res = {"n": n, "p50_ms": lat[n // 2] / 1000, "p99_ms": p99(lat) / 1000,
               "max_ms": lat[-1] / 1000}
        print(f"10. change to visible (update in MongoDB -> new value from RT.GET), {n} updates: "
              f"p50 {res['p50_ms']:.1f} ms, p99 {res['p99_ms']:.1f} ms")
        self.results["cdc"] = res

    # 11. Warm-up rate and PING latency while it runs.
    def warm(self):
        import threading
        self.r.flushall()
        pinger = redis.Redis(port=self.rport)

        def pings(stop, out):
            while not stop.is_set():
                t = time.perf_counter()
                pinger.ping()
                out.append((time.perf_counter() - t) * 1e6)

        def measure(seconds=None, until=None):
            stop, out = threading.Event(), []
            th = threading.Thread(target=pings, args=(stop, out))
            th.start()
            if seconds:
                time.sleep(seconds)
            else:
                until()
            stop.set()
            th.join()
            out.sort()
            return out

        idle = measure(seconds=3)
        t = time.perf_counter()
        assert self.r.execute_command("RT.WARM", "todo:") == "OK"

        def state():  # redis-py parses `warm_0:prefix=todo:,running=1,...` into a dict
            return self.r.info("readthrough").get("readthrough_warm_0") or {"running": 1}

        def wait_done():
            while int(state()["running"]):
                time.sleep(0.05)
        during = measure(until=wait_done)
        secs = time.perf_counter() - t
        loaded = int(state()["loaded"])
        res = {"loaded": loaded, "secs": secs, "rate": loaded / secs, "idle_p99": p99(idle), "warm_p99": p99(during),
               "warm_max": during[-1], "pings": len(during), "dbsize": self.r.dbsize()}
        print(f"11. warm-up: {loaded:,} documents in {secs:.1f} s ({res['rate']:,.0f}/s); PING p99 idle "
              f"{res['idle_p99']:.0f} us, during {res['warm_p99']:.0f} us (redis-py, {len(during):,} PINGs)")
        self.results["warm"] = res

    # 12. Formats: JSON (RedisJSON) and hash, against the same commands by hand.
    def formats(self):
        rejson = subprocess.run([os.path.join(ROOT, "scripts/build_rejson.sh")], capture_output=True, text=True)
        if rejson.returncode != 0:
            print(f"12. formats: not run, RedisJSON not available ({rejson.stderr.strip()})")
            self.results["formats"] = None
            return
        lib = rejson.stdout.strip()
        port = free_port()
        args = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", self.tmp]
        if lib:
            args += ["--loadmodule", lib]
        args += ["--loadmodule", MODULE, "--readthrough.inline-loads", "yes", "--readthrough.mongo-uri", self.uri, "--readthrough.timeout", "60000",
                 "--readthrough.mappings",
                 "todo:=test.todos:id j:=test.todos:id;format=json h:=test.todos:id;format=hash"]
        formats_proc = self.spawn(args, "redis-formats.log")
        wait_port(port, "redis-server with RedisJSON")
        r = redis.Redis(port=port, decode_responses=True)
        r.execute_command("RT.GET", "todo:1")  # the module's MongoDB client and pool exist now
        ttl_ms = int(r.config_get("readthrough.ttl")["readthrough.ttl"]) * 1000
        a, res = self.a, {}
        # Transparent hit: the mapped cached key vs the same document stored by hand, unmapped.
        doc = r.execute_command("JSON.GET", "j:1")
        r.execute_command("JSON.SET", "x:1", "$", doc)
        fields = r.hgetall("h:1")
        r.hset("y:1", mapping=fields)
        for name, cmd, mapped, plain in (("json", "JSON.GET", "j:1", "x:1"), ("hash", "HGETALL", "h:1", "y:1")):
            m, p = [], []
            with pinned(formats_proc):
                for _ in range(a.rounds):
                    m.append(redis_benchmark(port, 50, a.requests, 1, cmd, mapped))
                    p.append(redis_benchmark(port, 50, a.requests, 1, cmd, plain))
            res[name] = {"hit": med([x / y for x, y in zip(m, p)]), "hit_rps": (med(m), med(p))}
        # Cold miss p50, one client, alternating: RT.GET (string) vs the format's transparent read.
        n = 200
        lat = {"string": [], "json": [], "hash": []}
        reads = {"string": ("RT.GET", "todo:"), "json": ("JSON.GET", "j:"), "hash": ("HGETALL", "h:")}
        for _ in range(a.rounds):
            for name, (cmd, prefix) in reads.items():
                start = self.ids.take(n)
                for i in range(start, start + n):
                    t = time.perf_counter()
                    v = r.execute_command(cmd, f"{prefix}{i}")
                    lat[name].append((time.perf_counter() - t) * 1e6)
                    assert v, (cmd, prefix, i)
        p50 = {k: med(v) for k, v in lat.items()}
        for name in ("json", "hash"):
            res[name]["miss_p50_us"] = p50[name]
            res[name]["miss_ratio"] = p50[name] / p50["string"]
        res["string_miss_p50_us"] = p50["string"]

        # Memory per document: loaded by the module vs the same value stored by hand with a TTL.
        def used():
            time.sleep(0.5)
            return r.info("memory")["used_memory"]

        docs = 5000
        for name, prefix, by_hand in (("json", "j", "x"), ("hash", "h", "y")):
            start = self.ids.take(docs)
            keys = [f"{prefix}:{i}" for i in range(start, start + docs)]
            m0 = used()
            for i in range(0, docs, 500):
                r.execute_command("RT.MGET", *keys[i:i + 500])
            m1 = used()
            pipe = r.pipeline(transaction=False)
            for k in keys:
                hk = by_hand + k[1:]
                if name == "json":
                    pipe.execute_command("JSON.SET", hk, "$", r.execute_command("JSON.GET", k))
                else:
                    pipe.hset(hk, mapping=r.hgetall(k))
                pipe.pexpire(hk, ttl_ms)
            pipe.execute()
            m2 = used()
            res[name]["mem"] = ((m1 - m0) / docs, (m2 - m1) / docs)
            res[name]["mem_ratio"] = (m1 - m0) / (m2 - m1)

            # MEMORY USAGE of each key (value, key and its entry; RedisJSON reports its own
            # document size): exact, where used_memory deltas also move with RedisJSON's and the
            # allocator's own state.
            def usage(ks):
                p = r.pipeline(transaction=False)
                for k in ks:
                    p.execute_command("MEMORY", "USAGE", k, "SAMPLES", "0")
                return sum(p.execute()) / len(ks)
            res[name]["usage"] = (usage(keys), usage([by_hand + k[1:] for k in keys]))
            res[name]["usage_ratio"] = res[name]["usage"][0] / res[name]["usage"][1]
        for name in ("json", "hash"):
            x = res[name]
            print(f"12. format {name}: transparent hit / unmapped {x['hit']:.3f}; cold miss p50 {x['miss_p50_us']:.0f} us "
                  f"/ RT.GET string {res['string_miss_p50_us']:.0f} us = {x['miss_ratio']:.3f}; memory "
                  f"{x['mem'][0]:.0f} B / by hand {x['mem'][1]:.0f} B = {x['mem_ratio']:.3f} (used_memory); "
                  f"MEMORY USAGE {x['usage'][0]:.0f} B / {x['usage'][1]:.0f} B = {x['usage_ratio']:.3f}")
        self.results["formats"] = res

    # 13. The module's own cost of a miss, against a MongoDB stand-in that answers at once.
    def overhead(self):
        sport, rport = free_port(), free_port()
        uri = f"mongodb://127.0.0.1:{sport}/?directConnection=true"
        standin = self.spawn([STANDIN, "--port", str(sport)], "standin.log")
        wait_port(sport, "the MongoDB stand-in")
        # No change streams: the stand-in has none.
        server = self.spawn(["redis-server", "--port", str(rport), "--save", "", "--appendonly", "no",
                             "--dir", self.tmp, "--loadmodule", MODULE, "--readthrough.inline-loads", "yes", "--readthrough.mongo-uri", uri,
                             "--readthrough.mappings", "todo:=test.todos:id", "--readthrough.invalidation", "off",
                             "--readthrough.timeout", "60000"], "redis-standin.log")
        wait_port(rport, "redis-server on the stand-in")
        n, start = 2000, 1
        runs = {"direct": [], "rtget": [], "aside": [], "ping": []}

        for i in range(self.a.rounds):
            order = ["direct", "rtget", "aside", "ping"]
            for mode in order if i % 2 == 0 else reversed(order):
                if mode == "ping":
                    runs[mode].append(self.loadgen("ping", rport, uri, count=n))
                else:  # the stand-in makes up any id: every round reads new ones, all cold
                    runs[mode].append(self.loadgen(mode, rport, uri, start=start, count=n, concurrency=1))
                    start += n
        for p in (server, standin):
            p.terminate()
            p.wait(10)
        p50 = {k: med([x["p50_us"] for x in v]) for k, v in runs.items()}
        overhead = med([r["p50_us"] - d["p50_us"] for r, d in zip(runs["rtget"], runs["direct"])])
        res = {"p50": p50, "overhead_us": overhead, "ping_p50_us": p50["ping"],
               "overhead_ratio": overhead / p50["ping"],
               "p99": {k: med([x["p99_us"] for x in v]) for k, v in runs.items()},
               "rps_ratio": med([r["rps"] / a["rps"] for r, a in zip(runs["rtget"], runs["aside"])]),
               "p50_ratio": med([r["p50_us"] / a["p50_us"] for r, a in zip(runs["rtget"], runs["aside"])])}
        print(f"13. stand-in: find_one p50 {p50['direct']} us, RT.GET miss p50 {p50['rtget']} us, "
              f"cache-aside p50 {p50['aside']} us, PING p50 {p50['ping']} us; module's cost {overhead} us "
              f"= {res['overhead_ratio']:.2f} PING; RT.GET / cache-aside rps {res['rps_ratio']:.2f}x")
        self.results["overhead"] = res

    # `overhead` (13) runs first: the later steps leave servers behind whose background work (change
    # streams on SecantusDB, five redis-servers) doubled the module's measured cost in one run.
    STEPS = ("overhead", "hit_path", "transparent", "miss_path", "uri_shapes", "cache_aside", "single_flight", "batch",
             "stalled_ping", "memory", "demo", "change_visible", "warm", "formats")

    def run(self, steps=STEPS):
        self.setup()
        for step in steps:
            getattr(self, step)()

    def close(self):
        if self.mongo_proc:
            try:
                os.kill(self.mongo_proc.pid, signal.SIGCONT)
            except OSError:
                pass
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def verdict(ok):
    return "met" if ok else "**missed**"


def write_report(b, path, chart):
    R, a = b.results, b.a
    redis_v = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2][2:]
    L = ["# redis-readthrough benchmarks", "",
         f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
         f"- machine: {platform.machine()}, {os.cpu_count()} cores (shared), {platform.platform()}",
         f"- Redis {redis_v}; MongoDB side: {b.mongo_name}, reports version {b.mongo_version}",
         f"- {DOCS:,} demo todos `{{id, name, description}}` in test.todos, index on `id`; "
         f"mapping `todo:=test.todos:id`",
         f"- tools: `redis-benchmark` (-c 50) and `examples/loadgen.rs` (tokio, `redis` crate, MongoDB Rust driver); "
         f"medians over {a.rounds} alternating rounds unless said otherwise (ratios: the median of "
         f"per-round ratios of back-to-back runs)", "",
         f"![charts]({os.path.basename(chart)})", "",
         "## Summary", "", "| # | measure | goal | measured | |", "|---|---|---|---|---|"]
    hit = R["hit"]
    tg, pl, ba, mapped, module = R["transparent"]
    miss = R["miss"]
    m50, m99 = miss["p50_us"][2], miss["p99_us"][2]
    wins = all(r["rps_ratio"] > 1 and r["p50_ratio"] < 1 for r in R["aside"])
    mget, seq, server = R["batch"]
    st, mem = R["stall"], R["memory"]
    L += [f"| 1 | RT.GET hit / GET, no pipelining | >= 0.95 | {hit[0][3]:.3f} | {verdict(hit[0][3] >= 0.95)} |",
          f"| 1 | RT.GET hit / GET, pipeline 16 | >= 0.95 | {hit[1][3]:.3f} | {verdict(hit[1][3] >= 0.95)} |",
          f"| 1 | same, by the server's CPU time per request (GET's / RT.GET's), no pipelining / pipeline 16 | >= 0.95 | "
          f"{hit[0][4]:.3f} / {hit[1][4]:.3f} | {verdict(min(hit[0][4], hit[1][4]) >= 0.95)} |",
          f"| 2 | GET mapped hot key / GET unmapped key | >= 0.95 | {mapped:.3f} | {verdict(mapped >= 0.95)} |",
          f"| 2 | GET unmapped key, module / no module | >= 0.98 | {module:.3f} | {verdict(module >= 0.98)} |",
          f"| 3 | RT.GET cold miss / direct find_one, p50 | <= 1.15 | {m50:.3f} | {verdict(m50 <= 1.15)} |",
          f"| 3 | RT.GET cold miss / direct find_one, p99 | <= 1.15 | {m99:.3f} | {verdict(m99 <= 1.15)} |",
          f"| 4 | RT.GET vs app cache-aside at 1/16/64 clients: rps ratio (p50 latency ratio) | module wins at every level | "
          + ", ".join(f"{r['c']}: {r['rps_ratio']:.2f}x ({r['p50_ratio']:.2f})"
                      for r in R["aside"]) + f" | {verdict(wins)} |",
          f"| 5 | MongoDB queries for 1000 concurrent misses on one key | exactly 1 | {R['single_flight'][1]} | "
          f"{verdict(R['single_flight'][1] == 1)} |",
          f"| 6 | 100 sequential RT.GET / one RT.MGET of 100 | >= 10x | {seq / mget:.1f}x | {verdict(seq / mget >= 10)} |"]
    S = R.get("shapes")
    if S:
        for row in S["rows"]:
            L.append(f"| 3b | {row['shape']}: module's own cost of a miss (RT.GET p50 - find_one p50) in PINGs; "
                     f"p99 ratio | <= 1; <= 1.15 | {row['cost_pings']:.2f}; {row['p99_us_ratio']:.3f} | "
                     f"{verdict(row['cost_pings'] <= 1 and row['p99_us_ratio'] <= 1.15)} |")
        wins_s = all(r["rps_ratio"] > 1 and r["p50_ratio"] < 1 for r in S["aside"])
        L.append("| 3b | SCRAM + TLS + replica set: RT.GET vs cache-aside at 1/16/64 clients: rps ratio (p50 ratio) | "
                 "module wins at every level | " + ", ".join(f"{r['c']}: {r['rps_ratio']:.2f}x ({r['p50_ratio']:.2f})"
                 for r in S["aside"]) + f" | {verdict(wins_s)} |")
    O = R.get("overhead")
    if O:
        L += [f"| 13 | stand-in MongoDB: module's cost of a miss (RT.GET p50 - find_one p50) / PING p50 | <= 1 | "
              f"{O['overhead_us']} / {O['ping_p50_us']} us = {O['overhead_ratio']:.2f} | {verdict(O['overhead_ratio'] <= 1)} |",
              f"| 13 | stand-in MongoDB: RT.GET vs cache-aside, 1 client: rps ratio (p50 latency ratio) | module wins | "
              f"{O['rps_ratio']:.2f}x ({O['p50_ratio']:.2f}) | {verdict(O['rps_ratio'] > 1 and O['p50_ratio'] < 1)} |"]
    if st:
        ratio = st["stalled_p99"] / st["idle_p99"]
        L.append(f"| 7 | PING p99 with {st['blocked']:,} loads on a stalled MongoDB / idle | <= 2x | {ratio:.2f}x | "
                 f"{verdict(ratio <= 2)} |")
    else:
        L.append("| 7 | PING p99 under a stalled MongoDB | <= 2x | not run (external MongoDB) | |")
    mr = mem["module"] / mem["set_px"]
    L += [f"| 8 | used_memory per document / plain SET of the same JSON with the same TTL | <= 1.05x | {mr:.3f}x | "
          f"{verdict(mr <= 1.05)} |",
          f"| 9 | demo workload, cold start | hit ratio rises to warm | {R['demo'][0]['hit_ratio']:.2f} -> "
          f"{R['demo'][-1]['hit_ratio']:.2f} in {len(R['demo'])} s | |",
          f"| 10 | change to visible (MongoDB update -> RT.GET), p50 / p99 | within 2 s | "
          f"{R['cdc']['p50_ms']:.1f} / {R['cdc']['p99_ms']:.1f} ms | {verdict(R['cdc']['p99_ms'] < 2000)} |",
          f"| 11 | warm-up rate; PING p99 during it / idle | PING answers throughout | {R['warm']['rate']:,.0f} docs/s; "
          f"{R['warm']['warm_p99'] / R['warm']['idle_p99']:.2f}x | |"]
    F = R.get("formats")
    if F:
        for name, cmd in (("json", "JSON.GET"), ("hash", "HGETALL")):
            x = F[name]
            L += [f"| 12 | {name}: transparent {cmd} of a mapped cached key / of an unmapped key | >= 0.95 | "
                  f"{x['hit']:.3f} | {verdict(x['hit'] >= 0.95)} |",
                  f"| 12 | {name}: memory per document (MEMORY USAGE) / stored by hand with a TTL | <= 1.05x | "
                  f"{x['usage_ratio']:.3f}x | {verdict(x['usage_ratio'] <= 1.05)} |"]
    else:
        L.append("| 12 | formats (json, hash) | | not run: RedisJSON not available | |")
    L.append("")

    L += ["## 1. Hit path: RT.GET hit vs Redis's own GET (same server, same value; the GET reads an unmapped key, which the module leaves alone)", "",
          "The last column compares the server's CPU time for the same number of requests (GET's / RT.GET's, "
          "all rounds): the throughput ratio of a server with a core to itself, which the shared host's noise "
          "moves far less than the rps.", "",
          "| pipeline | GET rps | RT.GET hit rps | ratio | by server CPU per request |", "|---|---|---|---|---|"]
    L += [f"| {p} | {g:,.0f} | {r:,.0f} | {ratio:.3f} | {cpu:.3f} |" for p, g, r, ratio, cpu in hit]
    L += ["", "## 2. Transparent path (plain GET, no pipelining)", "", "| | rps |", "|---|---|",
          f"| GET of a mapped cached key (rewritten to the module by the command filter) | {tg:,.0f} |",
          f"| GET of an unmapped key, module loaded | {pl:,.0f} |",
          f"| GET of the same key, redis-server without the module | {ba:,.0f} |", "",
          f"## 3. Miss path vs the limit (one client, cold ids, {MISS_READS:,} reads a side a round)", "",
          "RT.GET and find_one take turns read by read on one client (`loadgen pair`), so a slow moment "
          "of MongoDB or the machine hits both alike. At one client every miss is an inline load (README, "
          "Design); the last two rows turn them off, in a second interleaved run of each round, against that "
          "run's own find_one reads.", "",
          "| | p50 µs | p99 µs |", "|---|---|---|",
          f"| RT.GET cold miss (client → Redis → module → MongoDB → store → reply) | {miss['p50_us'][0]} | {miss['p99_us'][0]} |",
          f"| direct find_one from the same Rust client, same filter, in turns with RT.GET | {miss['p50_us'][1]} | {miss['p99_us'][1]} |",
          f"| ratio (median of per-round ratios) | {m50:.3f} | {m99:.3f} |",
          f"| RT.GET cold miss with `readthrough.inline-loads no` (every query on the loader thread), same rounds "
          f"| {miss['loader']['p50_us'][0]} | {miss['loader']['p99_us'][0]} |",
          f"| its ratio to find_one | {miss['loader']['p50_us'][1]:.3f} | {miss['loader']['p99_us'][1]:.3f} |", "",
          ]
    if S:
        L += ["## 3b. The miss path on each URI shape (one client, cold ids, interleaved with find_one and a PING)", "",
              "The module and the client use the same URI. The production shape is SecantusDB with `--auth` "
              "(SCRAM-SHA-256), TLS and its one-node replica set (`scripts/secure_mongo.py`): what Atlas and "
              "self-hosted replica sets look like to a client. Only the driver serves it.", "",
              "| URI shape | RT.GET p50 µs | find_one p50 µs | PING p50 µs | module's own cost (PINGs) | p50 ratio | p99 ratio |",
              "|---|---|---|---|---|---|---|"]
        L += [f"| {r['shape']} | {r['rt_p50_us']} | {r['find_p50_us']} | {r['ping_p50_us']} | {r['cost_pings']:.2f} | "
              f"{r['p50_us_ratio']:.3f} | {r['p99_us_ratio']:.3f} |" for r in S["rows"]]
        L.append("")
    L += ["## 4. Against application cache-aside (cold misses; 500 reads a round at 1 client, 2000 at 16 and 64)", "",
          "Cache-aside is what apps do today: `GET`; on nil `find_one`, encode JSON, `SET ... EX`, from the client.", "",
          "| clients | RT.GET rps | cache-aside rps | rps ratio | RT.GET p50 / p99 µs | cache-aside p50 / p99 µs | p50 ratio |",
          "|---|---|---|---|---|---|---|"]
    L += [f"| {r['c']} | {r['rt_rps']:,.0f} | {r['aside_rps']:,.0f} | {r['rps_ratio']:.2f}x | {r['rt_p50_us']} / {r['rt_p99_us']} | "
          f"{r['aside_p50_us']} / {r['aside_p99_us']} | {r['p50_ratio']:.2f} |" for r in R["aside"]]
    L += ["", "## 5. Single-flight", "",
          f"`redis-benchmark -c 1000 -n 1000 RT.GET {R['single_flight'][0]}` on a cold key: **{R['single_flight'][1]}** "
          "MongoDB query (serverStatus `opcounters.query` before and after).", "",
          "## 6. Batch", "", "| | median |", "|---|---|",
          f"| RT.MGET of 100 cold keys | {mget:.1f} ms |", f"| 100 sequential RT.GET of cold keys | {seq:.1f} ms |",
          f"| speed-up | {seq / mget:.1f}x |",
          f"| the MongoDB server's own speed-up for the same queries from pymongo (100 find_one vs one `$in`) | {server:.1f}x |",
          "", "The module cannot batch faster than the server answers one `$in`: the last row is that limit.", ""]
    if st:
        L += ["## 7. The main thread never waits on MongoDB", "",
              f"SecantusDB is SIGSTOPped; {st['blocked']:,} clients (`loadgen flood`) each send `RT.GET` of their own cold "
              f"key and block ({st['inflight']:,} loads in flight per INFO); meanwhile one client sends 3 × 20,000 `PING`s "
              "(`loadgen ping`).", "", "| | PING p50 µs | PING p99 µs |", "|---|---|---|",
              f"| idle | {st['idle_p50']} | {st['idle_p99']} |",
              f"| {st['blocked']:,} loads waiting on a stalled MongoDB | {st['stalled_p50']} | {st['stalled_p99']} |",
              "", f"Worst single PING while stalled: {st['stalled_max']} µs. After SIGCONT all {st['blocked']:,} "
              f"clients were answered ({st['flood_errors']} errors).", ""]
    L += ["## 8. Memory per cached document (10,000 documents, `used_memory` deltas)", "",
          "| stored by | bytes per document |", "|---|---|",
          f"| the module (`RT.MGET`, value + TTL) | {mem['module']:.0f} |",
          f"| plain `SET key json PX ttl`, same key length | {mem['set_px']:.0f} |",
          f"| plain `SET key json`, no TTL | {mem['set']:.0f} |",
          f"| (the JSON itself) | {mem['json']:.0f} |", "",
          f"## 9. The demo workload: 32 clients, `RT.GET todo:<uniform random id in 1..{DOCS}>`, cold start", "",
          "| second | rps | hit ratio |", "|---|---|---|"]
    demo = R["demo"]
    for i, row in enumerate(demo):
        if i < 5 or (i + 1) % 10 == 0 or i == len(demo) - 1:
            L.append(f"| {i + 1} | {row['rps']:,} | {row['hit_ratio']:.3f} |")
    L += ["", "With uniform ids over 200,000 documents the hit ratio after n reads is about 1 − e^(−n/200,000): "
          "throughput climbs as the hit ratio does, because hits never leave Redis. Misses of different keys "
          "share `$in` queries while MongoDB is busy, which is why the cold phase runs at several thousand "
          "misses per second.", "",
          f"## 10. Change-stream invalidation: change to visible ({R['cdc']['n']:,} updates, mode `delete`)", "",
          "Each round: `RT.GET` caches the key, pymongo updates the document, then `RT.GET` is polled until it "
          "returns the new value (the watcher deleted the key, so the next read loaded the new document).", "",
          "| p50 | p99 | max |", "|---|---|---|",
          f"| {R['cdc']['p50_ms']:.1f} ms | {R['cdc']['p99_ms']:.1f} ms | {R['cdc']['max_ms']:.1f} ms |", "",
          "## 11. Warm-up (`RT.WARM todo:` of the 200,000 demo documents into an empty cache)", "",
          "| documents | seconds | documents/s | PING p99 idle | PING p99 during | slowest PING during |",
          "|---|---|---|---|---|---|",
          f"| {R['warm']['loaded']:,} | {R['warm']['secs']:.1f} | {R['warm']['rate']:,.0f} | {R['warm']['idle_p99']:.0f} µs | "
          f"{R['warm']['warm_p99']:.0f} µs | {R['warm']['warm_max']:.0f} µs |", "",
          "PINGs from one redis-py client in a loop (its own overhead is in both columns).", ""]
    L += ["## 12. Formats: RedisJSON documents and hashes", ""]
    if F:
        L += ["Mappings `j:=test.todos:id;format=json` and `h:=test.todos:id;format=hash` beside `todo:` on one "
              "redis-server with RedisJSON 2.4.19 loaded before the module. Transparent hit: `redis-benchmark -c 50` "
              "of the command on a mapped cached key vs on an unmapped key holding the same document (stored by "
              "hand). Cold miss: one redis-py client, 200 cold ids a round per format, alternating. Memory: 5,000 "
              "documents loaded by `RT.MGET` vs the same documents stored by hand with `JSON.SET`/`HSET` + `PEXPIRE`.",
              "", "| format | transparent hit / unmapped (goal >= 0.95) | cold miss p50 / RT.GET string | "
              "memory per document, module / by hand (goal <= 1.05): `MEMORY USAGE` | the same from `used_memory` "
              "deltas |", "|---|---|---|---|---|"]
        for name, cmd in (("json", "JSON.GET"), ("hash", "HGETALL")):
            x = F[name]
            L.append(f"| {name} (`{cmd}`) | {x['hit']:.3f} ({x['hit_rps'][0]:,.0f} / {x['hit_rps'][1]:,.0f} rps) "
                     f"{verdict(x['hit'] >= 0.95)} | {x['miss_ratio']:.3f} ({x['miss_p50_us']:.0f} / "
                     f"{F['string_miss_p50_us']:.0f} µs) | {x['usage_ratio']:.3f} ({x['usage'][0]:.0f} / "
                     f"{x['usage'][1]:.0f} B) {verdict(x['usage_ratio'] <= 1.05)} | {x['mem_ratio']:.3f} "
                     f"({x['mem'][0]:.0f} / {x['mem'][1]:.0f} B) |")
        L += ["", "`MEMORY USAGE` counts each key exactly and is the measure of the goal. The `used_memory` deltas "
              "favour whatever is stored second: the by-hand copies are made after the module's documents, so for "
              "JSON they reuse the strings RedisJSON 2.4 interns (its values share one copy of equal strings: the "
              "same by-hand step measured 370 and 690 B per document depending on what was stored before it), and "
              "for both formats the module's step pays the keyspace tables' growth.", ""]
    else:
        L += ["Not run: RedisJSON not available (`make rejson`).", ""]
    if O:
        q, q99 = O["p50"], O["p99"]
        L += ["## 13. The module's own cost of a miss (stand-in MongoDB)", "",
              "SecantusDB takes 0.5-1 ms per `find` and its speed drifts by a few hundred µs between runs, which "
              "hides what the module itself adds. Here the MongoDB side is `examples/mongo_standin.rs`, which "
              "answers every `find` at once with a made-up todo; a second redis-server with the module reads "
              f"through to it. One client, {2000:,} cold reads per mode a round, modes alternating. This step runs first, "
              "before the other steps leave servers running.", "",
              "| | p50 µs | p99 µs |", "|---|---|---|",
              f"| direct find_one (Rust driver, same filter as the module) | {q['direct']} | {q99['direct']} |",
              f"| RT.GET cold miss | {q['rtget']} | {q99['rtget']} |",
              f"| cache-aside (GET, find_one, SET from the client) | {q['aside']} | {q99['aside']} |",
              f"| PING (one Redis round trip) | {q['ping']} | {q99['ping']} |", "",
              f"The module's cost of a miss (RT.GET p50 minus find_one p50, median of per-round differences): "
              f"**{O['overhead_us']} µs**, {O['overhead_ratio']:.2f}x a PING round trip. The physical limit of a "
              "miss is one client-Redis round trip plus one Redis-MongoDB round trip, so a ratio of 1 is the limit. "
              f"RT.GET / cache-aside: {O['rps_ratio']:.2f}x the requests per second, {O['p50_ratio']:.2f}x the p50.", ""]
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")


def write_chart(b, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    R = b.results
    fig, (ax1, ax3) = plt.subplots(1, 2, figsize=(13, 4.8))
    demo = R["demo"]
    t = [i + 1 for i in range(len(demo))]
    ax1.plot(t, [r["rps"] for r in demo], color="tab:blue", label="requests/s")
    ax1.set_xlabel("seconds since cold start")
    ax1.set_ylabel("RT.GET requests/s", color="tab:blue")
    ax2 = ax1.twinx()
    ax2.plot(t, [r["hit_ratio"] for r in demo], color="tab:green", label="hit ratio")
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("hit ratio", color="tab:green")
    ax1.set_title("Demo workload: 200k todos, random ids, cold start")
    hit, (tg, pl, ba, mapped, module), miss = R["hit"], R["transparent"], R["miss"]
    bars = [("RT.GET hit/GET", hit[0][3], 0.95, True), ("RT.GET hit/GET P16", hit[1][3], 0.95, True),
            ("mapped GET/GET", mapped, 0.95, True), ("GET w/ module/w/o", module, 0.98, True),
            ("miss p50/find_one", miss["p50_us"][2], 1.15, False),
            ("memory/SET PX", R["memory"]["module"] / R["memory"]["set_px"], 1.05, False)]
    if R["stall"]:
        bars.append(("PING p99 stalled/idle", R["stall"]["stalled_p99"] / R["stall"]["idle_p99"], 2.0, False))
    for i, (name, v, goal, higher) in enumerate(bars):
        ok = v >= goal if higher else v <= goal
        ax3.bar(i, v, color="tab:green" if ok else "tab:red")
        ax3.plot([i - 0.4, i + 0.4], [goal, goal], color="black", linewidth=1)
        ax3.text(i, v, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    ax3.set_xticks(range(len(bars)), [b[0] for b in bars], rotation=30, ha="right", fontsize=8)
    ax3.set_title("Measured ratios (black line: goal; green: met)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--demo-seconds", type=int, default=240)
    ap.add_argument("--updates", type=int, default=1000)
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "bench/results"))
    ap.add_argument("--steps", default="", help="comma-separated steps to run alone (no report)")
    a = ap.parse_args()
    steps = [x for x in a.steps.split(",") if x]
    unknown = [x for x in steps if x not in Bench.STEPS]
    if unknown:
        sys.exit(f"unknown steps {unknown}; steps: {', '.join(Bench.STEPS)}")
    for f in (MODULE, LOADGEN):
        if not os.path.exists(f):
            sys.exit(f"{f} not found: run `make bench` (it builds the module and the load generator)")
    # Stopped with SIGTERM (or Ctrl-C): still stop the servers it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench: terminated"))
    b = Bench(a, tempfile.mkdtemp(prefix="rt-bench-"))
    try:
        b.run(steps or Bench.STEPS)
    finally:
        b.close()
    if steps:
        return
    os.makedirs(a.out_dir, exist_ok=True)
    chart = os.path.join(a.out_dir, "bench.png")
    write_chart(b, chart)
    report = os.path.join(a.out_dir, "report.md")
    write_report(b, report, chart)
    with open(os.path.join(a.out_dir, "results.json"), "w") as f:
        json.dump({"mongo": [b.mongo_name, b.mongo_version], "results": b.results}, f, indent=1)
    print(f"report: {os.path.relpath(report, ROOT)}, chart: {os.path.relpath(chart, ROOT)}")


if __name__ == "__main__":
    main()
