import numpy as np
import pytest

from predictor.protocol.artifact import FeatureSpec
from transformer.errors import PredictorRejected
from transformer.predictor_client import parse_v2_response, v2_body

pytestmark = pytest.mark.unit


def test_body_uses_metadata_order_and_types():
    feats = [FeatureSpec(name="a", datatype="INT64"), FeatureSpec(name="b", datatype="FP32")]
    body = v2_body(feats, np.array([[1.0, 0.5], [2.0, 0.25]]))
    assert body == {
        "inputs": [
            {"name": "a", "datatype": "INT64", "shape": [2], "data": [1, 2]},
            {"name": "b", "datatype": "FP32", "shape": [2], "data": [0.5, 0.25]},
        ]
    }
    assert isinstance(body["inputs"][0]["data"][0], int)


def test_parse_response():
    p = parse_v2_response(
        {
            "outputs": [
                {"name": "probability", "data": [0.1, 0.2]},
                {"name": "model_version", "data": ["v1", "v1"]},
            ]
        },
        2,
    )
    assert p.scores.tolist() == [0.1, 0.2] and p.model_version == "v1"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"outputs": [{"name": "probability", "data": [0.1]}]},
        {
            "outputs": [
                {"name": "probability", "data": [0.1]},
                {"name": "model_version", "data": ["v"]},
            ]
        },
    ],
)
def test_bad_responses_are_rejected(body):
    with pytest.raises(PredictorRejected):
        parse_v2_response(body, 2)


def test_local_client_scores_in_process_with_the_models_version():
    import asyncio

    from predictor.protocol.artifact import LoadedModel, ModelMetadata
    from transformer.predictor_client import LocalPredictorClient

    meta = ModelMetadata.model_construct(version="sklearn-abc", features=[])
    model = LoadedModel(meta, lambda x: x[:, 0] / 10)
    pred = asyncio.run(LocalPredictorClient(model).infer([], np.array([[1.0, 2.0], [3.0, 4.0]])))
    assert pred.scores.tolist() == [0.1, 0.3] and pred.model_version == "sklearn-abc"
