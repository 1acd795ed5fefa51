"""Percentiles and the in-process floors (devtools/bench/inprocess.py)."""

from __future__ import annotations

import pytest

from devtools.bench import inprocess as bench

pytestmark = pytest.mark.unit


def test_percentile_is_nearest_rank():
    values = [float(i) for i in range(1, 101)]  # 1..100
    assert bench.percentile(values, 50) == 50.0
    assert bench.percentile(values, 99) == 99.0
    assert bench.percentile(values, 99.9) == 100.0
    assert bench.percentile(values, 100) == 100.0
    assert bench.percentile([7.0], 50) == 7.0
    with pytest.raises(ValueError):
        bench.percentile([], 50)
    with pytest.raises(ValueError):
        bench.percentile(values, 0)


def test_latency_summary_in_ms():
    s = bench.latency_summary([0.001] * 999 + [0.1])
    assert s["p50"] == pytest.approx(1.0) and s["p99"] == pytest.approx(1.0)
    assert s["p999"] == pytest.approx(1.0) and s["max"] == pytest.approx(100.0)
    assert s["mean"] == pytest.approx((0.999 + 0.1) / 1000 * 1000)


def test_stall_floor_round_trips_with_a_real_second_process():
    f = bench.stall_floor(0.3)
    assert f["n"] > 100  # a round trip is tens of microseconds
    assert 0 < f["latency_ms"]["p50"] < 5 and f["per_s"] >= 0
