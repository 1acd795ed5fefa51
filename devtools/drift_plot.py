"""Plot of the drift test for docs/monitoring.md.

``MONITORING_DRIFT_JSON=/tmp/drift.json pytest tests/integration/test_monitoring.py`` saves the
monitoring view before and after the shift; ``python -m devtools.drift_plot /tmp/drift.json``
draws PSI per input and for the score, both phases, against the alert threshold, and the live
AUC, into ``docs/img/drift-test.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def plot(views: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    before, after = views["before"], views["after"]
    names = [f["name"].split("__", 1)[1] for f in before["features"]] + ["score (prediction)"]
    psi_b = [f["psi"] for f in before["features"]] + [before["score"]["psi"]]
    psi_a = [f["psi"] for f in after["features"]] + [after["score"]["psi"]]
    y = np.arange(len(names))
    fig, (ax, ax2) = plt.subplots(
        1, 2, figsize=(11, 4.8), dpi=110, gridspec_kw={"width_ratios": [3, 1]}
    )
    ax.barh(y + 0.2, psi_b, 0.4, label="users as generated")
    ax.barh(y - 0.2, psi_a, 0.4, label="click_through_rate, conversion_rate shifted")
    ax.axvline(after["psi_threshold"], color="red", linestyle="--", label="alert threshold")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("PSI vs the training hold-out (last 1,000 served rows)")
    ax.legend(loc="lower right", fontsize=8)
    q = [before["quality"]["auc"], after["quality"]["auc"]]
    ax2.bar(["as generated", "shifted"], q, color=["C0", "C1"])
    holdout = after["quality"].get("holdout", {}).get("auc")
    if holdout:
        ax2.axhline(holdout, color="grey", linestyle=":", label="hold-out AUC")
        ax2.axhline(holdout - 0.05, color="red", linestyle="--", label="alert: hold-out - 0.05")
        ax2.legend(loc="upper right", fontsize=7)
    ax2.set_ylim(0.5, 1.0)
    ax2.set_ylabel("live AUC (3,000 joined outcomes)")
    for i, v in enumerate(q):
        ax2.text(i, v + 0.01, f"{v:.3f}", ha="center")
    fig.suptitle("Drift test (tests/integration/test_monitoring.py)")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m devtools.drift_plot", description=__doc__)
    p.add_argument("views", type=Path, help="JSON saved by the drift test")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "drift-test.png")
    a = p.parse_args(argv)
    plot(json.loads(a.views.read_text()), a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
