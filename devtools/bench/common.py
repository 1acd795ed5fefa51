"""What every part of the serving benchmark shares: paths, the error type, the concurrency
levels, and looking a run up in a results dict."""

from __future__ import annotations

from typing import Any

from devtools import stack

ROOT = stack.ROOT
CONCURRENCY = (1, 8, 32)
MODEL_NAME = "click-model"


class BenchError(Exception):
    """Something the benchmark needs is missing or broken; the message says what to do."""


def find_run(results: dict[str, Any], scenario: str, concurrency: int) -> dict[str, Any] | None:
    for r in results.get("runs", []):
        if r["scenario"] == scenario and r["concurrency"] == concurrency:
            return r
    return None


def brief(r: dict[str, Any]) -> str:
    lat = r["latency_ms"]
    return (
        f"{r['rps']:,.0f} req/s ({r['users_per_s']:,.0f} users/s), p50 {lat['p50']:.2f} ms, "
        f"p99 {lat['p99']:.2f} ms, p99.9 {lat['p999']:.2f} ms, errors {r.get('errors', 0)}"
    )
