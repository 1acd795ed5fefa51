"""Producer writes under a Redis SIGKILL: every acknowledged write survives the restart from
the append-only file (features and the recomputed predictions), and the writes in flight get
a 503 JSON answer, never a 500 or a dropped connection."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import pytest

from tests.faults.probes import wait_ping
from tests.integration.helpers import outputs, v2_body
from tests.servers import serving

pytestmark = pytest.mark.faults

WRITERS = 8
KILL_AFTER_ACKS = 40
FIRST_USER = 1500
DUR, HOUR = 41.5, 11  # the request context the refreshed predictions are computed for


def row(user: int, seq: int) -> dict:
    return {
        "user_id": user,
        "click_through_rate": round(0.01 + (seq % 97) / 100, 4),  # distinct per write
        "number_of_clicks": 1000 + seq,
        "average_page_duration": 10.0 + seq,
        "sessions_last_7d": seq % 13,
        "days_since_signup": 100 + seq,
        "conversion_rate": 0.05,
        "session_duration_s": DUR,
        "hour_of_day": HOUR,
    }


async def write_until_killed(url: str, redis) -> tuple[dict[int, dict], list[tuple[int, str]]]:
    acked: dict[int, dict] = {}
    failed: list[tuple[int, str]] = []
    killed = asyncio.Event()
    stop_at: list[float] = []

    async def writer(w: int, client: httpx.AsyncClient) -> None:
        seq = w
        while not stop_at or time.monotonic() < stop_at[0]:
            user = FIRST_USER + seq
            r = None
            try:
                r = await client.post("/producer/v1/write", json={"rows": [row(user, seq)]})
            except httpx.HTTPError as e:
                failed.append((0, f"{type(e).__name__}: {e}"))
            if r is not None and r.status_code == 200:
                acked[user] = row(user, seq)
                if len(acked) >= KILL_AFTER_ACKS and not killed.is_set():
                    redis.proc.send_signal(signal.SIGKILL)  # right after an acknowledgement
                    killed.set()
                    stop_at.append(time.monotonic() + 1.0)  # keep writing into the outage
            elif r is not None:
                failed.append((r.status_code, r.text))
            seq += WRITERS

    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        await asyncio.gather(*(writer(w, client) for w in range(WRITERS)))
    return acked, failed


def test_no_acknowledged_write_is_lost(aof_features, model_dir, tmp_path, redis_up):
    redis = redis_up
    with serving(aof_features, model_dir, tmp_path, "--mode", "cached") as (tr, _, _):
        acked, failed = asyncio.run(write_until_killed(tr.url, redis))
        redis.proc.wait()
        assert len(acked) >= KILL_AFTER_ACKS
        assert failed, "no write was in flight or after the kill"
        assert {s for s, _ in failed} == {503}, failed[:3]  # never 500, never dropped
        assert all('"error"' in text for _, text in failed)  # JSON, e.g. the store read failed
        redis.restart()  # same port and data dir: reloads the AOF
        wait_ping(redis)
        users = sorted(acked)
        n = len(users)
        body = v2_body(users, durations=[DUR] * n, hours=[HOUR] * n, return_features=True)
        with httpx.Client(base_url=tr.url, timeout=10) as c:
            out, truth = read_back(c, body, users)
        assert out["user_data__number_of_clicks"] == [acked[u]["number_of_clicks"] for u in users]
        assert out["user_data__click_through_rate"] == [
            pytest.approx(acked[u]["click_through_rate"]) for u in users
        ]
        # the predictions recomputed before each acknowledgement survived too, and are fresh
        assert out["prediction_source"] == ["cache"] * n
        assert out["score"] == pytest.approx(truth["score"], rel=1e-9)  # batch vs one: last bits
        print(f"durability: {n} acknowledged writes, all kept; {len(failed)} in flight got 503")


def read_back(c: httpx.Client, body: dict, users: list[int]) -> tuple[dict, dict]:
    """The features + cached predictions of ``users``, and the model's scores for them."""
    n = len(users)
    for _ in range(50):  # the breaker closes within one probe after PING
        r = c.post("/v2/models/click-model/infer", json=body)
        if r.status_code == 200:
            break
        time.sleep(0.02)
    truth = c.post(
        "/v2/models/click-model/infer",
        json=v2_body(users, durations=[DUR] * n, hours=[HOUR] * n, cache=False),
    )
    return outputs(r), outputs(truth)
