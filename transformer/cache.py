"""The prediction-cache seam. The online path asks the cache before calling the model and
tells it what the model answered; the default cache never hits.

A real cache (reading ``model_predictions`` in the same online-store round trip as the
features, writing back in the background) implements the same two methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass
class CacheLookup:
    """Per-row cached answers: ``hit[i]`` says whether ``score[i]``/``version[i]`` are usable."""

    hit: np.ndarray
    score: np.ndarray
    version: list[str]


class PredictionCache(Protocol):
    async def lookup(
        self, user_ids: np.ndarray, feature_ts: np.ndarray, model_version: str
    ) -> CacheLookup: ...

    def store(
        self, user_ids: np.ndarray, feature_ts: np.ndarray, scores: np.ndarray, model_version: str
    ) -> None: ...

    async def close(self) -> None: ...


class NoCache:
    """Always a miss; stores nothing."""

    async def lookup(
        self, user_ids: np.ndarray, feature_ts: np.ndarray, model_version: str
    ) -> CacheLookup:
        n = len(user_ids)
        return CacheLookup(np.zeros(n, dtype=bool), np.zeros(n), [""] * n)

    def store(
        self, user_ids: np.ndarray, feature_ts: np.ndarray, scores: np.ndarray, model_version: str
    ) -> None:
        return None

    async def close(self) -> None:
        return None
