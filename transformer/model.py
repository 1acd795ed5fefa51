"""The transformer as a ``kserve.Model``.

preprocess: decode → online features (+ on-demand) → cache lookup
predict:    call the predictor for the rows that need the model (one call per request)
postprocess: business rules → per-row outputs in the request's protocol
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from kserve import Model
from kserve.protocol.infer_type import InferRequest, InferResponse

from predictor.artifact import FeatureSpec
from transformer.cache import NoCache, PredictionCache
from transformer.codec import OUTPUTS, Answer, Decoded, decode, encode
from transformer.features import FeatureBatch, FeatureReader
from transformer.predictor_client import PredictorClient
from transformer.rules import BusinessRules

log = logging.getLogger(__name__)


@dataclass
class Pending:
    """What preprocess hands to predict: the request, its features, what the cache had."""

    decoded: Decoded
    features: FeatureBatch
    feature_values: dict[str, list[Any]]
    cached: np.ndarray  # bool per row
    cached_score: np.ndarray
    cached_version: list[str]


class FeastTransformer(Model):
    def __init__(
        self,
        name: str,
        reader: FeatureReader,
        model_features: list[FeatureSpec],
        client_factory: Any,
        rules: BusinessRules,
        max_batch_size: int,
        cache: PredictionCache | None = None,
    ):
        super().__init__(name)
        self.reader = reader
        self.model_features = model_features
        self.rules = rules
        self.max_batch_size = max_batch_size
        self.cache: PredictionCache = cache or NoCache()
        self._client_factory = client_factory
        self._client: PredictorClient | None = None
        self.ready = True

    @property
    def client(self) -> PredictorClient:
        # Created on first use, inside the running event loop (gRPC aio channels bind to it).
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def get_input_types(self) -> list[dict[str, Any]]:
        return [
            {"name": s.name, "datatype": s.datatype, "shape": [-1]} for s in self.reader.input_specs
        ]

    def get_output_types(self) -> list[dict[str, Any]]:
        return OUTPUTS

    def validate(self, payload: Any) -> Any:
        return payload

    async def preprocess(
        self, payload: dict | InferRequest, headers: dict[str, str] | None = None
    ) -> Pending:
        decoded = decode(payload, self.reader.input_specs, self.max_batch_size)
        batch, values = await self.reader.read(decoded.columns)
        n = decoded.n
        if decoded.use_cache:
            hit = await self.cache.lookup(
                decoded.columns[self.reader.join_key], batch.feature_ts, ""
            )
            cached, cached_score, cached_version = hit.hit & ~batch.missing, hit.score, hit.version
        else:
            cached, cached_score, cached_version = np.zeros(n, bool), np.zeros(n), [""] * n
        return Pending(decoded, batch, values, cached, cached_score, cached_version)

    def _needs_default(self, batch: FeatureBatch) -> np.ndarray:
        default = batch.missing.copy()
        if self.rules.stale_features == "default":
            default |= batch.stale
        return default

    async def predict(
        self, payload: Pending, headers: dict[str, str] | None = None, response_headers: Any = None
    ) -> Answer:
        batch = payload.features
        n = payload.decoded.n
        default = self._needs_default(batch)
        to_model = ~default & ~payload.cached
        score = np.full(n, self.rules.default_score, dtype=np.float64)
        version = [""] * n
        source = ["default"] * n
        if payload.cached.any():
            idx = np.flatnonzero(payload.cached)
            score[idx] = payload.cached_score[idx]
            for i in idx:
                version[i] = payload.cached_version[i]
                source[i] = "cache"
        if to_model.any():
            idx = np.flatnonzero(to_model)
            pred = await self.client.infer(self.model_features, batch.matrix[idx])
            score[idx] = pred.scores
            for i in idx:
                version[i] = pred.model_version
                source[i] = "model"
            self.cache.store(
                payload.decoded.columns[self.reader.join_key][idx],
                batch.feature_ts[idx],
                pred.scores,
                pred.model_version,
            )
        status = np.where(batch.missing, "missing", np.where(batch.stale, "stale", "present"))
        return Answer(
            payload.decoded,
            score,
            model_version=version,
            source=source,
            feature_status=status.tolist(),
            features=payload.feature_values if payload.decoded.return_features else {},
        )

    async def postprocess(
        self, result: Answer, headers: dict[str, str] | None = None, response_headers: Any = None
    ) -> InferResponse | dict[str, Any]:
        is_default = np.array([s == "default" for s in result.source])
        scored = self.rules.clamp(result.score)
        decisions = self.rules.decide(scored)
        result.score = np.where(is_default, self.rules.default_score, scored)
        result.decision = [
            self.rules.default_decision if d else dec
            for d, dec in zip(is_default, decisions, strict=True)
        ]
        return encode(result, self.name, self.reader.join_key)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
        await self.cache.close()
