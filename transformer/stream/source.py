"""The bus: a small interface, and Redis Streams behind it.

A Kafka source would implement ``Source`` (batches of ``Entry``, ``ack``, ``dead_letter``,
``lag``); only Redis Streams is built and tested.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    id: bytes
    fields: dict[bytes, bytes]


class Source(Protocol):
    async def start(self) -> None: ...
    async def next_batch(self, limit: int | None = None) -> tuple[list[Entry], bool]: ...
    async def ack(self, ids: list[bytes], dead: list[tuple[Entry, str]]) -> None: ...
    async def lag(self) -> tuple[int, int]: ...


class RedisStreamSource:
    """One consumer of a consumer group on a Redis Stream.

    ``next_batch`` first reclaims entries that another consumer left pending for longer than
    ``claim_idle_ms`` (``XAUTOCLAIM``, checked every ``claim_every_s``), then reads new ones
    (``XREADGROUP ... >``). Entries this consumer read but did not acknowledge (a batch that
    failed) are read again from its own pending list first (``XREADGROUP ... 0``).
    """

    def __init__(
        self,
        client: Any,
        stream: str,
        group: str,
        consumer: str,
        dead_letter_stream: str,
        batch_size: int,
        block_ms: int,
        claim_idle_ms: int,
        claim_every_s: float,
        start_id: str = "0",
    ):
        self.r = client
        self.stream, self.group, self.consumer = stream, group, consumer
        self.dead_letter_stream = dead_letter_stream
        self.batch_size, self.block_ms = batch_size, block_ms
        self.claim_idle_ms, self.claim_every_s = claim_idle_ms, claim_every_s
        self.start_id = start_id
        self._next_claim = 0.0
        self._claim_cursor = b"0-0"
        self._own_pending = True  # after a start or a failed batch: reread our own first
        self.claimed = 0

    async def start(self) -> None:
        """Create the group (and the stream) if missing."""
        from redis.exceptions import ResponseError

        try:
            await self.r.xgroup_create(self.stream, self.group, id=self.start_id, mkstream=True)
            log.info(
                "created consumer group %s on %s at %s", self.group, self.stream, self.start_id
            )
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    def retry_own(self) -> None:
        self._own_pending = True

    async def next_batch(self, limit: int | None = None) -> tuple[list[Entry], bool]:
        """Up to ``batch_size`` (or ``limit``) entries; the flag says whether they were
        reclaimed or reread rather than new."""
        count = min(self.batch_size, limit) if limit else self.batch_size
        if self._own_pending:
            got = await self.r.xreadgroup(
                self.group, self.consumer, {self.stream: "0"}, count=count
            )
            gone = [i for _s, messages in got or [] for i, f in messages if f is None]
            if gone:  # trimmed from the stream while pending: nothing left to process
                await self.r.xack(self.stream, self.group, *gone)
            entries = _entries(got)
            if entries:
                return entries, True
            self._own_pending = False
        now = time.monotonic()
        if now >= self._next_claim:
            entries = await self._autoclaim(count)
            if entries:
                return entries, True
            self._next_claim = now + self.claim_every_s
        got = await self.r.xreadgroup(
            self.group,
            self.consumer,
            {self.stream: ">"},
            count=count,
            block=self.block_ms,
        )
        return _entries(got), False

    async def _autoclaim(self, count: int) -> list[Entry]:
        reply = await self.r.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            self.claim_idle_ms,
            start_id=self._claim_cursor,
            count=count,
        )
        cursor, messages = reply[0], reply[1]
        deleted = reply[2] if len(reply) > 2 else []
        self._claim_cursor = cursor
        if deleted:  # trimmed from the stream while pending: nothing to process
            await self.r.xack(self.stream, self.group, *deleted)
        entries = [Entry(i, f) for i, f in messages if f is not None]
        if entries:
            self.claimed += len(entries)
            log.warning("reclaimed %d entries idle > %d ms", len(entries), self.claim_idle_ms)
            self._next_claim = 0.0  # there may be more
        return entries

    async def ack(self, ids: list[bytes], dead: list[tuple[Entry, str]]) -> None:
        """Dead letters appended and every id acknowledged, in one MULTI."""
        pipe = self.r.pipeline(transaction=True)
        for entry, error in dead:
            fields: dict[bytes | str, bytes | str] = {
                "error": error,
                "entry_id": entry.id,
                "stream": self.stream,
                "consumer": self.consumer,
            }
            for k, v in entry.fields.items():
                fields[b"orig." + k] = v
            pipe.xadd(self.dead_letter_stream, fields)
        if ids:
            pipe.xack(self.stream, self.group, *ids)
        await pipe.execute()

    async def lag(self) -> tuple[int, int]:
        """(entries the group has not read yet, entries read and not acknowledged)."""
        for g in await self.r.xinfo_groups(self.stream):
            if _s(g.get("name")) == self.group:
                lag = g.get("lag")
                return (int(lag) if lag is not None else -1), int(g.get("pending", 0))
        return 0, 0


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _entries(reply: Any) -> list[Entry]:
    out: list[Entry] = []
    for _stream, messages in reply or []:
        out += [Entry(i, f) for i, f in messages if f is not None]
    return out
