"""HTTP error shaping shared by both servers, added to KServe's FastAPI app before start.

KServe answers request-body validation errors with FastAPI's 422 ``{"detail": [...]}`` and a
non-JSON v2 body with a message about binary headers. Users get one shape instead:
``{"error": "<what is wrong, naming the field>"}`` with a 4xx status.

Content-type of inference requests, as KServe and Triton treat it: the body decides. A body
that parses as JSON is a JSON request whatever the declared type (tritonclient and
perf_analyzer send none, ``curl -d`` sends ``application/x-www-form-urlencoded``). A body that
does not parse is a 400 "not valid JSON" when the declared type is JSON, absent, or one of
those JSON-by-accident types (``LENIENT_TYPES``), and a 415 naming the type otherwise (the
client said it sends something else). The v2 binary tensor extension
(``Inference-Header-Content-Length``) and CloudEvents (``ce-specversion``) are KServe's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from kserve.errors import InvalidInput
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

JSON_TYPES = ("application/json", "application/cloudevents+json")
# Declared types under which a body that is not JSON is a 400 (bad JSON), not a 415.
LENIENT_TYPES = ("", "application/x-www-form-urlencoded", "text/plain")
BINARY_HEADER = b"inference-header-content-length"
JSON_HEADER = (b"content-type", b"application/json")


class UnsupportedMediaType(Exception):
    """The body is not JSON and the declared content-type says it is something else."""

    def __init__(self, ctype: str):
        super().__init__(
            f"content-type '{ctype}' is not supported: send a JSON body "
            "(application/json) or v2 binary tensors (Inference-Header-Content-Length)"
        )


def parse_json_body(ctype: str, raw: bytes) -> Any:
    """The decoded JSON body of an inference request declared as ``ctype``.

    Raises ``InvalidInput`` (400) or ``UnsupportedMediaType`` (415), see the module doc."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        if ctype in JSON_TYPES or ctype in LENIENT_TYPES or ctype.endswith("+json"):
            raise InvalidInput(f"body is not valid JSON: {e}") from None
        raise UnsupportedMediaType(ctype) from None


def as_json_request(scope: Scope) -> Scope:
    """``scope`` with its content-type replaced by ``application/json``."""
    headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
    return {**scope, "headers": [*headers, JSON_HEADER]}


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay(raw: bytes) -> Receive:
    """A ``receive`` that hands an already-read body to the next app."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    return receive


async def send_json(
    send: Send,
    status: int,
    body: bytes,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """A JSON answer straight from an ASGI layer, in two messages and without a Starlette
    ``Response``: ``headers`` (lower-case names) first, then ``content-length`` and
    ``content-type: application/json`` unless ``headers`` set them."""
    out = list(headers)
    given = {name for name, _ in out}
    if b"content-length" not in given:
        out.append((b"content-length", str(len(body)).encode()))
    if b"content-type" not in given:
        out.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})


def json_error(status: int, message: str) -> Response:
    """The one error shape: ``{"error": message}``."""
    return Response(orjson.dumps({"error": message}), status, media_type="application/json")


def _describe(errors: list[dict[str, Any]]) -> str:
    parts = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "InferenceRequest", "bytes")]
        if err.get("type") == "bytes_type":  # the Union's second branch: always noise
            continue
        parts.append(f"{'.'.join(loc) or 'body'}: {err.get('msg')}")
    return "; ".join(parts) or "request body is not valid"


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return json_error(400, _describe(list(exc.errors())))


class JsonBodyMiddleware:
    """Inference POSTs that declare a type other than JSON reach KServe's routes as JSON when
    their body is JSON; otherwise 400 or 415 (module doc). Binary tensors and CloudEvents pass.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and _is_inference(scope["path"]):
            headers = dict(scope["headers"])
            ctype = media_type(headers)
            speaks_v2 = BINARY_HEADER in headers or is_cloudevent(headers)
            if ctype not in JSON_TYPES and not speaks_v2:
                raw = await read_body(receive)
                try:
                    parse_json_body(ctype, raw)
                except InvalidInput as e:
                    response = json_error(400, str(e))
                except UnsupportedMediaType as e:
                    response = json_error(415, str(e))
                else:
                    return await self.app(as_json_request(scope), replay(raw), send)
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


def _is_inference(path: str) -> bool:
    return path.endswith("/infer") or path.endswith(":predict")


def media_type(headers: dict[bytes, bytes]) -> str:
    """The content-type of raw ASGI headers without its parameters (``application/json``)."""
    return headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip()


def is_cloudevent(headers: dict[bytes, bytes]) -> bool:
    return b"ce-specversion" in headers


def install(app: FastAPI) -> None:
    """Add the handlers and middleware to KServe's app (call before ModelServer.start)."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(JsonBodyMiddleware)
