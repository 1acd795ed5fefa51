"""Request limits shared by both servers: bind address, body size, header size and read
time, concurrent requests.

Two layers, because uvicorn parses the headers before any ASGI code runs:

- ``header_protocol`` is uvicorn's httptools protocol with a cap on the request line + headers
  (431) and on the time a client may take to send them (408, against slowloris clients that
  open connections and trickle bytes). uvicorn's own knob (``h11_max_incomplete_event_size``)
  only exists for the slower pure-Python h11 parser.
- ``Limits`` is the outermost ASGI layer: 413 for a body over ``max_body_bytes`` before it is
  read (``Content-Length`` up front; a chunked body is counted as it arrives and dropped at the
  limit), and 503 when ``max_concurrent_requests`` are already in flight instead of queueing
  without bound. Probes and metrics are exempt from the cap, so an overloaded pod is not
  restarted by its liveness probe. Every answer is ``{"error": ...}`` JSON.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import orjson
from pydantic import Field
from pydantic_settings import BaseSettings
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from predictor.protocol.rest import replay, send_json

MiB = 1024 * 1024
PROBE_PATH = re.compile(
    r"/|/metrics|/v2/health/(live|ready)|/v2/models/[^/]+/ready|/v1/models/[^/:]+"
)


class LimitSettings(BaseSettings):
    """Fields both servers' settings inherit (flags ``--host``, ``--max_body_bytes``, ...)."""

    host: str = Field(
        "0.0.0.0",
        description="Address the HTTP and gRPC servers listen on: all interfaces in containers "
        "(KServe routes to the pod IP); `make run` passes 127.0.0.1",
    )
    max_body_bytes: int = Field(
        4 * MiB,
        ge=1024,
        description="Largest request body (HTTP: 413 before it is read; gRPC: largest message)",
    )
    max_header_bytes: int = Field(
        16 * 1024, ge=1024, description="Largest HTTP request line + headers; larger → 431"
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Time a client has to send a request's headers (from connect, or from the "
        "first byte of a request on a kept-alive connection); past it → 408 and close",
    )
    max_concurrent_requests: int = Field(
        256,
        ge=1,
        description="Requests in flight per process (HTTP, and gRPC calls separately); more → "
        "HTTP 503 / gRPC RESOURCE_EXHAUSTED at once. Probes and /metrics are not counted",
    )


def is_probe(scope: Scope) -> bool:
    """Health, readiness and metrics GETs: what kubelet and Prometheus call."""
    return scope["method"] in ("GET", "HEAD") and PROBE_PATH.fullmatch(scope["path"]) is not None


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})


async def send_error(
    send: Send,
    status: int,
    message: str,
    headers: list[tuple[bytes, bytes]] = (),  # type: ignore[assignment]
) -> None:
    """A JSON error answered straight from an ASGI layer (no Starlette response object)."""
    await send_json(send, status, error_body(message), headers)


class Limits:
    """The outermost ASGI layer: body size and concurrency (see the module doc)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_concurrent: int):
        self.app = app
        self.max_body = max_body_bytes
        self.max_concurrent = max_concurrent
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_probe(scope):
            return await self.app(scope, receive, send)
        if self.in_flight >= self.max_concurrent:
            return await send_error(
                send,
                503,
                f"server busy: {self.in_flight} requests in flight "
                f"(max_concurrent_requests={self.max_concurrent}); retry",
                [(b"retry-after", b"1")],
            )
        self.in_flight += 1
        try:
            try:
                length = _content_length(scope)
            except ValueError:
                return await send_error(send, 400, "content-length is not a number")
            if length is None:  # chunked (or no body): count it as it arrives
                body = await self._read_counted(receive)
                if body is None:
                    return await self._too_large(send)
                receive = replay(body)
            elif length > self.max_body:
                return await self._too_large(send)
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _read_counted(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it passes the limit (the rest is never read)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _too_large(self, send: Send) -> None:
        # connection: close, so uvicorn drops the connection instead of reading the rest
        await send_error(
            send,
            413,
            f"request body larger than {self.max_body} bytes (max_body_bytes)",
            [(b"connection", b"close")],
        )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value)  # httptools rejects most malformed ones before this
    return None


def _raw_error(status: int, reason: str, message: str) -> bytes:
    body = error_body(message)
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


def header_protocol(max_header_bytes: int, header_timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with the header size and time limits (``config.http``)."""

    class HeaderLimitedProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._in_headers = True  # between a request's first byte and its last header
            self._seen = 0  # bytes received in that phase (an upper bound of the header size)
            self._header_size = 0  # exact size, summed by the parser callbacks
            self._rejected: bytes | None = None
            # when the headers being read must be complete (None: not reading headers). One
            # timer per connection checks it and re-arms itself while requests keep coming,
            # instead of a timer started and cancelled per request (and the cancelled
            # handles piling up in the event loop's heap until they would have fired).
            self._deadline: float | None = None
            self._timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            self._deadline = self.loop.time() + header_timeout_s
            self._timer = self.loop.call_at(self._deadline, self._check_headers)

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._rejected is not None:
                return
            super().data_received(data)
            if self._in_headers and self.parser is not None:
                self._seen += len(data)
                if self._seen > max_header_bytes:  # still no end of headers in sight
                    self._reject_headers()
            if self._rejected is not None and not self.transport.is_closing():
                self.transport.write(self._rejected)
                self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_headers = True
            self._seen = self._header_size = 0
            if self._deadline is None:  # else the connection's first request: from connect
                self._deadline = self.loop.time() + header_timeout_s
                if self._timer is None:
                    self._timer = self.loop.call_at(self._deadline, self._check_headers)

        def on_url(self, url: bytes) -> None:
            self._header_size += len(url)
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._header_size += len(name) + len(value) + 4
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_headers = False
            self._deadline = None
            if self._header_size > max_header_bytes:
                self._reject_headers()
                return
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if self._rejected is None:
                super().on_body(body)

        def on_message_complete(self) -> None:
            if self._rejected is None:
                super().on_message_complete()

        def _reject_headers(self) -> None:
            self._in_headers = False
            self._rejected = _raw_error(
                431,
                "Request Header Fields Too Large",
                f"request line and headers larger than {max_header_bytes} bytes (max_header_bytes)",
            )

        def _check_headers(self) -> None:
            self._timer = None
            if self._deadline is None:  # between requests: re-armed by the next one
                return
            if self.loop.time() < self._deadline:  # a later request's headers: not yet
                self._timer = self.loop.call_at(self._deadline, self._check_headers)
                return
            self._headers_too_slow()

        def _headers_too_slow(self) -> None:
            if self.transport.is_closing():
                return
            if self._seen or self._header_size:  # a request was started: tell the client
                self.transport.write(
                    _raw_error(
                        408,
                        "Request Timeout",
                        f"request headers not received within {header_timeout_s} s "
                        "(header_timeout_s)",
                    )
                )
            self.transport.close()

        def _stop_timer(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    return HeaderLimitedProtocol
