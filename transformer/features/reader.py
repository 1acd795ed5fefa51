"""Online features through Feast, for a batch of users, in one online-store round trip.

- The feature service is resolved once from the registry (``transformer.features.layout``).
- The fetcher is chosen once, at start: on Redis the direct reader (``redis_direct``: one
  HMGET per user, one pipeline per batch), else Feast's SDK (``sdk``: awaited where the store
  reads async, else in a worker thread).
- Every store operation goes through the breaker and the time bounds
  (``transformer.features.store_health``); a failure is ``FeatureStoreUnavailable`` (503).
- The registry is refreshed in the background, never on the request path.
- Features come back in the model's order as a float matrix, with per-row status
  (present / missing / stale) and the event time of each user's feature row.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from predictor.protocol.artifact import FeatureSpec
from predictor.protocol.codec import TensorSpec
from predictor.protocol.feast_redis import FeastRedisLayout
from transformer.errors import FeatureStoreUnavailable
from transformer.features.layout import FeatureBatch, FeatureConfigError, FeatureLayout, Fetched
from transformer.features.redis_direct import RedisClient, RedisDirect
from transformer.features.sdk import SdkFetch
from transformer.features.store_health import StoreBreaker, StorePolicy
from transformer.metrics import Metrics

log = logging.getLogger(__name__)

T = TypeVar("T")


class Fetcher(Protocol):
    """One online read of a batch: the direct Redis reader or Feast's SDK."""

    async def fetch(self, rows: dict[str, list], with_predictions: bool) -> Fetched: ...

    async def drop_idle(self) -> None: ...

    async def close(self) -> None: ...


def open_store(repo_path: Path, fs_yaml: Path | None) -> Any:
    """A FeatureStore whose registry never refreshes on the request path."""
    from feast import FeatureStore
    from feast.repo_config import load_repo_config

    yaml_path = fs_yaml or _env_yaml() or repo_path / "feature_store.yaml"
    if not yaml_path.is_file():
        raise FeatureConfigError(f"{yaml_path}: feature_store.yaml not found")
    config = load_repo_config(repo_path, yaml_path)
    try:
        config.registry.cache_ttl_seconds = 0  # 0 = keep; FeatureReader refreshes it
    except (AttributeError, ValueError) as e:  # pragma: no cover - registry types without it
        log.warning("cannot pin registry cache TTL: %s", e)
    return FeatureStore(repo_path=str(repo_path), config=config)


def _env_yaml() -> Path | None:
    value = os.environ.get("FEAST_FS_YAML_FILE_PATH")
    return Path(value) if value else None


def wait_for_feature_service(
    store: Any, name: str, wait_s: float, poll_s: float = 3.0, sleep: Callable = time.sleep
) -> None:
    """Return once the registry has feature service ``name``.

    Waits (up to ``wait_s``) while the registry cannot be read or has no feature service at
    all: on a first install the transformer may start before the registry server answers or
    before the bootstrap Job's ``feast apply``. A registry with other services but not ours is
    a configuration error, raised at once.
    """
    deadline = time.monotonic() + wait_s
    attempt = 0
    while True:
        attempt += 1
        try:
            if attempt > 1:
                store.refresh_registry()  # file/SQL registries cache what they read
            names = sorted(s.name for s in store.list_feature_services())
        except Exception as e:
            problem = f"the Feast registry cannot be read ({type(e).__name__}: {e})"
        else:
            if name in names:
                return
            if names:
                raise FeatureConfigError(
                    f"feature service '{name}' is not in the Feast registry (it has {names})"
                )
            problem = "the Feast registry has no feature service yet (feast apply not run?)"
        if time.monotonic() >= deadline:
            raise FeatureConfigError(f"{problem}; gave up after {wait_s:.0f}s")
        log.info("waiting for feature service %s: %s", name, problem)
        sleep(poll_s)


class FeatureReader:
    """Reads one FeatureService for a batch of entities."""

    def __init__(
        self,
        store: Any,
        feature_service: str,
        model_features: list[FeatureSpec],
        stale_after_s: float,
        predictions_view: str | None = None,
        direct_redis: bool = True,
        policy: StorePolicy | None = None,
        metrics: Metrics | None = None,
    ):
        self.store = store
        self.layout = FeatureLayout.resolve(
            store, feature_service, model_features, stale_after_s, predictions_view
        )
        self.service = self.layout.service
        self.short_to_full = self.layout.short_to_full
        self.batch_views = self.layout.batch_views
        self.request_fields = self.layout.request_fields
        self.join_key = self.layout.join_key
        self.model_features = model_features
        self.predictions_view = predictions_view
        provider = store._get_provider()
        self.use_async = bool(provider.async_supported.online.read)
        self._sync_lock = threading.Lock()
        self.redis: RedisClient | None = None
        self.breaker: StoreBreaker | None = None
        self.fetcher: Fetcher = SdkFetch(store, self.layout, self.use_async, self.in_thread)
        if store.config.online_store.type == "redis":
            policy = policy or StorePolicy()
            self.redis = RedisClient(store, policy.connect_timeout_s, policy.timeout_s)
            self.breaker = StoreBreaker(
                self.redis.ping,
                metrics,
                policy.failures_to_open,
                policy.probe_interval_s,
                on_recover=self._drop_pooled,
            )
            if direct_redis:
                config = store.config
                self.fetcher = RedisDirect(
                    self.redis,
                    FeastRedisLayout(
                        config.project, self.join_key, config.entity_key_serialization_version
                    ),
                    self.layout,
                )
        log.info(
            "feature service %s: %d features (%d batch), request fields %s, reads: %s",
            feature_service,
            len(self.short_to_full),
            sum(len(v) for v in self.batch_views.values()),
            list(self.request_fields),
            "redis direct" if self.direct else ("sdk async" if self.use_async else "sdk thread"),
        )

    @property
    def direct(self) -> RedisDirect | None:
        """The direct Redis reader, when it is the fetcher."""
        return self.fetcher if isinstance(self.fetcher, RedisDirect) else None

    @property
    def input_specs(self) -> list[TensorSpec]:
        """What a request must carry: the entity key, then the request fields."""
        return self.layout.input_specs

    async def read(
        self, columns: dict[str, np.ndarray], with_predictions: bool = False
    ) -> tuple[FeatureBatch, dict[str, list]]:
        """Features for the entities in ``columns`` (the entity key and request fields).

        With ``with_predictions`` the predictions view is read in the same online-store call
        (on Redis: the same pipeline, one round trip). Returns the model-ordered batch and
        every feature of the service by full name (for ``return_features``).
        """
        rows = {name: columns[name].tolist() for name in (s.name for s in self.input_specs)}
        with_predictions = with_predictions and self.predictions_view is not None
        fetch = functools.partial(self.fetcher.fetch, rows, with_predictions)
        fetched = await self._guarded(fetch, "read")
        return self.layout.assemble(fetched, len(rows[self.join_key]), with_predictions)

    async def _guarded(self, op: Callable[[], Awaitable[T]], what: str) -> T:
        """Run one online-store operation: through the breaker (Redis), and any failure as
        ``FeatureStoreUnavailable`` (503)."""
        try:
            if self.breaker is None:
                return await op()
            assert self.redis is not None
            await self.redis.get()  # Feast's client, with our timeouts and no retry backoff
            return await self.breaker.call(op)
        except FeatureStoreUnavailable:
            raise
        except Exception as e:
            log.warning("online feature store %s failed: %s: %s", what, type(e).__name__, e)
            raise FeatureStoreUnavailable(
                f"online feature store {what} failed: {type(e).__name__}: {e}"
            ) from e

    async def _drop_pooled(self) -> None:
        await self.fetcher.drop_idle()
        if self.redis is not None:
            await self.redis.drop_pooled()

    async def in_thread(self, fn: Callable[..., Any], /, **kwargs: Any) -> Any:
        """Run a synchronous store call off the event loop, one at a time.

        Feast's SQLite store shares one connection between threads, so a read that ran while
        a write's transaction was open would see part of that write: a torn feature vector.
        """

        def locked() -> Any:
            with self._sync_lock:
                return fn(**kwargs)

        return await asyncio.to_thread(locked)

    async def write(self, view: str, df: Any) -> None:
        """Write rows of ``view`` to the online store (features or predictions); any failure
        is ``FeatureStoreUnavailable``. Not retried: a write that timed out may have been
        applied, and a retry could land after a newer write of the same user."""
        if self.use_async:
            op = functools.partial(
                self.store.write_to_online_store_async, feature_view_name=view, df=df
            )
        else:
            op = functools.partial(
                self.in_thread, self.store.write_to_online_store, feature_view_name=view, df=df
            )
        await self._guarded(op, "write")

    async def close(self) -> None:
        if self.breaker is not None:
            await self.breaker.close()
        await self.fetcher.close()
        if self.redis is not None:
            await self.redis.close()

    async def refresh_forever(self, every_s: float) -> None:
        """Refresh the registry off the event loop; logs and keeps going on failure."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await asyncio.to_thread(self.store.refresh_registry)
            except Exception:
                log.exception("registry refresh failed; keeping the cached registry")
