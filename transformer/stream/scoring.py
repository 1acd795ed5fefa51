"""The model call for a batch of changed users: the same feature vector as online serving.

The new ``user_data`` values go through the reader's own assembly
(``transformer.features.layout.FeatureLayout``: ``on_demand`` runs the on-demand views'
transformations, ``assemble`` builds the model's matrix), exactly as if they had been read
from the store, and the matrix goes to a ``PredictorClient``: the
collocated in-process client (``--model_dir``, the predictor's loader) or v2 REST/gRPC to the
predictor. The request key is the cached mode's (``transformer.cache.request_keys``), so the
transformer serves these predictions to requests with the same request-time fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from transformer.cache import request_keys
from transformer.features import FeatureReader
from transformer.features.layout import Fetched
from transformer.predictor_client import PredictorClient
from transformer.rules import BusinessRules


@dataclass
class Scored:
    raw: np.ndarray  # the model's scores (what the predictions view holds, as cached mode)
    scores: np.ndarray  # clamped by the rules (what the decision is made on)
    decisions: list[str]
    model_version: str
    request_keys: list[str]


class Scoring:
    def __init__(
        self,
        reader: FeatureReader,
        client: PredictorClient,
        rules: BusinessRules,
        features_view: str,
        default_context: dict[str, float],
    ):
        self.reader, self.client, self.rules = reader, client, rules
        self.view = features_view
        self.fields = reader.request_fields  # name → TensorSpec
        missing = sorted(set(self.fields) - set(default_context))
        if missing:
            raise ValueError(f"default_context lacks the request fields {missing}")
        self.default_context = default_context

    def columns(self, users: list[int], contexts: list[dict[str, Any] | None]) -> dict[str, Any]:
        cols: dict[str, Any] = {self.reader.join_key: np.asarray(users, np.int64)}
        for name, spec in self.fields.items():
            dtype = np.int64 if spec.datatype in ("INT64", "INT32") else np.float64
            cols[name] = np.asarray(
                [
                    (c or self.default_context).get(name, self.default_context[name])
                    for c in contexts
                ],
                dtype,
            )
        return cols

    def matrix(
        self, columns: dict[str, Any], rows: list[dict[str, float | int]], ts_us: list[int]
    ) -> np.ndarray:
        n = len(rows)
        values: dict[str, list[Any]] = {
            short: [r[short] for r in rows] for short in self.reader.batch_views[self.view]
        }
        present = {self.view: np.ones(n, bool)}
        ts = {self.view: np.asarray(ts_us, np.int64)}
        self.reader.layout.on_demand(values, {k: v.tolist() for k, v in columns.items()})
        batch, _ = self.reader.layout.assemble(Fetched(values, present, ts), n)
        return batch.matrix

    async def score(
        self,
        users: list[int],
        rows: list[dict[str, float | int]],
        ts_us: list[int],
        contexts: list[dict[str, Any] | None],
    ) -> Scored:
        cols = self.columns(users, contexts)
        x = self.matrix(cols, rows, ts_us)
        pred = await self.client.infer(self.reader.model_features, x)
        scores = self.rules.clamp(pred.scores)
        decisions = list(self.rules.decide(scores))
        keys = request_keys(cols, list(self.fields), len(users))
        return Scored(pred.scores, scores, decisions, pred.model_version, keys)
