"""The online store side: users' current rows in, one atomic commit per user out.

A user's Feast hash (``predictor.protocol.feast_redis`` layout) holds the ``user_data``
features, the ``model_predictions`` fields and, next to them, the stream's fold state
(``_stream:<view>``, JSON: base row, counters, applied event ids) and a version
(``_stream_v:<view>``). Feast reads only its own fields, so the extra two are invisible to it.

``read`` fetches every user of a batch in one pipeline (one HMGET each). ``commit`` runs one
Lua script per user, all in one pipeline, that (1) checks the version is still the one read
(another worker may have committed the user since: then nothing is written and the user is
retried), (2) HSETs features + timestamp, prediction + timestamp, fold state and the next
version, and (3) XADDs the decision to the output stream. Features, prediction, applied ids
and output are therefore written together or not at all, so a replay (a crash before XACK)
finds its event ids applied and writes nothing: no double count, no second output.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf.timestamp_pb2 import Timestamp

from predictor.protocol import predictions
from predictor.protocol.feast_redis import (
    FeastRedisLayout,
    decode_micros,
    decode_value,
    encode_value,
)
from transformer.stream.fold import FEATURES, UserState

# One call per batch: KEYS = the users' hashes, then the output stream; ARGV = version field,
# key TTL, output MAXLEN, and one blob of length-prefixed strings per user (packing a few
# arguments is far cheaper in redis-py than thousands). Per user, independently: compare the
# version, HSET, EXPIRE, XADD; the reply says which users were committed.
COMMIT = """
local vfield, ttl, maxlen = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local out = {}
local nusers = #KEYS - 1
local stream = KEYS[#KEYS]
for i = 1, nusers do
  local s = ARGV[3 + i]
  local count = struct.unpack('>I4', s, 1)
  local lpos, pos, k = 5, 5 + 4 * count, 0
  local function nxt()
    local n
    n, lpos = struct.unpack('>I4', s, lpos)
    local v = string.sub(s, pos, pos + n - 1)
    pos = pos + n
    k = k + 1
    return v
  end
  local expected = nxt()
  local cur = redis.call('HGET', KEYS[i], vfield)
  if (cur or '') ~= expected then
    out[i] = 0
  else
    local nh = tonumber(nxt())
    local h = {}
    for j = 1, 2 * nh do h[j] = nxt() end
    redis.call('HSET', KEYS[i], unpack(h))
    if ttl > 0 then redis.call('EXPIRE', KEYS[i], ttl) end
    local x = {stream, 'MAXLEN', '~', maxlen, '*'}
    while k < count do x[#x + 1] = nxt() end
    redis.call('XADD', unpack(x))
    out[i] = 1
  end
end
return out
"""

READ = """
local out = {}
for i, k in ipairs(KEYS) do out[i] = redis.call('HMGET', k, unpack(ARGV)) end
return out
"""


def _blob(items: list[bytes]) -> bytes:
    """The item count, every length, then the items (two C calls per user, not one per item)."""
    n = len(items)
    return struct.pack(f">I{n}I", n, *map(len, items)) + b"".join(items)


_F32 = struct.Struct("<f")


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
        self.pred_fields = [layout.field(predictions_view, f) for f in predictions.FIELDS]
        self.pred_ts = layout.ts_field(predictions_view)
        self.commit_script = client.register_script(COMMIT)
        self.read_script = client.register_script(READ)
        self._keys: dict[int, bytes] = {}

    def key(self, user: int) -> bytes:
        k = self._keys.get(user)
        if k is None:
            if len(self._keys) > 200_000:
                self._keys.clear()
            k = self._keys[user] = self.layout.key(user)
        return k

    def as_stored(self, row: dict[str, float | int]) -> dict[str, float | int]:
        """The values as the store will hold them (FP32 features rounded to float32), so the
        prediction is computed from exactly what a reader of the row gets back."""
        return {
            k: _F32.unpack(_F32.pack(v))[0] if self.types[k] == "FP32" else v
            for k, v in row.items()
        }

    async def read(self, users: list[int]) -> list[Current]:
        replies = await self.read_script(keys=[self.key(u) for u in users], args=self.read_fields)
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
        if not updates:
            return []
        keys = [self.key(u.user_id) for u in updates] + [self.output_stream]
        args = [self.version_field, self.ttl, self.output_maxlen]
        args += [_blob(self._items(u)) for u in updates]
        return [bool(x) for x in await self.commit_script(keys=keys, args=args)]

    def _items(self, u: Update) -> list[bytes]:
        next_version = str(int(u.expected or b"0") + 1).encode()
        pairs: list[bytes] = []
        for field, name in zip(self.feature_fields, FEATURES, strict=True):
            pairs += [field, encode_value(self.types[name], u.features[name])]
        pairs += [self.ts_field.encode(), timestamp_bytes(u.state.ts_us)]
        # the prediction row, in predictions.COLUMNS order
        row = (u.score, u.model_version, u.state.ts_us, u.request_key)
        for field, (_, datatype), value in zip(
            self.pred_fields, predictions.TYPES, row, strict=True
        ):
            pairs += [field, encode_value(datatype, value)]
        pairs += [
            self.pred_ts.encode(),
            timestamp_bytes(u.written_us),
            self.state_field.encode(),
            orjson.dumps(u.state.to_json()),
            self.version_field.encode(),
            next_version,
        ]
        out = [x for k, v in u.output.items() for x in (k.encode(), v.encode())]
        return [u.expected, str(len(pairs) // 2).encode(), *pairs, *out]
