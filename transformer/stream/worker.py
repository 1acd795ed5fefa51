"""The worker loop: read a batch, fold it per user, score, commit, acknowledge.

One asyncio task does the batches one after the other (redis.asyncio and the async predictor
clients, so nothing blocks the loop the health/metrics server runs on); a batch is a few
pipelined round trips and one model call, so concurrency inside a worker would buy little:
scale out with more workers in the group.

Order of a batch, and why nothing is lost or doubled:

1. validate every entry; invalid ones are dead letters (written and acked in step 5);
2. read the users' rows and fold states (one pipeline);
3. fold each user's events; users whose fold applied something are scored in one model call;
4. commit each such user atomically (Lua: version check, features + prediction + fold state +
   output entry); users another worker changed meanwhile are read, folded and scored again;
5. dead letters and XACK of every entry, in one MULTI.

A crash before step 5 leaves the entries pending: this worker rereads them on restart, or
another reclaims them (XAUTOCLAIM); their ids are in the fold state already, so the replay
changes nothing and outputs nothing, and is then acknowledged.

Start-up: the worker is ready (``/readyz``) once Redis answers and the group exists. What
scoring needs (the Feast registry's feature service, the predictor's v2 metadata) may come
later, e.g. a predictor that scales to zero and cold-starts: ``connect`` is retried with a
bounded backoff while the worker stays live and ready, reads nothing (the events wait in the
stream, undelivered) and says so in its log, ``/healthz``, ``/readyz`` and
``stream_scoring_ready``. A Kubernetes rollout therefore never waits for the predictor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from transformer.stream import events
from transformer.stream.fold import Activity, fold
from transformer.stream.fold import features as feature_row
from transformer.stream.metrics import StreamMetrics
from transformer.stream.scoring import Scoring
from transformer.stream.sink import RedisSink, Update
from transformer.stream.source import Entry, RedisStreamSource

log = logging.getLogger("transformer.stream")


@dataclass
class Totals:
    entries: int = 0
    outcomes: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("applied", "duplicate", "stale", "dead_letter"), 0)
    )
    predictions: int = 0
    batches: int = 0

    cpu_s: float = 0.0  # process CPU time spent in batches

    def line(self, seconds: float) -> str:
        o = self.outcomes
        rate = self.entries / seconds if seconds > 0 else 0.0
        per_cpu = self.entries / self.cpu_s if self.cpu_s > 0 else 0.0
        return (
            f"{self.entries} events in {seconds:.2f}s ({rate:.0f}/s): applied {o['applied']}, "
            f"duplicate {o['duplicate']}, stale {o['stale']}, dead_letter {o['dead_letter']}; "
            f"{self.predictions} predictions, {self.batches} batches; "
            f"worker cpu {self.cpu_s:.2f}s ({per_cpu:.0f} events per cpu-second)"
        )


class BatchNotCommitted(RuntimeError):
    """Some users kept changing under us; the batch stays pending and is retried."""


class NotYet(RuntimeError):
    """What the worker needs is not there yet (Redis; for scoring the Feast registry's feature
    service or the predictor's metadata): retried with backoff, never fatal by itself."""


# Longest start-up attempt (a Redis or a registry that does not answer): with the pause
# between attempts (at most 30 s) the heartbeat stays inside /healthz's 60 s.
ATTEMPT_S = 20.0

# One attempt at what scoring needs: the model call and the writer of its results.
Connect = Callable[[], Awaitable[tuple[Scoring, RedisSink]]]


class Worker:
    def __init__(
        self,
        source: RedisStreamSource,
        connect: Connect,
        metrics: StreamMetrics,
        lateness_s: float,
        commit_retries: int,
        max_events: int | None = None,
        until_idle: bool = False,
        progress_s: float = 10.0,
        wait_s: float = 0.0,
        retry_max_s: float = 15.0,
    ):
        """``wait_s``: give up (raise ``NotYet``) when Redis or scoring is still missing after
        this long, 0 = never; ``retry_max_s``: the longest pause between two attempts."""
        self.source, self.connect, self.metrics = source, connect, metrics
        self.scoring: Scoring | None = None
        self.sink: RedisSink | None = None
        self.lateness_us = int(lateness_s * 1_000_000)
        self.commit_retries = commit_retries
        self.max_events, self.until_idle, self.progress_s = max_events, until_idle, progress_s
        self.wait_s, self.retry_max_s = wait_s, retry_max_s
        self.stopping = asyncio.Event()
        self.totals = Totals()
        self.beat = time.monotonic()
        self.ready = False
        # what the worker waits for, for the log and the probes' JSON; None once scoring
        self.waiting: str | None = "waiting for Redis: starting"

    def stop(self) -> None:
        if not self.stopping.is_set():
            log.info("stopping: finishing the current batch")
        self.stopping.set()

    async def _retry(
        self,
        what: str,
        attempt: Callable[[], Awaitable[bool]],
        on_wait: Callable[[], Awaitable[None]] | None = None,
    ) -> bool:
        """Run ``attempt`` until it returns True (done) or the worker stops (False); a
        ``NotYet`` is logged and retried after 1, 2, 4 … ``retry_max_s`` seconds, the loop's
        heartbeat kept fresh for ``/healthz``. Gives up after ``wait_s`` (when set)."""
        t0 = time.monotonic()
        delay, n = min(1.0, self.retry_max_s), 0
        self.waiting = f"waiting for {what}: first attempt"
        while not self.stopping.is_set():
            n += 1
            self.beat = time.monotonic()
            try:
                try:
                    return await asyncio.wait_for(attempt(), ATTEMPT_S)
                except TimeoutError:
                    raise NotYet(f"no answer within {ATTEMPT_S:.0f}s") from None
            except NotYet as e:
                waited = time.monotonic() - t0
                self.waiting = f"waiting for {what}: {e} (attempt {n}, {waited:.0f}s)"
                if on_wait is not None:
                    await on_wait()
                if self.wait_s and waited >= self.wait_s:
                    raise NotYet(f"{what} not there after {waited:.0f}s: {e}") from None
                log.warning(
                    "%s; the events stay in the stream; retry in %.0fs", self.waiting, delay
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), delay)
                delay = min(delay * 2, self.retry_max_s)
        return False

    async def _start_source(self) -> bool:
        from redis.exceptions import ConnectionError as RedisDown
        from redis.exceptions import TimeoutError as RedisTimeout

        try:
            await self.source.start()
        except (OSError, RedisDown, RedisTimeout) as e:  # down, starting, loading, refused
            raise NotYet(f"{type(e).__name__}: {e}") from None
        return True

    async def _connect_scoring(self) -> bool:
        self.ready = True  # Redis answers and the group exists: scoring is awaited while ready
        self.metrics.scoring_ready.set(0)
        self.scoring, self.sink = await self.connect()
        self.metrics.scoring_ready.set(1)
        self.waiting = None
        return True

    async def _scoring_wait(self) -> None:
        self.metrics.scoring_waits.inc()
        await self.update_lag()  # the backlog stays visible while nothing is read

    async def run(self, before_batches: Callable[[], None] | None = None) -> Totals:
        """Until stopped, ``max_events`` or (``until_idle``) an empty read; ``before_batches``
        runs once scoring is ready, before the first batch."""
        started = time.monotonic()
        if not await self._retry("Redis", self._start_source):
            return await self._finish(started)
        if not await self._retry("scoring", self._connect_scoring, self._scoring_wait):
            return await self._finish(started)
        log.info(
            "scoring ready after %.1fs; reading %s", time.monotonic() - started, self.source.stream
        )
        if before_batches is not None:
            before_batches()
        started = last_progress = time.monotonic()
        backoff = 0.5
        while not self.stopping.is_set():
            self.beat = time.monotonic()
            remaining = None
            if self.max_events is not None:
                remaining = self.max_events - self.totals.entries
                if remaining <= 0:
                    break
            try:
                claimed = self.source.claimed
                entries, _again = await self.source.next_batch(remaining)
                self.metrics.claimed.inc(self.source.claimed - claimed)
                if entries:
                    await self.process(entries)
                backoff = 0.5
            except Exception:
                # infrastructure (Redis, predictor) failed: the entries stay pending and are
                # read again after a pause; input never gets here (it is dead-lettered)
                self.metrics.errors.inc()
                log.exception("batch failed; retrying in %.1fs", backoff)
                self.source.retry_own()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            now = time.monotonic()
            if now - last_progress >= self.progress_s:
                last_progress = now
                await self.update_lag()
                log.info("progress: %s", self.totals.line(now - started))
            if not entries and self.until_idle:
                break
        return await self._finish(started)

    async def _finish(self, started: float) -> Totals:
        await self.update_lag()
        log.info("summary: %s", self.totals.line(time.monotonic() - started))
        return self.totals

    async def update_lag(self) -> None:
        try:
            undelivered, pending = await self.source.lag()
        except Exception as e:
            log.warning("XINFO GROUPS failed: %s", e)
            return
        self.metrics.lag.labels(kind="undelivered").set(undelivered)
        self.metrics.lag.labels(kind="pending").set(pending)

    async def process(self, entries: list[Entry]) -> None:
        t0, cpu0 = time.perf_counter(), time.process_time()
        dead: list[tuple[Entry, str]] = []
        by_user: dict[int, list[tuple[Activity, Any, bytes]]] = defaultdict(list)
        for entry in entries:
            try:
                ev = events.from_entry(entry.fields)
            except events.BadEvent as e:
                dead.append((entry, str(e)))
                continue
            ctx = ev.context.model_dump() if ev.context is not None else None
            by_user[ev.user_id].append((events.activity(ev), ctx, entry.id))
        ts_of = {a.event_id: a.ts_us for items in by_user.values() for a, _, _ in items}
        outcome = {"applied": 0, "duplicate": 0, "stale": 0}
        latencies: list[float] = []
        predictions = 0
        pending = sorted(by_user)
        for attempt in range(self.commit_retries):
            if not pending:
                break
            if attempt:
                self.metrics.conflicts.inc(len(pending))
            pending, done = await self._attempt(pending, by_user)
            for result, written_us in done:
                outcome["applied"] += len(result.applied)
                outcome["duplicate"] += len(result.duplicate)
                outcome["stale"] += len(result.stale)
                if result.applied:
                    predictions += 1
                    latencies += [(written_us - ts_of[i]) / 1e6 for i in result.applied]
        if pending:
            raise BatchNotCommitted(f"{len(pending)} users changed under us {self.commit_retries}x")
        await self.source.ack([e.id for e in entries], dead)
        outcome["dead_letter"] = len(dead)
        m = self.metrics
        for k, v in outcome.items():
            if v:
                m.events.labels(outcome=k).inc(v)
            self.totals.outcomes[k] += v
        if dead:
            m.dead_letters.inc(len(dead))
            log.warning(
                "dead-lettered %d entries, e.g. %s: %s", len(dead), dead[0][0].id, dead[0][1]
            )
        for s in latencies:
            m.latency.observe(s)
        m.predictions.inc(predictions)
        m.batch_size.observe(len(entries))
        m.batch_seconds.observe(time.perf_counter() - t0)
        self.totals.entries += len(entries)
        self.totals.predictions += predictions
        self.totals.batches += 1
        self.totals.cpu_s += time.process_time() - cpu0

    async def _attempt(
        self, users: list[int], by_user: dict[int, list[tuple[Activity, Any, bytes]]]
    ) -> tuple[list[int], list[tuple[Any, int]]]:
        """One read → fold → score → commit round; returns (users to retry, results)."""
        sink, scoring = self.sink, self.scoring
        assert sink is not None and scoring is not None, "batches are read once scoring is ready"
        currents = await sink.read(users)
        results = {}
        for u, cur in zip(users, currents, strict=True):
            results[u] = fold(cur.state, [a for a, _, _ in by_user[u]], self.lateness_us)
        changed = [u for u in users if results[u].applied]
        done: list[tuple[Any, int]] = [(results[u], 0) for u in users if not results[u].applied]
        if not changed:
            return [], done
        rows = [sink.as_stored(feature_row(results[u].state)) for u in changed]
        contexts = [_latest_context(by_user[u]) for u in changed]
        ts_us = [results[u].state.ts_us for u in changed]
        scored = await scoring.score(changed, rows, ts_us, contexts)
        written_us = time.time_ns() // 1000
        version = {u: c.version for u, c in zip(users, currents, strict=True)}
        updates = [
            Update(
                user_id=u,
                expected=version[u],
                state=results[u].state,
                features=rows[i],
                score=float(scored.raw[i]),
                model_version=scored.model_version,
                request_key=scored.request_keys[i],
                written_us=written_us,
                output={
                    "user_id": str(u),
                    "score": repr(float(scored.scores[i])),
                    "decision": scored.decisions[i],
                    "model_version": scored.model_version,
                    "event_ids": ",".join(results[u].applied),
                    "features_ts_us": str(ts_us[i]),
                    "written_us": str(written_us),
                },
            )
            for i, u in enumerate(changed)
        ]
        ok = await sink.commit(updates)
        retry = []
        for u, committed in zip(changed, ok, strict=True):
            if committed:
                done.append((results[u], written_us))
            else:
                retry.append(u)
        return retry, done


def _latest_context(items: list[tuple[Activity, Any, bytes]]) -> dict[str, Any] | None:
    with_ctx = [(a.ts_us, a.event_id, c) for a, c, _ in items if c is not None]
    return max(with_ctx, key=lambda t: (t[0], t[1]))[2] if with_ctx else None
