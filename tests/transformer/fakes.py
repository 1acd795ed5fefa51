"""Fakes for unit tests of the transformer (integration tests use the real parts)."""

from __future__ import annotations

import numpy as np

from predictor.artifact import FeatureSpec
from predictor.codec import TensorSpec
from transformer.cache import CacheLookup
from transformer.features import FeatureBatch
from transformer.predictor_client import Prediction

FEATURES = [FeatureSpec(name="v__x", datatype="FP64"), FeatureSpec(name="v__k", datatype="INT64")]
# user id → (x, k, age in seconds); absent ids are unknown users
TABLE = {1: (0.9, 3, 60.0), 2: (0.1, 1, 60.0), 3: (0.5, 2, 10 * 86400.0)}


class FakeReader:
    join_key = "user_id"
    input_specs = [TensorSpec("user_id", "INT64"), TensorSpec("hour", "INT64")]

    def __init__(self, stale_after_s: float = 86400.0, now: float = 1_800_000_000.0):
        self.stale_after_s, self.now, self.reads = stale_after_s, now, 0

    async def read(self, columns):
        self.reads += 1
        ids = columns["user_id"].tolist()
        n = len(ids)
        matrix = np.full((n, 2), np.nan)
        ts = np.zeros(n, dtype=np.int64)
        for i, u in enumerate(ids):
            if u in TABLE:
                x, k, age = TABLE[u]
                matrix[i] = (x, k)
                ts[i] = int(self.now - age)
        missing = np.isnan(matrix).any(axis=1)
        stale = ~missing & (self.now - ts > self.stale_after_s)
        values = {
            "v__x": [None if m else v for m, v in zip(missing, matrix[:, 0].tolist(), strict=True)]
        }
        return FeatureBatch([f.name for f in FEATURES], matrix, missing, stale, ts), values


class FakeClient:
    def __init__(self, version: str = "sklearn-abc"):
        self.calls: list[np.ndarray] = []
        self.version = version

    async def infer(self, features, matrix):
        self.calls.append(matrix.copy())
        return Prediction(matrix[:, 0].copy(), self.version)  # score = x

    async def close(self):
        return None


class FakeCache:
    def __init__(self, hits: dict[int, tuple[float, str]]):
        self.hits, self.stored = hits, []

    async def lookup(self, user_ids, feature_ts, model_version):
        ids = user_ids.tolist()
        hit = np.array([u in self.hits for u in ids])
        score = np.array([self.hits.get(u, (0.0, ""))[0] for u in ids])
        return CacheLookup(hit, score, [self.hits.get(u, (0.0, ""))[1] for u in ids])

    def store(self, user_ids, feature_ts, scores, model_version):
        self.stored.append((user_ids.tolist(), scores.tolist(), model_version))

    async def close(self):
        return None
