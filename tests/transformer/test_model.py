import asyncio

import pytest
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferRequest

from tests.transformer.fakes import FEATURES, FakeCache, FakeClient, FakeReader
from transformer.model import FeastTransformer
from transformer.rules import BusinessRules

pytestmark = pytest.mark.unit


def make(rules=None, cache=None):
    client = FakeClient()
    model = FeastTransformer(
        "click-model", FakeReader(), FEATURES, lambda: client, rules or BusinessRules(), 100, cache
    )
    return model, client


def v2(ids, params=None):
    n = len(ids)
    return InferRequest(
        "click-model",
        [InferInput("user_id", [n], "INT64", ids), InferInput("hour", [n], "INT64", [1] * n)],
        parameters=params,
    )


def call(model, body):
    response, _ = asyncio.run(model(body))
    return response


def outputs(response):
    return {o.name: o.data for o in response.outputs}


def test_batch_is_one_predictor_call_with_known_rows_only():
    model, client = make()
    out = outputs(call(model, v2([1, 99, 2])))
    assert len(client.calls) == 1 and client.calls[0].shape == (2, 2)
    assert out["score"] == [0.9, 0.0, 0.1]
    assert out["decision"] == ["show_offer", "no_action", "no_action"]
    assert out["prediction_source"] == ["model", "default", "model"]
    assert out["feature_status"] == ["present", "missing", "present"]
    assert out["model_version"] == ["sklearn-abc", "", "sklearn-abc"]
    assert model.reader.reads == 1


def test_unknown_users_only_never_call_the_model():
    model, client = make()
    out = outputs(call(model, v2([98, 99])))
    assert client.calls == [] and out["prediction_source"] == ["default", "default"]


def test_stale_policy():
    model, client = make()
    assert outputs(call(model, v2([3])))["feature_status"] == ["stale"]
    assert outputs(call(model, v2([3])))["prediction_source"] == ["model"]
    model, client = make(BusinessRules(stale_features="default", default_decision="hold"))
    out = outputs(call(model, v2([3])))
    assert out["prediction_source"] == ["default"] and out["decision"] == ["hold"]
    assert client.calls == []


def test_clamping_applies_to_model_scores():
    model, _ = make(BusinessRules(clamp_max=0.6))
    assert outputs(call(model, v2([1])))["score"] == [0.6]


def test_return_features_adds_outputs():
    model, _ = make()
    out = outputs(call(model, v2([1, 99], {"return_features": True})))
    assert out["v__x"][0] == 0.9 and out["v__x"][1] != out["v__x"][1]  # NaN for unknown


def test_v1_in_v1_out():
    model, _ = make()
    resp = call(model, {"instances": [{"user_id": 2, "hour": 3}]})
    assert resp == {
        "predictions": [
            {
                "user_id": 2,
                "score": 0.1,
                "decision": "no_action",
                "model_version": "sklearn-abc",
                "prediction_source": "model",
                "feature_status": "present",
            }
        ]
    }


def test_cache_seam_hits_skip_the_model_and_misses_are_stored():
    cache = FakeCache({1: (0.33, "sklearn-old")})
    model, client = make(cache=cache)
    out = outputs(call(model, v2([1, 2])))
    assert out["prediction_source"] == ["cache", "model"]
    assert out["score"] == [0.33, 0.1] and out["model_version"] == ["sklearn-old", "sklearn-abc"]
    assert client.calls[0].shape == (1, 2)
    assert cache.stored == [([2], [0.1], "sklearn-abc")]
    out = outputs(call(model, v2([1], {"cache": False})))
    assert out["prediction_source"] == ["model"]


def test_bad_input_is_invalid_input():
    model, _ = make()
    with pytest.raises(InvalidInput, match="missing inputs"):
        call(model, InferRequest("click-model", [InferInput("user_id", [1], "INT64", [1])]))
    with pytest.raises(InvalidInput, match="exceeds the limit of 100"):
        call(model, v2(list(range(101))))


def test_metadata_advertises_real_inputs_and_outputs():
    model, _ = make()
    assert [i["name"] for i in model.get_input_types()] == ["user_id", "hour"]
    assert [o["name"] for o in model.get_output_types()] == [
        "score",
        "decision",
        "model_version",
        "prediction_source",
        "feature_status",
    ]
