"""Live drift of the model's inputs and score against the baseline written at training.

``observe`` (on the request path) copies a batch's feature matrix and scores into a fixed
buffer; every ``FLUSH_ROWS`` rows (and before any snapshot) the buffer is binned in the
baseline's bins with one broadcast comparison against all edges (searchsorted for every
column at once) and one ``np.bincount``, and the counts are added in place to the current
bucket of a sliding window. A time window thus dates buffered rows by their flush, at most
``FLUSH_ROWS`` rows late. ``snapshot`` (on a scrape or the JSON
view, cached for ``compute_interval_s``) sums the window and computes PSI, the
Jensen-Shannon distance and the missing share per variable.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from predictor.jobs.baseline import Baseline, Distribution
from transformer.monitoring import stats
from transformer.monitoring.window import Window, WindowKind

FLUSH_ROWS = 256  # rows buffered before they are binned (a snapshot bins them at once)


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
        self._slots = self.width * len(self.variables)
        self._edge_matrix = np.full((len(self.variables), max(self.width - 2, 1)), np.inf)
        for j, e in enumerate(self._edges):
            self._edge_matrix[j, : len(e)] = e
        self.window = Window(self._slots, kind, size, buckets)
        self._pending = np.empty((FLUSH_ROWS, len(self.variables)))
        self._pending_n = 0
        self.min_rows = min_rows
        self.compute_interval_s = compute_interval_s
        self._snap: list[VariableDrift] | None = None
        self._snap_at = -math.inf

    def observe(self, features: np.ndarray, scores: np.ndarray) -> None:
        """Queue one batch: ``features`` (N, F) in model order, ``scores`` (N,), NaN = missing.

        Rows are copied into a fixed buffer (one slice assignment) and counted together once
        it holds ``FLUSH_ROWS`` rows or a snapshot is taken: the per-request cost is a copy,
        the binning is amortized over many requests."""
        n = features.shape[0]
        if n == 0:
            return
        if self._pending_n + n > FLUSH_ROWS:
            self.flush()
        if n >= FLUSH_ROWS:
            self._count(np.column_stack([features, scores]))
            return
        rows = self._pending[self._pending_n : self._pending_n + n]
        rows[:, :-1] = features
        rows[:, -1] = scores
        self._pending_n += n

    def flush(self) -> None:
        if self._pending_n:
            self._count(self._pending[: self._pending_n])
            self._pending_n = 0

    def _count(self, vals: np.ndarray) -> None:
        # bin = number of inner edges <= x (searchsorted side="right" for every column at
        # once; edges padded with +inf); NaN compares False, then goes to the missing slot
        idx = (vals[:, :, None] >= self._edge_matrix).sum(axis=2)
        idx[np.isnan(vals)] = self.width - 1
        idx += self._offsets
        self.window.add(np.bincount(idx.ravel(), minlength=self._slots), vals.shape[0])

    def snapshot(self) -> list[VariableDrift]:
        now = time.monotonic()
        if self._snap is not None and now - self._snap_at < self.compute_interval_s:
            return self._snap
        self.flush()
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
