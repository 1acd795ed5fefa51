import time

import pytest
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferRequest
from prometheus_client import CollectorRegistry

from tests.transformer.fakes import TABLE
from tests.transformer.harness import call, make, outputs, v2
from transformer.rules import BusinessRules

pytestmark = pytest.mark.unit


def now_us():
    return int(time.time() * 1e6)


def test_batch_is_one_predictor_call_with_known_rows_only():
    model, client = make()
    response = call(model, v2([1, 99, 2]))
    out = outputs(response)
    assert response.model_version == "sklearn-abc"  # every scored row agrees
    assert len(client.calls) == 1 and client.calls[0].shape == (2, 2)
    assert out["score"] == [0.9, 0.0, 0.1]
    assert out["decision"] == ["show_offer", "no_action", "no_action"]
    assert out["prediction_source"] == ["model", "default", "model"]
    assert out["feature_status"] == ["present", "missing", "present"]
    assert out["model_version"] == ["sklearn-abc", "", "sklearn-abc"]
    assert model.reader.reads == [False]  # online mode never reads the predictions view


def test_unknown_users_only_never_call_the_model():
    model, client = make()
    response = call(model, v2([98, 99]))
    out = outputs(response)
    assert client.calls == [] and out["prediction_source"] == ["default", "default"]
    assert response.model_version is None  # no model answered


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


def feature_ts(user):
    return int((time.time() - TABLE[user][2]) * 1e6)


def test_cached_mode_serves_only_fresh_entries_and_writes_back_misses():
    registry = CollectorRegistry()
    model, client = make(mode="cached", registry=registry)
    model.freshness.versions.note("sklearn-abc")
    model.reader.cache = {
        1: (0.33, "sklearn-abc", feature_ts(1) + 10**6, "hour=1", now_us()),  # fresh
        2: (0.44, "sklearn-old", feature_ts(2) + 10**6, "hour=1", now_us()),  # model not live
    }
    out = outputs(call(model, v2([1, 2])))
    assert out["prediction_source"] == ["cache", "model"]
    assert out["score"] == [0.33, 0.1] and out["model_version"] == ["sklearn-abc", "sklearn-abc"]
    assert client.calls[0].shape == (1, 2)
    assert model.writer.rows == [(2, 0.1, "sklearn-abc", "hour=1")]
    assert registry.get_sample_value("transformer_cache_hits_total") == 1
    assert registry.get_sample_value("transformer_cache_stale_total") == 1


@pytest.mark.parametrize(
    "entry",
    [
        (0.33, "sklearn-abc", 1, "hour=1", 0),  # features newer than the prediction
        (0.33, "sklearn-abc", 10**18, "hour=2", 0),  # other request context
        (0.33, "sklearn-abc", 10**18, "hour=1", -7200 * 10**6),  # older than max age
    ],
    ids=["older-features", "other-request", "too-old"],
)
def test_cached_mode_refuses_stale_entries(entry):
    model, _client = make(mode="cached")
    model.freshness.versions.note("sklearn-abc")
    score, version, fts, key, age = entry
    model.reader.cache = {1: (score, version, fts, key, now_us() + age)}
    assert outputs(call(model, v2([1])))["prediction_source"] == ["model"]


def test_cache_false_bypasses_reads_and_write_back():
    model, _client = make(mode="cached")
    model.freshness.versions.note("sklearn-abc")
    model.reader.cache = {1: (0.33, "sklearn-abc", 10**18, "hour=1", now_us())}
    out = outputs(call(model, v2([1], {"cache": False})))
    assert out["prediction_source"] == ["model"] and model.reader.reads == [False]
    assert model.writer.rows == []


def test_precomputed_mode_and_its_fallbacks():
    model, client = make(mode="precomputed")
    model.reader.cache = {1: (0.7, "batch-v", 0, "", now_us())}
    out = outputs(call(model, v2([1, 2])))
    assert out["prediction_source"] == ["precomputed", "model"]
    assert out["model_version"] == ["batch-v", "sklearn-abc"] and model.writer.rows == []
    model, client = make(mode="precomputed", fallback="default")
    model.reader.cache = {1: (0.7, "batch-v", 0, "", now_us())}
    out = outputs(call(model, v2([1, 2])))
    assert out["prediction_source"] == ["precomputed", "default"] and client.calls == []


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


def test_requests_carrying_the_features_are_forwarded_unchanged():
    model, _ = make()
    body = InferRequest(
        "click-model",
        [InferInput("v__x", [2], "FP64", [0.25, 0.75]), InferInput("v__k", [2], "INT64", [1, 2])],
    )
    out = outputs(call(model, body))
    assert out == {"probability": [0.25, 0.75], "model_version": ["sklearn-abc"] * 2}
    assert model.reader.reads == []  # no feature lookup at all


def test_store_unavailable_error_propagates_as_503():
    from transformer.errors import FeatureStoreUnavailable

    model, client = make()
    model.reader.down = True
    with pytest.raises(FeatureStoreUnavailable) as e:
        call(model, v2([1, 2]))
    assert e.value.status == 503 and not client.calls


@pytest.mark.parametrize("mode", ["online", "cached"])
def test_store_unavailable_default_answers_every_row_with_the_default(mode):
    rules = BusinessRules(store_unavailable="default", default_decision="fallback")
    model, client = make(rules, mode=mode)
    model.reader.down = True
    out = outputs(call(model, v2([1, 2, 999], {"return_features": True})))
    assert out["decision"] == ["fallback"] * 3
    assert out["prediction_source"] == ["default"] * 3
    assert out["feature_status"] == ["unavailable"] * 3
    assert out["score"] == [0.0] * 3
    assert all(v != v for v in out["v__x"])  # NaN: no value was read
    assert not client.calls and not model.writer.rows
    model.reader.down = False  # the same model serves normally once the store is back
    out = outputs(call(model, v2([1])))
    assert out["prediction_source"] == ["model"] and out["feature_status"] == ["present"]
