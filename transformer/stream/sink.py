"""The online store side: users' current rows in, one atomic commit per user out.

A user's Feast hash (``predictor.feast_redis`` layout) holds the ``user_data`` features, the
``model_predictions`` fields and, next to them, the stream's fold state (``_stream:<view>``,
JSON: base row, counters, applied event ids) and a version (``_stream_v:<view>``). Feast reads
only its own fields, so the extra two are invisible to it.

``read`` fetches every user of a batch in one pipeline (one HMGET each). ``commit`` runs one
Lua script per user, all in one pipeline, that (1) checks the version is still the one read
(another worker may have committed the user since: then nothing is written and the user is
retried), (2) HSETs features + timestamp, prediction + timestamp, fold state and the next
version, and (3) XADDs the decision to the output stream. Features, prediction, applied ids
and output are therefore written together or not at all, so a replay (a crash before XACK)
finds its event ids applied and writes nothing: no double count, no second output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from google.protobuf.timestamp_pb2 import Timestamp

from predictor.feast_redis import FeastRedisLayout, decode_micros, decode_value, encode_value
from transformer.stream.fold import FEATURES, UserState

COMMIT = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if (cur or '') ~= ARGV[2] then return 0 end
local n = tonumber(ARGV[5])
local h = {}
for i = 6, 5 + 2 * n do h[#h + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(h))
local ttl = tonumber(ARGV[3])
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
local x = {KEYS[2], 'MAXLEN', '~', ARGV[4], '*'}
for i = 6 + 2 * n, #ARGV do x[#x + 1] = ARGV[i] end
redis.call('XADD', unpack(x))
return 1
"""


def timestamp_bytes(us: int) -> bytes:
    return Timestamp(seconds=us // 1_000_000, nanos=(us % 1_000_000) * 1000).SerializeToString()


@dataclass
class Current:
    """What the store holds for one user."""

    state: UserState
    version: bytes  # b"" when the stream never wrote this user


@dataclass
class Update:
    """One user's commit: new state + features, the prediction, the output entry."""

    user_id: int
    expected: bytes
    state: UserState
    features: dict[str, float | int]
    score: float
    model_version: str
    request_key: str
    written_us: int
    output: dict[str, str]


class RedisSink:
    def __init__(
        self,
        client: Any,
        layout: FeastRedisLayout,
        features_view: str,
        feature_types: dict[str, str],
        predictions_view: str,
        output_stream: str,
        output_maxlen: int,
        key_ttl_s: int | None,
    ):
        self.r = client
        self.layout = layout
        self.view, self.pview = features_view, predictions_view
        self.types = feature_types  # feature → v2 datatype (FP32 / INT64 ...)
        self.output_stream, self.output_maxlen = output_stream, output_maxlen
        self.ttl = key_ttl_s or 0
        self.feature_fields = [layout.field(features_view, f) for f in FEATURES]
        self.ts_field = layout.ts_field(features_view)
        self.state_field = f"_stream:{features_view}"
        self.version_field = f"_stream_v:{features_view}"
        self.read_fields = [
            *self.feature_fields,
            self.ts_field,
            self.state_field,
            self.version_field,
        ]
        p = layout.field
        self.pred_fields = [
            p(predictions_view, f)
            for f in ("score", "model_version", "features_timestamp", "request_key")
        ]
        self.pred_ts = layout.ts_field(predictions_view)
        self.script = client.register_script(COMMIT)

    def as_stored(self, row: dict[str, float | int]) -> dict[str, float | int]:
        """The values as the store will hold them (FP32 features rounded to float32), so the
        prediction is computed from exactly what a reader of the row gets back."""
        return {k: float(np.float32(v)) if self.types[k] == "FP32" else v for k, v in row.items()}

    async def read(self, users: list[int]) -> list[Current]:
        pipe = self.r.pipeline(transaction=False)
        for u in users:
            pipe.hmget(self.layout.key(u), self.read_fields)
        replies = await pipe.execute()
        return [self._current(r) for r in replies]

    def _current(self, reply: list[Any]) -> Current:
        *values, raw_ts, raw_state, version = reply
        row_us = decode_micros(raw_ts)
        row = dict(zip(FEATURES, (decode_value(v) for v in values), strict=True))
        fresh = UserState.start(row if raw_ts is not None else None, row_us)
        if raw_state is None:
            return Current(fresh, version or b"")
        state = UserState.from_json(orjson.loads(raw_state))
        if raw_ts is not None and state.ts_us != row_us:
            # someone else wrote the row since (a materialization, a producer write): it is
            # the new base; the applied ids still guard against replays
            state = UserState(fresh.base, fresh.base_us, ts_us=fresh.ts_us, seen=state.seen)
        return Current(state, version or b"")

    async def commit(self, updates: list[Update]) -> list[bool]:
        """Commit every update; False where the user changed since it was read."""
        pipe = self.r.pipeline(transaction=False)
        for u in updates:
            await self.script(  # queues EVALSHA (the pipeline loads the script if needed)
                keys=[self.layout.key(u.user_id), self.output_stream],
                args=self._args(u),
                client=pipe,
            )
        return [bool(x) for x in await pipe.execute()]

    def _args(self, u: Update) -> list[Any]:
        next_version = str(int(u.expected or b"0") + 1).encode()
        pairs: list[Any] = []
        for field, name in zip(self.feature_fields, FEATURES, strict=True):
            pairs += [field, encode_value(self.types[name], u.features[name])]
        pairs += [self.ts_field, timestamp_bytes(u.state.ts_us)]
        pf = self.pred_fields
        pairs += [
            pf[0],
            encode_value("FP64", u.score),
            pf[1],
            encode_value("BYTES", u.model_version),
        ]
        pairs += [pf[2], encode_value("INT64", u.state.ts_us)]
        pairs += [pf[3], encode_value("BYTES", u.request_key)]
        pairs += [self.pred_ts, timestamp_bytes(u.written_us)]
        pairs += [self.state_field, orjson.dumps(u.state.to_json())]
        pairs += [self.version_field, next_version]
        out: list[Any] = []
        for k, v in u.output.items():
            out += [k, v]
        return [
            self.version_field,
            u.expected,
            self.ttl,
            self.output_maxlen,
            len(pairs) // 2,
            *pairs,
            *out,
        ]
