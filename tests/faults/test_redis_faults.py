"""Redis killed, paused and stopped for good under steady load (c=8, ~160 req/s), on the
real stack in cached mode: failures are 503/504 JSON within the store timeout, recovery is
immediate once Redis answers, and the transformer stays up, live and ready throughout."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Callable
from typing import TypeVar

import httpx
import pytest

from devtools.soak import producer_row
from tests.faults.load import Load, Outcome, ok_rate
from tests.faults.probes import wait_ping
from tests.integration.helpers import outputs, v2_body
from tests.servers import serving

pytestmark = pytest.mark.faults

URL = "/v2/models/click-model/infer"
FAIL_BOUND_S = 0.5  # each failure answered within this (store timeout 0.3 s + the request)
FIRST_OK_S = 0.2  # first 200 this soon after Redis answers PING
FULL_RATE_S = 1.0  # full throughput this soon after Redis answers PING
T = TypeVar("T")


def body(rng: random.Random) -> dict:
    """1-4 users of 1..300 (so cache hits and misses both happen), mixed request context."""
    ids = rng.sample(range(1, 301), rng.randint(1, 4))
    return v2_body(ids, hours=[rng.choice([9, 20])] * len(ids))


# The suite's store timeout: 0.2 s, so a read stalled by a paused Redis leaves 0.3 s of the
# 0.5 s bound for a loaded machine's scheduling (the default is 0.3 s).
STORE = ("--store_timeout_s", "0.2")


@pytest.fixture(scope="module")
def cached_stack(aof_features, model_dir, tmp_path_factory):
    """One transformer for the module (it must survive every fault anyway)."""
    logs = tmp_path_factory.mktemp("logs")
    with serving(aof_features, model_dir, logs, "--mode", "cached", *STORE) as (tr, _, _):
        yield tr


@pytest.fixture
def cached(cached_stack, redis_up):
    assert cached_stack.proc.poll() is None, "the transformer exited"
    return cached_stack, redis_up


class TimingMiss(AssertionError):
    """A time bound missed; on this shared machine the scenario is run once more."""


def check_outage(outcomes: list[Outcome], t_fault: float, t_ping: float) -> dict:
    """The issue's targets for one outage; returns the measured numbers."""
    assert all(o.status != 0 for o in outcomes), [o.error for o in outcomes if o.status == 0][:3]
    bad = [o for o in outcomes if o.status != 200]
    assert bad, "the fault caused no failure: it was not injected"
    assert {o.status for o in bad} <= {503, 504}, {(o.status, o.error) for o in bad}
    assert all(o.json_error for o in bad)
    # serving again: every request sent later than FIRST_OK_S after PING succeeds...
    late = [o for o in bad if o.start >= t_ping + FIRST_OK_S]
    assert not late, [(o.status, o.error, o.start - t_ping) for o in late][:3]
    # ...and one sent within FIRST_OK_S succeeded (its answer may take longer on a busy CPU)
    first = min((o for o in outcomes if o.status == 200 and o.start >= t_ping), key=_start)
    if first.start - t_ping > FIRST_OK_S:
        raise TimingMiss(f"first 200 sent {first.start - t_ping:.3f}s after PING")
    slowest = max(o.latency for o in bad)
    if slowest > FAIL_BOUND_S:
        raise TimingMiss(f"a failure took {slowest:.3f}s")
    before = ok_rate(outcomes, t_fault - 3.0, t_fault)
    after = ok_rate(outcomes, t_ping + FULL_RATE_S, t_ping + FULL_RATE_S + 2.0)
    if after < 0.8 * before:
        raise TimingMiss(f"{after:.0f} req/s after recovery, {before:.0f} before")
    return {
        "failed": len(bad),
        "slowest_failure_s": round(slowest, 3),
        "first_200_sent_after_ping_s": round(first.start - t_ping, 3),
        "first_200_answered_after_ping_s": round(first.end - t_ping, 3),
        "rate_before": round(before),
        "rate_after": round(after),
    }


def _start(o: Outcome) -> float:
    return o.start


def measure(scenario: Callable[[], tuple[list[Outcome], float, float]]) -> dict:
    """Run a load + fault scenario and check it; a missed time bound gets one more run."""
    return twice(lambda: check_outage(*scenario()))


def twice(run: Callable[[], T]) -> T:
    """``run()``; if it misses a time bound (the shared machine stalled), once more."""
    try:
        return run()
    except TimingMiss as e:
        print(f"timing bound missed ({e}); running the scenario once more")
    return run()


def test_redis_sigkill_and_restart_under_load(cached, record_property):
    tr, redis = cached

    def scenario() -> tuple[list[Outcome], float, float]:
        with Load(tr.url, URL, body) as load:
            time.sleep(4.0)
            t_fault = time.monotonic()
            redis.proc.send_signal(signal.SIGKILL)
            redis.proc.wait()
            time.sleep(2.0)
            redis.restart()  # same port, same data dir: reloads the AOF
            t_ping = wait_ping(redis)
            time.sleep(3.5)
        return load.outcomes, t_fault, t_ping

    numbers = measure(scenario)
    record_property("redis_sigkill", numbers)
    assert tr.proc.poll() is None  # the transformer never restarted
    print("redis SIGKILL 2 s:", numbers)


def test_redis_sigstop_5s_under_load(cached, record_property):
    tr, redis = cached

    def scenario() -> tuple[list[Outcome], float, float]:
        with Load(tr.url, URL, body) as load:
            time.sleep(3.0)
            t_fault = time.monotonic()
            redis.proc.send_signal(signal.SIGSTOP)
            time.sleep(5.0)
            redis.proc.send_signal(signal.SIGCONT)
            t_ping = wait_ping(redis)
            time.sleep(3.5)
        return load.outcomes, t_fault, t_ping

    numbers = measure(scenario)
    record_property("redis_sigstop", numbers)
    assert tr.proc.poll() is None
    print("redis SIGSTOP 5 s:", numbers)


def test_redis_down_for_good(cached):
    tr, redis = cached

    def run() -> None:
        if redis.proc.poll() is not None:  # a first run stopped half-way
            redis.restart()
            wait_ping(redis)
            time.sleep(0.2)
        with httpx.Client(base_url=tr.url, timeout=5) as c:
            down_for_good(c, redis)

    twice(run)


def down_for_good(c: httpx.Client, redis) -> None:
    assert outputs(c.post(URL, json=v2_body([7])))["feature_status"] == ["present"]
    redis.proc.send_signal(signal.SIGKILL)
    redis.proc.wait()
    for i in range(20):
        t0 = time.monotonic()
        r = c.post(URL, json=v2_body([i + 1]))
        took = time.monotonic() - t0
        assert r.status_code == 503 and "online feature store" in r.json()["error"], r.text
        if took > FAIL_BOUND_S:
            raise TimingMiss(f"request {i}: {took:.3f}s")
        t0 = time.monotonic()
        w = c.post("/producer/v1/write", json={"rows": [producer_row(i + 1, i)]})
        assert w.status_code == 503 and "online feature store" in w.json()["error"], w.text
        if time.monotonic() - t0 > FAIL_BOUND_S:
            raise TimingMiss(f"producer write {i}: {time.monotonic() - t0:.3f}s")
    # the same keep-alive connection kept working through all of it: no dropped connection
    assert c.get("/v2/health/live").status_code == 200
    assert c.get("/v2/health/ready").status_code == 200
    assert c.get("/v2/models/click-model/ready").status_code == 200
    metrics = c.get("/metrics").text
    assert "transformer_online_store_up 0.0" in metrics
    assert "transformer_online_store_breaker_open 1.0" in metrics
    redis.restart()
    t_ping = wait_ping(redis)
    deadline = t_ping + FIRST_OK_S
    while c.post(URL, json=v2_body([7])).status_code != 200:
        assert time.monotonic() < deadline, "not serving again after Redis came back"
    metrics = c.get("/metrics").text
    assert "transformer_online_store_up 1.0" in metrics
    assert "transformer_online_store_breaker_open 0.0" in metrics


def test_first_request_after_a_quiet_restart_succeeds(cached):
    """Redis restarts while no request runs (the breaker never opens): the pooled
    connections are all dead, yet the very first request after Redis is back succeeds."""
    tr, redis = cached

    async def burst(client: httpx.AsyncClient) -> list[int]:
        rs = await asyncio.gather(*(client.post(URL, json=v2_body([u])) for u in range(1, 9)))
        return [r.status_code for r in rs]

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=tr.url, timeout=5) as client:
            assert await burst(client) == [200] * 8  # 8 connections now idle in the pool
            redis.proc.send_signal(signal.SIGKILL)
            redis.proc.wait()
            redis.restart()
            wait_ping(redis)
            for u in range(1, 9):  # one at a time: each would take a dead pooled connection
                r = await client.post(URL, json=v2_body([u]))
                assert r.status_code == 200, (u, r.text)
            metrics = (await client.get("/metrics")).text
            assert "transformer_online_store_breaker_open 0.0" in metrics

    asyncio.run(scenario())
