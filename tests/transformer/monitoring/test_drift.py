"""Drift counting and statistics against a baseline (unit: synthetic distributions)."""

import math

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from predictor.jobs import baseline
from transformer.monitoring import stats
from transformer.monitoring.drift import DriftMonitor
from transformer.monitoring.window import Window

pytestmark = pytest.mark.unit

NAMES = ["a", "b", "flag"]


def make_baseline(rng, n=20_000):
    x = np.column_stack(
        [rng.normal(size=n), rng.lognormal(size=n), rng.integers(0, 2, n).astype(float)]
    )
    return baseline.compute("sklearn-abc", NAMES, x, rng.beta(2, 20, n))


def monitor(b, **kw):
    args = {"kind": "rows", "size": 10_000, "buckets": 10, "min_rows": 100}
    return DriftMonitor(b, compute_interval_s=0, **(args | kw))


def test_same_distribution_is_stable_shifted_feature_is_flagged():
    rng = np.random.default_rng(1)
    m = monitor(make_baseline(rng))
    n = 5000
    x = np.column_stack(
        [rng.normal(size=n), rng.lognormal(size=n), rng.integers(0, 2, n).astype(float)]
    )
    m.observe(x, rng.beta(2, 20, n))
    snap = {d.name: d for d in m.snapshot()}
    assert all(d.psi < 0.02 and d.js < 0.05 for d in snap.values()), snap
    assert snap["a"].rows == n and sum(snap["a"].live_counts) == n

    m.window.clear()
    x[:, 1] *= 2.0  # shift b only
    m.observe(x, rng.beta(2, 20, n))
    snap = {d.name: d for d in m.snapshot()}
    assert snap["b"].psi > 0.2 and snap["b"].js > 0.1
    assert snap["a"].psi < 0.02 and snap["flag"].psi < 0.02 and snap["score"].psi < 0.02


def test_missing_values_are_counted_apart_and_few_rows_give_nan():
    rng = np.random.default_rng(2)
    m = monitor(make_baseline(rng))
    x = rng.normal(size=(50, 3))
    x[:10] = np.nan
    scores = np.full(50, np.nan)
    m.observe(x, scores)
    snap = {d.name: d for d in m.snapshot()}
    assert snap["a"].missing_share == pytest.approx(0.2)
    assert snap["score"].missing_share == 1.0
    assert math.isnan(snap["a"].psi)  # 40 < min_rows


def test_counts_are_exactly_the_baseline_bins():
    b = baseline.compute("v", ["a"], np.arange(100.0).reshape(-1, 1), np.linspace(0, 1, 100))
    m = monitor(b, min_rows=1)
    m.observe(np.array([[-5.0], [0.0], [9.0], [10.0], [99.0], [1e9]]), np.zeros(6))
    live = m.snapshot()[0].live_counts
    expected = np.bincount(
        np.searchsorted(b.features[0].edges, [-5, 0, 9, 10, 99, 1e9], side="right"),
        minlength=10,
    )
    assert b.features[0].edges[0] == 9.0  # bin 0: below 9; bin 1: 9 <= x < 19
    assert live == expected.tolist() and live[0] == 2 and live[1] == 2 and live[-1] == 2


def test_rows_window_forgets_old_batches():
    w = Window(2, "rows", size=100, buckets=4)
    for _ in range(10):
        w.add(np.array([25, 0]), 25)
    for _ in range(4):
        w.add(np.array([0, 25]), 25)
    total, rows = w.total()
    assert rows == 100 and total.tolist() == [0, 100]


def test_time_window_slides_with_the_clock():
    now = [0.0]
    w = Window(1, "time", size=60, buckets=6, clock=lambda: now[0])
    w.add(np.array([5]), 5)
    now[0] = 30.0
    w.add(np.array([7]), 7)
    assert w.total()[1] == 12
    now[0] = 65.0  # the first bucket (0-10 s) has left the window
    assert w.total()[1] == 7
    now[0] = 1000.0
    assert w.total()[1] == 0


def test_psi_and_js_reference_values():
    e = np.array([25, 25, 25, 25])
    assert stats.psi(e, e) == 0.0 and stats.js_distance(e, e) == 0.0
    a = np.array([10, 20, 30, 40])
    shares = np.array([0.1, 0.2, 0.3, 0.4])
    assert stats.psi(e, a) == pytest.approx(np.sum((shares - 0.25) * np.log(shares / 0.25)))
    assert stats.js_distance(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0)
    from scipy.spatial.distance import jensenshannon

    assert stats.js_distance(e, a) == pytest.approx(jensenshannon(e / 100, a / 100, base=2))


def test_collector_exports_gauges_per_feature_and_version():
    from transformer.monitoring.quality import QualityMonitor
    from transformer.monitoring.views import Monitoring, MonitoringCollector

    rng = np.random.default_rng(3)
    m = Monitoring(monitor(make_baseline(rng)), QualityMonitor(100, 60, 100, 10, 0), 0.2)
    m.observe(rng.normal(size=(500, 3)) * 3, rng.beta(2, 20, 500), np.arange(500))
    reg = CollectorRegistry()
    reg.register(MonitoringCollector(m))
    psi = reg.get_sample_value(
        "transformer_drift_psi", {"feature": "a", "model_version": "sklearn-abc"}
    )
    assert psi is not None and psi > 0.2
    rows = reg.get_sample_value("transformer_drift_window_rows", {"model_version": "sklearn-abc"})
    assert rows == 500
    auc = reg.get_sample_value("transformer_quality_auc", {"model_version": "sklearn-abc"})
    assert auc is not None and math.isnan(auc)  # no labels yet
