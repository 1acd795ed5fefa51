"""Feast's Redis online-store format, read and written directly.

The layout Feast documents and writes: one hash per entity key
(``serialize_entity_key(key) + project``), one field per feature (``mmh3("<view>:<feature>")``)
holding a serialized ``ValueProto``, and ``_ts:<view>`` holding the row's event time as a
serialized ``Timestamp``. Keys and field hashes come from Feast's own helpers; parity with
Feast's SDK is tested in ``tests/transformer/test_redis_direct.py`` (reads) and
``tests/predictor/test_feast_redis.py`` (writes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import _mmh3
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from google.protobuf.timestamp_pb2 import Timestamp


class FeastRedisLayout:
    """Keys and fields of one Feast project on Redis."""

    def __init__(self, project: str, join_key: str, key_version: int):
        self.project = project.encode("utf-8")
        self.join_key = join_key
        self.key_version = key_version

    @classmethod
    def of(cls, store: Any, join_key: str) -> FeastRedisLayout:
        c = store.config
        return cls(c.project, join_key, c.entity_key_serialization_version)

    def key(self, entity: int) -> bytes:
        ek = EntityKey(join_keys=[self.join_key], entity_values=[Value(int64_val=entity)])
        return (
            serialize_entity_key(ek, entity_key_serialization_version=self.key_version)
            + self.project
        )

    @staticmethod
    def field(view: str, feature: str) -> bytes:
        return _mmh3(f"{view}:{feature}")

    @staticmethod
    def ts_field(view: str) -> str:
        return f"_ts:{view}"


def decode_value(raw: bytes | None) -> Any:
    if raw is None:
        return None
    v = Value.FromString(raw)
    which = v.WhichOneof("val")
    if which is None or which == "null_val":
        return None
    return getattr(v, which)


def decode_micros(raw: bytes | None) -> int:
    if raw is None:
        return 0
    t = Timestamp.FromString(raw)
    return t.seconds * 1_000_000 + t.nanos // 1000


_VALUE_FIELD = {
    "FP64": "double_val",
    "FP32": "float_val",
    "INT64": "int64_val",
    "INT32": "int32_val",
    "BOOL": "bool_val",
    "BYTES": "string_val",
}


def encode_value(datatype: str, value: Any) -> bytes:
    if value is None:
        return Value().SerializeToString()
    return Value(**{_VALUE_FIELD[datatype]: value}).SerializeToString()


def encode_timestamp(at: datetime) -> bytes:
    ts = Timestamp()
    ts.FromDatetime(at)
    return ts.SerializeToString()


def write_rows(
    client: Any,
    layout: FeastRedisLayout,
    view: str,
    columns: Sequence[tuple[str, str]],
    entities: Sequence[int],
    rows: Sequence[Sequence[Any]],
    at: datetime,
    key_ttl_seconds: int | None = None,
    pipeline_rows: int = 10_000,
) -> int:
    """HSET ``rows`` (one tuple per entity, values in ``columns`` order: (name, v2 datatype))
    into ``view`` with event time ``at``. Unlike Feast's writer it does not read the stored
    event time first: a batch job's rows are meant to replace what is there."""
    fields = [layout.field(view, name) for name, _ in columns]
    types = [t for _, t in columns]
    ts_field, ts_value = layout.ts_field(view), encode_timestamp(at)
    written = 0
    for start in range(0, len(entities), pipeline_rows):
        pipe = client.pipeline(transaction=False)
        for entity, row in zip(
            entities[start : start + pipeline_rows],
            rows[start : start + pipeline_rows],
            strict=True,
        ):
            key = layout.key(entity)
            mapping: dict[bytes | str, bytes] = {ts_field: ts_value}
            for f, t, v in zip(fields, types, row, strict=True):
                mapping[f] = encode_value(t, v)
            pipe.hset(key, mapping=mapping)
            if key_ttl_seconds:
                pipe.expire(key, key_ttl_seconds)
        pipe.execute()
        written += min(pipeline_rows, len(entities) - start)
    return written
