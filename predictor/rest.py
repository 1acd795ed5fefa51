"""HTTP error shaping shared by both servers, added to KServe's FastAPI app before start.

KServe answers request-body validation errors with FastAPI's 422 ``{"detail": [...]}`` and a
non-JSON v2 body with a message about binary headers. Users get one shape instead:
``{"error": "<what is wrong, naming the field>"}`` with a 4xx status.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

JSON_TYPES = ("application/json", "application/cloudevents+json")
BINARY_HEADER = b"inference-header-content-length"


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


class RequireJsonMiddleware:
    """415 for inference POSTs whose body is neither JSON nor v2 binary."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and _is_inference(scope["path"]):
            headers = dict(scope["headers"])
            ctype = media_type(headers)
            speaks_v2 = BINARY_HEADER in headers or is_cloudevent(headers)
            if ctype not in JSON_TYPES and not speaks_v2:
                response = json_error(
                    415, f"content-type must be application/json, got '{ctype or 'none'}'"
                )
                await response(scope, receive, send)
                return
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
    app.add_middleware(RequireJsonMiddleware)
