"""A lean route for ``POST /v2/models/{name}/infer``, in front of KServe's own.

KServe's route validates the body with a pydantic model, converts it again into an
``InferRequest``, and round-trips every output through numpy before FastAPI serializes it
once more: at a millisecond per request that is half the cost of the whole online path. This
route parses JSON with orjson, checks the structure by hand with errors that name the field,
builds the same ``InferRequest``, calls the same ``kserve.Model`` (preprocess, predict,
postprocess and KServe's metrics all unchanged) and writes the response with orjson.

Requests it does not speak (the binary tensor extension, CloudEvents, selected or binary
outputs) go through KServe's ``DataPlane`` as before. Errors are raised, so the app's
exception handlers (KServe's and ours) map them: 400, 404, 415, 502-504.
"""

from __future__ import annotations

from typing import Any

import orjson
from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.infer_type import InferInput, InferRequest, InferResponse
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BINARY_HEADER = "inference-header-content-length"


def _fail(where: str, what: str) -> InvalidInput:
    return InvalidInput(f"{where}: {what}")


def parse_request(body: Any, model_name: str) -> InferRequest:
    """A v2 JSON request (already decoded) → InferRequest, checking its structure."""
    if not isinstance(body, dict):
        raise InvalidInput("request body must be a JSON object")
    unknown = set(body) - {"id", "inputs", "outputs", "parameters"}
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


def _needs_dataplane(request: Request, body: dict[str, Any] | None) -> bool:
    h = request.headers
    if BINARY_HEADER in h or "ce-specversion" in h:
        return True
    if h.get("content-type", "").startswith("application/cloudevents"):
        return True
    return bool(
        body and (body.get("outputs") or (body.get("parameters") or {}).get("binary_data_output"))
    )


def route(dataplane: DataPlane) -> Route:
    async def infer(request: Request) -> Response:
        name = request.path_params["model_name"]
        model = dataplane.model_registry.get_model(name)
        if model is None:
            raise ModelNotFound(name)
        if not await dataplane.model_ready(name, True):
            raise ModelNotReady(name)
        raw = await request.body()
        headers = dict(request.headers)
        body = None
        if BINARY_HEADER not in request.headers:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as e:
                raise InvalidInput(f"body is not valid JSON: {e}") from None
        if _needs_dataplane(request, body):
            req, _ = dataplane.decode(raw, headers, protocol_version="v2", model_name=name)
            response, response_headers = await dataplane.infer(name, req, headers)
            encoded, extra = dataplane.encode(name, response, headers, {})
            response_headers.update(extra)
            content = encoded if isinstance(encoded, bytes) else orjson.dumps(encoded)
            return Response(content, 200, headers=response_headers, media_type="application/json")
        response, response_headers = await model(parse_request(body, name), headers=headers)
        if not isinstance(response, InferResponse):
            raise InvalidInput(
                f"model {name} returned {type(response).__name__}, not a v2 response"
            )
        return Response(
            encode_response(response), 200, headers=response_headers, media_type="application/json"
        )

    return Route("/v2/models/{model_name}/infer", infer, methods=["POST"])


def install(app: Any, dataplane: DataPlane) -> None:
    """Put the route before KServe's (call before ``ModelServer.start``)."""
    app.router.routes.insert(0, route(dataplane))
