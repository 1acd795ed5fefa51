"""How user-activity events move the ``user_data`` features: defined once, used by the
stream worker and by the offline history (``predictor.jobs.datagen.replay_activity``).

The state of a user is the feature row the stream started from (``base``, e.g. the batch
snapshot materialized from the offline store) plus integer counters of what happened since
(``Deltas``). Every feature is a function of (base, deltas, newest event time), and the
counters are sums, so applying a set of events gives the same state in any order and in any
split into batches. Together with the per-user set of applied event ids that makes the fold
idempotent (an event applied twice is applied once) and lets two workers of one consumer
group interleave a user's events freely.

Event → feature:

- ``page_view`` (``duration_s``): one impression; its duration (whole milliseconds, so the sum
  is exact in any order) enters ``average_page_duration``.
- ``click`` (``converted``): ``number_of_clicks`` + 1; ``click_through_rate`` = clicks /
  impressions; a converted click enters ``conversion_rate`` = conversions / clicks.
- ``session_end``: ``sessions_last_7d`` + 1.
- any event: ``days_since_signup`` advances with the whole days between the base row and the
  newest event.

The base row's impressions are not a feature; they are recovered as ``clicks / ctr`` (the
definition of the rate), its page views are its impressions.

Lateness: an event at or before the base row's time is already in the base (the batch
snapshot counted it): dropped as ``stale``. An event more than ``lateness_us`` older than the
newest applied one is dropped as ``stale`` too, because applied ids are remembered only for
that window (a replay older than it could not be recognised). Everything in between is
applied whatever its order, and the row's timestamp is the newest applied event time: it
never moves backwards.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

EventType = Literal["click", "page_view", "session_end"]
DAY_US = 86_400 * 1_000_000

FEATURES = (
    "click_through_rate",
    "number_of_clicks",
    "average_page_duration",
    "sessions_last_7d",
    "days_since_signup",
    "conversion_rate",
)


@dataclass(frozen=True)
class Activity:
    """What the fold needs of one event."""

    event_id: str
    user_id: int
    ts_us: int  # event time, epoch µs
    type: EventType
    duration_ms: int = 0  # page_view: time on the page
    converted: bool = False  # click: it led to a conversion


@dataclass(frozen=True)
class Deltas:
    clicks: int = 0
    impressions: int = 0
    duration_ms: int = 0
    sessions: int = 0
    conversions: int = 0

    def plus(self, e: Activity) -> Deltas:
        if e.type == "click":
            return replace(self, clicks=self.clicks + 1, conversions=self.conversions + e.converted)
        if e.type == "page_view":
            return replace(
                self, impressions=self.impressions + 1, duration_ms=self.duration_ms + e.duration_ms
            )
        return replace(self, sessions=self.sessions + 1)


ZERO_ROW: dict[str, float] = dict.fromkeys(FEATURES, 0.0)


@dataclass(frozen=True)
class UserState:
    base: dict[str, float]  # the six features of the row the stream started from
    base_us: int  # its event time (0: no row, a new user)
    deltas: Deltas = Deltas()
    ts_us: int = 0  # newest applied event time (the row's feature timestamp)
    seen: dict[str, int] = field(default_factory=dict)  # applied event id → event time

    @classmethod
    def start(cls, row: dict[str, Any] | None, row_us: int) -> UserState:
        """The state of a user whose stored row is ``row`` (None: no row) at ``row_us``."""
        if row is None or any(row.get(f) is None for f in FEATURES):
            return cls(dict(ZERO_ROW), 0, ts_us=0)
        return cls({f: float(row[f]) for f in FEATURES}, row_us, ts_us=row_us)

    def to_json(self) -> dict[str, Any]:
        d = self.deltas
        return {
            "base": self.base,
            "base_us": self.base_us,
            "d": [d.clicks, d.impressions, d.duration_ms, d.sessions, d.conversions],
            "ts_us": self.ts_us,
            "seen": self.seen,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> UserState:
        return cls(raw["base"], raw["base_us"], Deltas(*raw["d"]), raw["ts_us"], raw["seen"])


@dataclass(frozen=True)
class FoldResult:
    state: UserState
    applied: list[str]
    duplicate: list[str]
    stale: list[str]


def fold(state: UserState, events: Iterable[Activity], lateness_us: int) -> FoldResult:
    """Apply ``events`` (one user's, any order) to ``state``."""
    applied: list[str] = []
    duplicate: list[str] = []
    stale: list[str] = []
    deltas, ts_us, seen = state.deltas, state.ts_us, dict(state.seen)
    for e in sorted(events, key=lambda e: (e.ts_us, e.event_id)):
        if e.event_id in seen:
            duplicate.append(e.event_id)
        elif e.ts_us <= state.base_us or e.ts_us < ts_us - lateness_us:
            stale.append(e.event_id)
        else:
            deltas = deltas.plus(e)
            ts_us = max(ts_us, e.ts_us)
            seen[e.event_id] = e.ts_us
            applied.append(e.event_id)
    if applied:  # forget ids that fell out of the window: their events are now stale anyway
        cutoff = ts_us - lateness_us
        seen = {k: v for k, v in seen.items() if v >= cutoff}
    return FoldResult(
        replace(state, deltas=deltas, ts_us=ts_us, seen=seen), applied, duplicate, stale
    )


def features(state: UserState) -> dict[str, float | int]:
    """The six ``user_data`` features of a state."""
    b, d = state.base, state.deltas
    base_clicks = b["number_of_clicks"]
    base_views = base_clicks / b["click_through_rate"] if b["click_through_rate"] > 0 else 0.0
    clicks = base_clicks + d.clicks
    views = base_views + d.impressions
    ctr = clicks / max(views, clicks) if clicks > 0 else b["click_through_rate"]
    avg = (
        (b["average_page_duration"] * base_views + d.duration_ms / 1000.0) / views
        if views > 0
        else b["average_page_duration"]
    )
    conv = (
        (b["conversion_rate"] * base_clicks + d.conversions) / clicks
        if clicks > 0
        else b["conversion_rate"]
    )
    days = b["days_since_signup"] + (
        (state.ts_us - state.base_us) // DAY_US if state.base_us else 0
    )
    return {
        "click_through_rate": ctr,
        "number_of_clicks": int(clicks),
        "average_page_duration": avg,
        "sessions_last_7d": int(b["sessions_last_7d"] + d.sessions),
        "days_since_signup": int(days),
        "conversion_rate": conv,
    }
