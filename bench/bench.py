#!/usr/bin/env python3
"""Benchmarks, measured side by side in one run on one machine (`make bench`).

Starts its own SecantusDB (or uses MONGO_URI), loads the 200,000 demo todos
(scripts/demo_data.py), starts a redis-server with the module, and runs the steps in
`rtbench/steps/` (one file each, numbered as in the report) with `redis-benchmark` and the Rust
load generator (`examples/loadgen.rs`). Every timing is a median over alternating rounds; read
the ratios, not absolute numbers (the machine is shared and noisy). Writes
bench/results/report.md, bench.png and results.json.

Usage: bench/bench.py [--rounds N] [--requests N] [--demo-seconds N] [--updates N]
                      [--out-dir DIR] [--steps a,b]
(--steps runs only the named steps, e.g. `formats`, and prints them without writing the report)
"""
import argparse
import dataclasses
import json
import os
import signal
import sys
import tempfile

from rtbench.context import Context
from rtbench.paths import LOADGEN, MODULE, ROOT
from rtbench.steps import BY_NAME, RUN_ORDER, report_order


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--demo-seconds", type=int, default=240)
    ap.add_argument("--updates", type=int, default=1000)
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "bench/results"))
    ap.add_argument("--steps", default="", help="comma-separated steps to run alone (no report)")
    a = ap.parse_args()
    chosen = [x for x in a.steps.split(",") if x]
    unknown = [x for x in chosen if x not in BY_NAME]
    if unknown:
        sys.exit(f"unknown steps {unknown}; steps: {', '.join(BY_NAME)}")
    for f in (MODULE, LOADGEN):
        if not os.path.exists(f):
            sys.exit(f"{f} not found: run `make bench` (it builds the module and the load generator)")
    # Stopped with SIGTERM (or Ctrl-C): still stop the servers it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench: terminated"))
    steps = [BY_NAME[x] for x in chosen] or list(RUN_ORDER)
    ctx, results = Context(a, tempfile.mkdtemp(prefix="rt-bench-")), {}
    try:
        ctx.setup()
        for step in steps:
            results[step.NAME] = step.run(ctx)
    finally:
        ctx.close()
    if chosen:
        return
    from rtbench.chart import write_chart
    from rtbench.report import write_report
    os.makedirs(a.out_dir, exist_ok=True)
    chart = os.path.join(a.out_dir, "bench.png")
    write_chart(results, chart)
    report = os.path.join(a.out_dir, "report.md")
    write_report(ctx, [results[s.NAME] for s in sorted(steps, key=report_order)], report, chart)
    with open(os.path.join(a.out_dir, "results.json"), "w") as f:
        json.dump({"mongo": [ctx.mongo_name, ctx.mongo_version],
                   "results": {name: dataclasses.asdict(res) for name, res in results.items()}}, f, indent=1)
    print(f"report: {os.path.relpath(report, ROOT)}, chart: {os.path.relpath(chart, ROOT)}")


if __name__ == "__main__":
    main()
