"""Wire settings → Feast reader + predictor client + rules → FeastTransformer → ModelServer."""

from __future__ import annotations

import asyncio
import functools
import logging

import kserve
from kserve.model_server import app

from predictor import rest
from transformer import errors
from transformer.features import FeatureReader, open_store
from transformer.model import FeastTransformer
from transformer.predictor_client import fetch_model_features, make_client
from transformer.rules import load_rules
from transformer.settings import TransformerSettings

log = logging.getLogger(__name__)


def build(settings: TransformerSettings) -> FeastTransformer:
    """Everything the transformer needs, checked before the server starts."""
    rules = load_rules(settings.rules_file)
    model_features = fetch_model_features(
        settings.predictor_host,
        settings.model_name,
        settings.predictor_protocol,
        settings.predictor_wait_s,
        settings.predictor_use_ssl,
    )
    store = open_store(settings.feast_repo_path, settings.feast_fs_yaml)
    reader = FeatureReader(store, settings.feature_service, model_features, rules.stale_after_s)
    client_factory = functools.partial(
        make_client,
        settings.predictor_protocol,
        settings.predictor_host,
        settings.model_name,
        settings.predictor_timeout_s,
        settings.predictor_use_ssl,
    )
    return FeastTransformer(
        settings.model_name, reader, model_features, client_factory, rules, settings.max_batch_size
    )


class _Refresher:
    """Starts the background registry refresh with the server's event loop."""

    def __init__(self, model: FeastTransformer, every_s: float):
        self.model = model
        self.every_s = every_s
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        if self.every_s > 0:
            self.task = asyncio.create_task(self.model.reader.refresh_forever(self.every_s))

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
        await self.model.close()


def serve(settings: TransformerSettings) -> None:
    model = build(settings)
    refresher = _Refresher(model, settings.registry_refresh_s)
    app.router.on_startup.append(refresher.start)
    app.router.on_shutdown.append(refresher.stop)
    rest.install(app)
    errors.install(app)
    kserve.ModelServer(
        http_port=settings.http_port,
        grpc_port=settings.grpc_port,
        enable_grpc=settings.enable_grpc,
        max_threads=settings.grpc_threads,
        enable_latency_logging=settings.enable_latency_logging,
    ).start([model])
