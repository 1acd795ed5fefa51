"""The request-metrics middleware: status classes, bounded endpoint label, errors counted."""

import asyncio

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from predictor.protocol.logs import RequestId
from transformer.monitoring.http import HttpStats, endpoint

pytestmark = pytest.mark.unit


async def ok(_):
    return JSONResponse({})


async def bad(_):
    return JSONResponse({"error": "x"}, 400)


async def boom(_):
    raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/v2/models/click-model/infer", "infer"),
        ("/v1/models/click-model:predict", "infer"),
        ("/v2/models/click-model/labels", "labels"),
        ("/v2/models/click-model/monitoring", "monitoring"),
        ("/producer/v1/write", "producer"),
        ("/v2/health/ready", "health"),
        ("/metrics", "metrics"),
        ("/anything/else/1234", "other"),
    ],
)
def test_endpoint_kinds_are_bounded(path, kind):
    assert endpoint(path) == kind


def test_counts_by_status_class_and_times_requests():
    reg = CollectorRegistry()
    asyncio.run(_calls(reg))

    def value(name, **labels):
        return reg.get_sample_value(name, labels)

    assert value("transformer_http_requests_total", endpoint="infer", code="2xx") == 3
    assert value("transformer_http_requests_total", endpoint="labels", code="4xx") == 1
    assert value("transformer_http_requests_total", endpoint="other", code="5xx") == 1
    assert value("transformer_http_request_duration_seconds_count", endpoint="infer") == 3


async def _calls(reg):
    app = Starlette(
        routes=[
            Route("/v2/models/m/infer", ok, methods=["POST"]),
            Route("/v2/models/m/labels", bad, methods=["POST"]),
            Route("/boom", boom),
        ]
    )
    app.add_middleware(RequestId, observe=HttpStats(reg).record)  # as the servers install it
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        for _ in range(3):
            assert (await c.post("/v2/models/m/infer")).status_code == 200
        assert (await c.post("/v2/models/m/labels")).status_code == 400
        assert (await c.get("/boom")).status_code == 500


def _exposition(reg):
    """The text format without the ``_created`` timestamps (they differ by construction)."""
    from prometheus_client import generate_latest

    lines = generate_latest(reg).decode().splitlines()
    return [x.rsplit(" ", 1)[0] if "_created{" in x else x for x in lines]


def test_exported_exactly_as_prometheus_clients_own_counter_and_histogram():
    """The hand-made accumulators export what a ``Counter`` + ``Histogram`` would (same names,
    labels, buckets, _count/_sum/_created), including values on bucket bounds and past them."""
    from prometheus_client import Counter, Histogram

    from transformer.monitoring.http import BUCKETS, HttpStats

    calls = [
        ("/v2/models/m/infer", 200, 0.0004),
        ("/v2/models/m/infer", 200, 0.001),  # on a bound: in le="0.001"
        ("/v2/models/m/infer", 503, 0.3),
        ("/v2/models/m/labels", 400, 7.5),  # past the last bound: +Inf only
        ("/v2/health/ready", 200, 0.0025),
    ]
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    stats = HttpStats(ours)
    requests = Counter(
        "transformer_http_requests",
        "HTTP requests by endpoint and status class",
        ["endpoint", "code"],
        registry=theirs,
    )
    latency = Histogram(
        "transformer_http_request_duration_seconds",
        "HTTP request latency (to the response start) by endpoint",
        ["endpoint"],
        buckets=BUCKETS,
        registry=theirs,
    )
    for path, status, seconds in calls:
        stats.record(path, status, seconds)
        requests.labels(endpoint(path), f"{status // 100}xx").inc()
        latency.labels(endpoint(path)).observe(seconds)
    assert _exposition(ours) == _exposition(theirs)
    stats.record("/v2/models/m/infer", 200, 0.01)  # and it keeps counting
    assert _exposition(ours) != _exposition(theirs)
    assert (
        ours.get_sample_value(
            "transformer_http_request_duration_seconds_bucket", {"endpoint": "infer", "le": "0.01"}
        )
        == 3
    )
