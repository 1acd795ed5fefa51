"""A slow or dead predictor gives the client a clear 504 / 503, never a 500 or a hang."""

import signal
import time

import httpx
import pytest

from devtools import stack
from tests.integration.helpers import outputs, v2_body

pytestmark = pytest.mark.integration

URL = "/v2/models/click-model/infer"


@pytest.fixture
def fragile_stack(redis_features, model_dir, tmp_path):
    ports = stack.Ports.free()
    pred = stack.start_predictor(model_dir, ports, tmp_path)
    servers = [pred]
    try:
        stack.wait_ready(pred)
        tr = stack.start_transformer(
            redis_features, ports, "v2", tmp_path, ["--predictor_timeout_s", "0.5"]
        )
        servers.append(tr)
        stack.wait_ready(tr)
        yield pred, tr
    finally:
        if pred.proc.poll() is None:
            pred.proc.send_signal(signal.SIGCONT)
        stack.stop(*servers)


def test_paused_predictor_is_504_then_dead_predictor_is_503(fragile_stack):
    pred, tr = fragile_stack
    assert outputs(httpx.post(tr.url + URL, json=v2_body([42])))["prediction_source"] == ["model"]

    pred.proc.send_signal(signal.SIGSTOP)
    t0 = time.monotonic()
    r = httpx.post(tr.url + URL, json=v2_body([42]), timeout=10)
    assert r.status_code == 504 and "did not answer within 0.5s" in r.json()["error"]
    assert time.monotonic() - t0 < 3
    pred.proc.send_signal(signal.SIGCONT)

    stack.stop(pred)
    r = httpx.post(tr.url + URL, json=v2_body([42]), timeout=10)
    assert r.status_code == 503 and "cannot reach the predictor" in r.json()["error"]
    # users the rules answer without the model are still served
    out = outputs(httpx.post(tr.url + URL, json=v2_body([987654321]), timeout=10))
    assert out["prediction_source"] == ["default"]
    assert httpx.get(tr.url + "/v2/health/live").status_code == 200
