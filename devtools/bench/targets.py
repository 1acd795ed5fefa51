"""Targets as data: each speed target is a ratio to a floor measured in the same run, so a slow
day on a shared VM moves both sides and the verdict stays about our code."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from devtools.bench.common import CONCURRENCY, find_run
from devtools.bench.scenarios import MLSERVER_SCENARIOS

# The quiet-machine run the ratios were derived from (its numbers are quoted in RATIO_TARGETS).
REFERENCE_RUN = "docs/results/serving-20261128.json"
UNITS = {"rps": "req/s", "users_per_s": "users/s"}  # latency fields: ms


@dataclass(frozen=True)
class Reading:
    value: float
    unit: str
    errors: int = 0


@dataclass(frozen=True)
class RunValue:
    """One field of a wrk run: at one concurrency, or the best (highest) over every
    concurrency when ``concurrency`` is None, counting only runs without failed requests."""

    label: str
    scenario: str
    field: str  # p50 | p99 | ... (latency, ms) | rps | users_per_s
    concurrency: int | None = None

    @property
    def unit(self) -> str:
        return UNITS.get(self.field, "ms")

    def read(self, results: dict[str, Any]) -> Reading | None:
        unit = self.unit
        if self.concurrency is not None:
            r = find_run(results, self.scenario, self.concurrency)
            if r is None:
                return None
            value = r["latency_ms"][self.field] if self.field in r["latency_ms"] else r[self.field]
            return Reading(value, unit, int(r.get("errors", 0)))
        runs = [r for c in CONCURRENCY if (r := find_run(results, self.scenario, c)) is not None]
        clean = [r[self.field] for r in runs if not r.get("errors")]
        if not runs:
            return None
        return Reading(max(clean) if clean else 0.0, unit)  # every run failed: 0


@dataclass(frozen=True)
class ColdStart:
    """The median cold start of one server (the ``cold_start`` step)."""

    label: str
    server: str
    unit = "s"

    def read(self, results: dict[str, Any]) -> Reading | None:
        median = results.get("cold_start_s", {}).get(self.server, {}).get("median")
        return None if median is None else Reading(median, "s")


@dataclass(frozen=True)
class RatioTarget:
    """``measure`` ≥ or ≤ ``ratio`` x ``floor``, both from the same run.

    ``absolute`` is the target of issue #6 this replaces and ``reference`` the floor on the
    reference run: ``ratio`` is ``absolute / reference`` rounded to two significant digits,
    which keeps that run's verdict (tests/devtools/bench/test_targets.py checks both)."""

    key: str
    subject: str
    measure: RunValue | ColdStart
    floor: RunValue | ColdStart
    ratio: float
    higher_is_better: bool
    absolute: float
    reference: float

    @property
    def text(self) -> str:
        sign = "≥" if self.higher_is_better else "≤"
        return f"{self.subject} {sign} {self.ratio:g} x {self.floor.label}"

    @property
    def was(self) -> str:
        return f"{'≥' if self.higher_is_better else '≤'} {self.absolute:,g} {self.measure.unit}"


def vs_empty(
    key: str,
    scenario: str,
    title: str,
    field: str,
    c: int,
    ratio: float,
    higher_is_better: bool,
    absolute: float,
    reference: float,
) -> RatioTarget:
    """A target on one run of ``scenario`` against KServe's empty model (one HTTP
    hop doing nothing) in the same field at the same concurrency."""
    name = UNITS.get(field, field)
    return RatioTarget(
        key,
        f"{title}, c={c}: {name}",
        RunValue(f"{title} {name}", scenario, field, c),
        RunValue(f"the empty model's {name} at c={c}", "empty", field, c),
        ratio,
        higher_is_better,
        absolute,
        reference,
    )


# ratio = absolute / reference (the floor on REFERENCE_RUN), two significant digits
RATIO_TARGETS: tuple[RatioTarget, ...] = (
    vs_empty("full_c1_p50", "full", "full path", "p50", 1, 4.0, False, 2, 0.506),
    vs_empty("full_c1_p99", "full", "full path", "p99", 1, 3.6, False, 5, 1.396),
    vs_empty("full_c32_rps", "full", "full path", "rps", 32, 0.48, True, 1000, 2101.4),
    vs_empty("full_c32_p99", "full", "full path", "p99", 32, 2.1, False, 50, 23.822),
    vs_empty("cache_c32_rps", "cache_hit", "cache hit", "rps", 32, 0.95, True, 2000, 2101.4),
    # batches: the user rate against the empty model's best request rate (the predictor alone
    # is not a floor: it is our code, FastInfer doubled it, a denominator must not move so)
    RatioTarget(
        "batch100_users",
        "batches of 100: user-predictions/s (best concurrency)",
        RunValue("batch100 users/s", "batch100", "users_per_s"),
        RunValue("the empty model's req/s (best concurrency)", "empty", "rps"),
        9.5,
        True,
        20000,
        2101.4,
    ),
    # start-up: KServe's empty model imports the framework and nothing else
    *(
        RatioTarget(
            f"cold_{server}",
            f"cold start {server} (median)",
            ColdStart(f"{server} cold start", server),
            ColdStart("the empty model's cold start", "empty kserve.Model"),
            3.2,
            False,
            3,
            0.94,
        )
        for server in ("transformer", "predictor")
    ),
)
RSS_LIMIT_MB = 300  # absolute: memory does not depend on how busy the machine is


def floors_needed(steps: Sequence[str]) -> list[str]:
    """The floor scenarios the targets of ``steps`` divide by and ``steps`` does not run."""
    out: list[str] = []
    for t in RATIO_TARGETS:
        floor, measure = t.floor, t.measure
        if isinstance(floor, RunValue) and isinstance(measure, RunValue):
            needed = measure.scenario in steps and floor.scenario not in steps
            if needed and floor.scenario not in out:
                out.append(floor.scenario)
    return out


def _decimals(v: float) -> int:
    return 0 if abs(v) >= 100 else 1 if abs(v) >= 10 else 2 if abs(v) >= 1 else 3


def _shown(r: Reading) -> str:
    return f"{r.value:,.{_decimals(r.value)}f} {r.unit}"


def evaluate_ratio(t: RatioTarget, results: dict[str, Any]) -> dict[str, Any]:
    """One ratio target: met when measure / floor is on the right side of the ratio; a
    measured run with failed requests never meets it; no floor (or a failed one): None."""
    out: dict[str, Any] = {"key": t.key, "target": t.text, "limit": t.ratio}
    got, floor = t.measure.read(results), t.floor.read(results)
    if got is None:
        return {**out, "measured": "not measured", "value": None, "met": None}
    if floor is None or floor.errors or floor.value <= 0:
        why = "not measured" if floor is None else f"{floor.errors:,} failed requests"
        return {
            **out,
            "measured": f"{_shown(got)}; floor {why}",
            "value": got.value,
            "met": None,
        }
    ratio = got.value / floor.value
    met = ratio >= t.ratio if t.higher_is_better else ratio <= t.ratio
    shown = f"{_shown(got)} = {ratio:.2f} x {_shown(floor)}"
    if got.errors:
        met, shown = False, f"{shown} ({got.errors:,} failed requests)"
    return {
        **out,
        "measured": shown,
        "value": got.value,
        "floor": floor.value,
        "ratio": round(ratio, 3),
        "met": met,
    }


def _rss(server: str, results: dict[str, Any]) -> dict[str, Any]:
    peak = results.get("rss_mb", {}).get(server, {}).get("peak")
    return {
        "key": f"rss_{server}",
        "target": f"peak RSS {server} ≤ {RSS_LIMIT_MB} MB",
        "measured": "not measured" if peak is None else f"{peak:,.0f} MB",
        "value": peak,
        "met": None if peak is None else peak <= RSS_LIMIT_MB,
    }


def _predictor_vs_mlserver(results: dict[str, Any]) -> dict[str, Any]:
    """Predictor alone at least as fast as MLServer alone: req/s at every concurrency,
    against MLServer's faster configuration."""
    out: dict[str, Any] = {
        "key": "predictor_vs_mlserver",
        "target": "predictor alone ≥ MLServer alone (req/s, every concurrency)",
    }
    pairs = []
    for c in CONCURRENCY:
        ours = find_run(results, "predictor", c)
        theirs = [r for s in MLSERVER_SCENARIOS if (r := find_run(results, s, c)) is not None]
        if ours is not None and theirs:
            pairs.append((c, ours, max(theirs, key=lambda r: r["rps"])))
    if not pairs:
        return {**out, "measured": "not measured (run with --mlserver)", "value": None, "met": None}
    worst = min(p["rps"] / m["rps"] if m["rps"] else math.inf for _, p, m in pairs)
    measured = ", ".join(
        f"c={c}: {p['rps']:,.0f} vs {m['rps']:,.0f} ({m['scenario']})" for c, p, m in pairs
    )
    return {**out, "measured": measured, "value": round(worst, 3), "met": worst >= 1.0}


def _no_spikes(results: dict[str, Any]) -> dict[str, Any]:
    """p99.9 ≤ 5 x p50 at c=1: a ratio within each run already."""
    out: dict[str, Any] = {
        "key": "no_spikes",
        "target": "no spikes: p99.9 ≤ 5 x p50 at c=1 (every server scenario)",
    }
    spikes: list[tuple[float, str]] = []
    for s in ("full", "cache_hit", "batch10", "batch100", "collocated", "predictor"):
        r = find_run(results, s, 1)
        if r is not None and not r.get("errors") and r["latency_ms"]["p50"] > 0:
            spikes.append((r["latency_ms"]["p999"] / r["latency_ms"]["p50"], s))
    if not spikes:
        return {**out, "measured": "not measured", "value": None, "met": None}
    worst_ratio, worst_s = max(spikes)
    measured = f"worst {worst_ratio:.1f}x ({worst_s}); " + ", ".join(
        f"{s} {v:.1f}x" for v, s in spikes
    )
    return {**out, "measured": measured, "value": round(worst_ratio, 2), "met": worst_ratio <= 5}


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target with its measured value and met (True/False) or None (not measured)."""
    by_key = {t.key: evaluate_ratio(t, results) for t in RATIO_TARGETS}
    order = ["full_c1_p50", "full_c1_p99", "full_c32_rps", "full_c32_p99", "cache_c32_rps"]
    return [
        *(by_key[k] for k in order),
        _predictor_vs_mlserver(results),
        by_key["batch100_users"],
        by_key["cold_transformer"],
        by_key["cold_predictor"],
        _rss("transformer", results),
        _rss("predictor", results),
        _no_spikes(results),
    ]
