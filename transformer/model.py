"""The transformer as a ``kserve.Model``.

preprocess:  decode → online features (+ on-demand, + cached predictions in the same read)
predict:     rows without a usable cached/precomputed answer go to the predictor in one call
postprocess: business rules → per-row outputs in the request's protocol
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from kserve import Model
from kserve.protocol.infer_type import InferRequest, InferResponse

from predictor.protocol.artifact import FeatureSpec
from transformer.cache import NewPredictions
from transformer.codec import (
    OUTPUTS,
    Answer,
    Decoded,
    Passthrough,
    decode,
    decode_passthrough,
    encode,
    encode_passthrough,
)
from transformer.errors import FeatureStoreUnavailable
from transformer.features import FeatureBatch, FeatureReader
from transformer.metrics import Metrics
from transformer.multimodel.ensemble import member_columns
from transformer.policy import ServingPolicy
from transformer.predictor_client import Prediction, PredictorClient
from transformer.rules import BusinessRules

log = logging.getLogger(__name__)


@dataclass
class Pending:
    """What preprocess hands to predict."""

    decoded: Decoded
    features: FeatureBatch
    feature_values: dict[str, list[Any]]
    reused: np.ndarray  # bool per row: answered from the predictions view
    keys: list[str]  # request key per row
    store_unavailable: bool = False  # degraded mode: the store failed, every row defaults


class FeastTransformer(Model):
    monitor: Any = None  # transformer.monitoring.views.Monitoring, set by server.build
    # transformer.multimodel.feedback.PredictionRecorder when the bandit is on: a
    # prediction_id per scored row, its record stored off the request path
    recorder: Any = None
    bandit: Any = None  # transformer.multimodel.arms.Bandit (its lifecycle), set by server.build

    def __init__(
        self,
        name: str,
        reader: FeatureReader,
        client_factory: Callable[[], PredictorClient],
        rules: BusinessRules,
        policy: ServingPolicy,
        metrics: Metrics,
        *,
        max_batch_size: int,
        version: str = "",
    ):
        """``reader`` gives the features in the model's order (``reader.model_features``);
        ``policy`` is the serving mode (``transformer.policy.build_policy``)."""
        super().__init__(name)
        # Reported in the v2 metadata (``versions``) and served on versioned paths: the
        # predictor model version this transformer was started against.
        self.version = version
        self.reader = reader
        self.model_features: list[FeatureSpec] = reader.model_features
        self.rules = rules
        self.policy = policy
        self.max_batch_size = max_batch_size
        self.metrics = metrics
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
        if self.recorder is not None:
            return [*OUTPUTS, {"name": "prediction_id", "datatype": "BYTES", "shape": [-1]}]
        return OUTPUTS

    def validate(self, payload: Any) -> Any:
        return payload

    async def preprocess(
        self, payload: dict | InferRequest, headers: dict[str, str] | None = None
    ) -> Pending | Passthrough:
        passthrough = decode_passthrough(payload, self.model_features, self.max_batch_size)
        if passthrough is not None:
            return passthrough
        decoded = decode(payload, self.reader.input_specs, self.max_batch_size)
        use_store = self.policy.reads(decoded.use_cache)
        try:
            batch, values = await self.reader.read(decoded.columns, with_predictions=use_store)
        except FeatureStoreUnavailable:
            if self.rules.store_unavailable != "default":
                raise
            return self._unavailable(decoded)
        if not use_store:
            n = decoded.n
            return Pending(decoded, batch, values, np.zeros(n, bool), [""] * n)
        reused, keys = self.policy.reuse(batch, decoded.columns, list(self.reader.request_fields))
        return Pending(decoded, batch, values, reused, keys)

    def _unavailable(self, decoded: Decoded) -> Pending:
        """Degraded mode: the store is down, so every row gets the rules' default answer."""
        n = decoded.n
        names = [f.name for f in self.model_features]
        batch = FeatureBatch(
            names,
            np.full((n, len(names)), np.nan),
            np.ones(n, bool),
            np.zeros(n, bool),
            np.zeros(n, np.int64),
        )
        values: dict[str, list[Any]] = {
            name: [None] * n for name in self.reader.short_to_full.values()
        }
        return Pending(decoded, batch, values, np.zeros(n, bool), [""] * n, store_unavailable=True)

    def _needs_default(self, p: Pending) -> np.ndarray:
        batch = p.features
        default = batch.missing & ~p.reused
        if self.rules.stale_features == "default":
            default |= batch.stale & ~p.reused
        return default | self.policy.must_default(p.reused, p.decoded.use_cache)

    async def predict(
        self,
        payload: Pending | Passthrough,
        headers: dict[str, str] | None = None,
        response_headers: Any = None,
    ) -> Answer | InferResponse:
        if isinstance(payload, Passthrough):
            pred = await self.client.infer(self.model_features, payload.matrix)
            self.metrics.predictions.labels(source="passthrough").inc(len(pred.scores))
            return encode_passthrough(
                payload.request_id, self.name, pred.scores, pred.model_version
            )
        batch = payload.features
        n = payload.decoded.n
        reused = payload.reused
        to_model = ~self._needs_default(payload) & ~reused
        score = np.full(n, self.rules.default_score, dtype=np.float64)
        version = [""] * n
        source = ["default"] * n
        scored: Prediction | None = None  # the model's answer for the rows in idx
        idx = np.flatnonzero(to_model)
        if reused.any():
            cached = batch.cached
            assert cached is not None
            label = self.policy.label
            for i in np.flatnonzero(reused).tolist():
                score[i] = cached.score[i]
                version[i] = cached.model_version[i]
                source[i] = label
        if to_model.any():
            pred = scored = await self.client.infer(self.model_features, batch.matrix[idx])
            score[idx] = pred.scores
            for i in idx.tolist():
                version[i] = pred.model_version
                source[i] = "model"
            new = NewPredictions(
                payload.decoded.columns[self.reader.join_key][idx],
                pred.scores,
                pred.model_version,
                batch.feature_ts[idx],
                [payload.keys[i] for i in idx.tolist()],
            )
            self.policy.scored(new, payload.decoded.use_cache)
        if self.monitor is not None:  # drift + quality: vectorized counts, no per-row work
            users = payload.decoded.columns[self.reader.join_key]
            self.monitor.observe(batch.matrix, np.where(to_model | reused, score, np.nan), users)
        for label in set(source):
            self.metrics.predictions.labels(source=label).inc(source.count(label))
        ids: list[str] = []
        if self.recorder is not None:
            users = payload.decoded.columns[self.reader.join_key]
            ids = self.recorder.record(users, score, version)
        if payload.store_unavailable:
            status = np.full(n, "unavailable")
        else:
            status = np.where(batch.missing, "missing", np.where(batch.stale, "stale", "present"))
        return Answer(
            payload.decoded,
            score,
            model_version=version,
            source=source,
            feature_status=status.tolist(),
            features=payload.feature_values if payload.decoded.return_features else {},
            prediction_id=ids,
            members=(
                member_columns(self.client, scored, idx, n)
                if payload.decoded.return_members
                else {}
            ),
        )

    async def postprocess(
        self,
        result: Answer | InferResponse,
        headers: dict[str, str] | None = None,
        response_headers: Any = None,
    ) -> InferResponse | dict[str, Any]:
        if isinstance(result, InferResponse):  # passthrough: the predictor's answer as it is
            return result
        is_default = np.array([s == "default" for s in result.source])
        scored = self.rules.clamp(result.score)
        decisions = self.rules.decide(scored)
        result.score = np.where(is_default, self.rules.default_score, scored)
        result.decision = [
            self.rules.default_decision if d else dec
            for d, dec in zip(is_default, decisions, strict=True)
        ]
        return encode(result, self.name, self.reader.join_key)

    async def close(self, flush_timeout_s: float = 10.0) -> None:
        await self.policy.close(flush_timeout_s)
        if self._client is not None:
            await self._client.close()
        await self.reader.close()
