"""Online-store health: a circuit breaker that fails fast while the store is down.

Every online-store operation (feature reads, producer writes, prediction write-backs) runs
through ``StoreBreaker.call``. After ``failures_to_open`` consecutive failures the breaker
opens: operations then fail at once with ``FeatureStoreUnavailable`` (503) instead of each
waiting for its own timeout, and a background task probes the store (a PING on a fresh
connection, bounded by the connect and read timeouts) every ``probe_interval_s``. The first
probe that succeeds closes the breaker, after ``on_recover`` dropped the pooled connections
(they point at the old server process), so the first request after the store answers again
succeeds.

There is no half-open trial request: the probe is the trial, so no user request is spent on
finding out, and recovery takes one probe interval at most.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from transformer.errors import FeatureStoreUnavailable
from transformer.metrics import Metrics

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class StorePolicy:
    """Time bounds and breaker of the online store (``TransformerSettings.store_*``)."""

    connect_timeout_s: float = 0.25
    timeout_s: float = 0.3
    failures_to_open: int = 3
    probe_interval_s: float = 0.05


class StoreBreaker:
    def __init__(
        self,
        probe: Callable[[], Awaitable[Any]],
        metrics: Metrics | None = None,
        failures_to_open: int = 3,
        probe_interval_s: float = 0.05,
        on_recover: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.probe = probe
        self.metrics = metrics
        self.failures_to_open = failures_to_open
        self.probe_interval_s = probe_interval_s
        self.on_recover = on_recover
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self.last_error = ""
        self._probe_task: asyncio.Task | None = None
        self._set_gauges(up=True)

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    def _set_gauges(self, up: bool) -> None:
        if self.metrics is not None:
            self.metrics.store_up.set(1 if up else 0)
            self.metrics.store_breaker_open.set(1 if self.is_open else 0)

    async def call(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run one store operation; fail fast while the breaker is open."""
        if self.opened_at is not None:
            if self.metrics is not None:
                self.metrics.store_rejected.inc()
            down_s = self.clock() - self.opened_at
            raise FeatureStoreUnavailable(
                f"online feature store unavailable for {down_s:.1f}s ({self.last_error}); "
                "failing fast until it answers again"
            )
        try:
            result = await op()
        except Exception as e:
            self.failure(e)
            raise
        self.failures = 0
        return result

    def failure(self, error: BaseException) -> None:
        self.failures += 1
        self.last_error = f"{type(error).__name__}: {error}"
        if self.metrics is not None:
            self.metrics.store_errors.inc()
        self._set_gauges(up=False)
        if self.failures >= self.failures_to_open and self.opened_at is None:
            self.opened_at = self.clock()
            self._set_gauges(up=False)
            log.error("online store down (%s): failing fast, probing", self.last_error)
            self._probe_task = asyncio.get_running_loop().create_task(self._probe_until_up())

    async def _probe_until_up(self) -> None:
        while True:
            await asyncio.sleep(self.probe_interval_s)
            try:
                await self.probe()
            except Exception as e:
                self.last_error = f"{type(e).__name__}: {e}"
                continue
            if self.on_recover is not None:
                try:
                    await self.on_recover()
                except Exception:
                    log.exception("dropping the pooled connections failed")
            down_s = self.clock() - (self.opened_at or self.clock())
            self.opened_at = None
            self.failures = 0
            self._set_gauges(up=True)
            log.warning("online store answers again after %.2fs: serving", down_s)
            return

    async def close(self) -> None:
        task, self._probe_task = self._probe_task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
