"""Cached predictions: when one may be served, and writing new ones back.

The cached rows are read by ``FeatureReader`` in the same online-store call as the features;
this module decides which are fresh and queues write-backs. A cached prediction is fresh for
a row when all hold:

- it was computed by a model version the predictor is serving now (answered with in the last
  ``version_ttl_s``; during a canary both versions are live);
- from feature values at least as new as the user's current ones (``features_ts``);
- for the same request-time fields (``request_key``), since on-demand features depend on them;
- less than ``max_age_s`` ago.

Write-back never delays or fails a request: rows go to a bounded queue that a background task
drains in batches; a full queue drops (and counts) rows, a failed write is logged and counted,
and ``close()`` flushes what is pending on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from predictor.protocol import predictions
from transformer.features import CachedPredictions
from transformer.metrics import Metrics

log = logging.getLogger(__name__)

Sink = Callable[[pd.DataFrame], Awaitable[None]]


def request_keys(columns: dict[str, np.ndarray], fields: Sequence[str], n: int) -> list[str]:
    """Canonical text of each row's request-time fields, e.g. ``hour_of_day=20|s=35.0``."""
    if not fields:
        return [""] * n
    parts = [[f"{name}={v!r}" for v in columns[name].tolist()] for name in sorted(fields)]
    return ["|".join(row) for row in zip(*parts, strict=True)]


class LiveVersions:
    """Model versions the predictor answered with recently."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic):
        self.ttl_s, self.clock = ttl_s, clock
        self._seen: dict[str, float] = {}

    def note(self, version: str) -> None:
        self._seen[version] = self.clock()

    def live(self) -> set[str]:
        cutoff = self.clock() - self.ttl_s
        return {v for v, t in self._seen.items() if t >= cutoff}


@dataclass
class Freshness:
    max_age_s: float
    versions: LiveVersions

    def fresh(
        self,
        cached: CachedPredictions,
        feature_ts: np.ndarray,
        keys: list[str],
        now_us: int | None = None,
    ) -> np.ndarray:
        now_us = now_us if now_us is not None else int(time.time() * 1e6)
        live = self.versions.live()
        version_ok = np.fromiter((v in live for v in cached.model_version), bool, len(keys))
        key_ok = np.fromiter(
            (a == b for a, b in zip(cached.request_key, keys, strict=True)), bool, len(keys)
        )
        return (
            cached.present
            & version_ok
            & key_ok
            & (cached.features_ts >= feature_ts)
            & (now_us - cached.written_ts <= self.max_age_s * 1e6)
        )


@dataclass
class NewPredictions:
    """The model's scores for some users, as the predictions view stores them."""

    user_ids: np.ndarray
    scores: np.ndarray
    version: str
    features_ts: np.ndarray  # event time (µs) of the features each score was computed from
    keys: list[str]  # request key of each row

    def rows(self, written_at: datetime | None = None) -> list[tuple]:
        """Prediction rows: entity, ``predictions.COLUMNS``, event time."""
        at = written_at or datetime.now(UTC)
        return [
            (u, s, self.version, f, k, at)
            for u, s, f, k in zip(
                self.user_ids.tolist(),
                self.scores.tolist(),
                self.features_ts.tolist(),
                self.keys,
                strict=True,
            )
        ]


class PredictionWriter:
    """Bounded queue + background batch writer of prediction rows."""

    def __init__(
        self,
        sink: Sink,
        entity_key: str,
        metrics: Metrics,
        queue_size: int = 10_000,
        batch_rows: int = 512,
    ):
        self.sink, self.entity_key, self.metrics = sink, entity_key, metrics
        self.batch_rows = batch_rows
        self.queue: asyncio.Queue[tuple] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task | None = None

    def submit(
        self,
        user_ids: np.ndarray,
        scores: np.ndarray,
        version: str,
        features_ts: np.ndarray,
        keys: list[str],
        written_at: datetime | None = None,
    ) -> int:
        """Queue rows without waiting; returns how many were dropped (queue full)."""
        self._ensure_started()
        dropped = 0
        new = NewPredictions(user_ids, scores, version, features_ts, keys)
        for row in new.rows(written_at):
            try:
                self.queue.put_nowait(row)
            except asyncio.QueueFull:
                dropped += 1
        if dropped:
            self.metrics.writeback_dropped.inc(dropped)
            log.warning("write-back queue full: dropped %d predictions", dropped)
        self.metrics.writeback_queue_depth.set(self.queue.qsize())
        return dropped

    def _ensure_started(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.batch_rows and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                await self.write(batch)
            finally:
                for _ in batch:
                    self.queue.task_done()
                self.metrics.writeback_queue_depth.set(self.queue.qsize())

    async def write(self, rows: list[tuple]) -> bool:
        """Write rows now; a failure is logged and counted, never raised."""
        df = predictions.frame(rows, self.entity_key)
        try:
            await self.sink(df)
        except Exception as e:  # the store is down: counted; no traceback per batch
            self.metrics.writeback_failures.inc(len(rows))
            log.warning("writing %d predictions back failed: %s", len(rows), e)
            return False
        self.metrics.writeback_rows.inc(len(rows))
        return True

    async def close(self, timeout_s: float = 10.0) -> None:
        """Flush pending rows (bounded by ``timeout_s``), then stop the writer."""
        if self._task is not None and not self._task.done():
            if self.queue.qsize():
                log.info("shutdown: flushing %d queued predictions", self.queue.qsize())
            try:
                await asyncio.wait_for(self.queue.join(), timeout_s)
            except TimeoutError:
                log.error("shutdown: %d predictions not written back", self.queue.qsize())
            self._task.cancel()
