"""bench/results/bench.png: the demo workload's warm-up curve, and every ratio a step offers
(`bars()`) against its goal."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (the backend is chosen first)


def write_chart(results, path):
    """`results`: step NAME -> result."""
    fig, (ax1, ax3) = plt.subplots(1, 2, figsize=(13, 4.8))
    demo = results.get("demo")
    if demo:
        seconds = demo.seconds
        t = [i + 1 for i in range(len(seconds))]
        ax1.plot(t, [r["rps"] for r in seconds], color="tab:blue", label="requests/s")
        ax1.set_xlabel("seconds since cold start")
        ax1.set_ylabel("RT.GET requests/s", color="tab:blue")
        ax2 = ax1.twinx()
        ax2.plot(t, [r["hit_ratio"] for r in seconds], color="tab:green", label="hit ratio")
        ax2.set_ylim(0, 1)
        ax2.set_ylabel("hit ratio", color="tab:green")
        ax1.set_title("Demo workload: 200k todos, random ids, cold start")
    bars = [bar for res in results.values() for bar in res.bars()]
    for i, (name, value, goal) in enumerate(bars):
        ax3.bar(i, value, color="tab:green" if goal.met(value) else "tab:red")
        ax3.plot([i - 0.4, i + 0.4], [goal.limit, goal.limit], color="black", linewidth=1)
        ax3.text(i, value, f"{value:.2f}", ha="center", va="bottom", fontsize=8)
    ax3.set_xticks(range(len(bars)), [b[0] for b in bars], rotation=30, ha="right", fontsize=8)
    ax3.set_title("Measured ratios (black line: goal; green: met)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
