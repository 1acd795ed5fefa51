"""The transformer as a ``kserve.Model``.

preprocess:  decode → online features (+ on-demand, + cached predictions in the same read)
predict:     rows without a usable cached/precomputed answer go to the predictor in one call
postprocess: business rules → per-row outputs in the request's protocol
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from kserve import Model
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from predictor.protocol.artifact import FeatureSpec
from predictor.protocol.codec import TensorSpec, decode_v2
from transformer.cache import Freshness, PredictionWriter, request_keys
from transformer.codec import OUTPUTS, Answer, Decoded, decode, encode
from transformer.errors import FeatureStoreUnavailable
from transformer.features import FeatureBatch, FeatureReader
from transformer.metrics import Metrics
from transformer.multimodel.ensemble import member_columns
from transformer.predictor_client import Prediction, PredictorClient
from transformer.rules import BusinessRules

log = logging.getLogger(__name__)

Mode = Literal["online", "cached", "precomputed"]


@dataclass
class Passthrough:
    """A v2 request that already carries the model's features: forwarded as it is."""

    matrix: np.ndarray
    request_id: str


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
    generations: Any = None  # transformer.generations.CommittedGeneration (precomputed mode)

    def __init__(
        self,
        name: str,
        reader: FeatureReader,
        model_features: list[FeatureSpec],
        client_factory: Any,
        rules: BusinessRules,
        max_batch_size: int,
        metrics: Metrics,
        mode: Mode = "online",
        freshness: Freshness | None = None,
        writer: PredictionWriter | None = None,
        precomputed_fallback: Literal["model", "default"] = "model",
        version: str = "",
    ):
        super().__init__(name)
        # Reported in the v2 metadata (``versions``) and served on versioned paths: the
        # predictor model version this transformer was started against.
        self.version = version
        if mode != "online" and freshness is None:
            raise ValueError(f"mode {mode!r} needs a Freshness policy")
        if mode == "cached" and writer is None:
            raise ValueError("mode 'cached' needs a PredictionWriter")
        self.reader = reader
        self.model_features = model_features
        self.rules = rules
        self.max_batch_size = max_batch_size
        self.metrics = metrics
        self.mode = mode
        self.freshness = freshness
        self.writer = writer
        self.precomputed_fallback = precomputed_fallback
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

    def _is_passthrough(self, payload: Any) -> bool:
        if not isinstance(payload, InferRequest) or not payload.inputs:
            return False
        names = {i.name for i in payload.inputs}
        return names == {f.name for f in self.model_features}

    async def preprocess(
        self, payload: dict | InferRequest, headers: dict[str, str] | None = None
    ) -> Pending | Passthrough:
        if self._is_passthrough(payload):
            assert isinstance(payload, InferRequest)
            specs = [TensorSpec(f.name, f.datatype) for f in self.model_features]
            cols, _ = decode_v2(payload, specs, self.max_batch_size)
            matrix = np.column_stack([cols[s.name].astype(np.float64) for s in specs])
            return Passthrough(matrix, payload.id or "")
        decoded = decode(payload, self.reader.input_specs, self.max_batch_size)
        use_store = self.mode != "online" and decoded.use_cache
        n = decoded.n
        try:
            batch, values = await self.reader.read(decoded.columns, with_predictions=use_store)
        except FeatureStoreUnavailable:
            if self.rules.store_unavailable != "default":
                raise
            return self._unavailable(decoded)
        fields = list(self.reader.request_fields)
        keys = request_keys(decoded.columns, fields, n) if use_store else [""] * n
        reused = np.zeros(n, bool)
        if use_store and batch.cached is not None and self.freshness is not None:
            cached = batch.cached
            if self.mode == "cached":
                reused = self.freshness.fresh(cached, batch.feature_ts, keys) & ~batch.missing
                stale = cached.present & ~reused & ~batch.missing
                self.metrics.cache_hits.inc(int(reused.sum()))
                self.metrics.cache_stale.inc(int(stale.sum()))
                self.metrics.cache_misses.inc(int((~reused & ~batch.missing).sum()))
            else:  # precomputed: batch scores, any request context, younger than max age
                now_us = int(time.time() * 1e6)
                reused = cached.present & (
                    now_us - cached.written_ts <= self.freshness.max_age_s * 1e6
                )
                if self.generations is not None:  # only a committed batch run's rows
                    reused &= self.generations.servable(cached.request_key)
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
        fallback_default = self.mode == "precomputed" and self.precomputed_fallback == "default"
        if fallback_default and p.decoded.use_cache:  # "cache": false always asks the model
            default |= ~p.reused
        return default

    async def predict(
        self,
        payload: Pending | Passthrough,
        headers: dict[str, str] | None = None,
        response_headers: Any = None,
    ) -> Answer | InferResponse:
        if isinstance(payload, Passthrough):
            pred = await self.client.infer(self.model_features, payload.matrix)
            self.metrics.predictions.labels(source="passthrough").inc(len(pred.scores))
            n = len(pred.scores)
            return InferResponse(
                response_id=payload.request_id,
                model_name=self.name,
                model_version=pred.model_version,
                infer_outputs=[
                    InferOutput("probability", [n], "FP64", pred.scores.tolist()),
                    InferOutput("model_version", [n], "BYTES", [pred.model_version] * n),
                ],
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
            label = "cache" if self.mode == "cached" else "precomputed"
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
            if self.freshness is not None:
                self.freshness.versions.note(pred.model_version)
            if self.mode == "cached" and payload.decoded.use_cache and self.writer is not None:
                self.writer.submit(
                    payload.decoded.columns[self.reader.join_key][idx],
                    pred.scores,
                    pred.model_version,
                    batch.feature_ts[idx],
                    [payload.keys[i] for i in idx.tolist()],
                )
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
        if self.writer is not None:
            await self.writer.close(flush_timeout_s)
        if self._client is not None:
            await self._client.close()
        await self.reader.close()
