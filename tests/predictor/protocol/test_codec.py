import numpy as np
import pytest
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferRequest

from predictor.protocol.codec import TensorSpec, bool_param, decode_v1, decode_v2

pytestmark = pytest.mark.unit

SPECS = [TensorSpec("a", "INT64"), TensorSpec("b", "FP64")]


def req(*inputs, params=None):
    return InferRequest("m", list(inputs), parameters=params)


def test_v2_columns_and_rows():
    cols, n = decode_v2(
        req(InferInput("a", [2], "INT64", [1, 2]), InferInput("b", [2, 1], "FP32", [[0.5], [1.5]])),
        SPECS,
        10,
    )
    assert n == 2
    assert cols["a"].dtype == np.int64 and cols["a"].tolist() == [1, 2]
    assert cols["b"].dtype == np.float64 and cols["b"].tolist() == [0.5, 1.5]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([InferInput("a", [1], "INT64", [1])], "missing inputs ['b']"),
        (
            [
                InferInput("a", [1], "INT64", [1]),
                InferInput("b", [1], "FP64", [1.0]),
                InferInput("c", [1], "FP64", [1.0]),
            ],
            "unexpected inputs ['c']",
        ),
        (
            [InferInput("a", [1], "FP64", [1.5]), InferInput("b", [1], "FP64", [1.0])],
            "datatype FP64 cannot be used as INT64",
        ),
        (
            [InferInput("a", [1], "INT64", ["x"]), InferInput("b", [1], "FP64", [1.0])],
            "expected INT64 numbers, got text",
        ),
        (
            [InferInput("a", [1], "INT64", [None]), InferInput("b", [1], "FP64", [1.0])],
            "null or mixed",
        ),
        (
            [InferInput("a", [2], "INT64", [1]), InferInput("b", [1], "FP64", [1.0])],
            "shape [2] says 2 rows but data has 1 values",
        ),
        (
            [InferInput("a", [1, 2], "INT64", [1, 2]), InferInput("b", [1], "FP64", [1.0])],
            "is not [N] or [N, 1]",
        ),
        (
            [InferInput("a", [2], "INT64", [1, 2]), InferInput("b", [1], "FP64", [1.0])],
            "input 'b' has 1 rows but 'a' has 2",
        ),
        ([InferInput("a", [0], "INT64", []), InferInput("b", [0], "FP64", [])], "batch is empty"),
        (
            [InferInput("a", [1], "INT64", [1]), InferInput("a", [1], "INT64", [1])],
            "given more than once",
        ),
        (
            [InferInput("a", [1], "WEIRD", [1]), InferInput("b", [1], "FP64", [1.0])],
            "unknown datatype",
        ),
    ],
)
def test_v2_rejections_name_the_problem(inputs, message):
    with pytest.raises(InvalidInput) as e:
        decode_v2(req(*inputs), SPECS, 10)
    assert message in str(e.value)


def test_v2_no_inputs_and_oversized_batch():
    with pytest.raises(InvalidInput, match="no inputs"):
        decode_v2(req(), SPECS, 10)
    big = [
        InferInput("a", [11], "INT64", list(range(11))),
        InferInput("b", [11], "FP64", [0.0] * 11),
    ]
    with pytest.raises(InvalidInput, match="exceeds the limit of 10"):
        decode_v2(req(*big), SPECS, 10)


def test_v1_objects_and_lists():
    cols, n = decode_v1({"instances": [{"a": 1, "b": 2.0}, [3, 4.5]]}, SPECS, 10)
    assert n == 2 and cols["a"].tolist() == [1, 3] and cols["b"].tolist() == [2.0, 4.5]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([1, 2], "must be a JSON object"),
        ({}, 'no "instances"'),
        ({"instances": {}}, "must be a list"),
        ({"instances": []}, "batch is empty"),
        ({"instances": [{"a": 1}]}, "missing ['b']"),
        ({"instances": [{"a": 1, "b": 2, "z": 3}]}, "unexpected ['z']"),
        ({"instances": [[1]]}, "has 1 values, expected 2"),
        ({"instances": ["x"]}, "must be an object or a list"),
        ({"instances": [{"a": "1", "b": 2}]}, "'a' must be a number"),
        ({"instances": [{"a": 1, "b": 2}], "other": 1}, "unexpected keys ['other']"),
    ],
)
def test_v1_rejections(payload, message):
    with pytest.raises(InvalidInput) as e:
        decode_v1(payload, SPECS, 10)
    assert message in str(e.value)


def test_bool_params():
    assert bool_param(req(params={"x": True}), "x", False) is True
    assert bool_param(req(), "x", False) is False
    assert bool_param({"parameters": {"x": False}}, "x", True) is False
    with pytest.raises(InvalidInput, match="must be true or false"):
        bool_param(req(params={"x": "yes"}), "x", False)
    with pytest.raises(InvalidInput, match="must be an object"):
        bool_param({"parameters": [1]}, "x", False)
