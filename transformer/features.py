"""Online features through Feast, for a batch of users, in one online-store round trip.

- The store is read through the SDK (any online store); stores with async reads (Redis) are
  awaited on the event loop, the others (SQLite) run in a worker thread.
- The registry is refreshed in the background, never on the request path.
- On-demand features (python mode) are computed by Feast from the request fields.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from predictor.protocol.artifact import FeatureSpec
from predictor.protocol.codec import TensorSpec, feast_to_v2
from transformer.errors import FeatureStoreUnavailable
from transformer.metrics import Metrics
from transformer.store_health import StoreBreaker, StorePolicy

log = logging.getLogger(__name__)

PRESENT = 1  # feast FieldStatus.PRESENT
T = TypeVar("T")


class FeatureConfigError(Exception):
    """The feature repo and the model disagree; raised at start-up."""


PREDICTION_FIELDS = ("score", "model_version", "features_timestamp", "request_key")


@dataclass
class CachedPredictions:
    """What the predictions view holds for each user (read with the features)."""

    present: np.ndarray  # (N,) bool: a prediction row exists
    score: np.ndarray  # (N,) float64
    model_version: list[str]
    features_ts: np.ndarray  # (N,) int64 µs: event time of the features it was computed from
    request_key: list[str]  # request context it was computed for ("" = any, batch job)
    written_ts: np.ndarray  # (N,) int64 µs: when it was computed

    @classmethod
    def empty(cls, n: int) -> CachedPredictions:
        return cls(
            np.zeros(n, bool),
            np.zeros(n),
            [""] * n,
            np.zeros(n, np.int64),
            [""] * n,
            np.zeros(n, np.int64),
        )


@dataclass
class Fetched:
    """What an online read returned, before it is put in model order.

    ``values``: short feature name → one Python value per row (None: missing), on-demand
    features and prediction fields included; per feature view, whether each row was found and
    the event time of the row (µs).
    """

    values: dict[str, list[Any]]
    view_present: dict[str, np.ndarray]
    view_ts: dict[str, np.ndarray]


@dataclass
class FeatureBatch:
    """Features for N users, in model order."""

    names: list[str]  # full feature names, model order
    matrix: np.ndarray  # (N, F) float64; NaN where a value is missing
    missing: np.ndarray  # (N,) bool: the user has no usable feature row
    stale: np.ndarray  # (N,) bool: the row is older than the staleness limit
    feature_ts: np.ndarray  # (N,) int64 epoch µs of the user's feature row (0: none)
    cached: CachedPredictions | None = None

    def columns(self) -> dict[str, np.ndarray]:
        return {n: self.matrix[:, j] for j, n in enumerate(self.names)}


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
        try:
            self.service = store.get_feature_service(feature_service)
        except Exception as e:
            raise FeatureConfigError(f"feature service '{feature_service}': {e}") from e
        odfvs = {v.name: v for v in store.list_on_demand_feature_views()}
        self.short_to_full: dict[str, str] = {}
        self.batch_features: list[str] = []  # short names that have statuses/timestamps
        self.batch_views: dict[str, list[str]] = {}  # batch view → its short names
        self.odfvs = [
            odfvs[p.name] for p in self.service.feature_view_projections if p.name in odfvs
        ]
        self.request_fields: dict[str, TensorSpec] = {}
        join_keys: dict[str, str] = {}
        for proj in self.service.feature_view_projections:
            for f in proj.features:
                if f.name in self.short_to_full:
                    raise FeatureConfigError(
                        f"feature service '{feature_service}': feature name '{f.name}' is used by "
                        "two views; short names must be unique"
                    )
                self.short_to_full[f.name] = f"{proj.name_to_use()}__{f.name}"
                if proj.name not in odfvs:
                    self.batch_features.append(f.name)
                    self.batch_views.setdefault(proj.name, []).append(f.name)
            if proj.name in odfvs:
                for src in odfvs[proj.name].source_request_sources.values():
                    for field in src.schema:
                        self.request_fields[field.name] = TensorSpec(field.name, _v2(field.dtype))
            else:
                fv = store.get_feature_view(proj.name)
                for col in fv.entity_columns:
                    join_keys[col.name] = _v2(col.dtype)
        if len(join_keys) != 1:
            raise FeatureConfigError(
                f"feature service '{feature_service}': expected one entity join key, "
                f"got {join_keys}"
            )
        ((self.join_key, key_type),) = join_keys.items()
        self.entity_spec = TensorSpec(self.join_key, key_type)
        full_to_short = {v: k for k, v in self.short_to_full.items()}
        unknown = [f.name for f in model_features if f.name not in full_to_short]
        if unknown:
            raise FeatureConfigError(
                f"the model needs {unknown}, which feature service '{feature_service}' does not "
                f"provide (it has {sorted(full_to_short)})"
            )
        self.model_features = model_features
        self._model_short = [full_to_short[f.name] for f in model_features]
        self.stale_after_s = stale_after_s
        self.predictions_view = predictions_view
        self._refs: list[str] = [
            f"{p.name}:{f.name}" for p in self.service.feature_view_projections for f in p.features
        ]
        if predictions_view is not None:
            try:
                view = store.get_feature_view(predictions_view)
            except Exception as e:
                raise FeatureConfigError(f"predictions view '{predictions_view}': {e}") from e
            have = {f.name for f in view.features}
            lacking = [f for f in PREDICTION_FIELDS if f not in have]
            if lacking:
                raise FeatureConfigError(f"predictions view '{predictions_view}' lacks {lacking}")
            clash = set(PREDICTION_FIELDS) & set(self.short_to_full)
            if clash:
                raise FeatureConfigError(f"feature names {sorted(clash)} clash with predictions")
        provider = store._get_provider()
        self.use_async = bool(provider.async_supported.online.read)
        self._sync_lock = threading.Lock()
        self.direct: Any = None
        self.redis: Any = None
        self.breaker: StoreBreaker | None = None
        if store.config.online_store.type == "redis":
            from transformer.redis_direct import RedisClient, RedisDirect

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
                self.direct = RedisDirect(self)
        log.info(
            "feature service %s: %d features (%d batch), request fields %s, reads: %s",
            feature_service,
            len(self.short_to_full),
            len(self.batch_features),
            list(self.request_fields),
            "redis direct" if self.direct else ("sdk async" if self.use_async else "sdk thread"),
        )

    @property
    def input_specs(self) -> list[TensorSpec]:
        """What a request must carry: the entity key, then the request fields."""
        return [self.entity_spec, *self.request_fields.values()]

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
        if self.direct is not None:
            fetch = functools.partial(self.direct.fetch, rows, with_predictions)
        else:
            fetch = functools.partial(self._sdk_fetch, rows, with_predictions)
        fetched = await self._guarded(fetch, "read")
        return self._assemble(fetched, len(rows[self.join_key]), with_predictions)

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
        if self.direct is not None:
            await self.direct.drop_idle()
        if self.redis is not None:
            await self.redis.drop_pooled()

    async def _sdk_fetch(self, rows: dict[str, list], with_predictions: bool) -> Fetched:
        features: Any = self.service
        views = dict(self.batch_views)
        if with_predictions:
            assert self.predictions_view is not None
            features = self._refs + [f"{self.predictions_view}:{f}" for f in PREDICTION_FIELDS]
            views[self.predictions_view] = list(PREDICTION_FIELDS)
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
        n = len(rows[self.join_key])
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

    def _assemble(
        self, fetched: Fetched, n: int, with_predictions: bool
    ) -> tuple[FeatureBatch, dict[str, list]]:
        values = fetched.values
        missing = np.zeros(n, dtype=bool)
        feature_ts = np.zeros(n, dtype=np.int64)
        for view in self.batch_views:
            missing |= ~fetched.view_present[view]
            feature_ts = np.maximum(feature_ts, fetched.view_ts[view])
        matrix = np.empty((n, len(self._model_short)), dtype=np.float64)
        for j, short in enumerate(self._model_short):
            col = values[short]
            matrix[:, j] = [np.nan if v is None else v for v in col]
        missing |= np.isnan(matrix).any(axis=1)
        stale = ~missing & (time.time() * 1e6 - feature_ts > self.stale_after_s * 1e6)
        feature_ts[missing] = 0
        by_full = {self.short_to_full[s]: values[s] for s in self.short_to_full}
        cached = None
        if with_predictions:
            assert self.predictions_view is not None
            cached = CachedPredictions(
                fetched.view_present[self.predictions_view],
                np.array([np.nan if v is None else v for v in values["score"]], np.float64),
                [v or "" for v in values["model_version"]],
                np.array([v or 0 for v in values["features_timestamp"]], np.int64),
                [v or "" for v in values["request_key"]],
                fetched.view_ts[self.predictions_view],
            )
        batch = FeatureBatch(
            [f.name for f in self.model_features], matrix, missing, stale, feature_ts, cached
        )
        return batch, by_full

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
        if self.direct is not None:
            await self.direct.close()
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


def _micros(timestamps: Any, n: int) -> np.ndarray:
    return np.fromiter((t.seconds * 1_000_000 + t.nanos // 1000 for t in timestamps), np.int64, n)


def _v2(dtype: Any) -> str:
    datatype = feast_to_v2(dtype)
    if datatype is None:
        raise FeatureConfigError(f"Feast type {dtype} has no v2 tensor type")
    return datatype
