"""Live drift in the chart's default form: the transformer has no model directory and no
baseline file; it fetches the served model's baseline from the predictor at start-up.

Real redis-server + Feast, a real predictor process serving a model directory with its
baseline.json, transformers (REST and gRPC to the predictor) started without it; and a
predictor whose model has no baseline, whose transformer serves with drift off."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator

import httpx
import pytest

from devtools import stack
from predictor.protocol.artifact import read_metadata
from tests.integration.helpers import metric, outputs, v2_body

pytestmark = pytest.mark.integration

MODEL = "click-model"
WINDOW = ["--monitoring_window", "rows", "--monitoring_window_size", "1000",
          "--monitoring_min_rows", "50", "--monitoring_compute_interval_ms", "0"]  # fmt: skip


def start(fenv, ports, protocol, logs, *extra) -> stack.Server:
    return stack.start_transformer(fenv, ports, protocol, logs, [*WINDOW, *extra])


@pytest.fixture(scope="module")
def servers(redis_features, model_dir, tmp_path_factory) -> Iterator[dict[str, stack.Server]]:
    logs = tmp_path_factory.mktemp("logs")
    bare = tmp_path_factory.mktemp("bare") / "model"
    shutil.copytree(model_dir, bare)
    (bare / "baseline.json").unlink()
    ports, bare_ports = stack.Ports.free(), stack.Ports.free()
    grpc_ports = stack.Ports(
        ports.predictor_http, ports.predictor_grpc, stack.free_port(), stack.free_port()
    )
    out: dict[str, stack.Server] = {}
    try:
        out["predictor"] = stack.start_predictor(model_dir, ports, logs)
        (logs / "bare").mkdir()
        (logs / "grpc").mkdir()
        out["bare predictor"] = stack.start_predictor(bare, bare_ports, logs / "bare")
        stack.wait_ready(out["predictor"])
        stack.wait_ready(out["bare predictor"])
        out["rest"] = start(redis_features, ports, "v2", logs)
        # gRPC to the predictor: the baseline comes from its HTTP port, named explicitly
        url = f"{out['predictor'].url}/v2/models/{MODEL}/baseline"
        out["grpc"] = start(redis_features, grpc_ports, "grpc-v2", logs / "grpc",
                            "--monitoring_baseline_url", url)  # fmt: skip
        out["bare"] = start(redis_features, bare_ports, "v2", logs / "bare")
        for s in out.values():
            stack.wait_ready(s)
        yield out
    finally:
        stack.stop(*out.values())


def serve(url: str, users: range) -> None:
    ids = list(users)
    for i in range(0, len(ids), 100):
        body = v2_body(ids[i : i + 100], cache=False)
        out = outputs(httpx.post(f"{url}/v2/models/{MODEL}/infer", json=body, timeout=30))
        assert set(out["prediction_source"]) == {"model"}


def test_the_predictor_serves_the_baseline(servers, model_dir):
    r = httpx.get(f"{servers['predictor'].url}/v2/models/{MODEL}/baseline", timeout=10)
    assert r.status_code == 200 and r.json()["model_version"] == read_metadata(model_dir).version
    r = httpx.get(f"{servers['bare predictor'].url}/v2/models/{MODEL}/baseline", timeout=10)
    assert r.status_code == 404 and "has no baseline.json" in r.json()["error"]


@pytest.mark.parametrize("which", ["rest", "grpc"])
def test_transformer_without_model_dir_shows_drift_labelled_by_version(servers, model_dir, which):
    version = read_metadata(model_dir).version
    t = servers[which]
    serve(t.url, range(1, 301))
    view = httpx.get(f"{t.url}/v2/models/{MODEL}/monitoring", timeout=10).json()
    assert view["model_version"] == version
    assert view["score"]["rows"] >= 300
    names = read_metadata(model_dir).feature_names
    assert [f["name"] for f in view["features"]] == names
    for name in (*names, "score"):
        psi = metric(t.url, "transformer_drift_psi", feature=name, model_version=version)
        assert not math.isnan(psi), name
        if name.startswith("user_data__"):  # users as generated (the request fields are not)
            assert psi < 0.2, (name, psi)
    assert metric(t.url, "transformer_drift_window_rows", model_version=version) >= 300
    assert "fetched from" in t.log_tail(200)


def test_a_model_without_baseline_serves_with_drift_off(servers):
    t = servers["bare"]
    serve(t.url, range(1, 101))
    r = httpx.get(f"{t.url}/v2/models/{MODEL}/monitoring", timeout=10)
    assert r.status_code == 404 and "monitoring is off" in r.json()["error"]
    log = t.log_tail(200)
    assert "no baseline from" in log and "has no baseline.json" in log
    text = httpx.get(f"{t.url}/metrics", timeout=10).text
    assert "transformer_drift_psi" not in text
