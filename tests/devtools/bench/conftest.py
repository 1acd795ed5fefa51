"""Factories of synthetic benchmark results for the target and report tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from devtools.bench.common import CONCURRENCY


def _run(scenario, c, rps=100.0, p50=1.0, p99=2.0, p999=3.0, batch=1, errors=0):
    return {
        "scenario": scenario,
        "concurrency": c,
        "rps": rps,
        "users_per_s": rps * batch,
        "errors": errors,
        "requests": int(rps * 10),
        "latency_ms": {"p50": p50, "p90": p99, "p99": p99, "p999": p999, "mean": p50, "max": p999},
    }


def _passing_results():
    return {
        "runs": [
            _run("full", 1, p50=1.5, p99=4.0, p999=6.0),
            _run("full", 32, rps=1200, p99=40.0),
            _run("cache_hit", 1, p50=0.8, p999=2.0),
            _run("cache_hit", 32, rps=2500),
            _run("batch100", 8, rps=250, batch=100),
            *(_run("predictor", c, rps=900) for c in CONCURRENCY),
            *(_run("mlserver", c, rps=800) for c in CONCURRENCY),
            # the floors, at the reference run's values (docs/results/serving-20261128.json):
            # there every ratio target says what the absolute target of issue #6 said
            _run("empty", 1, rps=1801.3, p50=0.506, p99=1.396, p999=2.828),
            _run("empty", 32, rps=2101.4, p50=14.625, p99=23.822, p999=26.256),
        ],
        "cold_start_s": {
            "transformer": {"median": 2.5},
            "predictor": {"median": 1.5},
            "empty kserve.Model": {"median": 0.94},
        },
        "rss_mb": {"transformer": {"peak": 250.0}, "predictor": {"peak": 200.0}},
    }


def _doc_results():
    res = _passing_results()
    res.update(
        {
            "id": "20260101T000000Z",
            "started_at": "2026-01-01T00:00:00+00:00",
            "config": {"duration_s": 10, "warmup_s": 2, "users": 10000, "quick": False},
            "machine": {"cores": 2, "cpu": "Test CPU", "packages": {"kserve": "0.21.0"}},
            "floors": {
                "redis_hgetall": {
                    "title": "Redis round trip",
                    "how": "redis-py HGETALL",
                    "n": 1000,
                    "latency_ms": {"p50": 0.08, "p99": 0.1, "p999": 0.2, "mean": 0.09},
                }
            },
        }
    )
    res["cold_start_s"] = {
        "transformer": {"runs": [2.4, 2.5, 2.6], "median": 2.5},
        "empty kserve.Model": {"runs": [0.9, 0.94, 1.0], "median": 0.94},
    }
    res["rss_mb"] = {"transformer": {"peak": 250.0, "end": 240.0}}
    return res


@pytest.fixture
def run() -> Callable[..., dict[str, Any]]:
    """``run(scenario, c, rps=, p50=, p99=, p999=, batch=, errors=)``: one wrk run record."""
    return _run


@pytest.fixture
def passing_results() -> Callable[[], dict[str, Any]]:
    """Results in which every target is met (MLServer included)."""
    return _passing_results


@pytest.fixture
def doc_results() -> Callable[[], dict[str, Any]]:
    """Passing results with the fields the generated page reads."""
    return _doc_results
