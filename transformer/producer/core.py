"""Data-producer writes: new feature rows in, fresh predictions out.

``Producer.write(rows)`` validates the rows, writes them to the online store with the current
time as their event time, and, when the serving policy refreshes on write (cached mode),
recomputes the cached predictions of those users through the predictor and stores them
(``ServingPolicy.write_now``) before acknowledging, so the next read is a fresh hit.

Failures: the store down or timing out is ``FeatureStoreUnavailable`` (503), the predictor
``PredictorUnavailable``/``PredictorTimeout`` (503/504). A 503 means the write may or may not
have been applied (the store may have applied it before the timeout): writes are idempotent,
so the client retries. An acknowledgement means the rows reached Redis; whether they are on
disk depends on Redis' ``appendfsync`` (docs/reliability.md, "Durability").

Invariant: once a write is acknowledged, no request that starts afterwards gets a prediction
computed from older features. It holds whatever else is in flight, because a cached prediction
is served only when its ``features_timestamp`` is at least the user's current feature time,
and the features are written before the acknowledgement.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from kserve.errors import InvalidInput

from transformer.cache import NewPredictions, request_keys
from transformer.errors import FeatureStoreUnavailable
from transformer.features import FeatureReader, v2_type
from transformer.metrics import Metrics
from transformer.policy import ServingPolicy
from transformer.predictor_client import PredictorClient

MAX_ROWS = 10_000
_INT_TYPES = {"INT64", "INT32"}


class Producer:
    """Writes feature rows for one feature view and refreshes the affected predictions.

    ``reader`` reads and writes the online store; ``policy`` is the serving mode's (it decides
    whether a write refreshes predictions, and stores them); ``predictor`` gives the predictor
    client (the model's, created inside the event loop on first use).
    """

    def __init__(
        self,
        reader: FeatureReader,
        view: str,
        policy: ServingPolicy,
        predictor: Callable[[], PredictorClient],
        metrics: Metrics,
    ):
        self.reader, self.view, self.policy = reader, view, policy
        self.predictor, self.metrics = predictor, metrics
        fv = reader.store.get_feature_view(view)
        self.fields = {f.name: v2_type(f.dtype) for f in fv.features}
        self.join_key = reader.join_key

    def _frame(self, rows: Any) -> tuple[pd.DataFrame, dict[str, np.ndarray] | None]:
        if not isinstance(rows, list) or not rows:
            raise InvalidInput('"rows" must be a non-empty list of objects')
        if len(rows) > MAX_ROWS:
            raise InvalidInput(f"{len(rows)} rows exceed the limit of {MAX_ROWS} per write")
        want = {self.join_key, *self.fields}
        optional = set(self.reader.request_fields)
        ctx_rows = 0
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise InvalidInput(f"row {i}: must be an object")
            missing = sorted(want - set(row))
            unknown = sorted(set(row) - want - optional)
            if missing or unknown:
                raise InvalidInput(f"row {i}: missing {missing}, unknown {unknown}")
            ctx_rows += bool(optional & set(row))
            for name, dtype in [(self.join_key, "INT64"), *self.fields.items()]:
                v = row[name]
                ok = isinstance(v, int) if dtype in _INT_TYPES else isinstance(v, int | float)
                if not ok or isinstance(v, bool):
                    raise InvalidInput(f"row {i}: '{name}' must be a {dtype} number, got {v!r}")
        if ctx_rows not in (0, len(rows)):
            raise InvalidInput("give the request fields on every row or on none")
        df = pd.DataFrame([{k: r[k] for k in want} for r in rows])
        ctx = None
        if ctx_rows:
            ctx = {
                s.name: np.array([r[s.name] for r in rows])
                for s in self.reader.request_fields.values()
            }
        return df, ctx

    async def write(self, rows: Any) -> dict[str, Any]:
        """Write ``rows`` (a list of objects: the join key and every field of the view, with
        the request fields on every row or none); returns what the route answers."""
        df, ctx = self._frame(rows)
        now = datetime.now(UTC)
        df["event_timestamp"] = now
        df["created"] = now
        await self.reader.write(self.view, df)  # FeatureStoreUnavailable (503) if it fails
        self.metrics.producer_rows.inc(len(df))
        ids = df[self.join_key].to_numpy(np.int64)
        refreshed = await self.refresh(ids, ctx) if self.policy.refreshes_on_write else 0
        return {"written": len(df), "refreshed": refreshed, "features_timestamp": now.isoformat()}

    async def refresh(self, ids: np.ndarray, ctx: dict[str, np.ndarray] | None) -> int:
        """Recompute and store the predictions of ``ids`` (awaited, not queued)."""
        fields = list(self.reader.request_fields)
        if ctx is None:  # re-score each user's last cached request context
            dummy = {self.join_key: ids, **{f: np.zeros(len(ids)) for f in fields}}
            batch, _ = await self.reader.read(dummy, with_predictions=True)
            assert batch.cached is not None
            keep = batch.cached.present & np.array([bool(k) for k in batch.cached.request_key])
            if not keep.any():
                return 0
            ids = ids[keep]
            parsed = [
                _parse_key(k) for k, y in zip(batch.cached.request_key, keep, strict=True) if y
            ]
            ctx = {f: np.array([p[f] for p in parsed]) for f in fields}
        columns = {self.join_key: ids, **ctx}
        batch, _ = await self.reader.read(columns)
        ok = ~batch.missing
        if not ok.any():
            return 0
        pred = await self.predictor().infer(self.reader.model_features, batch.matrix[ok])
        keys = request_keys(columns, fields, len(ids))
        kept = [k for k, y in zip(keys, ok, strict=True) if y]
        new = NewPredictions(ids[ok], pred.scores, pred.model_version, batch.feature_ts[ok], kept)
        if not await self.policy.write_now(new):
            raise FeatureStoreUnavailable(
                "features written, but refreshing their predictions failed"
            )
        return len(kept)


def _parse_key(key: str) -> dict[str, Any]:
    out = {}
    for part in key.split("|"):
        name, _, value = part.partition("=")
        out[name] = ast.literal_eval(value)
    return out
