"""The baseline file: quantile bins, validation, and a model directory with or without it."""

import io
import json

import joblib
import numpy as np
import pytest

from predictor.jobs import baseline
from predictor.protocol.artifact import load_model, write_model_dir

pytestmark = pytest.mark.unit


def test_quantile_bins_hold_equal_shares_and_count_missing():
    rng = np.random.default_rng(0)
    x = rng.normal(size=10_000)
    x[:500] = np.nan
    d = baseline.distribution("f", x, bins=10)
    assert len(d.edges) == 9 and len(d.counts) == 10
    assert sum(d.counts) == 9_500
    assert max(d.counts) - min(d.counts) <= 2
    assert d.missing_share == pytest.approx(0.05)


def test_discrete_values_collapse_to_fewer_bins():
    d = baseline.distribution("flag", np.array([0, 0, 0, 1, 1] * 100, dtype=float))
    assert d.edges == [1.0] and d.counts == [300, 200]
    assert baseline.distribution("empty", np.array([np.nan, np.nan])).missing_share == 1.0


def test_bad_baseline_names_the_file_and_field(tmp_path):
    path = tmp_path / baseline.BASELINE_FILE
    good = baseline.compute("v1", ["a"], np.arange(20.0).reshape(-1, 1), np.linspace(0, 1, 20))
    raw = json.loads(good.model_dump_json())
    raw["features"][0]["counts"] = [1, 2]
    path.write_text(json.dumps(raw))
    with pytest.raises(baseline.BaselineError, match=r"baseline.json: features.0: .*2 counts"):
        baseline.read(path)
    path.write_text("{")
    with pytest.raises(baseline.BaselineError, match="not valid JSON"):
        baseline.read(path)
    baseline.write(tmp_path, good)
    assert baseline.read(path) == good


def test_baseline_is_outside_the_model_version(tmp_path):
    """Adding baseline.json changes nothing about loading or the version; a directory
    without it still loads."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    buf = io.BytesIO()
    joblib.dump(clf, buf)
    meta = {
        "feature_service": "s",
        "label": "clicked",
        "features": [{"name": "a", "datatype": "FP64"}],
        "training_window": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"},
        "holdout_window": {"start": "2026-01-02T00:00:00Z", "end": "2026-01-03T00:00:00Z"},
        "created_at": "2026-01-03T00:00:00Z",
    }
    m = write_model_dir(tmp_path, "sklearn", buf.getvalue(), meta)
    before = load_model(tmp_path).metadata.version
    baseline.write(tmp_path, baseline.compute(m.version, ["a"], np.ones((4, 1)), np.ones(4)))
    assert load_model(tmp_path).metadata.version == before == m.version
