"""Drift statistics between two binned distributions (counts over the same bins)."""

from __future__ import annotations

import math

import numpy as np

EPS = 1e-4  # floor of a bin's share in PSI, so an empty bin costs a bounded amount


def shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else np.zeros(len(counts))


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index: sum((a - e) * ln(a / e)) over bins, shares floored at EPS.

    Rules of thumb: < 0.1 stable, 0.1-0.2 moderate, > 0.2 a shift worth acting on.
    """
    e = np.maximum(shares(expected), EPS)
    a = np.maximum(shares(actual), EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def js_distance(expected: np.ndarray, actual: np.ndarray) -> float:
    """Jensen-Shannon distance, base 2: sqrt of the JS divergence, in [0, 1] (0: identical,
    1: disjoint); the same as ``scipy.spatial.distance.jensenshannon(e, a, base=2)``."""
    e, a = shares(expected), shares(actual)
    m = (e + a) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        ke = np.where(e > 0, e * np.log2(e / m), 0.0).sum()
        ka = np.where(a > 0, a * np.log2(a / m), 0.0).sum()
    return math.sqrt(max(0.0, (ke + ka) / 2))
