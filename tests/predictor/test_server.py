from __future__ import annotations

import asyncio
import json
import shutil

import httpx
import pytest
from fastapi import FastAPI

from predictor.jobs import baseline
from predictor.protocol.artifact import read_metadata
from predictor.server import baseline_answer, install_baseline_route

pytestmark = pytest.mark.unit


@pytest.fixture
def model_copy(model_dir, tmp_path):
    out = tmp_path / "m"
    shutil.copytree(model_dir, out)
    return out


class Client:
    def __init__(self, app: FastAPI):
        self.app = app

    def get(self, path: str) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                return await c.get(path)

        return asyncio.run(go())


def client(answer) -> Client:
    app = FastAPI()
    install_baseline_route(app, "click-model", answer)
    return Client(app)


def test_serves_the_models_baseline(model_copy):
    version = read_metadata(model_copy).version
    c = client(baseline_answer(model_copy, version))
    r = c.get("/v2/models/click-model/baseline")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert baseline.Baseline.model_validate(r.json()) == baseline.read(
        model_copy / baseline.BASELINE_FILE
    )
    r = c.get("/v2/models/other/baseline")
    assert r.status_code == 404 and "'other' is not served here" in r.json()["error"]


def test_missing_stale_or_broken_baseline_is_a_404_naming_why(model_copy):
    version = read_metadata(model_copy).version
    path = model_copy / baseline.BASELINE_FILE
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "model_version": "sklearn-0000"}))
    r = client(baseline_answer(model_copy, version)).get("/v2/models/click-model/baseline")
    assert r.status_code == 404 and "describes model sklearn-0000" in r.json()["error"]
    path.write_text(json.dumps({**data, "rows": 0}))
    r = client(baseline_answer(model_copy, version)).get("/v2/models/click-model/baseline")
    assert r.status_code == 404 and "rows" in r.json()["error"]
    path.unlink()
    r = client(baseline_answer(model_copy, version)).get("/v2/models/click-model/baseline")
    assert r.status_code == 404 and "has no baseline.json" in r.json()["error"]
