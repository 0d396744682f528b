"""bench/results/report.md: a header, a summary table of every goal, then one section per step.
Each step's result writes its own rows and section (`summary()`, `section()`); this file only
puts them in order."""
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from typing import Optional

from .goals import Goal
from .paths import DOCS, SERVER


@dataclass
class Row:
    """One line of the summary: step number, what is measured, its goal (None: shown for
    information), the figure as shown, and the value the goal is checked against."""
    number: str
    measure: str
    goal: Optional[Goal]
    shown: str
    value: object = None

    def line(self):
        verdict = self.goal.verdict(self.value) if self.goal and self.value is not None else ""
        return f"| {self.number} | {self.measure} | {self.goal.text if self.goal else ''} | {self.shown} | {verdict} |"


@dataclass
class Skipped:
    """A step that could not run here (external MongoDB, no RedisJSON, ...), and why."""
    number: str
    measure: str
    title: str
    reason: str

    def summary(self):
        return [Row(self.number, self.measure, None, f"not run: {self.reason}")]

    def section(self):
        return [f"## {self.number}. {self.title}", "", f"Not run: {self.reason}.", ""]

    def bars(self):
        return []


def header(ctx, chart):
    version = subprocess.run([SERVER, "--version"], capture_output=True, text=True).stdout.split()
    redis_v = f"{version[0]} {version[2][2:]}"
    return ["# redis-readthrough benchmarks", "",
            f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            f"- machine: {platform.machine()}, {os.cpu_count()} cores (shared), {platform.platform()}",
            f"- {redis_v}; MongoDB side: {ctx.mongo_name}, reports version {ctx.mongo_version}",
            f"- {DOCS:,} demo todos `{{id, name, description}}` in test.todos, index on `id`; "
            f"mapping `todo:=test.todos:id`",
            f"- tools: `redis-benchmark` (-c 50) and `examples/loadgen.rs` (tokio, `redis` crate, MongoDB Rust "
            f"driver); medians over {ctx.args.rounds} alternating rounds unless said otherwise (ratios: the "
            f"median of per-round ratios of back-to-back runs)", "",
            f"![charts]({os.path.basename(chart)})", ""]


def write_report(ctx, results, path, chart):
    """`results`: the steps' results in report order."""
    lines = header(ctx, chart)
    lines += ["## Summary", "", "| # | measure | goal | measured | |", "|---|---|---|---|---|"]
    for res in results:
        lines += [row.line() for row in res.summary()]
    lines.append("")
    for res in results:
        lines += res.section()
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
