"""docs/img/bench.png: throughput and latency per scenario and concurrency (matplotlib, imported
only when a plot is written)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devtools.bench.common import CONCURRENCY, find_run


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["scenario"] for r in results["runs"]))
    if not names:
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6), dpi=110)
    width = 0.8 / len(CONCURRENCY)
    for k, c in enumerate(CONCURRENCY):
        xs, thr, p99, p50 = [], [], [], []
        for i, name in enumerate(names):
            r = find_run(results, name, c)
            if r is None:
                continue
            xs.append(i + (k - (len(CONCURRENCY) - 1) / 2) * width)
            thr.append(r["users_per_s"])
            p99.append(r["latency_ms"]["p99"])
            p50.append(r["latency_ms"]["p50"])
        ax1.bar(xs, thr, width, label=f"c={c}")
        ax2.bar(xs, p99, width, label=f"c={c} p99")
        ax2.scatter(xs, p50, marker="_", color="black", s=80, zorder=3)
    for ax in (ax1, ax2):
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=30, ha="right")
        ax.set_yscale("log")
        ax.grid(axis="y", which="both", alpha=0.3)
    ax1.set_title("throughput: user-predictions/s (= req/s unless batched)")
    ax1.set_ylabel("per second (log)")
    ax2.set_title("latency p99 (bars), p50 (black ticks)")
    ax2.set_ylabel("ms (log)")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    fig.suptitle(
        f"{results['machine']['cores']} cores, {results['machine']['cpu']} — "
        f"{results['started_at']}",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
