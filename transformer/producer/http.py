"""``POST /producer/v1/write``: the producer's HTTP route, apart from its logic.

The body is ``WriteRequest`` (``{"rows": [...]}``, nothing else); each row is checked by
``Producer.write`` against the feature view, which only the registry knows. Every bad body is
a 400 with ``{"error": "..."}``; the store or predictor down or slow is 503/504 JSON.
"""

from __future__ import annotations

from typing import Any

import orjson
from kserve.errors import InvalidInput
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from predictor.protocol.rest import json_error
from transformer.errors import UpstreamError
from transformer.producer.core import Producer

PATH = "/producer/v1/write"


class WriteRequest(BaseModel):
    """The body of a write: the feature rows (validated per row by the producer)."""

    model_config = ConfigDict(extra="forbid")

    rows: list[Any] | None = None


def parse_body(raw: bytes) -> WriteRequest:
    """The request body, or ``InvalidInput`` naming what is wrong with it."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise InvalidInput(f"body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise InvalidInput('body must be {"rows": [...]}')
    try:
        return WriteRequest.model_validate(body)
    except ValidationError as e:
        if any(err["type"] == "extra_forbidden" for err in e.errors()):
            raise InvalidInput('body must be {"rows": [...]}') from None
        raise InvalidInput('"rows" must be a non-empty list of objects') from None


def install_route(app: Any, producer: Producer) -> None:
    """Add the route to a FastAPI/Starlette app (the transformer's, or one of its own)."""

    async def write(request: Request) -> Response:
        try:
            body = parse_body(await request.body())
            result = await producer.write(body.rows)
        except InvalidInput as e:
            return json_error(400, str(e))
        except UpstreamError as e:  # store or predictor down: 503/504 JSON, connection kept
            return json_error(e.status, e.reason)
        return Response(orjson.dumps(result), 200, media_type="application/json")

    app.router.add_route(PATH, write, methods=["POST"])
