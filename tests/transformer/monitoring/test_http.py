"""The request-metrics middleware: status classes, bounded endpoint label, errors counted."""

import asyncio

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from transformer.monitoring.http import RequestMetrics, endpoint

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
    app.add_middleware(RequestMetrics, registry=reg)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        for _ in range(3):
            assert (await c.post("/v2/models/m/infer")).status_code == 200
        assert (await c.post("/v2/models/m/labels")).status_code == 400
        assert (await c.get("/boom")).status_code == 500
