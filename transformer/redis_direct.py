"""Online reads straight from Redis, in Feast's own storage format.

Feast's SDK spends most of a small read on registry resolution and protobuf conversion. The
Redis layout it writes is simple and stable (Feast's Redis online store docs): one hash per
entity key (``serialize_entity_key(key) + project``), one field per feature
(``mmh3("<view>:<feature>")``) holding a serialized ``ValueProto``, and ``_ts:<view>`` holding
the row's event time. So one ``HMGET`` per user fetches every feature of every view, the
predictions included, in one pipeline: one round trip per batch.

Everything is derived from Feast's registry and Feast's own helpers (key serialization, field
hashing, the client built from ``feature_store.yaml``), and the on-demand features run through
the view's own ``transform_dict``. ``tests/transformer/test_redis_direct.py`` checks parity
with ``FeatureStore.get_online_features`` for every feature type in the repo.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from predictor.feast_redis import FeastRedisLayout, decode_micros, decode_value
from transformer.features import PREDICTION_FIELDS, Fetched

if TYPE_CHECKING:
    from transformer.features import FeatureReader


class RedisDirect:
    def __init__(self, reader: FeatureReader):
        store = reader.store
        config = store.config
        self.reader = reader
        self.online_store = store._get_provider().online_store
        self.online_config = config.online_store
        self.layout_keys = FeastRedisLayout(
            config.project, reader.join_key, config.entity_key_serialization_version
        )
        self.join_key = reader.join_key
        # one HMGET field list: every batch feature, each view's _ts, then the predictions
        self.layout: list[tuple[str, list[str]]] = list(reader.batch_views.items())
        if reader.predictions_view is not None:
            self.pred_layout = (reader.predictions_view, list(PREDICTION_FIELDS))
        self.fields = self._fields(self.layout)
        self.fields_with_pred = (
            self._fields([*self.layout, self.pred_layout])
            if reader.predictions_view is not None
            else self.fields
        )

    @staticmethod
    def _fields(layout: list[tuple[str, list[str]]]) -> list[bytes | str]:
        out: list[bytes | str] = []
        for view, shorts in layout:
            out += [FeastRedisLayout.field(view, s) for s in shorts]
            out.append(FeastRedisLayout.ts_field(view))
        return out

    async def close(self) -> None:
        """Close Feast's async Redis client (it belongs to the running event loop)."""
        client = getattr(self.online_store, "_client_async", None)
        if client is not None:
            await client.aclose()
            self.online_store._client_async = None

    async def fetch(self, rows: dict[str, list], with_predictions: bool) -> Fetched:
        ids = rows[self.join_key]
        n = len(ids)
        layout = [*self.layout, self.pred_layout] if with_predictions else self.layout
        fields = self.fields_with_pred if with_predictions else self.fields
        client = await self.online_store._get_client_async(self.online_config)
        async with client.pipeline(transaction=False) as pipe:
            for entity in ids:
                pipe.hmget(self.layout_keys.key(entity), fields)
            replies = await pipe.execute()
        values: dict[str, list[Any]] = {}
        present: dict[str, np.ndarray] = {}
        ts: dict[str, np.ndarray] = {}
        col = 0
        for view, shorts in layout:
            for short in shorts:
                values[short] = [decode_value(r[col]) for r in replies]
                col += 1
            raw_ts = [r[col] for r in replies]
            col += 1
            present[view] = np.fromiter((t is not None for t in raw_ts), bool, n)
            ts[view] = np.fromiter((decode_micros(t) for t in raw_ts), np.int64, n)
        # on-demand features: the view's own transformation on the same inputs as Feast's
        if self.reader.odfvs:
            inputs = {**values, **{k: v for k, v in rows.items()}}
            for odfv in self.reader.odfvs:
                out = odfv.transform_dict(dict(inputs))
                for f in odfv.features:
                    values[f.name] = list(out[f.name])
        return Fetched(values, present, ts)
