"""A lean path for ``POST /v2/models/{name}/infer``, in front of KServe's own.

KServe's route validates the body with a pydantic model, converts it again into an
``InferRequest``, and round-trips every output through numpy before FastAPI serializes it
once more; before the route, each request crosses eight middleware layers (FastAPI's, KServe's
timing log, ours). At a few hundred microseconds per request that is most of the cost of a
cache hit. ``FastInfer`` is an ASGI layer in front of the app: for a JSON v2 inference
request it parses the body with orjson, checks the structure by hand with errors that name
the field, builds the same ``InferRequest``, calls the same ``kserve.Model`` (preprocess,
predict, postprocess and KServe's Prometheus metrics unchanged) and writes the response with
orjson. A failure becomes a response through the app's own exception handlers (KServe's and
ours), so statuses and bodies are the same as on the full stack: 400, 404, 415, 502-504.

The content-type does not select the path: any inference POST whose body is JSON is taken
here (``rest.parse_json_body``: tritonclient sends none, ``curl -d`` a form type).

It is also where model versions are handled (``predictor.protocol.versions``):
``/v2/models/{name}/versions/{version}[/ready|/infer]`` is the unversioned route when
``version`` is the served one, else a 404 naming the served version(s); and the model
metadata (``GET /v2/models/{name}``) is answered here with its ``versions``.

Everything else goes down the full stack unchanged: other paths and methods, the binary
tensor extension, CloudEvents, and requests that select outputs or ask for binary data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.infer_type import InferInput, InferRequest, InferResponse
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from predictor.protocol.rest import (
    BINARY_HEADER,
    UnsupportedMediaType,
    as_json_request,
    is_cloudevent,
    json_error,
    media_type,
    parse_json_body,
    replay,
    send_json,
)
from predictor.protocol.versions import served_versions, version_error

MODEL_PATH = re.compile(
    r"/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?(?P<route>/infer|/ready)?"
)


def _fail(where: str, what: str) -> InvalidInput:
    return InvalidInput(f"{where}: {what}")


def parse_request(body: Any, model_name: str) -> InferRequest:
    """A v2 JSON request (already decoded) → InferRequest, checking its structure."""
    if not isinstance(body, dict):
        raise InvalidInput("request body must be a JSON object")
    # model_name: KServe's InferenceRESTClient sends it (ignored: the path names the model)
    unknown = set(body) - {"id", "inputs", "outputs", "parameters", "model_name"}
    if unknown:
        raise _fail("body", f"unexpected fields {sorted(unknown)}")
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        raise _fail("inputs", "must be a list")
    req_id = body.get("id")
    if req_id is not None and not isinstance(req_id, str):
        raise _fail("id", "must be a string")
    params = body.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise _fail("parameters", "must be an object")
    infer_inputs = []
    for i, t in enumerate(inputs):
        where = f"inputs.{i}"
        if not isinstance(t, dict):
            raise _fail(where, "must be an object")
        name, datatype, shape, data = (
            t.get("name"),
            t.get("datatype"),
            t.get("shape"),
            t.get("data"),
        )
        if not isinstance(name, str):
            raise _fail(f"{where}.name", "must be a string")
        if not isinstance(datatype, str):
            raise _fail(f"{where}.datatype", "must be a string")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) for d in shape
        ):
            raise _fail(f"{where}.shape", "must be a list of integers")
        if not isinstance(data, list):
            raise _fail(f"{where}.data", "must be a list")
        t_params = t.get("parameters")
        if t_params is not None and not isinstance(t_params, dict):
            raise _fail(f"{where}.parameters", "must be an object")
        infer_inputs.append(InferInput(name, shape, datatype, data, t_params or {}))
    return InferRequest(model_name, infer_inputs, request_id=req_id, parameters=params)


def encode_response(response: InferResponse) -> bytes:
    outputs = []
    for o in response.outputs:
        data = o.data
        out: dict[str, Any] = {
            "name": o.name,
            "shape": o.shape,
            "datatype": o.datatype,
            "data": data.tolist() if hasattr(data, "tolist") else data,
        }
        if o.parameters:
            out["parameters"] = o.parameters
        outputs.append(out)
    res: dict[str, Any] = {
        "id": response.id,
        "model_name": response.model_name,
        "model_version": response.model_version,
        "outputs": outputs,
    }
    if response.parameters:
        res["parameters"] = response.parameters
    return orjson.dumps(res, option=orjson.OPT_SERIALIZE_NUMPY)


class FastInfer:
    """In front of KServe's app (``serving.run_model_server``): JSON v2 inference here,
    everything else (lifespan included) to ``app``."""

    def __init__(
        self,
        app: ASGIApp,
        dataplane: DataPlane,
        exception_handlers: Mapping[Any, Callable[..., Any]],
    ):
        self.app = app
        self.dataplane = dataplane
        self.exception_handlers = exception_handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = MODEL_PATH.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if match is None:
            return await self.app(scope, receive, send)
        name, version, route = match["name"], match["version"], match["route"]
        if version is not None:
            model = self.dataplane.model_registry.get_model(name)
            error = version_error(name, version, model) if model is not None else None
            if error is not None:
                return await json_error(404, error)(scope, receive, send)
            # the served version (or an unknown model: KServe's 404): the unversioned route
            path = f"/v2/models/{name}{route or ''}"
            scope = {**scope, "path": path, "raw_path": path.encode()}
        method = scope["method"]
        if route is None and method == "GET":
            return await self.respond(scope, receive, send, self.metadata(name))
        if route != "/infer" or method != "POST":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        ctype = media_type(headers)
        if (
            BINARY_HEADER in headers
            or is_cloudevent(headers)
            or ctype == "application/cloudevents+json"
        ):
            return await self.app(scope, receive, send)  # binary tensors, CloudEvents: KServe's
        try:
            raw = await read_body(receive)
            if raw is None:
                return  # the client went away: nobody to answer
            body = parse_json_body(ctype, raw)
            if _wants_outputs(body):
                return await self.app(as_json_request(scope), replay(raw), send)
            content, extra = await self.infer(name, body, headers)
        except UnsupportedMediaType as exc:
            response = json_error(415, str(exc))
        except Exception as exc:
            response = await self.error_response(Request(scope, receive), exc)
        else:
            return await send_json(send, 200, content, raw_headers(extra))
        await response(scope, receive, send)

    async def respond(self, scope: Scope, receive: Receive, send: Send, answer: Any) -> None:
        request = Request(scope, receive)
        try:
            response = await answer
        except Exception as exc:
            response = await self.error_response(request, exc)
        await response(scope, receive, send)

    async def metadata(self, name: str) -> Response:
        """The v2 model metadata, with the served version(s) in ``versions``."""
        meta = dict(await self.dataplane.model_metadata(name))
        meta["versions"] = served_versions(self.dataplane.model_registry.get_model(name))
        return Response(orjson.dumps(meta), 200, media_type="application/json")

    async def infer(
        self, name: str, body: Any, raw_headers: dict[bytes, bytes]
    ) -> tuple[bytes, Mapping[str, str]]:
        """The model's answer: the response body and the headers the model added."""
        model = self.dataplane.model_registry.get_model(name)
        if model is None:
            raise ModelNotFound(name)
        if not await self.dataplane.model_ready(name, True):
            raise ModelNotReady(name)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in raw_headers.items()}
        response, response_headers = await model(parse_request(body, name), headers=headers)
        if not isinstance(response, InferResponse):
            raise InvalidInput(
                f"model {name} returned {type(response).__name__}, not a v2 response"
            )
        return encode_response(response), response_headers or {}

    async def error_response(self, request: Request, exc: Exception) -> Response:
        """What the app's exception handler for ``exc`` answers (the most specific one)."""
        for cls in type(exc).__mro__:
            handler = self.exception_handlers.get(cls)
            if handler is not None:
                return await handler(request, exc)
        return json_error(500, f"{type(exc).__name__}: {exc}")  # pragma: no cover


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body (what starlette's ``Request.body`` does, without building a
    ``Request`` and an async generator per request); None if the client disconnected."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def raw_headers(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """The model's response headers as ASGI's (lower-case names); given to ``send_json`` they
    win over its defaults, as they would in a starlette ``Response``."""
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


def _wants_outputs(body: Any) -> bool:
    """Selected outputs or binary output data: KServe's own encoding handles those."""
    if not isinstance(body, dict):
        return False
    params = body.get("parameters")
    return bool(body.get("outputs")) or (
        isinstance(params, dict) and bool(params.get("binary_data_output"))
    )
