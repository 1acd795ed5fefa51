"""Helpers of the stream-worker integration tests: events, workers, Redis reads."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import redis

from devtools import stack
from transformer.stream.fold import Activity

TYPES = ("page_view", "click", "session_end")


def make_events(users: list[int], per_user: int, prefix: str, start: datetime | None = None):
    """Deterministic activities for ``users``, event times in the last minute."""
    start = start or datetime.now(UTC) - timedelta(seconds=60)
    base = (start - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    out = []
    k = 0
    for j in range(per_user):
        for u in users:
            t = TYPES[(u + j) % 3]
            out.append(
                Activity(
                    f"{prefix}-{k}",
                    u,
                    base + k * 1000,
                    t,  # type: ignore[arg-type]
                    duration_ms=1000 * (5 + (u + j) % 50) if t == "page_view" else 0,
                    converted=t == "click" and (u + j) % 4 == 0,
                )
            )
            k += 1
    return out


def write_jsonl(path: Path, events: list[Activity], context: dict[str, Any] | None = None) -> Path:
    from transformer.stream.events import to_json

    path.write_bytes(b"\n".join(orjson.dumps(to_json(e, context)) for e in events) + b"\n")
    return path


def start_worker(
    fenv: stack.FeatureEnv, model_dir: Path | None, log_dir: Path, name: str, *args: str
) -> stack.Server:
    """A worker process; ``model_dir`` None: it scores through ``--predictor_host`` (v2)."""
    port = stack.free_port()
    argv = [
        stack.PY,
        "-m",
        "transformer.stream",
        "run",
        "--feast_repo_path",
        str(fenv.repo),
        *(["--model_dir", str(model_dir)] if model_dir is not None else []),
        "--http_port",
        str(port),
        "--consumer",
        name,
        "--progress_s",
        "1",
        *args,
    ]
    return stack._spawn(name, argv, fenv.env, log_dir, port)


def run_until_idle(fenv, model_dir, log_dir, name, *args: str, timeout_s: float = 120) -> str:
    """A bounded run; returns its log."""
    w = start_worker(fenv, model_dir, log_dir, name, "--until_idle", "true", *args)
    try:
        code = w.proc.wait(timeout=timeout_s)
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()  # reaped here: a timed-out run fails this test, not a later one
    assert code == 0, w.log_tail(60)
    return w.log_path.read_text() if w.log_path else ""


def client(r: stack.Redis) -> redis.Redis:
    return redis.Redis(port=r.port)


def wait_drained(rc: redis.Redis, stream: str, group: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        groups = {g["name"].decode(): g for g in rc.xinfo_groups(stream)}
        g = groups.get(group)
        if g is not None and g["lag"] == 0 and g["pending"] == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"{stream}/{group} not drained: {rc.xinfo_groups(stream)}")


def outputs(rc: redis.Redis, stream: str) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in rc.xrange(stream)]


def assert_exactly_once(
    fenv: stack.FeatureEnv,
    rc: redis.Redis,
    users: list[int],
    before: dict[str, list[Any]],
    events: list[Activity],
    streams: tuple[str, str, str],
) -> None:
    """Every event reflected exactly once: the users' click and session counts moved by what
    the input holds (``before``: their features before), each event id is in exactly one
    output entry, and nothing is pending. ``streams``: (input, group, output)."""
    import collections

    from tests.integration.helpers import online_features

    stream, group, out = streams
    n = len(users)
    after = online_features(fenv, users, [35.0] * n, [20] * n)
    for feature, kind in (("number_of_clicks", "click"), ("sessions_last_7d", "session_end")):
        want = collections.Counter(e.user_id for e in events if e.type == kind)
        got = [
            x - y
            for x, y in zip(
                after[f"user_data__{feature}"], before[f"user_data__{feature}"], strict=True
            )
        ]
        assert got == [want[u] for u in users], feature
    ids = collections.Counter(i for o in outputs(rc, out) for i in o["event_ids"].split(","))
    assert ids and max(ids.values()) == 1, [i for i, c in ids.items() if c > 1][:5]
    assert set(ids) == {e.event_id for e in events}
    assert rc.xpending(stream, group)["pending"] == 0
