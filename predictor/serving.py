"""Start a ``kserve.ModelServer`` with our HTTP layer: one error shape, the JSON content-type
check, and the lean v2 infer route (``fast_rest``). Both servers start through here."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import kserve
from fastapi.exceptions import FastAPIDeprecationWarning
from kserve.model_server import app

from predictor import fast_rest, logs, rest


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
        enable_grpc=settings.enable_grpc,
        workers=workers,
        max_threads=settings.grpc_threads,
        enable_latency_logging=settings.enable_latency_logging,
    )
    fast_rest.install(app, server.dataplane)
    for wrap in [*outer, logs.RequestId]:  # x-request-id: logged with each line, echoed back
        _outermost(app, wrap)
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
