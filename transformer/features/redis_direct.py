"""Online reads straight from Redis, in Feast's own storage format.

Feast's SDK spends most of a small read on registry resolution and protobuf conversion. The
Redis layout it writes is simple and stable (Feast's Redis online store docs): one hash per
entity key (``serialize_entity_key(key) + project``), one field per feature
(``mmh3("<view>:<feature>")``) holding a serialized ``ValueProto``, and ``_ts:<view>`` holding
the row's event time. So one ``HMGET`` per user fetches every feature of every view, the
predictions included, in one pipeline: one round trip per batch.

Everything is derived from Feast's registry and Feast's own helpers (key serialization, field
hashing, the client built from ``feature_store.yaml``), and the on-demand features run the
view's own transformation (``transformer.features.layout.OnDemand``).
``tests/transformer/test_redis_direct.py`` checks parity with
``FeatureStore.get_online_features`` for every feature type in the repo.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from predictor.protocol import predictions
from predictor.protocol.feast_redis import FeastRedisLayout, decode_micros, decode_value
from transformer.features.deadlines import Deadlines
from transformer.features.layout import FeatureLayout, Fetched


class RedisDirect:
    """Reads ``layout``'s batch views (and its predictions view, when it has one) for a batch
    of entities: keys from ``keys``, through ``client`` (the reader's, with its time bounds)."""

    def __init__(self, client: RedisClient, keys: FeastRedisLayout, layout: FeatureLayout):
        self.client = client
        self.layout_keys = keys
        self.features = layout
        self.join_key = layout.join_key
        self.lean: LeanConnections | Literal[False] | None = None  # decided on the first read
        # one HMGET field list: every batch feature, each view's _ts, then the predictions
        self.layout: list[tuple[str, list[str]]] = list(layout.batch_views.items())
        self.layout_with_pred = list(self.layout)
        if layout.predictions_view is not None:
            self.layout_with_pred.append((layout.predictions_view, list(predictions.FIELDS)))
        self.fields = self._fields(self.layout)
        self.fields_with_pred = self._fields(self.layout_with_pred)

    @staticmethod
    def _fields(layout: list[tuple[str, list[str]]]) -> list[bytes | str]:
        out: list[bytes | str] = []
        for view, shorts in layout:
            out += [FeastRedisLayout.field(view, s) for s in shorts]
            out.append(FeastRedisLayout.ts_field(view))
        return out

    async def close(self) -> None:
        if self.lean:
            await self.lean.close()
        self.lean = None

    async def drop_idle(self) -> None:
        if self.lean:
            await self.lean.drop_idle()

    async def _hmget(self, keys: list[bytes], fields: list[bytes | str]) -> list[list[Any]]:
        """One HMGET per key, all in one round trip."""
        client = await self.client.get()
        if self.lean is None:
            self.lean = LeanConnections.for_client(client) or False
        if self.lean:
            return await self.lean.run([("HMGET", k, *fields) for k in keys])
        async with client.pipeline(transaction=False) as pipe:  # cluster, sentinel
            for k in keys:
                pipe.hmget(k, fields)
            return await pipe.execute()

    async def fetch(self, rows: dict[str, list], with_predictions: bool) -> Fetched:
        ids = rows[self.join_key]
        n = len(ids)
        layout = self.layout_with_pred if with_predictions else self.layout
        fields = self.fields_with_pred if with_predictions else self.fields
        replies = await self._hmget([self.layout_keys.key(e) for e in ids], fields)
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
        self.features.on_demand(values, rows)
        return Fetched(values, present, ts)


class LeanConnections:
    """Connections of a plain (not cluster, not sentinel) ``redis.asyncio.Redis`` client,
    used without its pool's per-checkout work.

    redis-py 7 records pool metrics and probes the socket with a read on every checkout,
    which costs more CPU than the HMGET it serves. Here a connection is taken from an idle
    list, sent every command in one write, and put back only after every reply was read;
    an error or a cancellation closes it instead, so an idle connection never holds unread
    replies. Same connection settings (address, password, TLS, timeouts) as the client.

    The client's read timeout (``socket_timeout``) bounds the whole round trip (the write and
    every reply) as one deadline (``transformer.features.deadlines``: no timer per call),
    instead of redis-py's per operation: there the write runs in ``asyncio.wait_for`` (on
    Python 3.11 a task of its own, and one more event-loop iteration, per command batch) and
    each reply under its own timer. A timeout is the same ``redis.exceptions.TimeoutError``.
    """

    def __init__(self, make: Callable[[], Any], max_idle: int = 64, timeout: float | None = None):
        self._make = make
        self.max_idle = max_idle
        self.deadlines = Deadlines(timeout) if timeout else None
        self.idle: list[Any] = []

    def make(self) -> Any:
        conn = self._make()
        conn.socket_timeout = None  # _run_once holds the deadline of the whole round trip
        return conn

    @classmethod
    def for_client(cls, client: Any) -> LeanConnections | None:
        import redis.asyncio as aioredis

        pool = getattr(client, "connection_pool", None)
        if type(client) is not aioredis.Redis or type(pool) is not aioredis.ConnectionPool:
            return None
        return cls(pool.make_connection, timeout=pool.connection_kwargs.get("socket_timeout"))

    async def run(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` (reads) and return their replies.

        A connection taken from the idle list may be dead though it looks connected (the
        server restarted since it was last used): if it fails at the connection level, every
        idle connection is dropped (they are as old) and the commands are sent once more on
        a fresh connection. Safe because they are reads; a timeout is not retried (the
        server may be alive but stalled, and a retry would double the wait).
        """
        reused = bool(self.idle)
        try:
            return await self._run_once(commands)
        except Exception as e:
            if not reused or not _connection_lost(e):
                raise
            await self.drop_idle()
            return await self._run_once(commands)

    async def drop_idle(self) -> None:
        idle, self.idle = self.idle, []
        for conn in idle:
            await conn.disconnect(nowait=True)

    async def _run_once(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        conn = self.idle.pop() if self.idle else self.make()
        done = False
        try:
            if not conn.is_connected:
                await conn.connect()  # bounded by the client's connect timeout
            with self.deadlines.bound() if self.deadlines else contextlib.nullcontext():
                await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
                replies = [await conn.read_response() for _ in commands]
            done = True
            return replies
        except TimeoutError:
            from redis.exceptions import TimeoutError as RedisTimeoutError

            raise RedisTimeoutError(f"Timeout reading from {conn._host_error()}") from None
        finally:
            if done and len(self.idle) < self.max_idle:
                self.idle.append(conn)
            else:
                await conn.disconnect(nowait=True)

    async def close(self) -> None:
        await self.drop_idle()
        if self.deadlines:
            await self.deadlines.close()


def _connection_lost(e: BaseException) -> bool:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    if isinstance(e, TimeoutError | RedisTimeoutError):
        return False
    return isinstance(e, RedisConnectionError | ConnectionError)


async def dedicated_client(store: Any, read_timeout_s: float) -> Any:
    """A redis.asyncio client of the store's Redis of its own, with ``read_timeout_s``.

    Built by Feast's own code from ``feature_store.yaml`` (plain, cluster or sentinel; password,
    TLS), on a fresh online-store object: Feast's shared cached client, and the time bounds
    ``RedisClient`` puts on it, stay as they are. The stream worker blocks in XREADGROUP and
    needs a longer read timeout than the request path (a later option in Feast's connection
    string wins). The caller closes it.
    """
    online = type(store._get_provider().online_store)()
    config = store.config.online_store.model_copy()
    config.connection_string += f",socket_timeout={read_timeout_s:g}"
    return await online._get_client_async(config)


class RedisClient:
    """Feast's async Redis client for this store, with the transformer's time bounds.

    Feast builds its client from the ``connection_string`` in ``feature_store.yaml``. Its
    ``socket_connect_timeout`` and ``socket_timeout`` are set from the settings here (they
    win over the same options in the connection string), and redis-py's own retry (3
    attempts with exponential backoff up to 10 s: 9-14 s before a request fails) is turned
    off: the request path fails within the timeouts and the breaker takes over. Every
    online-store call of the transformer (direct reads, SDK reads, writes) goes through this
    one client.
    """

    def __init__(self, store: Any, connect_timeout_s: float, timeout_s: float):
        self.online_store = store._get_provider().online_store
        self.online_config = store.config.online_store
        self.online_config.connection_string = (
            f"{self.online_config.connection_string},"
            f"socket_connect_timeout={connect_timeout_s},socket_timeout={timeout_s}"
        )
        self._configured: Any = None

    async def get(self) -> Any:
        client = await self.online_store._get_client_async(self.online_config)
        if client is not self._configured:
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            set_retry = getattr(client, "set_retry", None)
            if set_retry is not None:
                set_retry(Retry(NoBackoff(), 0))
            self._configured = client
        return client

    async def ping(self) -> None:
        """PING on a fresh connection (not the pool's), within the connect + read timeouts."""
        client = await self.get()
        pool = getattr(client, "connection_pool", None)
        if pool is None or not hasattr(pool, "make_connection"):  # cluster: its own routing
            await client.ping()
            return
        conn = pool.make_connection()
        try:
            await conn.connect()
            await conn.send_command("PING", check_health=False)
            reply = await conn.read_response()
            if reply not in (b"PONG", "PONG", True):
                raise ConnectionError(f"PING answered {reply!r}")
        finally:
            await conn.disconnect(nowait=True)

    async def drop_pooled(self) -> None:
        """Close the pool's idle connections: after a restart they all point at a dead peer."""
        client = self._configured
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            await pool.disconnect(inuse_connections=False)

    async def close(self) -> None:
        """Close Feast's async Redis client (it belongs to the running event loop)."""
        client = getattr(self.online_store, "_client_async", None)
        if client is not None:
            await client.aclose()
            self.online_store._client_async = None
        self._configured = None
