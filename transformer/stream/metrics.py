"""Prometheus metrics of the stream worker, and its small HTTP server (/metrics, /healthz,
/readyz) on the worker's event loop: the handlers only read counters, never block."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

OUTCOMES = ("applied", "duplicate", "stale", "dead_letter")


class StreamMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "stream_events",
            "Events processed, by outcome: applied (moved the features), duplicate (event id "
            "already applied: a replay), stale (older than the row or the lateness window), "
            "dead_letter (invalid)",
            ["outcome"],
            registry=r,
        )
        for o in OUTCOMES:
            self.events.labels(outcome=o)
        self.dead_letters = Counter(
            "stream_dead_letters", "Entries moved to the dead-letter stream", registry=r
        )
        self.batch_size = Histogram(
            "stream_batch_size",
            "Entries per batch",
            buckets=(1, 10, 50, 100, 200, 500, 1000, 5000),
            registry=r,
        )
        self.batch_seconds = Histogram(
            "stream_batch_seconds",
            "Time to process one batch (read excluded)",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
            registry=r,
        )
        self.latency = Histogram(
            "stream_event_to_prediction_seconds",
            "Event time to its prediction written (per applied event)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 300),
            registry=r,
        )
        self.lag = Gauge(
            "stream_lag",
            "Group lag (XINFO GROUPS): undelivered = entries not yet read by the group, "
            "pending = read but not acknowledged",
            ["kind"],
            registry=r,
        )
        self.predictions = Counter(
            "stream_predictions", "Predictions written (one per changed user)", registry=r
        )
        self.conflicts = Counter(
            "stream_commit_conflicts",
            "User updates retried because another worker changed the user first",
            registry=r,
        )
        self.claimed = Counter(
            "stream_claimed", "Entries reclaimed from dead or stuck consumers", registry=r
        )
        self.errors = Counter(
            "stream_batch_errors", "Batches that failed (left pending, retried)", registry=r
        )
        self.scoring_ready = Gauge(
            "stream_scoring_ready",
            "1 once what scoring needs is there (the Feast feature service, the predictor's "
            "metadata) and events are read; 0 while the worker waits for it",
            registry=r,
        )
        self.scoring_waits = Counter(
            "stream_scoring_waits",
            "Failed attempts at what scoring needs (retried with backoff)",
            registry=r,
        )


class HealthServer:
    """/metrics, /healthz (the loop is turning), /readyz (Redis answers, the group exists).

    Both JSON answers carry ``scoring``: ``ready``, or what the worker waits for (the
    predictor's metadata, the Feast registry) while it reads no events."""

    def __init__(
        self,
        metrics: StreamMetrics,
        alive: Callable[[], float],
        ready: Callable[[], bool],
        stall_s: float,
        waiting: Callable[[], str | None] = lambda: None,
    ):
        self.metrics, self.alive, self.ready, self.stall_s = metrics, alive, ready, stall_s
        self.waiting = waiting
        self.runner: web.AppRunner | None = None

    def _scoring(self) -> str:
        return self.waiting() or "ready"

    async def _metrics(self, _: web.Request) -> web.Response:
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _: web.Request) -> web.Response:
        since = time.monotonic() - self.alive()
        if since > self.stall_s:
            return web.json_response(
                {"error": f"no loop turn for {since:.0f}s", "scoring": self._scoring()}, status=503
            )
        return web.json_response({"status": "alive", "scoring": self._scoring()})

    async def _readyz(self, _: web.Request) -> web.Response:
        if not self.ready():
            return web.json_response(
                {"error": "not connected to the stream yet", "scoring": self._scoring()},
                status=503,
            )
        return web.json_response({"status": "ready", "scoring": self._scoring()})

    async def start(self, port: int) -> int:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "0.0.0.0", port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else port

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
