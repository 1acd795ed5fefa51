"""The online path over real HTTP and gRPC: redis-server, Feast on Redis, both model servers."""

import json
import math

import grpc
import httpx
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from devtools.stack import ROOT
from predictor.protocol.artifact import read_metadata
from predictor.protocol.codec import grpc_outputs
from tests.integration.helpers import online_features, outputs, v2_body

pytestmark = pytest.mark.integration

MODEL = "click-model"


@pytest.fixture(params=["rest", "grpc"], ids=["to-predictor-rest", "to-predictor-grpc"])
def transformer_url(request, local_stack):
    server = local_stack.transformer if request.param == "rest" else local_stack.transformer_grpc
    return server.url


def test_example_request_scores_user_42(local_stack, transformer_url):
    body = json.loads((ROOT / "examples/requests/v2_infer.json").read_text())
    r = httpx.post(f"{transformer_url}/v2/models/{MODEL}/infer", json=body)
    out = outputs(r)
    version = read_metadata(local_stack.model_dir).version
    assert 0.0 <= out["score"][0] <= 1.0
    assert out["decision"][0] in {"show_offer", "show_banner", "no_action"}
    assert out["model_version"] == [version]
    assert out["prediction_source"] == ["model"] and out["feature_status"] == ["present"]
    assert r.json()["id"] == "example-1"


def test_v1_example_request(local_stack):
    body = json.loads((ROOT / "examples/requests/v1_predict.json").read_text())
    r = httpx.post(f"{local_stack.url}/v1/models/{MODEL}:predict", json=body)
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert [p["user_id"] for p in preds] == [42, 7]
    assert all(p["prediction_source"] == "model" and 0 <= p["score"] <= 1 for p in preds)


def test_parity_with_feast_and_with_the_predictor(local_stack, transformer_url):
    """The features the transformer used are what Feast returns, and its score is what the
    predictor gives for exactly those features."""
    ids = [*range(1, 41), 10_000_001]
    durations = [5.0 + 3 * i for i in range(len(ids))]
    hours = [i % 24 for i in range(len(ids))]
    r = httpx.post(
        f"{transformer_url}/v2/models/{MODEL}/infer",
        json=v2_body(ids, durations, hours, return_features=True, cache=False),
    )
    out = outputs(r)
    expected = online_features(local_stack.features, ids, durations, hours)
    assert set(expected) <= set(out)
    for name, values in expected.items():
        for got, want in zip(out[name], values, strict=True):
            if want is None:
                assert got is None or math.isnan(got), name
            else:
                assert got == pytest.approx(float(want), rel=1e-12), name
    # the unknown user got the business-rule default, not a model score
    assert out["prediction_source"][-1] == "default" and out["feature_status"][-1] == "missing"
    # re-score the known rows on the predictor directly with the returned features
    meta = read_metadata(local_stack.model_dir)
    n = len(ids) - 1
    direct = httpx.post(
        f"http://127.0.0.1:{local_stack.ports.predictor_http}/v2/models/{MODEL}/infer",
        json={
            "inputs": [
                {
                    "name": f.name,
                    "datatype": f.datatype,
                    "shape": [n],
                    "data": [int(v) if f.datatype == "INT64" else v for v in out[f.name][:n]],
                }
                for f in meta.features
            ]
        },
    )
    probs = outputs(direct)["probability"]
    assert out["score"][:n] == pytest.approx(probs, rel=1e-12)


def test_grpc_inference_on_the_transformer(local_stack):
    with grpc.insecure_channel(f"127.0.0.1:{local_stack.ports.transformer_grpc}") as ch:
        stub = GRPCInferenceServiceStub(ch)
        req = pb.ModelInferRequest(
            model_name=MODEL,
            inputs=[
                pb.ModelInferRequest.InferInputTensor(
                    name="user_id",
                    datatype="INT64",
                    shape=[2],
                    contents=pb.InferTensorContents(int64_contents=[42, 43]),
                ),
                pb.ModelInferRequest.InferInputTensor(
                    name="session_duration_s",
                    datatype="FP64",
                    shape=[2],
                    contents=pb.InferTensorContents(fp64_contents=[35.0, 10.0]),
                ),
                pb.ModelInferRequest.InferInputTensor(
                    name="hour_of_day",
                    datatype="INT64",
                    shape=[2],
                    contents=pb.InferTensorContents(int64_contents=[20, 8]),
                ),
            ],
        )
        resp = stub.ModelInfer(req, timeout=10)
        assert not any(o.HasField("contents") for o in resp.outputs)
        outs = grpc_outputs(resp)  # every output in raw_output_contents, as Triton sends them
        assert outs["score"].shape == (2,)
        assert [b.decode() for b in outs["prediction_source"]] == ["model"] * 2
        meta = stub.ModelMetadata(pb.ModelMetadataRequest(name=MODEL), timeout=10)
        assert [t.name for t in meta.inputs] == ["user_id", "session_duration_s", "hour_of_day"]
        with pytest.raises(grpc.RpcError) as e:
            stub.ModelInfer(
                pb.ModelInferRequest(model_name=MODEL, inputs=req.inputs[:1]), timeout=10
            )
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "missing inputs" in e.value.details()


def test_metadata_and_health(local_stack):
    base = local_stack.url
    assert httpx.get(f"{base}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{base}/v2/health/ready").json() == {"ready": True}
    assert httpx.get(f"{base}/v2/models/{MODEL}/ready").status_code == 200
    meta = httpx.get(f"{base}/v2/models/{MODEL}").json()
    assert [i["name"] for i in meta["inputs"]] == ["user_id", "session_duration_s", "hour_of_day"]
    assert {o["name"] for o in meta["outputs"]} >= {
        "score",
        "decision",
        "model_version",
        "prediction_source",
    }
    pmeta = httpx.get(
        f"http://127.0.0.1:{local_stack.ports.predictor_http}/v2/models/{MODEL}"
    ).json()
    assert [i["name"] for i in pmeta["inputs"]] == read_metadata(
        local_stack.model_dir
    ).feature_names


def test_batch_of_many_users(local_stack):
    ids = list(range(1, 301))
    out = outputs(httpx.post(f"{local_stack.url}/v2/models/{MODEL}/infer", json=v2_body(ids)))
    assert len(out["score"]) == 300 and set(out["prediction_source"]) == {"model"}
    # the scores differ between users: features really reach the model
    assert len(set(out["score"])) > 250


def test_features_free_inference_on_the_predictor_and_through_the_transformer(local_stack):
    """Approach 4: the request carries the feature values; no online store involved."""
    meta = read_metadata(local_stack.model_dir)
    row = {
        "user_data__click_through_rate": 0.12,
        "user_data__number_of_clicks": 40,
        "user_data__average_page_duration": 25.0,
        "user_data__sessions_last_7d": 6,
        "user_data__days_since_signup": 300,
        "user_data__conversion_rate": 0.03,
        "user_request_features__engagement_ratio": 2.0,
        "user_request_features__is_peak_hour": 1,
        "user_request_features__clicks_per_session": 6.5,
    }
    body = {
        "inputs": [
            {"name": f.name, "datatype": f.datatype, "shape": [1], "data": [row[f.name]]}
            for f in meta.features
        ]
    }
    direct = outputs(
        httpx.post(
            f"http://127.0.0.1:{local_stack.ports.predictor_http}/v2/models/{MODEL}/infer",
            json=body,
        )
    )
    via = outputs(httpx.post(f"{local_stack.url}/v2/models/{MODEL}/infer", json=body))
    assert direct == via and direct["model_version"] == [meta.version]
    assert 0.0 < direct["probability"][0] < 1.0
