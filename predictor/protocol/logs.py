"""Logging for both servers: one format, and no per-request lines unless asked for.

Per request, KServe logs an access line and two timing lines and httpx logs each call to the
predictor, all at INFO: at 1,000 requests/s that is most of a core. They stay off unless
``access_log`` is set; payloads are never logged.

``log_format="json"``: one JSON object per line (``ts``, ``level``, ``logger``, ``message``,
``request_id`` inside a request, ``exc`` with the traceback of an error). ``RequestId`` (pure
ASGI middleware, installed by ``predictor.protocol.serving`` on both servers) takes the
request id from ``x-request-id`` (or makes one), keeps it in a context variable for the log
lines of that request, and returns it in the ``x-request-id`` response header; it is also where the
transformer's request metrics are counted (``observe``), so no other layer wraps ``send``.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

PER_REQUEST = ("uvicorn.access", "kserve.trace", "httpx", "httpcore")
REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="")
_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:/+=-]{1,128}$")  # anything else is replaced


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if rid := REQUEST_ID.get():
            out["request_id"] = rid
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure(level: str, access_log: bool, log_format: str = "text") -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    for name in PER_REQUEST:
        logging.getLogger(name).setLevel(logging.INFO if access_log else logging.WARNING)


class RequestId:
    """``x-request-id`` in (or a new id) → context variable + response header; with
    ``observe``, also ``observe(path, status, seconds to the response start)`` per request.

    The outermost layer of both servers, and the only one that wraps ``send``: what else must
    see every request (the transformer's request metrics) hooks in here instead of adding a
    layer. A generated id is 32 hex digits, a random per-process prefix + a counter: unique
    without a system call per request (``uuid4`` reads ``os.urandom`` each time).
    """

    def __init__(self, app: Any, observe: Callable[[str, int, float], None] | None = None):
        self.app = app
        self.observe = observe
        self._prefix = secrets.token_hex(8)
        self._next = itertools.count()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        rid = b""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                rid = value
                break
        if rid and _SAFE_ID.match(rid):
            token = REQUEST_ID.set(rid.decode())
        else:
            text = f"{self._prefix}{next(self._next) & 0xFFFFFFFFFFFFFFFF:016x}"
            rid = text.encode()
            token = REQUEST_ID.set(text)
        status = 500  # if the app fails before answering
        elapsed = 0.0

        async def wrapped(message: dict) -> None:
            nonlocal status, elapsed
            if message["type"] == "http.response.start":
                status = message["status"]
                elapsed = time.perf_counter() - t0
                message = {
                    **message,
                    "headers": [*message.get("headers", ()), (b"x-request-id", rid)],
                }
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        finally:
            REQUEST_ID.reset(token)
            if self.observe is not None:
                self.observe(scope["path"], status, elapsed or time.perf_counter() - t0)
