"""Wire settings → Feast reader + predictor client + rules + cache → FeastTransformer →
ModelServer, plus the producer endpoint (on the HTTP port, or its own) and bearer-token auth."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable

from fastapi import FastAPI
from kserve.model_server import app
from starlette.types import ASGIApp

from predictor.protocol.serving import run_model_server
from transformer import errors, scorer
from transformer.auth import Auth
from transformer.cache import PredictionWriter
from transformer.features import FeatureReader, open_store, wait_for_feature_service
from transformer.features.store_health import StorePolicy
from transformer.generations import CommittedGeneration, commit_reader
from transformer.metrics import Metrics
from transformer.model import FeastTransformer
from transformer.monitoring import payload as payload_log
from transformer.monitoring import reference
from transformer.monitoring import views as monitoring
from transformer.monitoring.http import HttpStats
from transformer.multimodel import arms as bandit_arms
from transformer.multimodel import feedback as bandit_feedback
from transformer.policy import PrecomputedPolicy, build_policy, policy_class
from transformer.predictor_client import PredictorClient
from transformer.producer.core import Producer
from transformer.producer.http import install_route
from transformer.rules import load_rules
from transformer.settings import TransformerSettings

log = logging.getLogger(__name__)


def build(settings: TransformerSettings, metrics: Metrics | None = None) -> FeastTransformer:
    """Everything the transformer needs, checked before the server starts."""
    rules = load_rules(settings.rules_file)
    client_factory: Callable[[], PredictorClient]
    bandit = None
    if settings.bandit_file is not None:  # several arms behind one PredictorClient
        if rules.ensemble is not None:  # an arm is one endpoint (docs/multi-model.md)
            raise ValueError(f"{settings.rules_file}: ensemble: not with bandit_file")
        bandit = bandit_arms.build(
            settings.bandit_file,
            settings.bandit_redis,
            settings.model_name,
            settings.predictor_timeout_s,
            settings.predictor_wait_s,
        )
        model_features, versions = bandit.features, bandit.versions
        client_factory = bandit.client
    else:  # collocated, an ensemble, or the predictor: as the stream worker chooses
        chosen = scorer.choose(
            settings,
            rules,
            settings.rules_file,
            settings.collocated_model_dir,
            "collocated_model_dir",
        )
        model_features, versions = chosen.features, chosen.versions
        client_factory = chosen.client_factory
    store = open_store(settings.feast_repo_path, settings.feast_fs_yaml)
    wait_for_feature_service(store, settings.feature_service, settings.registry_wait_s)
    mode = policy_class(settings.mode)
    metrics = metrics or Metrics()
    store_policy = StorePolicy(
        settings.store_connect_timeout_s,
        settings.store_timeout_s,
        settings.store_breaker_failures,
        settings.store_probe_interval_s,
    )
    reader = FeatureReader(
        store,
        settings.feature_service,
        model_features,
        rules.stale_after_s,
        predictions_view=settings.predictions_view if mode.reads_predictions else None,
        direct_redis=settings.redis_direct_reads,
        policy=store_policy,
        metrics=metrics,
    )
    policy = build_policy(
        settings.mode,
        max_age_s=settings.cache_max_age_s,
        metrics=metrics,
        fallback=settings.precomputed_fallback,
        writer=functools.partial(  # made only by the cached policy
            PredictionWriter,
            functools.partial(reader.write, settings.predictions_view),
            reader.join_key,
            metrics,
            settings.writeback_queue_size,
            settings.writeback_batch_rows,
        ),
    )
    log.info("mode %s", settings.mode)
    model = FeastTransformer(
        settings.model_name,
        reader,
        client_factory,
        rules,
        policy,
        metrics,
        max_batch_size=settings.max_batch_size,
        # the model version the transformer reports and serves on versioned paths
        version=versions[0] if versions else "",
    )
    # no model directory here (the chart's default form): the predictor serves the baseline
    fetched = reference.from_predictor(settings, versions[0] if versions else "")
    model.monitor = monitoring.build(settings, [f.name for f in model_features], fetched=fetched)
    if bandit is not None:
        model.recorder = bandit.recorder
        bandit.feedback.monitor = model.monitor  # feedback feeds live quality too
    model.bandit = bandit
    if isinstance(policy, PrecomputedPolicy):  # serves only a committed batch run's rows
        policy.generations = CommittedGeneration(
            commit_reader(reader, settings.predictions_view), settings.batch_generation_refresh_s
        )
    return model


class _Lifecycle:
    """Background registry refresh while serving; flush write-backs and close on shutdown."""

    def __init__(self, model: FeastTransformer, every_s: float, grace_s: float):
        self.model = model
        self.every_s = every_s
        self.grace_s = grace_s
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        if self.every_s > 0:
            self.task = asyncio.create_task(self.model.reader.refresh_forever(self.every_s))
        await self.model.policy.start()

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
        await self.model.close(flush_timeout_s=self.grace_s)
        if self.model.bandit is not None:
            await self.model.bandit.close(self.grace_s)


def serve(settings: TransformerSettings) -> None:
    auth = None
    if settings.auth_tokens_file is not None:  # first: a bad tokens file fails at once
        auth = Auth(settings.auth_tokens_file, settings.auth_reload_s, not settings.auth_probes)
    model = build(settings)
    # SIGTERM: half the grace period for in-flight requests (uvicorn stops accepting at once),
    # the other half for flushing the write-back queue; the process exits within the total.
    half = settings.shutdown_grace_s / 2
    lifecycle = _Lifecycle(model, settings.registry_refresh_s, half)
    app.router.on_startup.append(lifecycle.start)
    app.router.on_shutdown.append(lifecycle.stop)
    errors.install(app)
    user_view = next(
        p.name
        for p in model.reader.service.feature_view_projections
        if p.name in {fv.name for fv in model.reader.store.list_feature_views()}
    )
    producer = Producer(model.reader, user_view, model.policy, lambda: model.client, model.metrics)
    extra_apps: list[tuple[int, ASGIApp]] = []
    if settings.producer_port is None:
        install_route(app, producer)
    else:  # its own port, so a NetworkPolicy can admit producers alone
        producer_app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        errors.install(producer_app)
        install_route(producer_app, producer)
        extra_apps.append((settings.producer_port, producer_app))
    if auth is not None:
        app.router.on_startup.append(auth.start)
        app.router.on_shutdown.append(auth.stop)
    monitoring.install_routes(app, settings.model_name, model.monitor)
    bandit_feedback.install_route(
        app, settings.model_name, model.bandit.feedback if model.bandit is not None else None
    )
    names = [f.name for f in model.model_features]
    version = model.monitor.model_version if model.monitor is not None else ""
    if (payload := payload_log.build(settings, names, version)) is not None:
        model.monitor = monitoring.combine(model.monitor, payload)
        app.router.on_startup.append(payload.start)
        app.router.on_shutdown.append(payload.stop)
    run_model_server(
        model,
        settings,
        grace_period=max(1, int(half)),
        # request counts/latency, the fast infer path included: in the outermost layer
        observe=HttpStats().record if settings.monitoring_enabled else None,
        outer=auth.wrap if auth else lambda a: a,
        interceptors=[auth.interceptor()] if auth else [],
        extra_apps=extra_apps,
    )
