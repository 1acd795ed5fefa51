"""Collocated mode: the transformer scores the model in-process, no predictor anywhere."""

import subprocess

import httpx
import pytest

from devtools import stack
from tests.integration.helpers import outputs, v2_body

pytestmark = pytest.mark.integration

URL = "/v2/models/click-model/infer"


@pytest.fixture(scope="module")
def collocated(redis_features, model_dir, tmp_path_factory):
    ports = stack.Ports.free()  # nothing listens on the predictor ports
    tr = stack.start_transformer(
        redis_features,
        ports,
        "v2",
        tmp_path_factory.mktemp("collocated"),
        ["--collocated_model_dir", str(model_dir), "--predictor_wait_s", "0"],
    )
    try:
        stack.wait_ready(tr)
        yield tr
    finally:
        stack.stop(tr)


def test_same_answers_as_through_the_predictor(collocated, local_stack):
    ids = [*range(1, 41), 99_999_999]
    body = v2_body(ids, [5.0 + i for i in range(len(ids))], [i % 24 for i in range(len(ids))])
    local = outputs(httpx.post(collocated.url + URL, json=body))
    remote = outputs(httpx.post(local_stack.url + URL, json=body))
    assert local["score"] == pytest.approx(remote["score"], rel=1e-12)
    assert local["model_version"] == remote["model_version"]
    assert local["decision"] == remote["decision"]
    assert local["prediction_source"][:-1] == ["model"] * 40
    assert local["prediction_source"][-1] == "default"  # unknown user: the business rules


def test_metadata_advertises_the_transformers_inputs(collocated):
    meta = httpx.get(collocated.url + "/v2/models/click-model").json()
    assert [i["name"] for i in meta["inputs"]] == [
        "user_id",
        "session_duration_s",
        "hour_of_day",
    ]


def test_a_bad_model_directory_stops_the_start_naming_the_file(redis_features, tmp_path):
    ports = stack.Ports.free()
    tr = stack.start_transformer(
        redis_features, ports, "v2", tmp_path, ["--collocated_model_dir", str(tmp_path / "none")]
    )
    try:
        code = tr.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        stack.stop(tr)
        raise
    assert code == 1
    assert f"{tmp_path / 'none' / 'metadata.json'}: not found" in tr.log_tail()
