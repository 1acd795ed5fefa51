"""Steady load for fault injection: ``c`` asyncio workers in a background thread, each
sending one request at a time at a bounded rate, recording every outcome with its times."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Outcome:
    start: float  # time.monotonic()
    end: float
    status: int  # 0: no HTTP answer (connection refused, dropped, timed out)
    error: str  # the JSON "error" of a non-200, or the transport error
    body: Any = None

    @property
    def latency(self) -> float:
        return self.end - self.start

    @property
    def json_error(self) -> bool:
        return isinstance(self.body, dict) and isinstance(self.body.get("error"), str)


@dataclass
class Load:
    """``with Load(url, path, body) as load: ...; outcomes = load.outcomes``."""

    url: str
    path: str
    body: Callable[[random.Random], dict[str, Any]]
    concurrency: int = 8
    rate_per_worker: float = 20.0  # requests/s per worker (8 x 20 = 160 req/s, as in the issue)
    max_requests: int = 20_000
    max_s: float = 60.0
    timeout_s: float = 5.0
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> list[Outcome]:
        self._stop.set()
        self._thread.join(timeout=self.timeout_s + 5)
        return self.outcomes

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency)
        async with httpx.AsyncClient(
            base_url=self.url, timeout=self.timeout_s, limits=limits
        ) as client:
            await asyncio.gather(*(self._worker(client, i) for i in range(self.concurrency)))

    async def _worker(self, client: httpx.AsyncClient, seed: int) -> None:
        rng = random.Random(seed)
        deadline = time.monotonic() + self.max_s
        gap = 1.0 / self.rate_per_worker
        while not self._stop.is_set() and time.monotonic() < deadline:
            if len(self.outcomes) >= self.max_requests:
                break
            t0 = time.monotonic()
            try:
                r = await client.post(self.path, json=self.body(rng))
                body = _json(r)
                err = (
                    body.get("error", "") if isinstance(body, dict) and r.status_code != 200 else ""
                )
                self.outcomes.append(Outcome(t0, time.monotonic(), r.status_code, err, body))
            except httpx.HTTPError as e:
                self.outcomes.append(Outcome(t0, time.monotonic(), 0, f"{type(e).__name__}: {e}"))
            await asyncio.sleep(max(0.0, gap - (time.monotonic() - t0)))


def _json(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return None


def ok_rate(outcomes: list[Outcome], t0: float, t1: float) -> float:
    """200 answers per second among requests that ended in [t0, t1)."""
    return sum(1 for o in outcomes if o.status == 200 and t0 <= o.end < t1) / (t1 - t0)
