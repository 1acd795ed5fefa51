"""Every bad input gets a 4xx with a JSON error naming the problem, over real HTTP."""

import httpx
import pytest

from tests.integration.helpers import JSON, outputs, v2_body

pytestmark = pytest.mark.integration

MODEL = "click-model"


def infer(url, **kw):
    return httpx.post(f"{url}/v2/models/{MODEL}/infer", **kw)


def _drop(body, name):
    body["inputs"] = [i for i in body["inputs"] if i["name"] != name]
    return body


def _set(body, name, **fields):
    for i in body["inputs"]:
        if i["name"] == name:
            i.update(fields)
    return body


CASES = [
    ("malformed json", dict(content=b'{"inputs": [', headers=JSON), 400, "JSON"),
    ("not json at all", dict(content=b"hello", headers=JSON), 400, "JSON"),
    (
        "not json under a foreign content type",
        dict(content=b"\x89PNG", headers={"content-type": "image/png"}),
        415,
        "content-type 'image/png' is not supported",
    ),
    (
        "form-encoded body (curl -d without a JSON body)",
        dict(content=b"a=1", headers={"content-type": "application/x-www-form-urlencoded"}),
        400,
        "not valid JSON",
    ),
    ("no inputs", dict(json={"inputs": []}), 400, "no inputs"),
    ("inputs not a list", dict(json={"inputs": "x"}), 400, "inputs"),
    (
        "missing input",
        dict(json=_drop(v2_body([1]), "hour_of_day")),
        400,
        "missing inputs ['hour_of_day']",
    ),
    (
        "extra input",
        dict(
            json={
                "inputs": v2_body([1])["inputs"]
                + [{"name": "zzz", "datatype": "FP64", "shape": [1], "data": [1.0]}]
            }
        ),
        400,
        "unexpected inputs ['zzz']",
    ),
    (
        "wrong datatype",
        dict(json=_set(v2_body([1]), "user_id", datatype="FP64", data=[1.5])),
        400,
        "datatype FP64 cannot be used as INT64",
    ),
    (
        "text for a number",
        dict(json=_set(v2_body([1]), "user_id", datatype="BYTES", data=["a"])),
        400,
        "user_id",
    ),
    ("shape mismatch", dict(json=_set(v2_body([1, 2]), "user_id", shape=[3])), 400, "says 3 rows"),
    (
        "2-d shape",
        dict(json=_set(v2_body([1, 2]), "user_id", shape=[1, 2])),
        400,
        "not [N] or [N, 1]",
    ),
    (
        "ragged rows",
        dict(json=_set(v2_body([1, 2]), "hour_of_day", shape=[1], data=[3])),
        400,
        "has 1 rows",
    ),
    ("empty batch", dict(json=v2_body([])), 400, "batch is empty"),
    ("oversized batch", dict(json=v2_body(list(range(1, 502)))), 400, "exceeds the limit of 500"),
    ("bad parameter", dict(json=v2_body([1], return_features="yes")), 400, "return_features"),
]


@pytest.mark.parametrize(
    ("kwargs", "status", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_transformer_rejects(local_stack, kwargs, status, needle):
    r = infer(local_stack.url, **kwargs)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]


def test_unknown_model_is_404(local_stack):
    r = httpx.post(f"{local_stack.url}/v2/models/nope/infer", json=v2_body([1]))
    assert r.status_code == 404 and "nope" in r.json()["error"]
    r = httpx.post(f"{local_stack.url}/v1/models/nope:predict", json={"instances": []})
    assert r.status_code == 404


def test_v1_bad_instances(local_stack):
    url = f"{local_stack.url}/v1/models/{MODEL}:predict"
    r = httpx.post(url, json={"instances": [{"user_id": 1}]})
    assert r.status_code == 400 and "missing" in r.json()["error"]
    r = httpx.post(url, json={"instances": "x"})
    assert r.status_code == 400 and "list" in r.json()["error"]


def test_unknown_user_gets_a_flagged_default(local_stack):
    out = outputs(infer(local_stack.url, json=v2_body([987654321])))
    assert out["prediction_source"] == ["default"] and out["feature_status"] == ["missing"]
    assert out["decision"] == ["no_action"]


def test_predictor_rejects_bad_features(local_stack):
    url = f"http://127.0.0.1:{local_stack.ports.predictor_http}/v2/models/{MODEL}/infer"
    r = httpx.post(
        url, json={"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1]}]}
    )
    assert r.status_code == 400 and "missing inputs" in r.json()["error"]
    r = httpx.post(url, content=b"{", headers=JSON)
    assert r.status_code == 400 and "error" in r.json()


def test_still_serving_after_the_bad_inputs(local_stack):
    assert outputs(infer(local_stack.url, json=v2_body([42])))["prediction_source"] == ["model"]
