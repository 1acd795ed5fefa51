"""A sliding window of counts: a ring of buckets, each an array of counts, updated in place.

The window advances by time (``kind="time"``: ``size`` seconds over ``buckets`` buckets) or by
rows (``kind="rows"``: about ``size`` rows; a bucket closes once it holds ``size / buckets``
rows, so the window holds between ``size * (buckets - 1) / buckets`` rows and ``size`` plus one
batch). ``total`` sums the live buckets.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

import numpy as np

WindowKind = Literal["time", "rows"]


class Window:
    def __init__(
        self,
        width: int,
        kind: WindowKind,
        size: float,
        buckets: int,
        clock: Callable[[], float] = time.monotonic,
    ):
        if size <= 0 or buckets < 1:
            raise ValueError("window size and buckets must be positive")
        self.kind, self.size, self.buckets = kind, size, buckets
        self.span = size / buckets
        self.counts = np.zeros((buckets, width), np.int64)
        self.rows = np.zeros(buckets, np.int64)
        self._clock = clock
        self._tick = self._tick_of(clock())
        self._cur = 0
        self._lock = threading.Lock()  # the scrape may run on another thread

    def _tick_of(self, now: float) -> int:
        return int(now // self.span)

    def _advance(self) -> None:
        if self.kind == "time":
            tick = self._tick_of(self._clock())
            steps = min(tick - self._tick, self.buckets)
            self._tick = tick
        else:
            steps = int(self.rows[self._cur] >= self.span)
        for _ in range(max(steps, 0)):
            self._cur = (self._cur + 1) % self.buckets
            self.counts[self._cur] = 0
            self.rows[self._cur] = 0

    def add(self, counts: np.ndarray, rows: int) -> None:
        with self._lock:
            self._advance()
            self.counts[self._cur] += counts
            self.rows[self._cur] += rows

    def total(self) -> tuple[np.ndarray, int]:
        with self._lock:
            if self.kind == "time":
                self._advance()
            return self.counts.sum(axis=0), int(self.rows.sum())

    def clear(self) -> None:
        with self._lock:
            self.counts[:] = 0
            self.rows[:] = 0
