"""The measuring tools: redis-benchmark, the Rust load generator (examples/loadgen.rs), CPU
pinning, and a process's CPU time."""
import csv
import io
import json
import os
import subprocess

from .paths import LOADGEN

# Hit-path numbers swung by ±20% between runs (the pipelined RT.GET/GET ratio from 0.77 to 1.14)
# when the server and redis-benchmark, each nearly one core's worth of work, were moved between
# the two cores by the scheduler. Measured pinned: the server on CPU 0 and redis-benchmark on
# CPU 1 (see `pinned`).
PIN = (os.cpu_count() or 1) >= 2


def redis_benchmark(port, clients, requests, pipeline, *command):
    """Requests per second of `command` by redis-benchmark (pinned to CPU 1)."""
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


def loadgen(mode, rport, uri, **options):
    """Runs the load generator on the mapping `todo:=test.todos:id`. Returns its JSON lines
    (`demo` and `pair`, which print several) or its last line (every other mode)."""
    args = [LOADGEN, mode, "--redis", f"redis://127.0.0.1:{rport}/", "--mongo", uri,
            "--mapping", "test.todos:id", "--prefix", "todo:"]
    for k, v in options.items():
        args += [f"--{k}", str(v)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return rows if mode in ("demo", "pair") else rows[-1]
