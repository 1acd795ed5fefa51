"""Start a ``kserve.ModelServer`` with our HTTP layer: one error shape, the JSON content-type
check, and the lean v2 infer route (``fast_rest``). Both servers start through here."""

from __future__ import annotations

import gc
import warnings

import kserve
from fastapi.exceptions import FastAPIDeprecationWarning
from kserve.model_server import app

from predictor import fast_rest, rest


def run_model_server(
    model: kserve.Model,
    *,
    http_port: int,
    grpc_port: int,
    enable_grpc: bool,
    grpc_threads: int,
    enable_latency_logging: bool,
    workers: int = 1,
) -> None:
    # KServe's own app uses FastAPI's deprecated ORJSONResponse; not ours to fix.
    warnings.filterwarnings("ignore", category=FastAPIDeprecationWarning)
    rest.install(app)
    server = kserve.ModelServer(
        http_port=http_port,
        grpc_port=grpc_port,
        enable_grpc=enable_grpc,
        workers=workers,
        max_threads=grpc_threads,
        enable_latency_logging=enable_latency_logging,
    )
    fast_rest.install(app, server.dataplane)
    # Everything loaded so far (Feast's registry, the model, imports) lives as long as the
    # process: move it out of the collector's sight, so a full collection under load walks
    # only request garbage instead of stalling the event loop for ~100 ms.
    gc.collect()
    gc.freeze()
    server.start([model])
