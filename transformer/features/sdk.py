"""Online reads through Feast's SDK (``get_online_features``): any online store.

Stores with async reads (Redis) are awaited on the event loop; the others (SQLite) run in a
worker thread through ``in_thread`` (the reader's lock: Feast's SQLite store shares one
connection between threads). On Redis the direct reader (``redis_direct``) is the default
and this one is its parity reference.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from predictor.protocol import predictions
from transformer.features.layout import FeatureLayout, Fetched

PRESENT = 1  # feast FieldStatus.PRESENT


class SdkFetch:
    def __init__(
        self,
        store: Any,
        layout: FeatureLayout,
        use_async: bool,
        in_thread: Callable[..., Awaitable[Any]],
    ):
        self.store, self.layout = store, layout
        self.use_async, self.in_thread = use_async, in_thread
        self.refs: list[str] = [
            f"{p.name}:{f.name}"
            for p in layout.service.feature_view_projections
            for f in p.features
        ]

    async def fetch(self, rows: dict[str, list], with_predictions: bool) -> Fetched:
        features: Any = self.layout.service
        views = dict(self.layout.batch_views)
        if with_predictions:
            pview = self.layout.predictions_view
            assert pview is not None
            features = self.refs + [f"{pview}:{f}" for f in predictions.FIELDS]
            views[pview] = list(predictions.FIELDS)
        if self.use_async:
            response = await self.store.get_online_features_async(
                features=features, entity_rows=rows, full_feature_names=False
            )
        else:
            response = await self.in_thread(
                self.store.get_online_features,
                features=features,
                entity_rows=rows,
                full_feature_names=False,
            )
        proto = response.proto
        index = {name: i for i, name in enumerate(proto.metadata.feature_names.val)}
        n = len(rows[self.layout.join_key])
        present: dict[str, np.ndarray] = {}
        ts: dict[str, np.ndarray] = {}
        for view, shorts in views.items():
            ok = np.ones(n, bool)
            latest = np.zeros(n, np.int64)
            for short in shorts:
                res = proto.results[index[short]]
                ok &= np.fromiter((s == PRESENT for s in res.statuses), bool, n)
                latest = np.maximum(latest, _micros(res.event_timestamps, n))
            # Feast's Redis store reports absent fields as PRESENT with an empty value and
            # event time 0; a row that exists always has a real event time.
            present[view], ts[view] = ok & (latest > 0), latest
        return Fetched(response.to_dict(), present, ts)

    async def drop_idle(self) -> None:
        return None

    async def close(self) -> None:
        return None


def _micros(timestamps: Any, n: int) -> np.ndarray:
    return np.fromiter((t.seconds * 1_000_000 + t.nanos // 1000 for t in timestamps), np.int64, n)
