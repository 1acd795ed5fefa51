"""Request ids and JSON log lines (both servers use predictor.protocol.logs)."""

import asyncio
import json
import logging
import sys

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from predictor.protocol.logs import REQUEST_ID, JsonFormatter, RequestId

pytestmark = pytest.mark.unit


async def handler(_):
    return JSONResponse({"seen": REQUEST_ID.get()})


async def _call(headers):
    app = Starlette(routes=[Route("/x", handler)])
    app.add_middleware(RequestId)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        return await c.get("/x", headers=headers)


def test_request_id_is_taken_from_the_header_and_echoed():
    r = asyncio.run(_call({"x-request-id": "abc-123"}))
    assert r.headers["x-request-id"] == "abc-123" and r.json() == {"seen": "abc-123"}
    assert REQUEST_ID.get() == ""  # reset after the request


@pytest.mark.parametrize("given", [None, "", "x" * 200, "bad id\twith spaces"])
def test_missing_or_unsafe_ids_are_replaced(given):
    r = asyncio.run(_call({"x-request-id": given} if given is not None else {}))
    rid = r.headers["x-request-id"]
    assert len(rid) == 32 and int(rid, 16) >= 0 and r.json() == {"seen": rid}


def test_json_lines_carry_the_request_id_and_the_traceback():
    f = JsonFormatter()
    rec = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed %s", ("x",), None)
    token = REQUEST_ID.set("r1")
    try:
        line = json.loads(f.format(rec))
    finally:
        REQUEST_ID.reset(token)
    assert line["message"] == "failed x" and line["request_id"] == "r1"
    assert line["level"] == "ERROR" and line["logger"] == "t"
    try:
        raise ValueError("boom")
    except ValueError:
        rec.exc_info = sys.exc_info()
    line = json.loads(f.format(rec))
    assert "request_id" not in line and "ValueError: boom" in line["exc"]
