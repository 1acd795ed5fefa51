from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from predictor.datagen import DataSpec, click_logit, generate, labelled_events, user_snapshots

pytestmark = pytest.mark.unit

SPEC = DataSpec(
    n_users=500, n_weeks=6, events_per_user=8, seed=3, end=datetime(2026, 3, 1, tzinfo=UTC)
)


def test_deterministic_for_a_seed_and_end(tmp_path):
    a = generate(tmp_path / "a", SPEC)
    b = generate(tmp_path / "b", SPEC)
    for key in a:
        pd.testing.assert_frame_equal(pd.read_parquet(a[key]), pd.read_parquet(b[key]))


def test_users_and_features_drift_over_time():
    snaps = user_snapshots(SPEC)
    assert snaps["user_id"].min() == 1 and snaps["user_id"].max() == SPEC.n_users
    assert len(snaps) == SPEC.n_users * SPEC.n_weeks
    per_user = snaps.groupby("user_id")["click_through_rate"].nunique()
    assert (per_user > 1).mean() > 0.95  # values change over time
    assert snaps["event_timestamp"].max() < pd.Timestamp(SPEC.end)


def test_labels_depend_on_point_in_time_features():
    snaps = user_snapshots(SPEC)
    events = labelled_events(SPEC, snaps)
    joined = pd.merge_asof(
        events.sort_values("event_timestamp"),
        snaps.sort_values("event_timestamp").drop(columns="created"),
        on="event_timestamp",
        by="user_id",
        direction="backward",
    ).dropna()
    truth = click_logit(
        joined["click_through_rate"].to_numpy(float),
        joined["sessions_last_7d"].to_numpy(float),
        joined["average_page_duration"].to_numpy(float),
        joined["session_duration_s"].to_numpy(),
        joined["hour_of_day"].to_numpy(float),
    )
    # the generating function separates the labels well: there is something to learn
    assert roc_auc_score(joined["clicked"], truth) > 0.75
    assert 0.05 < events["clicked"].mean() < 0.5
    assert (events["converted"] <= events["clicked"]).all()
    assert np.isin(events["hour_of_day"], np.arange(24)).all()
