"""Request count by outcome and latency of the transformer's HTTP endpoints (pure ASGI
middleware: a dict lookup and a histogram observation per request, no request body access).

``transformer_http_requests_total{endpoint, code}``: code is the status class (2xx/4xx/5xx);
``transformer_http_request_duration_seconds{endpoint}``: from the first byte of the request
to the response start. ``endpoint`` is a fixed set (infer, labels, monitoring, producer,
metrics, health, other), never the raw path, so the series stay bounded. gRPC is not counted.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def endpoint(path: str) -> str:
    if path.endswith("/infer") or path.endswith(":predict"):
        return "infer"
    if path.endswith("/labels"):
        return "labels"
    if path.endswith("/monitoring"):
        return "monitoring"
    if path.startswith("/producer/"):
        return "producer"
    if path == "/metrics":
        return "metrics"
    if path.endswith("/ready") or path.endswith("/live") or path in ("/", "/v2/health"):
        return "health"
    return "other"


class RequestMetrics:
    def __init__(self, app: Any, registry: CollectorRegistry = REGISTRY):
        self.app = app
        self.requests = Counter(
            "transformer_http_requests",
            "HTTP requests by endpoint and status class",
            ["endpoint", "code"],
            registry=registry,
        )
        self.latency = Histogram(
            "transformer_http_request_duration_seconds",
            "HTTP request latency (to the response start) by endpoint",
            ["endpoint"],
            buckets=BUCKETS,
            registry=registry,
        )
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}

    def _child(self, kind: str, status: int) -> tuple[Any, Any]:
        key = (kind, status // 100)
        c = self._children.get(key)
        if c is None:
            c = (self.requests.labels(kind, f"{status // 100}xx"), self.latency.labels(kind))
            self._children[key] = c
        return c

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        state = {"status": 500, "elapsed": 0.0}

        async def wrapped(message: dict) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["elapsed"] = time.perf_counter() - t0
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        finally:
            count, hist = self._child(endpoint(scope.get("path", "")), int(state["status"]))
            count.inc()
            hist.observe(state["elapsed"] or time.perf_counter() - t0)
