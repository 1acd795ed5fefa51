"""Training on a real Feast repo: point-in-time features, evaluation, artifacts."""

import numpy as np
import pandas as pd
import pytest

from predictor.jobs.train import build_training_set, feature_specs
from predictor.protocol.artifact import load_model, read_metadata

pytestmark = pytest.mark.integration


def test_model_directory_is_complete(model_dir):
    meta = read_metadata(model_dir)
    assert meta.framework == "sklearn" and meta.version.startswith("sklearn-")
    assert meta.feature_service == "click_model_v1" and meta.label == "clicked"
    assert [f.name for f in meta.features][:2] == [
        "user_data__click_through_rate",
        "user_data__number_of_clicks",
    ]
    assert meta.training_window.end <= meta.holdout_window.start  # time-based split
    assert 0.7 < meta.metrics["auc"] < 1.0 and meta.metrics["log_loss"] < 0.6
    assert (model_dir / "roc.png").stat().st_size > 10_000
    load_model(model_dir)


def test_training_rows_see_features_as_of_their_timestamp(sqlite_features):
    ts = build_training_set(sqlite_features.repo, "click_model_v1", "clicked")
    snaps = pd.read_parquet(sqlite_features.repo / "data" / "user_data.parquet")
    sample = ts.frame.sample(200, random_state=1)
    for _, row in sample.iterrows():
        past = snaps[
            (snaps.user_id == row.user_id) & (snaps.event_timestamp <= row.event_timestamp)
        ]
        latest = past.sort_values("event_timestamp").iloc[-1]
        assert row["user_data__number_of_clicks"] == latest["number_of_clicks"]
        assert np.isclose(row["user_data__click_through_rate"], latest["click_through_rate"])
    assert [s["name"] for s in ts.features][-1] == "user_request_features__clicks_per_session"


def test_xgboost_trains_and_serves(sqlite_features, tmp_path):
    from predictor.jobs.train import train

    meta = train(sqlite_features.repo, tmp_path, "xgboost", "click_model_v1", "clicked", 0.2, 7)
    assert meta.framework == "xgboost" and meta.metrics["auc"] > 0.7
    m = load_model(tmp_path)
    x = np.zeros((3, len(meta.features)))
    assert m.score(x).shape == (3,)


def test_feature_specs_follow_the_feature_service(sqlite_features):
    from feast import FeatureStore

    store = FeatureStore(repo_path=str(sqlite_features.repo))
    specs = feature_specs(store, "click_model_v1")
    assert {"name": "user_request_features__is_peak_hour", "datatype": "INT64"} in specs
    assert {"name": "user_data__click_through_rate", "datatype": "FP32"} in specs


def test_baseline_describes_the_holdout_of_this_model_version(model_dir):
    from predictor.jobs import baseline

    meta = read_metadata(model_dir)
    b = baseline.read(model_dir / baseline.BASELINE_FILE)
    assert b.model_version == meta.version
    assert b.feature_names == meta.feature_names  # model order, model names
    assert b.rows == meta.metrics["n_holdout"]
    assert b.metrics == {"auc": meta.metrics["auc"], "log_loss": meta.metrics["log_loss"]}
    for d in [*b.features, b.score]:
        assert sum(d.counts) == b.rows and d.missing_share == 0.0
    assert len(b.score.counts) == 10  # a continuous score gets all ten quantile bins
    is_peak = next(d for d in b.features if d.name.endswith("is_peak_hour"))
    assert is_peak.edges == [1.0]  # a 0/1 feature collapses to two bins
