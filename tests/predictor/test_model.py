import asyncio

import pytest
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferRequest

from predictor.model import ClickModel

pytestmark = pytest.mark.unit


@pytest.fixture
def model(tmp_path, tiny_sklearn_dir):
    sk, _ = tiny_sklearn_dir(tmp_path)
    m = ClickModel("click-model", str(tmp_path), max_batch_size=5)
    m.load()
    return m, sk


def run(m, body):
    return asyncio.run(m(body))[0]


def test_v2_probabilities_and_version(model):
    m, sk = model
    resp = run(
        m,
        InferRequest(
            "click-model",
            [
                InferInput("v__a", [2], "FP64", [1.0, -1.0]),
                InferInput("v__b", [2], "INT64", [0, 2]),
            ],
        ),
    )
    out = {o.name: o.data for o in resp.outputs}
    assert out["probability"] == pytest.approx(
        sk.predict_proba([[1.0, 0], [-1.0, 2]])[:, 1].tolist()
    )
    assert out["model_version"] == [m.version] * 2 and resp.model_version == m.version


def test_v1_rows(model):
    m, sk = model
    resp = run(m, {"instances": [[1.0, 0], {"v__a": -1.0, "v__b": 2}]})
    assert resp["predictions"] == pytest.approx(
        sk.predict_proba([[1.0, 0], [-1.0, 2]])[:, 1].tolist()
    )
    assert resp["model_version"] == m.version


def test_metadata_lists_inputs_in_order(model):
    m, _ = model
    assert m.get_input_types() == [
        {"name": "v__a", "datatype": "FP64", "shape": [-1]},
        {"name": "v__b", "datatype": "INT64", "shape": [-1]},
    ]
    assert [o["name"] for o in m.get_output_types()] == ["probability", "model_version"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (InferRequest("m", [InferInput("v__a", [1], "FP64", [1.0])]), "missing inputs ['v__b']"),
        (
            InferRequest(
                "m",
                [InferInput("v__a", [1], "FP64", [1.0]), InferInput("v__b", [1], "FP64", [0.5])],
            ),
            "cannot be used as INT64",
        ),
        (
            InferRequest(
                "m",
                [
                    InferInput("v__a", [6], "FP64", [1.0] * 6),
                    InferInput("v__b", [6], "INT64", [0] * 6),
                ],
            ),
            "exceeds the limit of 5",
        ),
        ({"instances": [[1.0]]}, "has 1 values, expected 2"),
    ],
)
def test_rejections(model, body, message):
    m, _ = model
    with pytest.raises(InvalidInput, match=message.replace("[", r"\[").replace("]", r"\]")):
        run(m, body)
