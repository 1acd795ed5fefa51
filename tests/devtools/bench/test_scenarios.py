"""The request bodies of the scenarios (devtools/bench/scenarios.py)."""

from __future__ import annotations

import pytest

from devtools.bench import scenarios as bench
from devtools.bench.common import ROOT

pytestmark = pytest.mark.unit


def test_predictor_body_follows_the_metadata_order_and_types():
    inputs = [
        {"name": "b__clicks", "datatype": "INT64", "shape": [-1]},
        {"name": "a__rate", "datatype": "FP32", "shape": [-1]},
        {"name": "c__missing", "datatype": "FP64", "shape": [-1]},
    ]
    body = bench.predictor_body(inputs, {"a__rate": 0.25, "b__clicks": 41.6, "c__missing": None})
    assert [t["name"] for t in body["inputs"]] == ["b__clicks", "a__rate", "c__missing"]
    assert [t["data"] for t in body["inputs"]] == [[42], [0.25], [1.0]]
    assert all(t["shape"] == [1] for t in body["inputs"])


def test_transformer_body_and_the_lua_request_agree():
    body = bench.transformer_body([1, 2], cache=False)
    assert body["parameters"] == {"cache": False}
    assert [i["data"] for i in body["inputs"]] == [[1, 2], [35.0, 35.0], [20, 20]]
    lua = (ROOT / "bench" / "infer.lua").read_text()
    assert '"35.0"' in lua and '"20"' in lua  # same request context as the cache warm-up
