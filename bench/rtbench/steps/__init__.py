"""The measured steps, one file each. Every module has NUMBER (its place in the report), NAME
(for `--steps`) and `run(ctx)`, which returns a named result with `summary()` (rows of the
report's goal table), `section()` (its part of the report) and `bars()` (its ratios in the
chart)."""
from . import (batch, cache_aside, change_visible, cluster_changes, compound_keys, demo, formats, hit_cost, hit_path,
               many_lists, memory, miss_path, overhead, single_flight, stalled_ping, transparent, uri_shapes, warm)

# The order they run in. `overhead` (13) runs first: the later steps leave servers behind whose
# background work (change streams on SecantusDB, five redis-servers) doubled the module's
# measured cost in one run.
RUN_ORDER = (overhead, hit_path, transparent, miss_path, uri_shapes, cache_aside, single_flight, batch,
             stalled_ping, memory, demo, change_visible, warm, formats, hit_cost, compound_keys,
             many_lists, cluster_changes)
BY_NAME = {step.NAME: step for step in RUN_ORDER}


def report_order(step):
    """1, 2, 3, 3b, 4, ..., 13."""
    digits = step.NUMBER.rstrip("abcdefgh")
    return int(digits), step.NUMBER[len(digits):]
