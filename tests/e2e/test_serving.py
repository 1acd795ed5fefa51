"""What a user of the deployed service does: v1/v2/gRPC inference, metadata and health, bad
input, the prediction cache, and a data-producer write followed by a fresh read. Runs the same
against the local stack and the kind cluster."""

from __future__ import annotations

import time

import grpc
import httpx
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from predictor.protocol.codec import grpc_outputs
from tests.e2e.calls import body, infer

pytestmark = pytest.mark.e2e

SOURCES = {"model", "cache", "precomputed", "default"}


def test_v2_inference_for_user_42(http, target):
    out = infer(http, target, body([42], cache=False))
    assert 0.0 <= out["score"][0] <= 1.0
    assert out["decision"][0] and out["model_version"][0]
    assert out["prediction_source"] == ["model"] and out["feature_status"] == ["present"]


def test_v1_inference(http, target):
    r = http.post(
        f"/v1/models/{target.model}:predict",
        json={"instances": [{"user_id": 42, "session_duration_s": 35.0, "hour_of_day": 20}]},
    )
    assert r.status_code == 200, r.text
    (p,) = r.json()["predictions"]
    assert p["user_id"] == 42 and p["prediction_source"] in SOURCES and 0 <= p["score"] <= 1


def test_metadata_and_health(http, target):
    assert http.get("/v2/health/live").status_code == 200
    assert http.get("/v2/health/ready").status_code == 200
    assert http.get(f"/v2/models/{target.model}/ready").status_code == 200
    meta = http.get(f"/v2/models/{target.model}").json()
    assert [i["name"] for i in meta["inputs"]] == ["user_id", "session_duration_s", "hour_of_day"]
    assert "prediction_source" in {o["name"] for o in meta["outputs"]}


def test_grpc_inference(target, grpc_target):
    with grpc.insecure_channel(grpc_target, options=target.grpc_options) as ch:
        stub = GRPCInferenceServiceStub(ch)
        tensors = [
            pb.ModelInferRequest.InferInputTensor(
                name="user_id",
                datatype="INT64",
                shape=[1],
                contents=pb.InferTensorContents(int64_contents=[42]),
            ),
            pb.ModelInferRequest.InferInputTensor(
                name="session_duration_s",
                datatype="FP64",
                shape=[1],
                contents=pb.InferTensorContents(fp64_contents=[35.0]),
            ),
            pb.ModelInferRequest.InferInputTensor(
                name="hour_of_day",
                datatype="INT64",
                shape=[1],
                contents=pb.InferTensorContents(int64_contents=[20]),
            ),
        ]
        resp = stub.ModelInfer(
            pb.ModelInferRequest(model_name=target.model, inputs=tensors),
            timeout=30,
            metadata=target.grpc_metadata,
        )
        outs = grpc_outputs(resp)  # every output in raw_output_contents, as Triton sends them
        assert 0.0 <= outs["score"][0] <= 1.0
        assert outs["prediction_source"][0].decode() in SOURCES
        with pytest.raises(grpc.RpcError) as e:
            stub.ModelInfer(
                pb.ModelInferRequest(model_name=target.model, inputs=tensors[:1]),
                timeout=30,
                metadata=target.grpc_metadata,
            )
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("payload", "status", "needle"),
    [
        (b'{"inputs": [', 400, "JSON"),
        ({"inputs": []}, 400, "no inputs"),
        ({"inputs": body([1])["inputs"][:2]}, 400, "missing inputs ['hour_of_day']"),
        (body([]), 400, "batch is empty"),
    ],
    ids=["malformed", "no-inputs", "missing-input", "empty-batch"],
)
def test_bad_input_is_a_4xx_naming_the_problem(http, target, payload, status, needle):
    url = f"/v2/models/{target.model}/infer"
    if isinstance(payload, bytes):
        r = http.post(url, content=payload, headers={"content-type": "application/json"})
    else:
        r = http.post(url, json=payload)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]


def test_unknown_user_gets_a_flagged_default(http, target):
    out = infer(http, target, body([987_654_321]))
    assert out["prediction_source"] == ["default"] and out["feature_status"] == ["missing"]


def until(http, target, b, source, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while True:
        out = infer(http, target, b)
        if out["prediction_source"] == [source] or time.monotonic() > deadline:
            return out
        time.sleep(0.1)


def test_cache_answers_a_repeated_request(http, target):
    b = body([77], dur=12.5, hour=9)
    first = infer(http, target, b)
    assert first["prediction_source"][0] in {"model", "cache"}
    hit = until(http, target, b, "cache")
    assert hit["prediction_source"] == ["cache"]
    assert hit["score"] == pytest.approx(first["score"])


def test_producer_write_then_fresh_read(http, target):
    b = body([88], dur=20.0, hour=21)
    infer(http, target, b)
    before = until(http, target, b, "cache")
    row = {
        "user_id": 88,
        "click_through_rate": 0.5,
        "number_of_clicks": 120,
        "average_page_duration": 15.0,
        "sessions_last_7d": 10,
        "days_since_signup": 50,
        "conversion_rate": 0.1,
    }
    r = http.post("/producer/v1/write", json={"rows": [row]}, headers=target.write_headers)
    assert r.status_code == 200, r.text
    after = infer(http, target, {**b, "parameters": {"return_features": True}})
    assert after["user_data__click_through_rate"] == [pytest.approx(0.5)]
    fresh = infer(http, target, {**b, "parameters": {"cache": False}})
    assert after["score"] == pytest.approx(fresh["score"]) and after["score"] != before["score"]


def test_auth_when_deployed_with_tokens(target):
    """With a token configured (E2E_TOKEN; the local target always), a call without one is
    refused with 401, the infer token cannot write, probes stay open."""
    if not target.token:
        pytest.skip("E2E_TOKEN not set: the deployment under test has auth off")
    headers = {"Host": target.host_header} if target.host_header else {}
    with httpx.Client(base_url=target.base_url, headers=headers, timeout=30) as anon:
        r = anon.post(f"/v2/models/{target.model}/infer", json=body([42]))
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert "error" in r.json()
        assert anon.get("/v2/health/ready").status_code == 200
    with target.client() as http:
        r = http.post("/producer/v1/write", json={"rows": []})
        assert r.status_code == 403, r.text
