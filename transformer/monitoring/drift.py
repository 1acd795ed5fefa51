"""Live drift of the model's inputs and score against the baseline written at training.

``observe`` (on the request path) bins a batch's feature matrix and scores in the baseline's
bins with one ``np.searchsorted`` per column and one ``np.bincount`` for the batch, and adds
the counts to the current bucket of a sliding window. ``snapshot`` (on a scrape or the JSON
view, cached for ``compute_interval_s``) sums the window and computes PSI, the
Jensen-Shannon distance and the missing share per variable.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from predictor.baseline import Baseline, Distribution
from transformer.monitoring import stats
from transformer.monitoring.window import Window, WindowKind


@dataclass
class VariableDrift:
    name: str
    rows: int  # values seen in the window (present + missing)
    psi: float  # NaN below min_rows
    js: float
    missing_share: float
    baseline_missing_share: float
    edges: list[float]
    baseline_counts: list[int]
    live_counts: list[int]

    def as_dict(self, threshold: float) -> dict[str, Any]:
        return {
            "name": self.name,
            "rows": self.rows,
            "psi": _json_float(self.psi),
            "js_distance": _json_float(self.js),
            "drifted": bool(self.psi > threshold),
            "missing_share": _json_float(self.missing_share),
            "baseline_missing_share": self.baseline_missing_share,
            "bins": {
                "edges": self.edges,
                "baseline_counts": self.baseline_counts,
                "live_counts": self.live_counts,
            },
        }


def _json_float(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 6)


class DriftMonitor:
    """Binned counts of the served features (model order) and scores over a sliding window."""

    def __init__(
        self,
        baseline: Baseline,
        kind: WindowKind,
        size: float,
        buckets: int,
        min_rows: int,
        compute_interval_s: float,
    ):
        self.baseline = baseline
        self.variables: list[Distribution] = [*baseline.features, baseline.score]
        self._edges = [np.asarray(d.edges, np.float64) for d in self.variables]
        self.width = max(len(d.counts) for d in self.variables) + 1  # last slot: missing
        self._offsets = np.arange(len(self.variables), dtype=np.int64) * self.width
        self.window = Window(self.width * len(self.variables), kind, size, buckets)
        self.min_rows = min_rows
        self.compute_interval_s = compute_interval_s
        self._snap: list[VariableDrift] | None = None
        self._snap_at = -math.inf

    def observe(self, features: np.ndarray, scores: np.ndarray) -> None:
        """Count one batch: ``features`` (N, F) in model order, ``scores`` (N,), NaN = missing."""
        n = features.shape[0]
        if n == 0:
            return
        idx = np.empty((n, len(self.variables)), np.int64)
        missing_slot = self.width - 1
        for j, edges in enumerate(self._edges):
            col = features[:, j] if j < features.shape[1] else scores
            b = np.searchsorted(edges, col, side="right")
            b[np.isnan(col)] = missing_slot
            idx[:, j] = b
        idx += self._offsets
        counts = np.bincount(idx.ravel(), minlength=self.window.counts.shape[1])
        self.window.add(counts, n)

    def snapshot(self) -> list[VariableDrift]:
        now = time.monotonic()
        if self._snap is not None and now - self._snap_at < self.compute_interval_s:
            return self._snap
        total, _ = self.window.total()
        per_var = total.reshape(len(self.variables), self.width)
        out = []
        for d, counts in zip(self.variables, per_var, strict=True):
            k = len(d.counts)
            live = counts[:k]
            missing = int(counts[-1])
            seen = int(live.sum()) + missing
            enough = live.sum() >= self.min_rows
            expected = np.asarray(d.counts, np.float64)
            out.append(
                VariableDrift(
                    name=d.name,
                    rows=seen,
                    psi=stats.psi(expected, live) if enough else math.nan,
                    js=stats.js_distance(expected, live) if enough else math.nan,
                    missing_share=missing / seen if seen else math.nan,
                    baseline_missing_share=d.missing_share,
                    edges=d.edges,
                    baseline_counts=d.counts,
                    live_counts=[int(c) for c in live],
                )
            )
        self._snap, self._snap_at = out, now
        return out
