"""Wire settings → ClickModel → kserve.ModelServer."""

from __future__ import annotations

import warnings

import kserve
from fastapi.exceptions import FastAPIDeprecationWarning
from kserve.model_server import app

from predictor import fast_rest, rest
from predictor.model import ClickModel
from predictor.settings import PredictorSettings


def serve(settings: PredictorSettings) -> None:
    # KServe's own app uses FastAPI's deprecated ORJSONResponse; not ours to fix.
    warnings.filterwarnings("ignore", category=FastAPIDeprecationWarning)
    model = ClickModel(settings.model_name, str(settings.model_dir), settings.max_batch_size)
    model.load()
    rest.install(app)
    server = kserve.ModelServer(
        http_port=settings.http_port,
        grpc_port=settings.grpc_port,
        enable_grpc=settings.enable_grpc,
        workers=settings.workers,
        max_threads=settings.grpc_threads,
        enable_latency_logging=settings.enable_latency_logging,
    )
    fast_rest.install(app, server.dataplane)
    server.start([model])
