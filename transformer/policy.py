"""Serving modes as policy objects: online, cached, precomputed.

Each policy owns the decisions that differ between the modes, so the model's request path has
no ``if mode == ...``:

- ``reads_predictions``: whether a request reads the predictions view with its features
  (in the same online-store round trip);
- ``reuse``: which rows are answered from that view (the freshness rule of the mode), and the
  request key of each row;
- ``label``: the ``prediction_source`` of a reused row;
- ``must_default``: rows that get the rules' default instead of the model (precomputed with
  ``precomputed_fallback: default``);
- ``scored``: what happens to the model's new scores (cached: queued for write-back);
- ``refreshes_on_write``: whether a producer write recomputes the users' predictions
  (``transformer.producer``), and ``write_now`` to store them before acknowledging.

The mode string is read once, in ``policy_class`` (``build_policy``), at start-up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

import numpy as np

from transformer.cache import (
    Freshness,
    LiveVersions,
    NewPredictions,
    PredictionWriter,
    request_keys,
)
from transformer.features import FeatureBatch
from transformer.metrics import Metrics

Mode = Literal["online", "cached", "precomputed"]


class ServingPolicy:
    """The online policy, and the base of the others: never reads or writes predictions."""

    reads_predictions: ClassVar[bool] = False
    refreshes_on_write: ClassVar[bool] = False
    label: ClassVar[str] = "model"

    def reads(self, use_cache: bool) -> bool:
        """Read the predictions view for a request (``"cache": false`` never does)."""
        return self.reads_predictions and use_cache

    def reuse(
        self, batch: FeatureBatch, columns: dict[str, np.ndarray], fields: Sequence[str]
    ) -> tuple[np.ndarray, list[str]]:
        """Rows answered from the predictions view (bool per row), and each row's request key."""
        return np.zeros(len(batch.missing), bool), [""] * len(batch.missing)

    def must_default(self, reused: np.ndarray, use_cache: bool) -> np.ndarray:
        """Rows the policy answers with the default (on top of the rules' own defaults)."""
        return np.zeros(len(reused), bool)

    def scored(self, new: NewPredictions, use_cache: bool) -> None:
        """The model answered these rows."""

    async def write_now(self, new: NewPredictions) -> bool:
        """Store predictions now (awaited); False if the store failed."""
        return True

    async def start(self) -> None:
        """At server start-up, inside the event loop: background work the policy needs."""
        return None

    async def close(self, flush_timeout_s: float) -> None:
        return None


class OnlinePolicy(ServingPolicy):
    """Features + model on every request."""


class CachedPolicy(ServingPolicy):
    """Serve fresh cached predictions (``transformer.cache.Freshness``); the model's answers
    are written back in the background, a producer's refreshes before acknowledging."""

    reads_predictions = True
    refreshes_on_write = True
    label = "cache"

    def __init__(self, freshness: Freshness, writer: PredictionWriter, metrics: Metrics):
        self.freshness, self.writer, self.metrics = freshness, writer, metrics

    def reuse(
        self, batch: FeatureBatch, columns: dict[str, np.ndarray], fields: Sequence[str]
    ) -> tuple[np.ndarray, list[str]]:
        n = len(batch.missing)
        keys = request_keys(columns, fields, n)
        if batch.cached is None:
            return np.zeros(n, bool), keys
        cached = batch.cached
        reused = self.freshness.fresh(cached, batch.feature_ts, keys) & ~batch.missing
        stale = cached.present & ~reused & ~batch.missing
        for counter, rows in (
            (self.metrics.cache_hits, reused),
            (self.metrics.cache_stale, stale),
            (self.metrics.cache_misses, ~reused & ~batch.missing),
        ):
            if count := int(np.count_nonzero(rows)):  # no lock taken for a zero
                counter.inc(count)
        return reused, keys

    def scored(self, new: NewPredictions, use_cache: bool) -> None:
        self.freshness.versions.note(new.version)
        if use_cache:
            self.writer.submit(new.user_ids, new.scores, new.version, new.features_ts, new.keys)

    async def write_now(self, new: NewPredictions) -> bool:
        self.freshness.versions.note(new.version)
        return await self.writer.write(new.rows())

    async def close(self, flush_timeout_s: float) -> None:
        await self.writer.close(flush_timeout_s)


class PrecomputedPolicy(ServingPolicy):
    """Serve the batch job's predictions (any request context) younger than ``max_age_s``;
    users it missed get the model, or the default with ``fallback="default"``."""

    reads_predictions = True
    label = "precomputed"
    # transformer.generations.CommittedGeneration: only a committed batch run's rows are served
    generations: Any = None

    def __init__(self, max_age_s: float, fallback: Literal["model", "default"] = "model"):
        self.max_age_s = max_age_s
        self.fallback_default = fallback == "default"

    def reuse(
        self, batch: FeatureBatch, columns: dict[str, np.ndarray], fields: Sequence[str]
    ) -> tuple[np.ndarray, list[str]]:
        n = len(batch.missing)
        if batch.cached is None:
            return np.zeros(n, bool), [""] * n
        cached = batch.cached
        now_us = int(time.time() * 1e6)
        reused = cached.present & (now_us - cached.written_ts <= self.max_age_s * 1e6)
        if self.generations is not None:
            reused &= self.generations.servable(cached.request_key)
        return reused, [""] * n

    def must_default(self, reused: np.ndarray, use_cache: bool) -> np.ndarray:
        if self.fallback_default and use_cache:  # "cache": false always asks the model
            return ~reused
        return np.zeros(len(reused), bool)

    async def start(self) -> None:
        if self.generations is not None:
            await self.generations.start()

    async def close(self, flush_timeout_s: float) -> None:
        if self.generations is not None:
            self.generations.stop()


POLICIES: dict[str, type[ServingPolicy]] = {
    "online": OnlinePolicy,
    "cached": CachedPolicy,
    "precomputed": PrecomputedPolicy,
}


def policy_class(mode: Mode) -> type[ServingPolicy]:
    return POLICIES[mode]


def build_policy(
    mode: Mode,
    *,
    max_age_s: float,
    metrics: Metrics,
    writer: Callable[[], PredictionWriter],
    fallback: Literal["model", "default"] = "model",
) -> ServingPolicy:
    """The policy of ``mode`` (the one place the mode's name is read); ``writer`` makes the
    write-back queue, called by the cached policy only."""
    cls = policy_class(mode)
    if cls is CachedPolicy:
        return CachedPolicy(Freshness(max_age_s, LiveVersions(max_age_s)), writer(), metrics)
    if cls is PrecomputedPolicy:
        return PrecomputedPolicy(max_age_s, fallback)
    return OnlinePolicy()
