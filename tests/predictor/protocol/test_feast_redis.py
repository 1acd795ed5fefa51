"""Rows written in Feast's Redis format read back through Feast's SDK exactly."""

from datetime import UTC, datetime

import pytest

from predictor.jobs.batch import store_for
from predictor.protocol.feast_redis import FeastRedisLayout, write_rows
from predictor.protocol.predictions import TYPES as PREDICTION_COLUMNS

pytestmark = pytest.mark.integration


def test_direct_writes_read_back_through_the_sdk(redis_features, monkeypatch):
    for k, v in redis_features.env.items():
        monkeypatch.setenv(k, v)
    store = store_for(redis_features.repo)
    client = store._get_provider().online_store._get_client(store.config.online_store)
    at = datetime(2026, 11, 1, 12, 30, 15, 250000, tzinfo=UTC)
    ids = [1901, 1902, 1903]
    rows = [(0.125, "sklearn-abc", 17, "hour_of_day=20"), (0.5, "xgb-1", 0, ""), (1.0, "", -3, "k")]
    assert (
        write_rows(
            client,
            FeastRedisLayout.of(store, "user_id"),
            "model_predictions",
            PREDICTION_COLUMNS,
            ids,
            rows,
            at,
            pipeline_rows=2,
        )
        == 3
    )
    resp = store.get_online_features(
        features=[f"model_predictions:{c}" for c, _ in PREDICTION_COLUMNS],
        entity_rows=[{"user_id": u} for u in ids],
    )
    got = resp.to_dict(include_event_timestamps=True)
    assert got["score"] == [0.125, 0.5, 1.0]
    assert got["model_version"] == ["sklearn-abc", "xgb-1", ""]
    assert got["features_timestamp"] == [17, 0, -3]
    assert got["request_key"] == ["hour_of_day=20", "", "k"]
    assert set(got["score__ts"]) == {int(at.timestamp())}
    # user_data of the same users is untouched: both views share the hash
    feats = store.get_online_features(
        features=["user_data:number_of_clicks"], entity_rows=[{"user_id": u} for u in ids]
    ).to_dict()
    assert all(v is not None for v in feats["number_of_clicks"])
