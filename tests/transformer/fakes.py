"""Fakes for unit tests of the transformer (integration tests use the real parts)."""

from __future__ import annotations

import numpy as np

from predictor.protocol.artifact import FeatureSpec
from predictor.protocol.codec import TensorSpec
from transformer.features import CachedPredictions, FeatureBatch
from transformer.predictor_client import Prediction

FEATURES = [FeatureSpec(name="v__x", datatype="FP64"), FeatureSpec(name="v__k", datatype="INT64")]
# user id → (x, k, age in seconds); absent ids are unknown users
TABLE = {1: (0.9, 3, 60.0), 2: (0.1, 1, 60.0), 3: (0.5, 2, 10 * 86400.0)}


class FakeReader:
    join_key = "user_id"
    input_specs = [TensorSpec("user_id", "INT64"), TensorSpec("hour", "INT64")]
    request_fields = {"hour": TensorSpec("hour", "INT64")}
    short_to_full = {"x": "v__x"}
    model_features = FEATURES

    def __init__(self, stale_after_s: float = 86400.0, now: float | None = None):
        import time

        self.stale_after_s = stale_after_s
        self.now = now if now is not None else time.time()
        self.reads: list[bool] = []
        self.cache: dict[int, tuple] = {}  # user → CachedPredictions fields for that row
        self.down = False  # the online store is unreachable: read raises as the real one does

    async def close(self):
        return None

    async def read(self, columns, with_predictions=False):
        self.reads.append(with_predictions)
        if self.down:
            from transformer.errors import FeatureStoreUnavailable

            raise FeatureStoreUnavailable("online feature store read failed: connection refused")
        ids = columns["user_id"].tolist()
        n = len(ids)
        matrix = np.full((n, 2), np.nan)
        ts = np.zeros(n, dtype=np.int64)
        for i, u in enumerate(ids):
            if u in TABLE:
                x, k, age = TABLE[u]
                matrix[i] = (x, k)
                ts[i] = int((self.now - age) * 1e6)
        missing = np.isnan(matrix).any(axis=1)
        stale = ~missing & (self.now * 1e6 - ts > self.stale_after_s * 1e6)
        values = {
            "v__x": [None if m else v for m, v in zip(missing, matrix[:, 0].tolist(), strict=True)]
        }
        cached = None
        if with_predictions:
            cached = CachedPredictions.empty(n)
            for i, u in enumerate(ids):
                if u in self.cache:
                    score, version, fts, key, written = self.cache[u]
                    cached.present[i] = True
                    cached.score[i] = score
                    cached.model_version[i] = version
                    cached.features_ts[i] = fts
                    cached.request_key[i] = key
                    cached.written_ts[i] = written
        batch = FeatureBatch([f.name for f in FEATURES], matrix, missing, stale, ts, cached)
        return batch, values


class FakeClient:
    def __init__(self, version: str = "sklearn-abc"):
        self.calls: list[np.ndarray] = []
        self.version = version

    async def infer(self, features, matrix):
        self.calls.append(matrix.copy())
        return Prediction(matrix[:, 0].copy(), self.version)  # score = x

    async def close(self):
        return None
