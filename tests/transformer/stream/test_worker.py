"""The worker's start-up waits (fakes for Redis and scoring; the real processes are in
tests/integration/test_stream_startup.py): retried with a capped backoff while live, ready
only once the source started, nothing read before scoring is ready, the give-up bound."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisDown

from transformer.stream.metrics import StreamMetrics
from transformer.stream.worker import NotYet, Worker

pytestmark = pytest.mark.unit


class FakeSource:
    stream = "events"
    claimed = 0

    def __init__(self, down_for: int = 0):
        self.down_for = down_for  # start() fails this many times
        self.starts = 0
        self.reads = 0

    async def start(self) -> None:
        self.starts += 1
        if self.starts <= self.down_for:
            raise RedisDown("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    async def next_batch(self, limit: int | None = None) -> tuple[list[Any], bool]:
        self.reads += 1
        return [], False

    def retry_own(self) -> None: ...

    async def lag(self) -> tuple[int, int]:
        return 7, 0


class FakeConnect:
    """Fails ``missing_for`` times with NotYet, recording what the worker reported meanwhile."""

    def __init__(self, worker_of: list[Worker], missing_for: int):
        self.worker_of, self.missing_for, self.calls = worker_of, missing_for, 0
        self.seen: list[tuple[bool, str | None, int]] = []
        self.times: list[float] = []

    async def __call__(self) -> Any:
        self.calls += 1
        self.times.append(time.monotonic())
        w = self.worker_of[0]
        self.seen.append((w.ready, w.waiting, w.source.reads))
        if self.calls <= self.missing_for:
            raise NotYet("no model metadata from predictor p:80 (v2)")
        return object(), object()


def worker(source: FakeSource, missing_for: int, **kw: Any) -> tuple[Worker, FakeConnect]:
    holder: list[Worker] = []
    connect = FakeConnect(holder, missing_for)
    w = Worker(source, connect, StreamMetrics(), 3600, 5, until_idle=True, **kw)  # type: ignore[arg-type]
    holder.append(w)
    return w, connect


def sample(w: Worker, name: str) -> float | None:
    return w.metrics.registry.get_sample_value(name)


def test_scoring_is_retried_while_ready_and_nothing_is_read() -> None:
    source = FakeSource(down_for=2)
    w, connect = worker(source, missing_for=3, retry_max_s=0.04)
    asyncio.run(w.run())
    assert source.starts == 3  # Redis retried too
    assert connect.calls == 4
    # every attempt: ready (Redis answered), no read yet; from the second on the reason shows
    assert all(ready and reads == 0 for ready, _, reads in connect.seen)
    assert connect.seen[1][1] is not None and connect.seen[1][1].startswith(
        "waiting for scoring: no model metadata from predictor p:80"
    )
    assert w.waiting is None and sample(w, "stream_scoring_ready") == 1
    assert sample(w, "stream_scoring_waits_total") == 3
    assert sample_labels(w, "stream_lag", {"kind": "undelivered"}) == 7
    assert source.reads == 1  # read only once scoring was ready (until_idle: one empty read)
    gaps = [b - a for a, b in zip(connect.times, connect.times[1:], strict=False)]
    assert all(g < 1.0 for g in gaps), gaps  # capped at retry_max_s, not 1, 2, 4 s


def sample_labels(w: Worker, name: str, labels: dict[str, str]) -> float | None:
    return w.metrics.registry.get_sample_value(name, labels)


def test_not_ready_while_redis_is_down() -> None:
    source = FakeSource(down_for=10**9)
    w, connect = worker(source, missing_for=0, retry_max_s=0.01)

    async def go() -> None:
        task = asyncio.create_task(w.run())
        await asyncio.sleep(0.2)
        assert not w.ready and w.waiting is not None
        assert w.waiting.startswith("waiting for Redis: ConnectionError: Error 111"), w.waiting
        assert source.starts >= 3 and connect.calls == 0
        w.stop()  # a SIGTERM while waiting ends the run at once
        await asyncio.wait_for(task, 5)

    asyncio.run(go())


def test_gives_up_after_wait_s() -> None:
    w, connect = worker(FakeSource(), missing_for=10**9, retry_max_s=0.01, wait_s=0.1)
    with pytest.raises(NotYet, match=r"scoring not there after .*no model metadata"):
        asyncio.run(w.run())
    assert connect.calls >= 2
    assert sample(w, "stream_scoring_ready") == 0


def test_no_give_up_by_default() -> None:
    """wait_s 0: still waiting after many attempts, stopped only by a stop()."""
    w, connect = worker(FakeSource(), missing_for=10**9, retry_max_s=0.01)

    async def go() -> None:
        task = asyncio.create_task(w.run())
        await asyncio.sleep(0.5)
        assert connect.calls >= 10 and not task.done() and w.ready
        w.stop()
        await asyncio.wait_for(task, 5)

    asyncio.run(go())
