"""Live model quality from outcomes that arrive later (clicks).

The request path appends each batch's (user, time, score) to a bounded ring (``PredictionLog``,
vectorized, in place). A labels call joins each outcome to the latest prediction of the same
user at or before the outcome's time and no older than ``join_window_s``, and keeps the last
``window`` joined (score, outcome) pairs; ``snapshot`` computes rolling AUC, log loss and
calibration per score band from them (lazily, cached like the drift statistics).

Responses carry no prediction id (the v2 contract's outputs are fixed), so the join key is
user + time; a user scored twice within the join window is joined to the latest score.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BANDS = (0.0, 0.05, 0.1, 0.2, 0.4, 1.0)  # score bands for calibration


class PredictionLog:
    """The last ``capacity`` scored rows: user id, wall time (s), score."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.user = np.full(capacity, -1, np.int64)
        self.ts = np.full(capacity, -math.inf)
        self.score = np.zeros(capacity)
        self._head = 0
        self._lock = threading.Lock()

    def append(self, users: np.ndarray, scores: np.ndarray, now: float) -> None:
        n = min(len(users), self.capacity)
        if n == 0:
            return
        with self._lock:
            h = self._head
            if h + n <= self.capacity:  # the usual case: one contiguous slice
                self.user[h : h + n] = users[-n:]
                self.score[h : h + n] = scores[-n:]
                self.ts[h : h + n] = now
            else:
                pos = (h + np.arange(n)) % self.capacity
                self.user[pos] = users[-n:]
                self.score[pos] = scores[-n:]
                self.ts[pos] = now
            self._head = (h + n) % self.capacity

    def lookup(self, users: np.ndarray, at: np.ndarray, max_age_s: float) -> np.ndarray:
        """Per label, the score of the user's latest prediction in [at - max_age_s, at];
        NaN where there is none (or that answer was a default, logged as NaN)."""
        with self._lock:
            u, t, s = self.user.copy(), self.ts.copy(), self.score.copy()
        order = np.lexsort((t, u))  # by user, then time
        u, t, s = u[order], t[order], s[order]
        lo = np.searchsorted(u, users, side="left")
        hi = np.searchsorted(u, users, side="right")
        out = np.full(len(users), np.nan)
        for i in np.flatnonzero(hi > lo).tolist():  # labels path, not the request path
            k = lo[i] + int(np.searchsorted(t[lo[i] : hi[i]], at[i], side="right")) - 1
            if k >= lo[i] and at[i] - t[k] <= max_age_s:
                out[i] = s[k]
        return out


@dataclass
class QualitySnapshot:
    labels: int
    auc: float
    log_loss: float
    bands: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        def f(x: float) -> float | None:
            return None if math.isnan(x) else round(x, 6)

        return {"labels": self.labels, "auc": f(self.auc), "log_loss": f(self.log_loss),
                "calibration": self.bands}  # fmt: skip


class QualityMonitor:
    def __init__(
        self, log_size: int, join_window_s: float, window: int, min_labels: int,
        compute_interval_s: float,
    ):  # fmt: skip
        self.log = PredictionLog(log_size)
        self.join_window_s = join_window_s
        self.min_labels = min_labels
        self.compute_interval_s = compute_interval_s
        self._scores = np.zeros(window)
        self._outcomes = np.zeros(window, np.int8)
        self._n = 0
        self._head = 0
        self._lock = threading.Lock()
        self._snap: QualitySnapshot | None = None
        self._snap_at = -math.inf
        self.joined = 0
        self.unmatched = 0

    def observe(self, users: np.ndarray, scores: np.ndarray) -> None:
        """Log a batch; a NaN score (a default answer) joins no outcome."""
        self.log.append(users, scores, time.time())

    def add_labels(self, users: np.ndarray, at: np.ndarray, outcomes: np.ndarray) -> int:
        """Join outcomes to predictions; returns how many joined."""
        scores = self.log.lookup(users, at, self.join_window_s)
        ok = ~np.isnan(scores)
        self.add_pairs(scores[ok], outcomes[ok])
        self.unmatched += len(users) - int(ok.sum())
        return int(ok.sum())

    def add_pairs(self, scores: np.ndarray, outcomes: np.ndarray) -> None:
        """(score, outcome) pairs already joined, e.g. by prediction id (the bandit's
        feedback call: transformer/multimodel/feedback.py)."""
        s, y = scores[-len(self._scores) :], outcomes[-len(self._scores) :]
        with self._lock:
            pos = (self._head + np.arange(len(s))) % len(self._scores)
            self._scores[pos] = s
            self._outcomes[pos] = y
            self._head = int((self._head + len(s)) % len(self._scores))
            self._n = min(self._n + len(s), len(self._scores))
            self._snap = None
        self.joined += len(scores)

    def snapshot(self) -> QualitySnapshot:
        now = time.monotonic()
        if self._snap is not None and now - self._snap_at < self.compute_interval_s:
            return self._snap
        with self._lock:
            s, y = self._scores[: self._n].copy(), self._outcomes[: self._n].astype(np.float64)
        self._snap, self._snap_at = quality(s, y, self.min_labels), now
        return self._snap


def auc(scores: np.ndarray, outcomes: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties averaged."""
    pos = outcomes > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(scores, kind="mergesort")
    sorted_s = scores[order]
    ranks = np.empty(len(scores))
    # average ranks over ties
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def quality(scores: np.ndarray, outcomes: np.ndarray, min_labels: int) -> QualitySnapshot:
    n = len(scores)
    if n < min_labels:
        return QualitySnapshot(n, math.nan, math.nan, [])
    p = np.clip(scores, 1e-7, 1 - 1e-7)
    ll = float(-np.mean(outcomes * np.log(p) + (1 - outcomes) * np.log(1 - p)))
    band = np.clip(np.searchsorted(BANDS, scores, side="right") - 1, 0, len(BANDS) - 2)
    counts = np.bincount(band, minlength=len(BANDS) - 1)
    pred = np.bincount(band, weights=scores, minlength=len(BANDS) - 1)
    obs = np.bincount(band, weights=outcomes, minlength=len(BANDS) - 1)
    bands = [
        {
            "band": f"{BANDS[i]:g}-{BANDS[i + 1]:g}",
            "labels": int(counts[i]),
            "predicted": round(float(pred[i] / counts[i]), 6) if counts[i] else None,
            "observed": round(float(obs[i] / counts[i]), 6) if counts[i] else None,
        }
        for i in range(len(BANDS) - 1)
    ]
    return QualitySnapshot(n, auc(scores, outcomes), ll, bands)
