"""Request count by outcome and latency of the transformer's HTTP endpoints.

``transformer_http_requests_total{endpoint, code}``: code is the status class (2xx/4xx/5xx);
``transformer_http_request_duration_seconds{endpoint}``: from the first byte of the request
to the response start. ``endpoint`` is a fixed set (infer, labels, monitoring, producer,
metrics, health, other), never the raw path, so the series stay bounded. gRPC is not counted.

``HttpStats.record`` is the per-request call: it is made by the one outermost ASGI layer the
servers already have (``predictor.protocol.logs.RequestId``, its ``observe`` hook), so counting adds
no layer and no ``send`` wrapper of its own. It adds to plain Python numbers (a dict lookup,
two additions and a ``bisect`` into the bucket bounds, ~0.5 µs) instead of a prometheus_client
``Counter`` and ``Histogram`` (a lock per increment, a Python loop over the buckets); the
numbers are exported on scrape by ``collect`` as the same two metric families, same names,
labels, buckets and ``_created`` series, as prometheus_client's own would be. Everything runs
on the event loop; a scrape in another thread reads a consistent-enough copy (``_count`` is
the sum of the buckets it exports, as a scrape of prometheus_client's histogram can also lag
by one observation between ``_sum`` and the buckets).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator

import prometheus_client.metrics
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
REQUESTS = "transformer_http_requests"
REQUESTS_DOC = "HTTP requests by endpoint and status class"
LATENCY = "transformer_http_request_duration_seconds"
LATENCY_DOC = "HTTP request latency (to the response start) by endpoint"
MAX_CACHED_PATHS = 1024  # path -> endpoint memo; beyond it, classified on each call


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


class _Latency:
    __slots__ = ("counts", "created", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # per bucket (not cumulative); last: +Inf
        self.sum = 0.0
        self.created = time.time()


class HttpStats:
    """The two metric families, accumulated in place and exported by a custom collector."""

    def __init__(self, registry: CollectorRegistry | None = REGISTRY):
        self._kinds: dict[str, str] = {}
        self._requests: dict[tuple[str, int], int] = {}  # (endpoint, status // 100) -> count
        self._created: dict[tuple[str, int], float] = {}
        self._latency: dict[str, _Latency] = {}
        if registry is not None:
            registry.register(self)

    def record(self, path: str, status: int, elapsed_s: float) -> None:
        """One answered request (``status`` 500 if the app failed before answering)."""
        kind = self._kinds.get(path)
        if kind is None:
            kind = endpoint(path)
            if len(self._kinds) < MAX_CACHED_PATHS:
                self._kinds[path] = kind
        key = (kind, status // 100)
        n = self._requests.get(key)
        if n is None:
            self._created[key] = time.time()
            n = 0
        self._requests[key] = n + 1
        hist = self._latency.get(kind)
        if hist is None:
            hist = self._latency[kind] = _Latency()
        hist.counts[bisect_left(BUCKETS, elapsed_s)] += 1  # le: the first bound >= elapsed
        hist.sum += elapsed_s

    def describe(self) -> list[Metric]:
        return [CounterMetricFamily(REQUESTS, REQUESTS_DOC), HistogramMetricFamily(LATENCY, "")]

    def collect(self) -> Iterator[Metric]:
        created = prometheus_client.metrics._use_created  # PROMETHEUS_DISABLE_CREATED_SERIES
        requests = CounterMetricFamily(REQUESTS, REQUESTS_DOC, labels=["endpoint", "code"])
        for (kind, cls), n in list(self._requests.items()):
            when = self._created.get((kind, cls)) if created else None
            requests.add_metric([kind, f"{cls}xx"], n, created=when)
        yield requests
        latency = HistogramMetricFamily(LATENCY, LATENCY_DOC, labels=["endpoint"])
        for kind, hist in list(self._latency.items()):
            counts, total = list(hist.counts), hist.sum
            cumulative, buckets = 0, []
            for bound, c in zip([*BUCKETS, float("inf")], counts, strict=True):
                cumulative += c
                buckets.append((floatToGoString(bound), float(cumulative)))
            latency.add_metric([kind], buckets, total)
            if created:
                latency.add_sample(f"{LATENCY}_created", {"endpoint": kind}, hist.created)
        yield latency
