from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from predictor.jobs.datagen import DataSpec, click_logit, generate, labelled_events, user_snapshots

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


def test_activity_history_is_the_stream_fold(tmp_path):
    """With activity, the offline history gains each active user's row after it, built by the
    stream worker's fold from the events in activity.parquet (the stream's input)."""
    from dataclasses import replace

    from transformer.stream.events import activity, parse, record_json
    from transformer.stream.fold import FEATURES, UserState, features, fold

    spec = replace(SPEC, n_users=60, activity_per_user=5.0)
    paths = generate(tmp_path, spec)
    acts = pd.read_parquet(paths["activity"])
    rows = pd.read_parquet(paths["user_data"])
    assert set(acts["type"]) == {"click", "page_view", "session_end"}
    snaps = user_snapshots(spec)
    assert len(rows) == len(snaps) + acts["user_id"].nunique()
    pd.testing.assert_frame_equal(rows.iloc[: len(snaps)], snaps)  # the history is unchanged
    user = int(acts["user_id"].value_counts().index[0])
    before = snaps[snaps.user_id == user].iloc[-1]
    state = UserState.start(
        {f: before[f] for f in FEATURES}, pd.Timestamp(before["event_timestamp"]).value // 1000
    )
    mine = [activity(parse(record_json(r))) for r in acts[acts.user_id == user].to_dict("records")]
    want = features(fold(state, mine, 3_600_000_000).state)
    got = rows[rows.user_id == user].iloc[-1]
    assert got["number_of_clicks"] == want["number_of_clicks"]
    assert got["number_of_clicks"] - before["number_of_clicks"] == sum(
        a.type == "click" for a in mine
    )
    assert got["click_through_rate"] == pytest.approx(want["click_through_rate"], rel=1e-6)
    assert got["event_timestamp"] == pd.Timestamp(max(a.ts_us for a in mine), unit="us", tz="UTC")
