"""The drift report's pieces: bins, the reference built from the baseline, the window's
reading, and Evidently's PSI equal to the live monitor's on the same rows."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from predictor.jobs import baseline
from transformer.monitoring import report, stats
from transformer.monitoring.drift import DriftMonitor

pytestmark = pytest.mark.unit


@pytest.fixture
def b() -> baseline.Baseline:
    rng = np.random.default_rng(0)
    x = rng.random((2000, 2))
    x[:100, 1] = np.nan  # 5% missing
    return baseline.compute("sklearn-1", ["a", "b"], x, rng.random(2000))


def test_reference_is_the_baseline_exactly(b):
    d = b.features[1]
    col = report.reference_column(d, b.rows)
    labels = report.bin_labels(d)
    assert [int((col == label).sum()) for label in labels] == d.counts
    assert int(sum(v is None for v in col)) == 100
    assert labels[0].startswith("b0 < ") and labels[-1].startswith(f"b{len(d.edges)} >= ")


def test_values_land_in_the_transformers_bins(b):
    d = b.features[0]
    values = np.array([d.edges[0] - 1, d.edges[0], d.edges[-1] + 1, np.nan])
    got = report.binned(d, values)
    labels = report.bin_labels(d)
    assert list(got) == [labels[0], labels[1], labels[-1], None]


class FakeRedis:
    """XRANGE over a list of (id, fields), paged like Redis (ids are ms-seq)."""

    def __init__(self, items):
        self.items = items

    def xrange(self, stream, min, max, count):
        lo_excl = min.startswith("(")
        lo = min.lstrip("(")
        key = lambda i: tuple(int(p) for p in i.split("-"))  # noqa: E731
        lo_k = key(lo) if "-" in lo else (int(lo), -1 if not lo_excl else 10**9)
        hi_k = (int(max), 10**9)
        out = [
            (i.encode(), {k.encode(): v.encode() for k, v in f.items()})
            for i, f in self.items
            if (key(i) > lo_k if lo_excl else key(i) >= lo_k) and key(i) <= hi_k
        ]
        return out[:count]


def test_window_pages_filters_versions_and_keeps_missing(monkeypatch):
    monkeypatch.setattr(report, "PAGE", 2)
    items = []
    for k in range(5):
        fields = {"ts": f"{100 + k}.5", "model_version": "v1" if k != 3 else "v0",
                  "scores": json.dumps([0.1, None]), "keys": "[]",
                  "features": json.dumps({"a": [1.0, None]})}  # fmt: skip
        items.append((f"{(100 + k) * 1000 + 500}-0", fields))
    w = report.read_window(FakeRedis(items), "s", 100.0, 103.9, "v1", ["a", "b"])
    assert w.entries == 3 and w.other_versions == {"v0": 1} and w.rows == 6
    a = np.concatenate(w.features["a"])
    assert np.isnan(a).sum() == 3 and np.isnan(np.concatenate(w.features["b"])).all()


def test_evidently_psi_is_the_live_psi(b):
    rng = np.random.default_rng(1)
    x = rng.random((3000, 2))
    x[:, 0] = x[:, 0] ** 2  # input a drifts
    scores = rng.random(3000)
    w = report.Window(0, 1, entries=30, scores=[scores],
                      features={"a": [x[:, 0]], "b": [x[:, 1]]})  # fmt: skip
    snap = report.run_report(b, w, "psi", 0.2)
    got = report.drift_values(snap)
    live = DriftMonitor(b, "rows", 10_000, 1, 1, 0)
    live.observe(x, scores)
    expected = {v.name: v.psi for v in live.snapshot()}
    assert set(got) == {"a", "b", "score"}
    for name, value in got.items():
        assert value == pytest.approx(expected[name], rel=1e-6, abs=1e-9), name
    assert got["a"] > 0.2 > max(got["b"], got["score"])
    counts = np.bincount(np.searchsorted(b.features[0].edges, x[:, 0], side="right"))
    assert got["a"] == pytest.approx(stats.psi(np.array(b.features[0].counts), counts))


@pytest.mark.parametrize(
    ("text", "seconds"), [("3600", 3600), ("90m", 5400), ("1h", 3600), ("2d", 172800)]
)
def test_durations(text, seconds):
    assert report.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "-1h", "1w", "soon"])
def test_bad_durations_say_what_is_expected(text):
    with pytest.raises(argparse.ArgumentTypeError, match="positive duration"):
        report.parse_duration(text)


def test_times():
    assert report.parse_time("1764000000") == 1764000000.0
    assert report.parse_time("2026-11-29T00:00:00Z") == report.parse_time("1795910400")
    with pytest.raises(argparse.ArgumentTypeError, match="give a zone"):
        report.parse_time("2026-11-29T00:00:00")
