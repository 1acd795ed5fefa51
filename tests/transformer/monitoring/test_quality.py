"""Joining outcomes to predictions, rolling AUC / log loss / calibration, label validation."""

import math

import numpy as np
import pytest

from transformer.monitoring.quality import PredictionLog, QualityMonitor, auc, quality
from transformer.monitoring.views import LabelError, parse_labels

pytestmark = pytest.mark.unit


def test_auc_matches_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    s = np.round(rng.random(2000), 2)  # many ties
    y = (rng.random(2000) < s).astype(float)
    assert auc(s, y) == pytest.approx(roc_auc_score(y, s))
    assert math.isnan(auc(s, np.ones(2000)))


def test_quality_log_loss_and_calibration():
    rng = np.random.default_rng(1)
    s = rng.beta(2, 10, 20_000)
    y = (rng.random(20_000) < s).astype(float)
    q = quality(s, y, 100)
    for band in q.bands:
        if band["labels"] > 500:
            assert band["observed"] == pytest.approx(band["predicted"], abs=0.02)
    assert q.log_loss == pytest.approx(-np.mean(y * np.log(s) + (1 - y) * np.log(1 - s)))
    assert math.isnan(quality(s[:5], y[:5], 100).auc)


def test_labels_join_the_latest_prediction_in_the_window():
    log = PredictionLog(8)
    log.append(np.array([1, 2]), np.array([0.1, 0.2]), now=100.0)
    log.append(np.array([1]), np.array([0.15]), now=200.0)
    at = np.array([150.0, 250.0, 170.0, 50.0, 150.0])
    got = log.lookup(np.array([1, 1, 2, 2, 3]), at, 60)
    # user 1 at 150: the 100 s score, at 250: the 200 s one; user 2 at 170: 70 s old, too old;
    # at 50: before any prediction; user 3: never scored
    assert got[0] == 0.1 and got[1] == 0.15
    assert math.isnan(got[2]) and math.isnan(got[3]) and math.isnan(got[4])


def test_ring_overwrites_oldest():
    log = PredictionLog(3)
    log.append(np.array([1, 2, 3, 4]), np.array([0.1, 0.2, 0.3, 0.4]), now=10.0)
    got = log.lookup(np.array([1, 4]), np.array([10.0, 10.0]), 5)
    assert math.isnan(got[0]) and got[1] == 0.4


def test_monitor_counts_joined_and_unmatched():
    q = QualityMonitor(100, 3600, 50, 1, 0)
    q.observe(np.array([1, 2, 3]), np.array([0.9, np.nan, 0.1]))  # user 2 was not scored
    import time

    n = q.add_labels(np.array([1, 2, 3]), np.full(3, time.time()), np.array([1, 0, 0], np.int8))
    assert n == 2 and q.joined == 2 and q.unmatched == 1
    assert q.snapshot().auc == 1.0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "body must be"),
        ({"labels": []}, "non-empty"),
        ({"labels": [{"user_id": "x", "outcome": 1}]}, "'user_id' must be an integer"),
        ({"labels": [{"user_id": 1, "outcome": 2}]}, "'outcome' must be 0 or 1"),
        ({"labels": [{"user_id": 1, "outcome": 0.5}]}, "'outcome' must be 0 or 1"),
        ({"labels": [{"user_id": 1, "outcome": 1, "timestamp": "yesterday"}]}, "'timestamp'"),
        ({"labels": [{"user_id": 1, "outcome": 1, "timestamp": "2026-01-01T00:00"}]}, "zone"),
        ({"labels": [{"user_id": 1, "outcome": 1, "x": 1}]}, "unknown fields"),
        ({"labels": [{"prediction_id": "a", "outcome": 1}]}, "prediction_id is not supported"),
    ],
)
def test_bad_labels_name_the_problem(body, message):
    with pytest.raises(LabelError, match=message):
        parse_labels(body, 0.0)


def test_good_labels_parse():
    users, at, y = parse_labels(
        {"labels": [{"user_id": 4, "outcome": True, "timestamp": "1970-01-01T00:01:00+00:00"},
                    {"user_id": 5, "outcome": 0}]},
        now=99.0,
    )  # fmt: skip
    assert users.tolist() == [4, 5] and at.tolist() == [60.0, 99.0] and y.tolist() == [1, 0]
