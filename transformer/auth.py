"""Bearer-token authentication for the transformer's HTTP and gRPC servers.

Tokens live in a file (in Kubernetes: a Secret mounted as a volume), one per line::

    # comment
    infer:3f9c...        # may call inference (HTTP v1/v2, gRPC)
    write:a71b...        # may call POST /producer/v1/write
    infer,write:c0de...  # both

Blank lines and ``#`` comments are ignored; a token is 16-512 printable characters without
spaces. A bad line fails the start with ``<file>:<line>: <what is wrong>`` (never the token).

The file is watched, not read per request: a background task stats it every
``auth_reload_s`` seconds (in a thread) and re-reads it when its inode, size or mtime change.
Kubernetes updates a mounted Secret by swapping the ``..data`` symlink, so the path's target
changes inode: ``stat`` follows the link and sees it. A file that turns bad keeps the previous
tokens (logged, naming the line).

Only SHA-256 digests are kept from the file. A presented token is hashed once and compared
with ``hmac.compare_digest`` against every known digest, without stopping at a match, so the
time says nothing about which token (or how many characters of one) matched. A token that
matched is remembered (token → scopes, until the file changes), so a client's next requests
skip the hash: a dict lookup, whose time depends on the token only through Python's keyed
(per-process random) string hash, and which can only find a token already shown to be valid;
unknown tokens are never remembered, so they cannot grow it. Tokens are never logged: errors
name the file and the line.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc import aio
from starlette.types import ASGIApp, Receive, Scope, Send

from predictor.protocol.limits import is_probe, send_error

log = logging.getLogger(__name__)

SCOPES = ("infer", "write")
ANY = "any"  # what protected probes need: a known token, whatever its scopes
WRITE_PATH = "/producer/v1/write"
MIN_TOKEN, MAX_TOKEN = 16, 512
MAX_VERIFIED = 4096  # valid tokens remembered (a bound; a tokens file holds far fewer)
# gRPC methods a probe or a load balancer calls; public unless auth_probes
GRPC_PROBES = frozenset(
    f"/inference.GRPCInferenceService/{m}" for m in ("ServerLive", "ServerReady", "ModelReady")
)


class AuthConfigError(ValueError):
    """The tokens file is missing or malformed (the message names the file and line)."""


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


def parse_tokens(path: Path) -> list[tuple[bytes, frozenset[str]]]:
    """``path`` → [(sha256 of a token, its scopes)], checking every line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise AuthConfigError(f"{path}: cannot read tokens file: {e}") from None
    entries: list[tuple[bytes, frozenset[str]]] = []
    seen: set[bytes] = set()
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{lineno}"
        scopes_part, sep, token = line.partition(":")
        if not sep:
            raise AuthConfigError(f"{where}: expected 'scope:token' (scopes: {', '.join(SCOPES)})")
        scopes = {s.strip() for s in scopes_part.split(",")}
        unknown = scopes - set(SCOPES)
        if unknown:
            raise AuthConfigError(
                f"{where}: unknown scope {sorted(unknown)} (expected {', '.join(SCOPES)})"
            )
        if not (MIN_TOKEN <= len(token) <= MAX_TOKEN) or not token.isprintable() or " " in token:
            raise AuthConfigError(
                f"{where}: token must be {MIN_TOKEN}-{MAX_TOKEN} printable characters without "
                "spaces"
            )
        digest = _digest(token.encode())
        if digest in seen:
            raise AuthConfigError(f"{where}: the same token appears twice")
        seen.add(digest)
        entries.append((digest, frozenset(scopes)))
    if not entries:
        raise AuthConfigError(f"{path}: no tokens (every request would be refused)")
    return entries


@dataclass(frozen=True)
class _Stamp:
    dev: int
    ino: int
    size: int
    mtime_ns: int


def _stamp(path: Path) -> _Stamp:
    st = os.stat(path)  # follows the ..data symlink of a mounted Secret
    return _Stamp(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class Tokens:
    """The current tokens of one file, reloaded when it changes."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self._stamp = _stamp(path)
        except OSError as e:
            raise AuthConfigError(f"{path}: cannot read tokens file: {e.strerror}") from None
        # the file's digests and the tokens that matched them, replaced together (one
        # assignment: a reload in the watcher's thread never pairs old digests with new
        # remembered tokens, which could keep a removed token valid)
        self._current: tuple[list[tuple[bytes, frozenset[str]]], dict[bytes, frozenset[str]]]
        self._current = (parse_tokens(path), {})

    def scopes(self, token: bytes) -> frozenset[str]:
        """The scopes of ``token`` (empty when unknown), in time independent of which matched."""
        entries, verified = self._current
        known = verified.get(token)
        if known is not None:
            return known
        presented = _digest(token)
        found: frozenset[str] = frozenset()
        for digest, scopes in entries:
            if hmac.compare_digest(presented, digest):
                found = scopes
        if found and len(verified) < MAX_VERIFIED:
            verified[token] = found
        return found

    def reload_if_changed(self) -> bool:
        """Re-read the file if it changed; a bad or missing file keeps the current tokens."""
        try:
            stamp = _stamp(self.path)
        except OSError as e:
            log.error("tokens file %s: %s; keeping the current tokens", self.path, e.strerror)
            return False
        if stamp == self._stamp:
            return False
        try:
            entries = parse_tokens(self.path)
        except AuthConfigError as e:
            log.error("%s; keeping the current tokens", e)
            return False
        self._current, self._stamp = (entries, {}), stamp
        log.info("tokens file %s reloaded: %d tokens", self.path, len(entries))
        return True

    async def watch(self, every_s: float) -> None:
        """Check the file every ``every_s`` seconds, off the event loop."""
        while True:
            await asyncio.sleep(every_s)
            await asyncio.to_thread(self.reload_if_changed)


def bearer(value: bytes | str | None) -> bytes | None:
    """The token of an ``Authorization: Bearer <token>`` value (None: absent or malformed)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.encode("latin-1", "replace")
    scheme, _, token = value.strip().partition(b" ")
    if scheme.lower() != b"bearer" or not token.strip():
        return None
    return token.strip()


@dataclass(frozen=True)
class Denied:
    status: int  # 401 or 403
    message: str


def check(tokens: Tokens, token: bytes | None, needed: str) -> Denied | None:
    if token is None:
        return Denied(401, "missing bearer token (Authorization: Bearer <token>)")
    scopes = tokens.scopes(token)
    if not scopes:
        return Denied(401, "unknown bearer token")
    if needed != ANY and needed not in scopes:
        return Denied(403, f"token lacks the '{needed}' scope")
    return None


def _is_feedback(path: str) -> bool:
    """``/v2/models/{name}/feedback``: rewards steer the bandit's traffic, so scope write."""
    return path.startswith("/v2/models/") and path.endswith("/feedback")


def required_scope(scope: Scope, probes_public: bool) -> str | None:
    """The scope an HTTP request needs (None: public)."""
    if is_probe(scope):
        return None if probes_public else ANY
    if scope["path"] == WRITE_PATH or _is_feedback(scope["path"]):
        return "write"
    return "infer"


class BearerAuth:
    """ASGI layer in front of everything else of the app (``FastInfer`` included)."""

    def __init__(self, app: ASGIApp, tokens: Tokens, probes_public: bool = True):
        self.app = app
        self.tokens = tokens
        self.probes_public = probes_public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        needed = required_scope(scope, self.probes_public)
        if needed is not None:
            token = None
            for name, value in scope["headers"]:
                if name == b"authorization":
                    token = bearer(value)
                    break
            denied = check(self.tokens, token, needed)
            if denied is not None:
                challenge = b'Bearer realm="transformer"'
                if denied.status == 401 and token is not None:
                    challenge += b', error="invalid_token"'
                elif denied.status == 403:
                    challenge += b', error="insufficient_scope"'
                return await send_error(
                    send, denied.status, denied.message, [(b"www-authenticate", challenge)]
                )
        await self.app(scope, receive, send)


_GRPC_CODES = {401: grpc.StatusCode.UNAUTHENTICATED, 403: grpc.StatusCode.PERMISSION_DENIED}


class GrpcBearerAuth(aio.ServerInterceptor):
    """The same check for gRPC: metadata ``authorization: Bearer <token>``, scope ``infer``."""

    def __init__(self, tokens: Tokens, probes_public: bool = True):
        self.tokens = tokens
        self.probes_public = probes_public

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        probe = details.method in GRPC_PROBES
        if handler is None or (self.probes_public and probe):
            return handler
        token = None
        for key, value in details.invocation_metadata or ():
            if key == "authorization":
                token = bearer(value)
                break
        denied = check(self.tokens, token, ANY if probe else "infer")
        if denied is None:
            return handler
        return _refusal(handler, _GRPC_CODES[denied.status], denied.message)


def _refusal(
    handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str
) -> grpc.RpcMethodHandler:
    """A handler of the same kind as ``handler`` that aborts with ``code``."""

    async def abort(request: Any, context: aio.ServicerContext) -> None:
        await context.abort(code, message)

    async def abort_stream(request: Any, context: aio.ServicerContext) -> Any:
        await context.abort(code, message)
        yield  # pragma: no cover  (makes this an async generator)

    kw = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort_stream, **kw)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort, **kw)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort_stream, **kw)
    return grpc.unary_unary_rpc_method_handler(abort, **kw)


class Auth:
    """What the server wiring needs: the ASGI wrapper, the gRPC interceptor, the watcher."""

    def __init__(self, tokens_file: Path, reload_s: float, probes_public: bool):
        self.tokens = Tokens(tokens_file)
        self.every_s = reload_s
        self.probes_public = probes_public
        self._task: asyncio.Task[None] | None = None

    def wrap(self, app: ASGIApp) -> ASGIApp:
        return BearerAuth(app, self.tokens, self.probes_public)

    def interceptor(self) -> GrpcBearerAuth:
        return GrpcBearerAuth(self.tokens, self.probes_public)

    async def start(self) -> None:
        self._task = asyncio.create_task(self.tokens.watch(self.every_s))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
