"""Prometheus metrics of the transformer, served by KServe's ``/metrics``.

Built once at start-up with the registry to use (the process-wide default in servers, a
fresh one in tests) and passed to whatever counts.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge


class Metrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY):
        self.predictions = Counter(
            "transformer_predictions",
            "Rows answered, by where the answer came from",
            ["source"],
            registry=registry,
        )
        self.cache_hits = Counter(
            "transformer_cache_hits",
            "Rows answered from a fresh cached prediction",
            registry=registry,
        )
        self.cache_misses = Counter(
            "transformer_cache_misses", "Rows with no usable cached prediction", registry=registry
        )
        self.cache_stale = Counter(
            "transformer_cache_stale",
            "Rows whose cached prediction existed but was not fresh "
            "(older model, older features, other request context, or too old)",
            registry=registry,
        )
        self.writeback_rows = Counter(
            "transformer_writeback_rows",
            "Predictions written back to the online store",
            registry=registry,
        )
        self.writeback_failures = Counter(
            "transformer_writeback_failures",
            "Predictions whose write-back failed (the requests were answered)",
            registry=registry,
        )
        self.writeback_dropped = Counter(
            "transformer_writeback_dropped",
            "Predictions not queued for write-back because the queue was full",
            registry=registry,
        )
        self.writeback_queue_depth = Gauge(
            "transformer_writeback_queue_depth",
            "Predictions waiting to be written",
            registry=registry,
        )
        self.producer_rows = Counter(
            "transformer_producer_rows", "Feature rows written by data producers", registry=registry
        )
        self.store_up = Gauge(
            "transformer_online_store_up",
            "1 if the last online-store operation or probe succeeded, 0 if it failed",
            registry=registry,
        )
        self.store_breaker_open = Gauge(
            "transformer_online_store_breaker_open",
            "1 while the online store's circuit breaker is open (failing fast, probing)",
            registry=registry,
        )
        self.store_errors = Counter(
            "transformer_online_store_errors",
            "Online-store operations that failed (connection refused, timeout, Redis error)",
            registry=registry,
        )
        self.store_rejected = Counter(
            "transformer_online_store_rejected",
            "Online-store operations refused at once because the breaker was open",
            registry=registry,
        )
