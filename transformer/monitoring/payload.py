"""Sampled payload logging to a Redis stream, off the request path.

``offer`` (request path) draws the sample, copies the batch's arrays and puts them on a
bounded queue without waiting: a full queue drops the batch (counted), so logging never slows
or fails a request. A background task writes one stream entry per sampled request (``XADD``
with an approximate ``MAXLEN``): time, model version, the entity keys (hashed by default:
``blake2b(salt + key)``, 16 hex digits, so the stream holds no user ids), the scores and,
if enabled, the model inputs. Write failures are counted and logged (at most once a minute)
and the entry is dropped.

Entry fields: ``ts`` (epoch s), ``model_version``, ``keys`` (JSON list), ``scores`` (JSON
list, null for default answers), ``features`` (JSON object name -> list, or absent).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Counter

log = logging.getLogger(__name__)


def hash_key(salt: str, key: Any) -> str:
    return hashlib.blake2b(f"{salt}{key}".encode(), digest_size=8).hexdigest()


def _floats(a: np.ndarray) -> list[float | None]:
    return [None if math.isnan(x) else x for x in a.tolist()]


class PayloadLogger:
    def __init__(
        self,
        client: Any,  # redis.asyncio.Redis (or anything with an async xadd)
        stream: str,
        rate: float,
        queue_size: int,
        maxlen: int,
        feature_names: list[str] | None,  # None: no features in the log
        model_version: str,
        salt: str | None,  # None: entity keys in clear
        registry: CollectorRegistry | None = REGISTRY,
        draw: Callable[[], float] = random.random,
    ):
        self.client = client
        self.stream = stream
        self.rate = rate
        self.maxlen = maxlen
        self.feature_names = feature_names
        self.model_version = model_version
        self.salt = salt
        self._draw = draw
        self.queue: asyncio.Queue[tuple] = asyncio.Queue(queue_size)
        self.logged = Counter(
            "transformer_payload_logged", "Sampled requests written to the payload stream",
            registry=registry,
        )  # fmt: skip
        self.dropped = Counter(
            "transformer_payload_dropped",
            "Sampled requests dropped because the payload queue was full",
            registry=registry,
        )
        self.failures = Counter(
            "transformer_payload_failures", "Payload stream writes that failed", registry=registry
        )
        self._task: asyncio.Task | None = None
        self._last_warning = -math.inf

    def offer(self, features: np.ndarray, scores: np.ndarray, users: np.ndarray) -> None:
        if self._draw() >= self.rate:
            return
        item = (
            time.time(),
            users.copy(),
            scores.copy(),
            features.copy() if self.feature_names is not None else None,
        )
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped.inc()

    observe = offer  # the request-path hook's name

    def entry(self, item: tuple) -> dict[str, str]:
        ts, users, scores, features = item
        keys = users.tolist()
        if self.salt is not None:
            keys = [hash_key(self.salt, k) for k in keys]
        out = {
            "ts": f"{ts:.6f}",
            "model_version": self.model_version,
            "keys": json.dumps(keys),
            "scores": json.dumps(_floats(scores)),
        }
        if features is not None and self.feature_names is not None:
            out["features"] = json.dumps(
                {n: _floats(features[:, j]) for j, n in enumerate(self.feature_names)}
            )
        return out

    async def run(self) -> None:
        while True:
            item = await self.queue.get()
            try:
                await self.client.xadd(
                    self.stream, self.entry(item), maxlen=self.maxlen, approximate=True
                )
                self.logged.inc()
            except Exception as e:  # never let a logging failure end the task
                self.failures.inc()
                if time.monotonic() - self._last_warning > 60:
                    self._last_warning = time.monotonic()
                    log.warning("payload log: write to stream %s failed: %s", self.stream, e)

    async def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.client.aclose()


def build(
    settings: Any, feature_names: list[str], model_version: str, registry: Any = REGISTRY
) -> PayloadLogger | None:
    """The payload logger the settings ask for, or None (rate 0 or no stream address)."""
    if settings.payload_log_rate <= 0 or not settings.monitoring_enabled:
        return None
    if not settings.payload_log_redis:
        log.warning("payload log: off, payload_log_rate > 0 but payload_log_redis is unset")
        return None
    import secrets

    import redis.asyncio as aioredis

    salt: str | None = None
    if settings.payload_log_hash_keys:
        salt = settings.payload_log_salt
        if not salt:
            salt = secrets.token_hex(16)
            log.warning(
                "payload log: no payload_log_salt; hashing entity keys with a random salt of "
                "this process (keys do not match across pods or restarts)"
            )
    url = settings.payload_log_redis
    client = aioredis.from_url(url if "://" in url else f"redis://{url}")
    log.info(
        "payload log: %.3g of requests to %s stream %s (features %s, keys %s)",
        settings.payload_log_rate,
        url.split("@")[-1],
        settings.payload_log_stream,
        "included" if settings.payload_log_features else "left out",
        "hashed" if salt is not None else "in clear",
    )
    return PayloadLogger(
        client,
        settings.payload_log_stream,
        settings.payload_log_rate,
        settings.payload_log_queue_size,
        settings.payload_log_maxlen,
        feature_names if settings.payload_log_features else None,
        model_version,
        salt,
        registry,
    )
