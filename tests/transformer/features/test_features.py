"""The Feast reader against a real feature repo on the embedded (SQLite) store."""

import asyncio

import numpy as np
import pytest

from predictor.protocol.artifact import FeatureSpec
from tests.integration.helpers import online_features
from transformer.features import (
    FeatureConfigError,
    FeatureReader,
    open_store,
    wait_for_feature_service,
)

pytestmark = pytest.mark.integration


def reader_for(fenv, model_features=None, stale_after_s=30 * 86400.0):
    store = open_store(fenv.repo, None)
    feats = model_features or [
        FeatureSpec(name="user_data__click_through_rate", datatype="FP32"),
        FeatureSpec(name="user_request_features__engagement_ratio", datatype="FP64"),
        FeatureSpec(name="user_data__number_of_clicks", datatype="INT64"),
    ]
    return FeatureReader(store, "click_model_v1", feats, stale_after_s)


def columns(ids, durations, hours):
    return {
        "user_id": np.array(ids, dtype=np.int64),
        "session_duration_s": np.array(durations, dtype=np.float64),
        "hour_of_day": np.array(hours, dtype=np.int64),
    }


def test_inputs_come_from_the_feature_repo(sqlite_features):
    r = reader_for(sqlite_features)
    assert [(s.name, s.datatype) for s in r.input_specs] == [
        ("user_id", "INT64"),
        ("session_duration_s", "FP64"),
        ("hour_of_day", "INT64"),
    ]
    assert r.use_async is False  # SQLite reads run in a worker thread


def test_matrix_in_model_order_matches_the_sdk(sqlite_features):
    r = reader_for(sqlite_features)
    ids, durs, hours = [5, 6, 99_999_999], [10.0, 50.0, 5.0], [19, 3, 1]
    batch, values = asyncio.run(r.read(columns(ids, durs, hours)))
    sdk = online_features(sqlite_features, ids, durs, hours)
    assert batch.names == [f.name for f in r.model_features]
    for j, name in enumerate(batch.names):
        assert batch.matrix[:2, j].tolist() == pytest.approx([float(v) for v in sdk[name][:2]])
    assert np.isnan(batch.matrix[2]).all()
    assert batch.missing.tolist() == [False, False, True]
    assert (batch.feature_ts[:2] > 1_600_000_000).all() and batch.feature_ts[2] == 0
    assert set(values) == set(sdk)


def test_stale_rows_are_flagged(sqlite_features):
    r = reader_for(sqlite_features, stale_after_s=1.0)  # every materialized row is older
    batch, _ = asyncio.run(r.read(columns([5, 99_999_999], [1.0, 1.0], [1, 1])))
    assert batch.stale.tolist() == [True, False] and batch.missing.tolist() == [False, True]


def test_model_needing_an_unknown_feature_fails_at_start(sqlite_features):
    with pytest.raises(FeatureConfigError, match="user_data__not_a_feature"):
        reader_for(sqlite_features, [FeatureSpec(name="user_data__not_a_feature", datatype="FP64")])


def test_unknown_feature_service_fails_at_start(sqlite_features):
    store = open_store(sqlite_features.repo, None)
    with pytest.raises(FeatureConfigError, match="nope"):
        FeatureReader(store, "nope", [], 1.0)


def test_registry_wait_returns_at_once_for_an_applied_repo(sqlite_features):
    store = open_store(sqlite_features.repo, None)
    no_sleep = lambda s: pytest.fail("waited on an applied registry")  # noqa: E731
    wait_for_feature_service(store, "click_model_v1", 60, sleep=no_sleep)
    with pytest.raises(
        FeatureConfigError, match=r"'nope' is not in the Feast registry .*click_model_v1"
    ):
        wait_for_feature_service(store, "nope", 60, sleep=no_sleep)


def test_missing_yaml_names_the_file(tmp_path):
    with pytest.raises(FeatureConfigError, match=r"feature_store\.yaml not found"):
        open_store(tmp_path, None)


def test_reads_never_see_half_of_a_concurrent_write(sqlite_features):
    """Feast's SQLite store shares one connection between threads: without the reader's
    lock, a read that lands inside a write's open transaction sees some features of the
    new row and some of the old one."""
    import pandas as pd

    r = reader_for(sqlite_features)
    ids = list(range(70_001, 70_201))  # users of this test only

    def rows(k: int) -> pd.DataFrame:
        now = pd.Timestamp.now(tz="UTC")
        return pd.DataFrame(
            {
                "user_id": ids,
                "click_through_rate": [k / 100] * len(ids),
                "number_of_clicks": [k] * len(ids),
                "average_page_duration": [30.0] * len(ids),
                "sessions_last_7d": [3] * len(ids),
                "days_since_signup": [100] * len(ids),
                "conversion_rate": [0.05] * len(ids),
                "event_timestamp": now,
                "created": now,
            }
        )

    async def run() -> list[np.ndarray]:
        await r.write("user_data", rows(1))
        seen: list[np.ndarray] = []
        done = asyncio.Event()

        async def writer() -> None:
            for k in range(2, 30):
                await r.write("user_data", rows(k))
            done.set()

        async def reader() -> None:
            cols = columns(ids, [10.0] * len(ids), [12] * len(ids))
            while not done.is_set():
                batch, _ = await r.read(cols)
                seen.append(batch.matrix.copy())

        await asyncio.gather(writer(), reader(), reader())
        return seen

    seen = asyncio.run(run())
    assert len(seen) >= 5
    for matrix in seen:
        ctr, clicks = matrix[:, 0], matrix[:, 2]
        assert np.allclose(ctr * 100, clicks, rtol=1e-5), "a read saw part of a write"
        assert np.unique(clicks).size == 1, "one read saw rows of two different writes"
