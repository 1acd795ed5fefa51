"""Transformer requests and responses, v1 and v2: decode and encode, paired, in one place.

Requests carry the entity key (``user_id``) and the request fields of the on-demand feature
view, one row per user. Responses carry one value per row for each output below, plus one
FP64 output per feature (full Feast name) when ``"return_features": true``.

A v2 request whose inputs are exactly the model's features is a *passthrough*
(``decode_passthrough`` / ``encode_passthrough``): the features-free approach, forwarded to
the predictor as it is. The tensor-level work (validation, v1/v2 columns) is
``predictor.protocol.codec``'s; this module is the only caller of it in the transformer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from predictor.protocol.artifact import FeatureSpec
from predictor.protocol.codec import TensorSpec, bool_param, decode_v1, decode_v2

OUTPUTS = [
    {"name": "score", "datatype": "FP64", "shape": [-1]},
    {"name": "decision", "datatype": "BYTES", "shape": [-1]},
    {"name": "model_version", "datatype": "BYTES", "shape": [-1]},
    {"name": "prediction_source", "datatype": "BYTES", "shape": [-1]},
    {"name": "feature_status", "datatype": "BYTES", "shape": [-1]},
]


@dataclass
class Decoded:
    """A decoded request: columns by input name, row count, options, and its protocol."""

    columns: dict[str, np.ndarray]
    n: int
    protocol: str  # "v1" | "v2"
    return_features: bool = False
    use_cache: bool = True
    request_id: str = ""
    return_members: bool = False  # an ensemble's per-member scores (docs/multi-model.md)


@dataclass
class Answer:
    """Per-row results, filled in by predict and postprocess."""

    decoded: Decoded
    score: np.ndarray
    decision: list[str] = field(default_factory=list)
    model_version: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    feature_status: list[str] = field(default_factory=list)
    features: dict[str, list[Any]] = field(default_factory=dict)
    prediction_id: list[str] = field(default_factory=list)  # bandit on: "" for default rows
    members: dict[str, tuple[np.ndarray, list[str]]] = field(default_factory=dict)


@dataclass
class Passthrough:
    """A v2 request that already carries the model's features: forwarded as it is."""

    matrix: np.ndarray  # (N, F) float64, model order
    request_id: str


def decode_passthrough(
    payload: Any, features: list[FeatureSpec], max_rows: int
) -> Passthrough | None:
    """The request as a feature matrix if its inputs are exactly the model's features."""
    if not isinstance(payload, InferRequest) or not payload.inputs:
        return None
    if {i.name for i in payload.inputs} != {f.name for f in features}:
        return None
    specs = [TensorSpec(f.name, f.datatype) for f in features]
    cols, _ = decode_v2(payload, specs, max_rows)
    matrix = np.column_stack([cols[s.name].astype(np.float64) for s in specs])
    return Passthrough(matrix, payload.id or "")


def encode_passthrough(
    request_id: str, model_name: str, scores: np.ndarray, model_version: str
) -> InferResponse:
    """The predictor's answer to a passthrough request, as the predictor gives it."""
    n = len(scores)
    return InferResponse(
        response_id=request_id,
        model_name=model_name,
        model_version=model_version,
        infer_outputs=[
            InferOutput("probability", [n], "FP64", scores.tolist()),
            InferOutput("model_version", [n], "BYTES", [model_version] * n),
        ],
    )


def decode(payload: Any, specs: list[TensorSpec], max_rows: int) -> Decoded:
    if isinstance(payload, InferRequest):
        cols, n = decode_v2(payload, specs, max_rows)
        return Decoded(
            cols,
            n,
            "v2",
            return_features=bool_param(payload, "return_features", False),
            use_cache=bool_param(payload, "cache", True),
            request_id=payload.id or "",
            return_members=bool_param(payload, "return_members", False),
        )
    cols, n = decode_v1(payload, specs, max_rows)
    return Decoded(
        cols,
        n,
        "v1",
        return_features=bool_param(payload, "return_features", False),
        use_cache=bool_param(payload, "cache", True),
        return_members=bool_param(payload, "return_members", False),
    )


def _fp64(values: list[Any]) -> list[float]:
    return [float("nan") if v is None else float(v) for v in values]


def encode(answer: Answer, model_name: str, entity_key: str) -> InferResponse | dict[str, Any]:
    d = answer.decoded
    if d.protocol == "v2":
        n = d.n
        outputs = [
            InferOutput("score", [n], "FP64", answer.score.tolist()),
            InferOutput("decision", [n], "BYTES", answer.decision),
            InferOutput("model_version", [n], "BYTES", answer.model_version),
            InferOutput("prediction_source", [n], "BYTES", answer.source),
            InferOutput("feature_status", [n], "BYTES", answer.feature_status),
        ]
        if answer.prediction_id:
            outputs.append(InferOutput("prediction_id", [n], "BYTES", answer.prediction_id))
        outputs += [
            InferOutput(name, [n], "FP64", _fp64(values))
            for name, values in answer.features.items()
        ]
        for name, (m_scores, m_versions) in answer.members.items():
            outputs.append(InferOutput(f"member_score__{name}", [n], "FP64", m_scores.tolist()))
            outputs.append(InferOutput(f"member_version__{name}", [n], "BYTES", m_versions))
        # the response-level version when every scored row agrees (rows may differ mid-canary)
        versions = {v for v in answer.model_version if v}
        return InferResponse(
            response_id=d.request_id,
            model_name=model_name,
            model_version=versions.pop() if len(versions) == 1 else None,
            infer_outputs=outputs,
        )
    ids = d.columns[entity_key].tolist()
    predictions = []
    for i in range(d.n):
        row: dict[str, Any] = {
            entity_key: ids[i],
            "score": float(answer.score[i]),
            "decision": answer.decision[i],
            "model_version": answer.model_version[i],
            "prediction_source": answer.source[i],
            "feature_status": answer.feature_status[i],
        }
        if answer.prediction_id:
            row["prediction_id"] = answer.prediction_id[i]
        if answer.features:
            row["features"] = {k: v[i] for k, v in answer.features.items()}
        if answer.members:
            row["members"] = {
                name: {"score": float(scores[i]), "model_version": versions[i]}
                for name, (scores, versions) in answer.members.items()
            }
        predictions.append(row)
    return {"predictions": predictions}
