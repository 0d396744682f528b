"""The benchmark package behind `make bench` (`bench/bench.py` is its command line).

- `context.py`: the servers one run shares (SecantusDB with the demo todos, a redis-server
  with the module) and the way steps start more of them;
- `tools.py`: the measuring tools (redis-benchmark, the Rust load generator, CPU pinning and
  the server's CPU time);
- `stats.py`: medians and percentiles;
- `goals.py`: every goal, declared once, read by the report and the chart;
- `steps/`: one file per measured step, each returning a named result;
- `report.py`, `chart.py`: bench/results/report.md and bench.png from those results.
"""
