import asyncio

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from predictor.protocol import rest

pytestmark = pytest.mark.unit


class Body(BaseModel):
    inputs: list[int]


def app():
    a = FastAPI()

    @a.post("/v2/models/m/infer")
    async def infer(body: Body):
        return {"ok": len(body.inputs)}

    @a.post("/v2/models/m/versions/1/infer")
    async def infer_versioned(body: Body):
        return {"ok": len(body.inputs)}

    @a.post("/v1/models/m:predict")
    async def predict(body: dict):
        return {"ok": len(body["instances"])}

    @a.post("/other")
    async def other():
        return {"ok": True}

    rest.install(a)
    return Client(a)


class Client:
    """Calls the ASGI app in-process through httpx (no server, no sockets)."""

    def __init__(self, asgi):
        self.asgi = asgi

    def post(self, path, **kw):
        async def go():
            transport = httpx.ASGITransport(app=self.asgi)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                return await c.post(path, **kw)

        return asyncio.run(go())


def test_json_passes():
    r = app().post("/v2/models/m/infer", json={"inputs": [1]})
    assert r.status_code == 200 and r.json() == {"ok": 1}


def test_a_body_that_is_not_json_under_a_foreign_type_is_415_naming_it():
    r = app().post("/v2/models/m/infer", content=b"x", headers={"content-type": "text/csv"})
    assert r.status_code == 415 and "text/csv" in r.json()["error"]


@pytest.mark.parametrize("ctype", ["", "application/x-www-form-urlencoded", "text/plain"])
def test_a_body_that_is_not_json_without_a_foreign_type_is_400(ctype):
    r = app().post("/v2/models/m/infer", content=b"x=1", headers={"content-type": ctype})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]


@pytest.mark.parametrize(
    "ctype", ["", "application/x-www-form-urlencoded", "text/csv", "application/octet-stream"]
)
def test_a_json_body_reaches_the_route_as_json_whatever_the_declared_type(ctype):
    """As KServe and Triton: tritonclient sends no content-type, ``curl -d`` a form type."""
    for path in ("/v2/models/m/infer", "/v2/models/m/versions/1/infer"):
        r = app().post(path, content=b'{"inputs": [1, 2]}', headers={"content-type": ctype})
        assert r.status_code == 200 and r.json() == {"ok": 2}, (path, r.text)


def test_other_routes_untouched():
    assert (
        app().post("/other", content=b"x", headers={"content-type": "text/plain"}).status_code
        == 200
    )


def test_validation_errors_are_400_with_the_field():
    r = app().post("/v2/models/m/infer", json={"inputs": "x"})
    assert r.status_code == 400 and "inputs" in r.json()["error"]
    r = app().post("/v2/models/m/infer", content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]


def test_a_v1_json_body_under_curls_form_type_is_served():
    r = app().post(
        "/v1/models/m:predict",
        content=b'{"instances": [[1], [2], [3]]}',
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200 and r.json() == {"ok": 3}
