"""Start a ``kserve.ModelServer`` with our HTTP layer (one error shape, JSON bodies whatever
the declared content-type, the lean v2 routes of ``fast_rest``) and our v2 gRPC service
(``grpc_server``: raw outputs, model versions). Both servers start through here."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import kserve
from fastapi.exceptions import FastAPIDeprecationWarning
from kserve.model_server import app, args

from predictor import fast_rest, grpc_server, logs, rest


class ServerSettings(Protocol):
    """The fields both servers' settings share (``PredictorSettings``, ``TransformerSettings``)."""

    http_port: int
    grpc_port: int
    enable_grpc: bool
    grpc_threads: int
    enable_latency_logging: bool


def run_model_server(
    model: kserve.Model,
    settings: ServerSettings,
    workers: int = 1,
    grace_period: int = 30,
    outer: Sequence[Callable[[Any], Any]] = (),
) -> None:
    """``outer``: ASGI middleware that must see every request, the fast infer path included
    (it wraps the app outside ``fast_rest.FastInfer``); ``logs.RequestId`` is outermost."""
    # KServe's own app uses FastAPI's deprecated ORJSONResponse; not ours to fix.
    warnings.filterwarnings("ignore", category=FastAPIDeprecationWarning)
    rest.install(app)
    server = kserve.ModelServer(
        http_port=settings.http_port,
        grpc_port=settings.grpc_port,
        enable_grpc=False,  # ours below
        workers=workers,
        max_threads=settings.grpc_threads,
        enable_latency_logging=settings.enable_latency_logging,
        grace_period=grace_period,
    )
    fast_rest.install(app, server.dataplane)
    for wrap in [*outer, logs.RequestId]:  # x-request-id: logged with each line, echoed back
        _outermost(app, wrap)
    if settings.enable_grpc:
        # ModelServer.start runs everything in ``servers``; ``_grpc_server`` is what it stops
        server._grpc_server = grpc_server.Server(
            settings.grpc_port,
            server.dataplane,
            server.model_repository_extension,
            vars(args),
            grace_period=grace_period,
        )
        server.servers.append(server._grpc_server.start(settings.grpc_threads))
    # Everything loaded so far (Feast's registry, the model, imports) lives as long as the
    # process: move it out of the collector's sight, so a full collection under load walks
    # only request garbage instead of stalling the event loop for ~100 ms.
    gc.collect()
    gc.freeze()
    server.start([model])


def _outermost(app: Any, wrap: Callable[[Any], Any]) -> None:
    """Wrap the app's middleware stack (built on the first request) in ``wrap``."""
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: wrap(build())
