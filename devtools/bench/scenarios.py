"""The scenarios the benchmark can run and the request bodies they send: one table, so the
command line, the orchestration and the targets agree on the names."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CACHED_USERS = 1000  # the cache-hit scenario rotates over these users, all cached first
SESSION_S, HOUR = 35.0, 20  # the request context of every transformer request


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    server: str  # transformer | collocated | ensemble | predictor | empty | mlserver | in-process
    batch: int = 1


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("full", "full path, cache bypassed", "transformer"),
        Scenario("cache_hit", "cache hit", "transformer"),
        Scenario("batch10", "batches of 10 users, cache bypassed", "transformer", 10),
        Scenario("batch100", "batches of 100 users, cache bypassed", "transformer", 100),
        Scenario(
            "collocated", "full path, model inside the transformer, cache bypassed", "collocated"
        ),
        Scenario(
            "ensemble",
            "full path, ensemble of sklearn + XGBoost (2 predictors), cache bypassed",
            "ensemble",
        ),
        Scenario("predictor", "predictor alone (9 feature tensors)", "predictor"),
        Scenario("features", "feature lookup alone (in-process)", "in-process"),
        Scenario("empty", "empty kserve.Model (framework floor)", "empty"),
        Scenario("mlserver", "MLServer alone, default settings (1 inference worker)", "mlserver"),
        Scenario("mlserver_inproc", "MLServer alone, parallel_workers 0 (in-process)", "mlserver"),
    )
}
MLSERVER_SCENARIOS = ("mlserver", "mlserver_inproc")  # run with --mlserver
DEFAULT_STEPS = [*(n for n in SCENARIOS if n not in MLSERVER_SCENARIOS), "floors", "cold_start"]


def predictor_body(inputs: list[dict[str, Any]], values: dict[str, Any]) -> dict[str, Any]:
    """A one-row v2 request for the predictor: one tensor per model input, in its order."""
    tensors = []
    for spec in inputs:
        v = values.get(spec["name"])
        v = 1.0 if v is None or (isinstance(v, float) and math.isnan(v)) else v
        data = round(float(v)) if spec["datatype"].startswith(("INT", "UINT")) else float(v)
        tensors.append(
            {"name": spec["name"], "datatype": spec["datatype"], "shape": [1], "data": [data]}
        )
    return {"inputs": tensors}


def transformer_body(ids: Sequence[int], cache: bool) -> dict[str, Any]:
    n = len(ids)
    return {
        "inputs": [
            {"name": "user_id", "datatype": "INT64", "shape": [n], "data": list(ids)},
            {
                "name": "session_duration_s",
                "datatype": "FP64",
                "shape": [n],
                "data": [SESSION_S] * n,
            },
            {"name": "hour_of_day", "datatype": "INT64", "shape": [n], "data": [HOUR] * n},
        ],
        "parameters": {"cache": cache},
    }
