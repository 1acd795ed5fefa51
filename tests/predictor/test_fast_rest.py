import numpy as np
import orjson
import pytest
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferResponse

from predictor.fast_rest import encode_response, parse_request

pytestmark = pytest.mark.unit


def test_parse_builds_the_same_infer_request():
    req = parse_request(
        {
            "id": "r1",
            "parameters": {"cache": False},
            "inputs": [{"name": "a", "datatype": "INT64", "shape": [2], "data": [1, 2]}],
        },
        "m",
    )
    assert req.id == "r1" and req.model_name == "m" and req.parameters == {"cache": False}
    (inp,) = req.inputs
    assert (inp.name, inp.datatype, inp.shape, inp.data) == ("a", "INT64", [2], [1, 2])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "must be a JSON object"),
        ({"inputs": "x"}, "inputs: must be a list"),
        ({}, "inputs: must be a list"),
        ({"inputs": [], "extra": 1}, "unexpected fields ['extra']"),
        ({"inputs": [1]}, "inputs.0: must be an object"),
        ({"inputs": [{"datatype": "INT64", "shape": [1], "data": [1]}]}, "inputs.0.name"),
        ({"inputs": [{"name": "a", "shape": [1], "data": [1]}]}, "inputs.0.datatype"),
        (
            {"inputs": [{"name": "a", "datatype": "INT64", "shape": ["1"], "data": [1]}]},
            "inputs.0.shape: must be a list of integers",
        ),
        (
            {"inputs": [{"name": "a", "datatype": "INT64", "shape": [1], "data": 1}]},
            "inputs.0.data: must be a list",
        ),
        ({"inputs": [], "id": 5}, "id: must be a string"),
        ({"inputs": [], "parameters": []}, "parameters: must be an object"),
    ],
)
def test_structure_errors_name_the_field(body, message):
    with pytest.raises(InvalidInput) as e:
        parse_request(body, "m")
    assert message in str(e.value)


def test_encode_matches_kserve_to_rest():
    def make():
        return InferResponse(
            "r",
            "m",
            [
                InferOutput("p", [2], "FP64", [0.25, 0.5]),
                InferOutput("v", [2], "BYTES", ["a", "b"]),
                InferOutput("n", [2], "INT64", np.array([1, 2])),
            ],
            model_version="v1",
        )

    ours = orjson.loads(encode_response(make()))
    theirs, _ = make().to_rest()
    assert ours == theirs
