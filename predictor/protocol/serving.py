"""Start a ``kserve.ModelServer`` with our HTTP layer (one error shape, JSON bodies whatever
the declared content-type, the lean v2 routes of ``fast_rest``) and our v2 gRPC service
(``grpc_server``: raw outputs, model versions). Both servers start through here, with the
request limits of ``predictor.protocol.limits`` and, for the transformer, authentication (``outer``,
``interceptors``) and extra HTTP apps on their own ports (the producer endpoint)."""

from __future__ import annotations

import gc
import logging
import warnings
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import Any, Protocol

import kserve
import uvicorn
from fastapi.exceptions import FastAPIDeprecationWarning
from grpc import aio
from kserve.model_server import app
from kserve.model_server import args as kserve_args
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor, LoggingInterceptor
from kserve.protocol.grpc.server import GRPCServer
from starlette.types import ASGIApp

from predictor.protocol import fast_rest, grpc_server, logs, rest
from predictor.protocol.limits import Limits, header_protocol

log = logging.getLogger(__name__)


class ServerSettings(Protocol):
    """The fields both servers' settings share (``PredictorSettings``, ``TransformerSettings``)."""

    http_port: int
    grpc_port: int
    enable_grpc: bool
    grpc_threads: int
    enable_latency_logging: bool
    host: str
    max_body_bytes: int
    max_header_bytes: int
    header_timeout_s: float
    max_concurrent_requests: int


def run_model_server(
    model: kserve.Model,
    settings: ServerSettings,
    workers: int = 1,
    *,
    grace_period: int = 30,
    observe: Callable[[str, int, float], None] | None = None,
    outer: Callable[[ASGIApp], ASGIApp] = lambda a: a,
    interceptors: Sequence[aio.ServerInterceptor] = (),
    extra_apps: Sequence[tuple[int, ASGIApp]] = (),
) -> None:
    """Serve ``model``; ``grace_period`` bounds the REST and gRPC shutdown; ``observe(path,
    status, seconds)`` is called once per HTTP request of the main app, the fast infer path
    included (by ``logs.RequestId``, the layer in front of ``fast_rest.FastInfer``: request
    metrics without a layer of their own); ``outer`` wraps every HTTP app (outside the limits:
    auth), ``interceptors`` run first on every gRPC call, ``extra_apps`` are (port, app)
    served next to the main one."""
    # KServe's own app uses FastAPI's deprecated ORJSONResponse; not ours to fix.
    warnings.filterwarnings("ignore", category=FastAPIDeprecationWarning)
    rest.install(app)
    server = _ModelServer(
        settings,
        outer,
        interceptors,
        extra_apps,
        http_port=settings.http_port,
        grpc_port=settings.grpc_port,
        enable_grpc=False,  # ours, with limits and interceptors: _ModelServer.setup_event_loop
        workers=workers,
        max_threads=settings.grpc_threads,
        enable_latency_logging=settings.enable_latency_logging,
        grace_period=grace_period,
    )
    # In front of KServe's FastAPI app, not inside it: an inference request on the fast path
    # never enters FastAPI's __call__ (its OpenTelemetry probe, Starlette's entry; together
    # 3 µs of the 8 µs of layers above FastInfer, devtools.asgi_bench). RequestId:
    # x-request-id (logged with each line, echoed back) and the per-request observer.
    server.front = lambda inner: logs.RequestId(
        fast_rest.FastInfer(inner, server.dataplane, inner.exception_handlers), observe
    )
    # Everything loaded so far (Feast's registry, the model, imports) lives as long as the
    # process: move it out of the collector's sight, so a full collection under load walks
    # only request garbage instead of stalling the event loop for ~100 ms.
    gc.collect()
    gc.freeze()
    server.start([model])


class _ModelServer(kserve.ModelServer):
    """``kserve.ModelServer`` with our bind address, limits, auth layers and extra apps.

    KServe builds its uvicorn config inside ``start()`` (host fixed to 0.0.0.0, no limits) and
    its gRPC server with fixed interceptors; ``setup_event_loop`` is what ``start()`` calls after
    building the REST server and before running it: the one place to adjust the config and add
    our own gRPC server (KServe's is disabled) and extra HTTP servers.
    """

    def __init__(
        self,
        settings: ServerSettings,
        outer: Callable[[ASGIApp], ASGIApp],
        interceptors: Sequence[aio.ServerInterceptor],
        extra_apps: Sequence[tuple[int, ASGIApp]],
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.settings = settings
        self.outer = outer
        self.interceptors = interceptors
        self.extra_apps = extra_apps
        self.front: Callable[[Any], Any] = lambda a: a  # run_model_server: FastInfer, ids

    def guard(self, inner: ASGIApp) -> ASGIApp:
        s = self.settings
        return self.outer(Limits(inner, s.max_body_bytes, s.max_concurrent_requests))

    def harden(self, config: uvicorn.Config, inner: ASGIApp) -> None:
        s = self.settings
        config.host = s.host
        config.app = self.guard(inner)
        config.http = header_protocol(s.max_header_bytes, s.header_timeout_s)

    def setup_event_loop(self) -> None:
        super().setup_event_loop()
        if self._rest_server is None:  # workers > 1: uvicorn imports the app in each process
            log.warning("workers > 1: host and request limits are uvicorn's defaults")
        else:
            self.harden(self._rest_server.config, self.front(app))
        for port, extra in self.extra_apps:
            config = uvicorn.Config(
                extra,
                port=port,
                log_config=None,
                lifespan="off",
                timeout_keep_alive=self.timeout_keep_alive,
                timeout_graceful_shutdown=self.grace_period,
            )
            self.harden(config, extra)
            self.servers.append(uvicorn.Server(config).serve())
        if self.settings.enable_grpc:
            grpc = _GRPCServer(self, self.settings, self.interceptors)
            self._grpc_server = grpc
            self.servers.append(grpc.start(self.max_threads))


class _GRPCServer(GRPCServer):
    """KServe's gRPC server with our servicer (``grpc_server.Servicer``: raw outputs, model
    versions) plus our interceptors, bind address and limits."""

    def __init__(
        self,
        server: kserve.ModelServer,
        settings: ServerSettings,
        interceptors: Sequence[aio.ServerInterceptor],
    ):
        super().__init__(
            settings.grpc_port,
            server.dataplane,
            server.model_repository_extension,
            kwargs={},
            grace_period=server.grace_period,
        )
        self.settings = settings
        self.interceptors = tuple(interceptors)

    async def start(self, max_workers: int) -> None:
        s = self.settings
        self._server = aio.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=(*self.interceptors, LoggingInterceptor(), ExceptionToStatusInterceptor()),
            options=[
                ("grpc.max_send_message_length", kserve_args.grpc_max_send_message_length),
                ("grpc.max_receive_message_length", s.max_body_bytes),
            ],
            maximum_concurrent_rpcs=s.max_concurrent_requests,
        )
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
            grpc_server.Servicer(self._data_plane, self._model_repository_extension), self._server
        )
        host = "[::]" if s.host in ("0.0.0.0", "::") else s.host
        self._server.add_insecure_port(f"{host}:{s.grpc_port}")
        log.info("gRPC server on %s:%d", host, s.grpc_port)
        await self._server.start()
        await self._server.wait_for_termination()
