"""Deterministic synthetic data for the click model.

Writes, into ``<repo>/data/``:

- ``user_data.parquet``: one row per user per weekly snapshot; every feature drifts over time
  (a per-user random walk), so a point-in-time join and a naive "latest" join disagree.
- ``activity.parquet`` (only with ``activity_per_user`` > 0): raw user-activity events
  (``click`` / ``page_view`` / ``session_end``) after the last snapshot, the stream worker's
  input schema; ``user_data.parquet`` then also holds each active user's row after them,
  folded with the stream worker's own fold (``replay_activity``), so the offline history a
  model trains on and the online rows the stream writes come from one definition.
- ``events.parquet``: labelled events (``clicked``, ``converted``) with the request-time fields
  (``session_duration_s``, ``hour_of_day``). The label probabilities are a known function of the
  features *as they were at event time*, so a model can learn them and leakage would show.

Same seed and end date → byte-identical frames. ``python -m predictor.jobs.datagen --help``.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from predictor.protocol import predictions
from transformer.stream.fold import FEATURES

log = logging.getLogger(__name__)

# the user_data features, as the stream's fold defines them
USER_FEATURES = FEATURES


@dataclass(frozen=True)
class DataSpec:
    """What to generate."""

    n_users: int = 10_000
    n_weeks: int = 12
    events_per_user: float = 6.0
    seed: int = 7
    end: datetime | None = None  # None: today 00:00 UTC
    activity_per_user: float = 0.0  # > 0: also write activity.parquet and its folded rows


def _end_of(spec: DataSpec) -> datetime:
    if spec.end is not None:
        return spec.end.astimezone(UTC)
    now = datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def click_logit(
    ctr: np.ndarray,
    sessions: np.ndarray,
    avg_duration: np.ndarray,
    session_duration: np.ndarray,
    hour: np.ndarray,
) -> np.ndarray:
    """The ground-truth click model the labels are drawn from."""
    engagement = session_duration / np.maximum(avg_duration, 1.0)
    peak = ((hour >= 18) & (hour <= 22)).astype(float)
    return (
        -2.4
        + 28.0 * (ctr - 0.06)
        + 0.45 * np.log1p(sessions)
        + 0.9 * np.clip(np.log(np.maximum(engagement, 1e-3)), -2.0, 2.0)
        + 0.6 * peak
    )


def user_snapshots(spec: DataSpec) -> pd.DataFrame:
    """Weekly feature snapshots for every user, oldest first."""
    rng = np.random.default_rng(spec.seed)
    n, w = spec.n_users, spec.n_weeks
    end = _end_of(spec)
    user_id = np.arange(1, n + 1, dtype=np.int64)

    base_ctr = rng.beta(2.0, 30.0, size=n)
    base_dur = rng.lognormal(3.4, 0.45, size=n)
    base_sessions = rng.gamma(2.0, 1.6, size=n)
    base_conv = rng.beta(1.2, 40.0, size=n)
    signup_age = rng.integers(30, 1500, size=n)

    frames = []
    drift_ctr = np.zeros(n)
    drift_dur = np.zeros(n)
    drift_ses = np.zeros(n)
    for k in range(w):
        drift_ctr += rng.normal(0.0, 0.004, size=n)
        drift_dur += rng.normal(0.0, 0.06, size=n)
        drift_ses += rng.normal(0.0, 0.25, size=n)
        ctr = np.clip(base_ctr + drift_ctr, 0.001, 0.6)
        avg_dur = base_dur * np.exp(drift_dur)
        sessions = rng.poisson(np.clip(base_sessions + drift_ses, 0.1, None))
        impressions = rng.poisson(200 + 40 * sessions)
        clicks = rng.binomial(impressions, ctr)
        conv = np.clip(base_conv + rng.normal(0, 0.003, size=n), 0.0, 1.0)
        ts = end - timedelta(weeks=w - 1 - k) - timedelta(hours=1)
        frames.append(
            pd.DataFrame(
                {
                    "user_id": user_id,
                    "click_through_rate": ctr.astype(np.float32),
                    "number_of_clicks": clicks.astype(np.int64),
                    "average_page_duration": avg_dur.astype(np.float32),
                    "sessions_last_7d": sessions.astype(np.int64),
                    "days_since_signup": (signup_age + 7 * k).astype(np.int64),
                    "conversion_rate": conv.astype(np.float32),
                    "event_timestamp": pd.Series(pd.Timestamp(ts), index=range(n)).astype(
                        "datetime64[us, UTC]"
                    ),
                    "created": pd.Series(pd.Timestamp(ts), index=range(n)).astype(
                        "datetime64[us, UTC]"
                    ),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def labelled_events(spec: DataSpec, snapshots: pd.DataFrame) -> pd.DataFrame:
    """Events drawn between snapshots; labels depend on the features valid at event time."""
    rng = np.random.default_rng(spec.seed + 1)
    end = _end_of(spec)
    start = end - timedelta(weeks=spec.n_weeks)
    counts = rng.poisson(spec.events_per_user, size=spec.n_users)
    user_id = np.repeat(np.arange(1, spec.n_users + 1, dtype=np.int64), counts)
    span_s = (end - start).total_seconds()
    offsets = rng.uniform(0.0, span_s, size=user_id.size)
    ts = (pd.Timestamp(start) + pd.to_timedelta(offsets, unit="s")).astype("datetime64[us, UTC]")
    events = pd.DataFrame({"user_id": user_id, "event_timestamp": ts})
    events["hour_of_day"] = rng.integers(0, 24, size=len(events)).astype(np.int64)
    events["session_duration_s"] = rng.lognormal(3.3, 0.8, size=len(events))

    # Point-in-time truth: the latest snapshot at or before each event.
    snaps = snapshots.sort_values("event_timestamp")
    joined = pd.merge_asof(
        events.sort_values("event_timestamp"),
        snaps.drop(columns=["created"]).rename(columns={"event_timestamp": "snapshot_ts"}),
        left_on="event_timestamp",
        right_on="snapshot_ts",
        by="user_id",
        direction="backward",
    )
    has = joined["snapshot_ts"].notna().to_numpy()
    logit = np.full(len(joined), -3.0)
    logit[has] = click_logit(
        joined.loc[has, "click_through_rate"].to_numpy(float),
        joined.loc[has, "sessions_last_7d"].to_numpy(float),
        joined.loc[has, "average_page_duration"].to_numpy(float),
        joined.loc[has, "session_duration_s"].to_numpy(float),
        joined.loc[has, "hour_of_day"].to_numpy(float),
    )
    clicked = rng.random(len(joined)) < _sigmoid(logit)
    conv_p = _sigmoid(-1.0 + 60.0 * (joined["conversion_rate"].fillna(0.02).to_numpy() - 0.03))
    converted = clicked & (rng.random(len(joined)) < conv_p)
    out = joined[["user_id", "event_timestamp", "session_duration_s", "hour_of_day"]].copy()
    out["clicked"] = clicked.astype(np.int64)
    out["converted"] = converted.astype(np.int64)
    return out.sort_values(["event_timestamp", "user_id"], ignore_index=True)


def shift_features(
    snapshots: pd.DataFrame, shifts: dict[str, float], seed: int = 7, noise: float = 0.5
) -> pd.DataFrame:
    """A copy of ``snapshots`` with each feature in ``shifts`` moved: multiplied by its factor
    and by per-row log-normal noise (sigma ``noise``), so both its distribution and its
    ranking of users change. Integer features stay integers. For drift tests: labels drawn
    before the shift are the unchanged world the shifted (broken) features no longer describe.
    """
    unknown = sorted(set(shifts) - set(USER_FEATURES))
    if unknown:
        raise ValueError(f"cannot shift {unknown}: not among {list(USER_FEATURES)}")
    rng = np.random.default_rng(seed + 99)
    out = snapshots.copy()
    for name, factor in shifts.items():
        col = out[name]
        moved = col.to_numpy(np.float64) * factor * rng.lognormal(0.0, noise, len(out))
        out[name] = (
            np.rint(moved).astype(col.dtype) if col.dtype.kind == "i" else moved.astype(col.dtype)
        )
    return out


def _shift_arg(text: str) -> tuple[str, float]:
    name, _, factor = text.partition("=")
    try:
        return name, float(factor)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shift {text!r}: use FEATURE=FACTOR") from None


def ensure_predictions_table(repo: Path) -> None:
    """An (empty) predictions table, so the predictions view has a valid batch source; rewritten
    when an older one lacks a column."""
    path = repo / "data" / "model_predictions.parquet"
    if path.is_file():
        import pyarrow.parquet as pq

        if set(pq.read_schema(path).names) >= set(predictions.frame_dtypes()):
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    dtypes = predictions.frame_dtypes()
    pd.DataFrame({k: pd.Series([], dtype=v) for k, v in dtypes.items()}).to_parquet(
        path, index=False
    )


ACTIVITY_TYPES = ("page_view", "click", "session_end")


def activity_events(
    latest: pd.DataFrame, start: datetime, span_s: float, per_user: float, seed: int
) -> pd.DataFrame:
    """Raw activity for the users of ``latest`` (one feature row each), in ``[start, start +
    span_s)``: page views with durations around the user's average, clicks at about the
    user's click-through rate (converted at about the conversion rate), some session ends.
    Columns are the event schema's (``transformer.stream.events``)."""
    rng = np.random.default_rng(seed)
    users = latest["user_id"].to_numpy(np.int64)
    counts = rng.poisson(per_user, size=len(users))
    idx = np.repeat(np.arange(len(users)), counts)
    n = idx.size
    ctr = latest["click_through_rate"].to_numpy(float)[idx]
    p_click = np.clip(ctr, 0.01, 0.5) / (1.0 + np.clip(ctr, 0.01, 0.5))
    u = rng.random(n)
    kind = np.where(u < 0.05, 2, np.where(u < 0.05 + p_click, 1, 0))
    dur = rng.lognormal(np.log(latest["average_page_duration"].to_numpy(float)[idx] + 1), 0.5)
    conv = rng.random(n) < latest["conversion_rate"].to_numpy(float)[idx]
    offsets = np.sort(rng.uniform(0.0, span_s, size=n))
    ts = (pd.Timestamp(start) + pd.to_timedelta(offsets, unit="s")).astype("datetime64[us, UTC]")
    return pd.DataFrame(
        {
            "event_id": [f"{seed}-{i}" for i in range(n)],
            "user_id": users[idx],
            "event_time": ts,
            "type": np.asarray(ACTIVITY_TYPES)[kind],
            "duration_s": pd.array(np.where(kind == 0, np.round(dur, 3), np.nan), "Float64"),
            "converted": pd.array(np.where(kind == 1, conv, None), "boolean"),
        }
    )


def replay_activity(
    rows: pd.DataFrame, activity: pd.DataFrame, lateness_s: float = 3600.0
) -> pd.DataFrame:
    """Each active user's ``user_data`` row after ``activity``, starting from their latest
    row in ``rows`` (none: a new user): the stream worker's fold (``transformer.stream.fold``)
    on the same events, parsed by the same schema. ``event_timestamp`` = the newest event."""
    from transformer.stream.events import activity as to_activity
    from transformer.stream.events import parse, record_json
    from transformer.stream.fold import UserState, features, fold

    latest = rows.sort_values("event_timestamp").groupby("user_id").tail(1).set_index("user_id")
    by_user: dict[int, list] = {}
    for rec in activity.to_dict("records"):
        a = to_activity(parse(record_json(rec)))
        by_user.setdefault(a.user_id, []).append(a)
    out = []
    for user, acts in sorted(by_user.items()):
        if user in latest.index:
            row = latest.loc[user]
            us = int(pd.Timestamp(row["event_timestamp"]).value // 1000)
            state = UserState.start({f: row[f] for f in FEATURES}, us)
        else:
            state = UserState.start(None, 0)
        done = fold(state, acts, int(lateness_s * 1e6)).state
        out.append({"user_id": user, **features(done), "ts_us": done.ts_us})
    df = pd.DataFrame(out, columns=["user_id", *FEATURES, "ts_us"])
    for f in ("click_through_rate", "average_page_duration", "conversion_rate"):
        df[f] = df[f].astype(np.float32)
    for f in ("number_of_clicks", "sessions_last_7d", "days_since_signup"):
        df[f] = df[f].astype(np.int64)
    ts = pd.to_datetime(df.pop("ts_us"), unit="us", utc=True).astype("datetime64[us, UTC]")
    df["event_timestamp"] = ts
    df["created"] = ts
    return df


def generate(repo: Path, spec: DataSpec) -> dict[str, Path]:
    """Write both parquet files under ``repo/data`` and return their paths."""
    data = repo / "data"
    data.mkdir(parents=True, exist_ok=True)
    log.info("generating %d users x %d weekly snapshots", spec.n_users, spec.n_weeks)
    snaps = user_snapshots(spec)
    events = labelled_events(spec, snaps)
    paths = {"user_data": data / "user_data.parquet", "events": data / "events.parquet"}
    if spec.activity_per_user > 0:
        latest = snaps.groupby("user_id").tail(1)
        start = latest["event_timestamp"].max().to_pydatetime() + timedelta(minutes=1)
        activity = activity_events(latest, start, 50 * 60, spec.activity_per_user, spec.seed + 2)
        paths["activity"] = data / "activity.parquet"
        activity.to_parquet(paths["activity"], index=False)
        snaps = pd.concat([snaps, replay_activity(snaps, activity)], ignore_index=True)
    snaps.to_parquet(paths["user_data"], index=False)
    events.to_parquet(paths["events"], index=False)
    ensure_predictions_table(repo)
    log.info(
        "wrote %d snapshot rows and %d events (click rate %.3f) to %s",
        len(snaps),
        len(events),
        events["clicked"].mean(),
        data,
    )
    return paths


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m predictor.jobs.datagen", description=__doc__)
    p.add_argument("--repo", type=Path, default=Path("feature_repo"), help="feature repo folder")
    p.add_argument("--users", type=int, default=DataSpec.n_users)
    p.add_argument("--weeks", type=int, default=DataSpec.n_weeks)
    p.add_argument("--events-per-user", type=float, default=DataSpec.events_per_user)
    p.add_argument("--seed", type=int, default=DataSpec.seed)
    p.add_argument(
        "--activity-per-user",
        type=float,
        default=DataSpec.activity_per_user,
        help="also write activity.parquet (stream events) and the rows they fold into",
    )
    p.add_argument(
        "--end",
        type=lambda s: datetime.fromisoformat(s).replace(tzinfo=UTC),
        default=None,
        help="last day of data (YYYY-MM-DD, UTC); default today",
    )
    p.add_argument(
        "--shift",
        type=_shift_arg,
        action="append",
        default=[],
        metavar="FEATURE=FACTOR",
        help="after drawing the labels, move FEATURE's values (factor x log-normal noise) in "
        "user_data: a drifted feature pipeline for drift tests; repeatable",
    )
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    paths = generate(
        a.repo,
        DataSpec(a.users, a.weeks, a.events_per_user, a.seed, a.end, a.activity_per_user),
    )
    if a.shift:
        snaps = pd.read_parquet(paths["user_data"])
        shift_features(snaps, dict(a.shift), a.seed).to_parquet(paths["user_data"], index=False)
        log.info("shifted %s", ", ".join(f"{n} x{f:g}" for n, f in a.shift))


if __name__ == "__main__":
    main()
