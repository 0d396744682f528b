#!/usr/bin/env python3
"""Hit-path benchmark: RT.GET on a cached key vs plain GET of the same key, same server.

Starts its own MongoDB-compatible server (or uses MONGO_URI) and a redis-server with the
module, loads one document, then runs redis-benchmark rounds that alternate GET and RT.GET
(same client count, request count and pipelining) and reports the median requests/s of each
and their ratio. Timings on a shared machine are noisy: read the ratio, not the absolute rps.

Usage: bench/hit_ratio.py [--rounds N] [--requests N] [--out FILE]
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
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/results/hit_ratio.md"))
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
        subprocess.run([os.path.join(ROOT, ".venv/bin/python"), "-c",
                        "import sys, pymongo; c = pymongo.MongoClient(sys.argv[1]).bench.todos;"
                        "c.delete_many({}); c.insert_one({'id': '1', 'name': 'Todo 1', 'description': 'x' * 100})",
                        uri], check=True)
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

        redis_v = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
        with open(a.out, "w") as f:
            f.write("# Hit path: RT.GET hit vs plain GET (same server, same key)\n\n")
            f.write(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
            f.write(f"- machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}\n")
            f.write(f"- redis: {redis_v}; redis-benchmark -c {a.clients}; {a.rounds} alternating rounds, medians\n\n")
            f.write("| pipeline | GET rps | RT.GET hit rps | ratio (goal >= 0.95) |\n|---|---|---|---|\n")
            for p, g, r, ratio in results:
                f.write(f"| {p} | {g:,.0f} | {r:,.0f} | {ratio:.3f} |\n")
        print(f"report: {os.path.relpath(a.out, ROOT)}")
    finally:
        for p in procs:
            p.terminate()
            p.wait()


if __name__ == "__main__":
    main()
