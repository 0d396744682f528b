"""Medians and percentiles. A ratio is the median of per-round ratios: each pair of runs ran
back to back, so a shared machine's slow drift cancels out."""
import statistics


def med(xs):
    return statistics.median(xs)


def p99(sorted_xs):
    """Nearest-rank 99th percentile of an ascending list."""
    n = len(sorted_xs)
    return sorted_xs[min(n - 1, (n * 99 + 99) // 100 - 1)]


def ratio_of_rounds(xs, ys, key=None):
    """Median of xs[i] / ys[i] (of their `key` field when given)."""
    if key is not None:
        xs, ys = [x[key] for x in xs], [y[key] for y in ys]
    return med([x / y for x, y in zip(xs, ys)])
