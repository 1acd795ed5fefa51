"""Fixtures of the predictor tests."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from predictor.protocol.artifact import ModelMetadata, write_model_dir

WINDOW = {"start": datetime(2026, 1, 1, tzinfo=UTC), "end": datetime(2026, 2, 1, tzinfo=UTC)}

TinyModelDir = Callable[..., tuple[LogisticRegression, ModelMetadata]]


def _tiny_sklearn_dir(tmp_path: Path, seed: int = 0) -> tuple[LogisticRegression, ModelMetadata]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 2))
    y = (x[:, 0] + 0.3 * rng.normal(size=200) > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    buf = io.BytesIO()
    joblib.dump(model, buf)
    meta = write_model_dir(
        tmp_path,
        "sklearn",
        buf.getvalue(),
        {
            "feature_service": "svc",
            "label": "clicked",
            "features": [
                {"name": "v__a", "datatype": "FP64"},
                {"name": "v__b", "datatype": "INT64"},
            ],
            "training_window": WINDOW,
            "holdout_window": WINDOW,
            "created_at": datetime(2026, 2, 2, tzinfo=UTC),
        },
    )
    return model, meta


@pytest.fixture
def tiny_sklearn_dir() -> TinyModelDir:
    """``make(path, seed=0)``: a two-feature logistic regression written as a model directory
    at ``path`` (predictor.protocol.artifact format); returns the fitted model and its
    metadata. Same seed, same content, same version."""
    return _tiny_sklearn_dir
