"""The model directory: one model file plus ``metadata.json``.

The same loader serves the predictor, the batch job and the collocated mode, so a model
directory written by ``predictor.jobs.train`` is all any of them needs. In a cluster KServe's
storage initializer fills ``/mnt/models`` with exactly this layout.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

METADATA_FILE = "metadata.json"
MODEL_FILES = {"sklearn": "model.joblib", "xgboost": "model.ubj"}

Datatype = Literal["FP32", "FP64", "INT32", "INT64", "BOOL"]


class ArtifactError(Exception):
    """A model directory that cannot be served; the message names the file and the field."""


class FeatureSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(description="Full Feast feature name, e.g. user_data__click_through_rate")
    datatype: Datatype = Field(description="v2 datatype of the feature")


class TrainingWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: datetime
    end: datetime


class ModelMetadata(BaseModel):
    """Everything a server needs to know about a model, written next to it."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    framework: Literal["sklearn", "xgboost"]
    version: str = Field(
        description="Derived from the model file's bytes: <framework>-<sha256[:12]>"
    )
    model_file: str
    feature_service: str
    label: str
    features: list[FeatureSpec] = Field(min_length=1, description="Model inputs, in column order")
    training_window: TrainingWindow
    holdout_window: TrainingWindow
    metrics: dict[str, float] = Field(default_factory=dict)
    created_at: datetime

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]


def content_version(framework: str, model_bytes: bytes) -> str:
    return f"{framework}-{hashlib.sha256(model_bytes).hexdigest()[:12]}"


class Scorer(Protocol):
    """What every server needs from a model: probabilities for a float matrix."""

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


class LoadedModel:
    """A loaded model and its metadata. ``score`` takes an (N, F) float matrix in metadata order."""

    def __init__(self, metadata: ModelMetadata, scorer: Scorer):
        self.metadata = metadata
        self._scorer = scorer

    def score(self, x: np.ndarray) -> np.ndarray:
        return self._scorer(x)


def read_metadata(model_dir: Path) -> ModelMetadata:
    path = model_dir / METADATA_FILE
    if not path.is_file():
        raise ArtifactError(f"{path}: not found (a model directory holds {METADATA_FILE})")
    return validated_json(path, ModelMetadata, ArtifactError)


M = TypeVar("M", bound=BaseModel)


def validated_json(path: Path, model: type[M], error: type[Exception]) -> M:
    """``model`` from the JSON file ``path``; every failure is ``error`` naming the file and,
    for invalid content, each field (``field.path: message; ...``)."""
    try:
        raw = json.loads(path.read_text())
    except OSError as e:
        raise error(f"{path}: cannot read: {e}") from e
    except json.JSONDecodeError as e:
        raise error(f"{path}: not valid JSON: {e}") from e
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        raise error(f"{path}: {fields}") from e


def _sklearn_scorer(model: Any) -> Scorer:
    compiled = _compile_linear(model)
    if compiled is not None:
        return compiled

    def score(x: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict_proba(x)[:, 1], dtype=np.float64)

    return score


def _compile_linear(model: Any) -> Scorer | None:
    """The arithmetic of a [transform] → [StandardScaler] → binary LogisticRegression pipeline.

    scikit-learn's predict_proba validates its input at every step: ~0.4 ms for one row, ten
    times the arithmetic. For the pipelines ``predictor.jobs.train`` writes, the same probabilities
    come from a few numpy operations (``tests/predictor/test_artifact.py`` checks equality);
    anything else keeps predict_proba.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    steps = [s for _, s in model.steps] if isinstance(model, Pipeline) else [model]
    transform = None
    if steps and isinstance(steps[0], FunctionTransformer):
        ft = steps.pop(0)
        if ft.kw_args or ft.inverse_func is not None or ft.func is None:
            return None
        transform = ft.func
    mean, scale = None, None
    if steps and isinstance(steps[0], StandardScaler):
        sc = steps.pop(0)
        mean = sc.mean_ if sc.with_mean else None
        scale = sc.scale_ if sc.with_std else None
    if len(steps) != 1 or not isinstance(steps[0], LogisticRegression):
        return None
    clf = steps[0]
    if clf.coef_.shape[0] != 1 or len(clf.classes_) != 2:
        return None
    coef = clf.coef_[0].astype(np.float64)
    bias = float(clf.intercept_[0])

    def score(x: np.ndarray) -> np.ndarray:
        z = np.asarray(x, dtype=np.float64)
        if transform is not None:
            z = transform(z)
        if mean is not None:
            z = z - mean
        if scale is not None:
            z = z / scale
        return np.asarray(1.0 / (1.0 + np.exp(-(z @ coef + bias))), dtype=np.float64)

    return score


def _xgboost_scorer(booster: Any) -> Scorer:
    def score(x: np.ndarray) -> np.ndarray:
        return np.asarray(booster.inplace_predict(x), dtype=np.float64)

    return score


def load_model(model_dir: Path | str) -> LoadedModel:
    """Load a model directory; every failure is an ArtifactError naming the file."""
    model_dir = Path(model_dir)
    meta = read_metadata(model_dir)
    model_path = model_dir / meta.model_file
    if not model_path.is_file():
        raise ArtifactError(
            f"{model_dir / METADATA_FILE}: model_file {meta.model_file!r} not found"
        )
    data = model_path.read_bytes()
    if content_version(meta.framework, data) != meta.version:
        raise ArtifactError(
            f"{model_path}: content does not match version {meta.version!r} in {METADATA_FILE}"
        )
    try:
        if meta.framework == "sklearn":
            import joblib

            scorer = _sklearn_scorer(joblib.load(model_path))
        else:
            import xgboost as xgb

            booster = xgb.Booster()
            booster.load_model(bytearray(data))
            booster.set_param({"nthread": 1})
            scorer = _xgboost_scorer(booster)
    except Exception as e:  # a corrupt file must be a clear start-up error
        raise ArtifactError(f"{model_path}: cannot load {meta.framework} model: {e}") from e
    return LoadedModel(meta, scorer)


def write_model_dir(
    model_dir: Path, framework: str, model_bytes: bytes, metadata: dict[str, Any]
) -> ModelMetadata:
    """Write the model file and its metadata; returns the validated metadata."""
    model_dir.mkdir(parents=True, exist_ok=True)
    model_file = MODEL_FILES[framework]
    meta = ModelMetadata.model_validate(
        {
            **metadata,
            "framework": framework,
            "model_file": model_file,
            "version": content_version(framework, model_bytes),
        }
    )
    (model_dir / model_file).write_bytes(model_bytes)
    (model_dir / METADATA_FILE).write_text(meta.model_dump_json(indent=2) + "\n")
    return meta
