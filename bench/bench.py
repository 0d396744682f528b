#!/usr/bin/env python3
"""Benchmarks, measured side by side in one run on one machine.

Starts its own MongoDB-compatible server (or uses MONGO_URI) and a redis-server with the
module, loads 5,000 documents, then measures:

1. Hit path: redis-benchmark rounds that alternate GET and RT.GET on the same cached key (same
   clients, requests and pipelining); median requests/s of each and their ratio.
2. Single-flight: 1000 clients (redis-benchmark -c 1000 -n 1000) read one cold key at once;
   MongoDB queries counted by serverStatus opcounters.query.
3. Batch: RT.MGET of 100 cold keys vs 100 sequential RT.GET of 100 other cold keys, wall time
   through redis-cli, median over rounds.

Timings on a shared machine are noisy: read the ratios, not the absolute numbers.

Usage: bench/bench.py [--rounds N] [--requests N] [--out FILE]
"""
import argparse
import csv
import io
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULE = os.environ.get("READTHROUGH_MODULE", os.path.join(ROOT, "target/release/libreadthrough.so"))


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


def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=True).stdout.strip()


def bench(port, clients, requests, pipeline, *command):
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-c", str(clients), "-n", str(requests),
         "-P", str(pipeline), "--csv", *command],
        capture_output=True, text=True, check=True,
    ).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    return float(rows[-1]["rps"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/results/report.md"))
    a = ap.parse_args()
    if not os.path.exists(MODULE):
        sys.exit(f"{MODULE} not found: run `cargo build --release` (make bench does)")

    procs = []
    tmp = tempfile.mkdtemp(prefix="rt-bench-")
    try:
        uri = os.environ.get("MONGO_URI")
        if not uri:
            mport = free_port()
            log = open(os.path.join(tmp, "mongo.log"), "w")
            procs.append(subprocess.Popen(
                [os.path.join(ROOT, ".venv/bin/secantusd-py"), "--port", str(mport),
                 "--storage-path", os.path.join(tmp, "mongo"), "--log-level", "WARNING"],
                stdout=log, stderr=log))
            wait_port(mport, "SecantusDB")
            uri = f"mongodb://127.0.0.1:{mport}"
        import pymongo
        mongo = pymongo.MongoClient(uri)
        todos = mongo.bench.todos
        todos.drop()
        todos.insert_many([{"id": str(n), "name": f"Todo {n}", "description": "x" * 100} for n in range(1, 5001)])
        todos.create_index("id")
        queries = lambda: mongo.admin.command("serverStatus")["opcounters"]["query"]
        rport = free_port()
        log = open(os.path.join(tmp, "redis.log"), "w")
        procs.append(subprocess.Popen(
            ["redis-server", "--port", str(rport), "--save", "", "--appendonly", "no", "--dir", tmp,
             "--loadmodule", MODULE, "--readthrough.mongo-uri", uri,
             "--readthrough.mappings", "todo:=bench.todos:id", "--readthrough.ttl", "0"],
            stdout=log, stderr=log))
        wait_port(rport, "redis-server")
        value = cli(rport, "RT.GET", "todo:1")
        assert value.startswith("{"), value
        assert cli(rport, "GET", "todo:1") == value

        results = []
        for pipeline in (1, 16):
            n = a.requests * (5 if pipeline > 1 else 1)
            get, rtget = [], []
            for _ in range(a.rounds):  # alternate so drift hits both alike
                get.append(bench(rport, a.clients, n, pipeline, "GET", "todo:1"))
                rtget.append(bench(rport, a.clients, n, pipeline, "RT.GET", "todo:1"))
            g, r = statistics.median(get), statistics.median(rtget)
            results.append((pipeline, g, r, r / g))
            print(f"pipeline {pipeline:>2}: GET {g:,.0f} rps, RT.GET hit {r:,.0f} rps, ratio {r / g:.3f}")

        # 1b. Transparent path: GET of a mapped hot key vs GET of an unmapped key (same value,
        # same server); GET of an unmapped key with the module loaded vs a server without it.
        cli(rport, "SET", "plain:1", value)
        cli(rport, "GET", "todo:1")
        bport = free_port()
        blog = open(os.path.join(tmp, "redis-bare.log"), "w")
        procs.append(subprocess.Popen(["redis-server", "--port", str(bport), "--save", "", "--appendonly", "no",
                                       "--dir", tmp], stdout=blog, stderr=blog))
        wait_port(bport, "redis-server without the module")
        cli(bport, "SET", "plain:1", value)
        tget, plain, bare = [], [], []
        for _ in range(a.rounds):
            tget.append(bench(rport, a.clients, a.requests, 1, "GET", "todo:1"))
            plain.append(bench(rport, a.clients, a.requests, 1, "GET", "plain:1"))
            bare.append(bench(bport, a.clients, a.requests, 1, "GET", "plain:1"))
        tg, pl, ba = statistics.median(tget), statistics.median(plain), statistics.median(bare)
        print(f"transparent: GET mapped hit {tg:,.0f} rps vs GET unmapped {pl:,.0f} rps, ratio {tg / pl:.3f}; "
              f"unmapped GET with module / without {pl / ba:.3f}")

        # 2. Single-flight: 1000 concurrent clients, one cold key.
        q0 = queries()
        subprocess.run(["redis-benchmark", "-p", str(rport), "-c", "1000", "-n", "1000", "-q",
                        "RT.GET", "todo:4999"], capture_output=True, check=True)
        sf_queries = queries() - q0
        sf_loads = int(cli(rport, "INFO", "readthrough").split("readthrough_loads:")[1].split()[0])
        print(f"single-flight: 1000 concurrent RT.GET of one cold key -> {sf_queries} MongoDB query(ies)")

        # 3. Batch: RT.MGET of 100 cold keys vs 100 sequential RT.GET.
        def timed(stdin):
            t = time.perf_counter()
            out = subprocess.run(["redis-cli", "-p", str(rport)], input=stdin, capture_output=True, text=True, check=True).stdout
            took = time.perf_counter() - t
            assert out.count('"id"') == 100 or out.count("id") >= 100, out[:200]
            return took
        mget_t, seq_t = [], []
        next_id = 1000
        for _ in range(a.rounds):
            ids = range(next_id, next_id + 100)
            mget_t.append(timed("RT.MGET " + " ".join(f"todo:{i}" for i in ids) + "\n"))
            ids = range(next_id + 100, next_id + 200)
            seq_t.append(timed("".join(f"RT.GET todo:{i}\n" for i in ids)))
            next_id += 200
        mget_ms, seq_ms = statistics.median(mget_t) * 1000, statistics.median(seq_t) * 1000
        # The server's own limit: the same $in straight from pymongo vs 100 find_one.
        in_t, one_t = [], []
        for r in range(a.rounds):
            ids = [str(i) for i in range(3000 + 100 * r, 3100 + 100 * r)]
            t = time.perf_counter()
            list(todos.find({"id": {"$in": ids + [int(i) for i in ids]}}))
            in_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            for i in ids:
                todos.find_one({"id": {"$in": [i, int(i)]}})
            one_t.append(time.perf_counter() - t)
        direct_ratio = statistics.median(one_t) / statistics.median(in_t)
        print(f"batch: RT.MGET 100 cold {mget_ms:.1f} ms, 100 sequential RT.GET {seq_ms:.1f} ms, {seq_ms / mget_ms:.1f}x "
              f"(server's own $in speed-up: {direct_ratio:.1f}x)")

        redis_v = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
        with open(a.out, "w") as f:
            f.write("# redis-readthrough benchmarks\n\n")
            f.write(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
            f.write(f"- machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}\n")
            f.write(f"- redis: {redis_v}; redis-benchmark -c {a.clients}; {a.rounds} alternating rounds, medians\n\n")
            f.write("## Hit path: RT.GET hit vs plain GET (same server, same key)\n\n")
            f.write("| pipeline | GET rps | RT.GET hit rps | ratio (goal >= 0.95) |\n|---|---|---|---|\n")
            for p, g, r, ratio in results:
                f.write(f"| {p} | {g:,.0f} | {r:,.0f} | {ratio:.3f} |\n")
            f.write("\n## Transparent path (plain GET, no pipelining)\n\n| | rps | ratio |\n|---|---|---|\n")
            f.write(f"| GET of a mapped cached key (rewritten by the command filter) | {tg:,.0f} | {tg / pl:.3f} vs the next row (goal >= 0.95) |\n")
            f.write(f"| GET of an unmapped key, module loaded | {pl:,.0f} | {pl / ba:.3f} vs the next row (goal >= 0.98) |\n")
            f.write(f"| GET of the same key, redis-server without the module | {ba:,.0f} | |\n")
            f.write("\n## Single-flight\n\n")
            f.write(f"1000 concurrent clients (`redis-benchmark -c 1000 -n 1000 RT.GET todo:4999`) on one cold key: "
                    f"**{sf_queries}** MongoDB query (serverStatus opcounters.query; goal: exactly 1); "
                    f"module loads so far: {sf_loads}.\n")
            f.write("\n## Batch\n\n| | median wall time (redis-cli) |\n|---|---|\n")
            f.write(f"| RT.MGET of 100 cold keys | {mget_ms:.1f} ms |\n| 100 sequential RT.GET of cold keys | {seq_ms:.1f} ms |\n")
            f.write(f"| speed-up (goal >= 10x) | {seq_ms / mget_ms:.1f}x |\n")
            f.write(f"| the MongoDB server's own speed-up, same queries from pymongo (100 find_one vs one $in) | {direct_ratio:.1f}x |\n")
            f.write("\nThe module cannot batch faster than the server answers one `$in`; the last row is that limit.\n")
        print(f"report: {os.path.relpath(a.out, ROOT)}")
    finally:
        for p in procs:
            p.terminate()
            p.wait()


if __name__ == "__main__":
    main()
