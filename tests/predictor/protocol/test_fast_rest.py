import numpy as np
import orjson
import pytest
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferResponse

from predictor.protocol.fast_rest import encode_response, parse_request

pytestmark = pytest.mark.unit


def test_parse_builds_the_same_infer_request():
    req = parse_request(
        {
            "id": "r1",
            "parameters": {"cache": False},
            "inputs": [{"name": "a", "datatype": "INT64", "shape": [2], "data": [1, 2]}],
        },
        "m",
    )
    assert req.id == "r1" and req.model_name == "m" and req.parameters == {"cache": False}
    (inp,) = req.inputs
    assert (inp.name, inp.datatype, inp.shape, inp.data) == ("a", "INT64", [2], [1, 2])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "must be a JSON object"),
        ({"inputs": "x"}, "inputs: must be a list"),
        ({}, "inputs: must be a list"),
        ({"inputs": [], "extra": 1}, "unexpected fields ['extra']"),
        ({"inputs": [1]}, "inputs.0: must be an object"),
        ({"inputs": [{"datatype": "INT64", "shape": [1], "data": [1]}]}, "inputs.0.name"),
        ({"inputs": [{"name": "a", "shape": [1], "data": [1]}]}, "inputs.0.datatype"),
        (
            {"inputs": [{"name": "a", "datatype": "INT64", "shape": ["1"], "data": [1]}]},
            "inputs.0.shape: must be a list of integers",
        ),
        (
            {"inputs": [{"name": "a", "datatype": "INT64", "shape": [1], "data": 1}]},
            "inputs.0.data: must be a list",
        ),
        ({"inputs": [], "id": 5}, "id: must be a string"),
        ({"inputs": [], "parameters": []}, "parameters: must be an object"),
    ],
)
def test_structure_errors_name_the_field(body, message):
    with pytest.raises(InvalidInput) as e:
        parse_request(body, "m")
    assert message in str(e.value)


def test_encode_matches_kserve_to_rest():
    def make():
        return InferResponse(
            "r",
            "m",
            [
                InferOutput("p", [2], "FP64", [0.25, 0.5]),
                InferOutput("v", [2], "BYTES", ["a", "b"]),
                InferOutput("n", [2], "INT64", np.array([1, 2])),
            ],
            model_version="v1",
        )

    ours = orjson.loads(encode_response(make()))
    theirs, _ = make().to_rest()
    assert ours == theirs


# --- FastInfer: the outermost ASGI layer ------------------------------------------------


def _app_with_fast_infer():
    import kserve
    from fastapi import FastAPI, Request
    from kserve.errors import (
        InvalidInput,
        ModelNotFound,
        invalid_input_handler,
        model_not_found_handler,
    )
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane
    from starlette.responses import JSONResponse

    from predictor.protocol.fast_rest import FastInfer

    class Echo(kserve.Model):
        version = "v7"

        def __init__(self):
            super().__init__("echo")
            self.ready = True

        def get_input_types(self):
            return [{"name": "x", "datatype": "INT64", "shape": [-1]}]

        def get_output_types(self):
            return [{"name": "y", "datatype": "INT64", "shape": [-1]}]

        async def predict(self, payload, headers=None):
            x = payload.inputs[0]
            if x.data == [13]:
                raise InvalidInput("thirteen is not allowed")
            return InferResponse(
                response_id=payload.id,
                model_name=self.name,
                infer_outputs=[InferOutput("y", x.shape, "INT64", x.data)],
            )

    repo = ModelRepository()
    repo.update(Echo())
    app = FastAPI()
    app.add_exception_handler(InvalidInput, invalid_input_handler)
    app.add_exception_handler(ModelNotFound, model_not_found_handler)

    @app.post("/v2/models/{name}/infer")
    async def full_stack(name: str, request: Request):  # stands in for KServe's route
        return JSONResponse({"inner": name, "body": (await request.body()).decode()}, 299)

    @app.get("/v2/models/{name}/ready")
    async def ready(name: str):  # stands in for KServe's route
        return JSONResponse({"ready_route": name}, 298)

    return FastInfer(app, DataPlane(model_registry=repo), app.exception_handlers)


def _get(app, path):
    import asyncio

    import httpx

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.get(path)

    return asyncio.run(go())


def _post(app, path, body=None, **kw):
    import asyncio

    import httpx

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return (
                await c.post(path, json=body, **kw)
                if body is not None
                else await c.post(path, **kw)
            )

    return asyncio.run(go())


X = {"name": "x", "datatype": "INT64", "shape": [2], "data": [1, 2]}


def test_fast_infer_answers_json_inference_itself():
    r = _post(_app_with_fast_infer(), "/v2/models/echo/infer", {"id": "a", "inputs": [X]})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"] == [{"name": "y", "shape": [2], "datatype": "INT64", "data": [1, 2]}]
    assert r.json()["id"] == "a"


@pytest.mark.parametrize(
    ("body", "kw"),
    [
        ({"inputs": [X], "outputs": [{"name": "y"}]}, {}),
        ({"inputs": [X], "parameters": {"binary_data_output": True}}, {}),
        (None, {"content": b"\x00", "headers": {"inference-header-content-length": "0"}}),
        (None, {"content": b"{}", "headers": {"content-type": "application/cloudevents+json"}}),
    ],
    ids=["outputs", "binary-output", "binary-input", "cloudevent"],
)
def test_what_it_does_not_speak_goes_down_the_full_stack_with_its_body(body, kw):
    r = _post(_app_with_fast_infer(), "/v2/models/echo/infer", body, **kw)
    assert r.status_code == 299 and r.json()["inner"] == "echo"
    if body is None:
        assert r.json()["body"] == kw["content"].decode()
    else:  # read once by FastInfer, replayed whole
        assert orjson.loads(r.json()["body"]) == body


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/v2/models/nope/infer", {"inputs": [X]}, 404, "nope"),
        ("/v2/models/echo/infer", {"inputs": "x"}, 400, "inputs"),
        ("/v2/models/echo/infer", {"inputs": [{**X, "data": [13]}]}, 400, "thirteen"),
    ],
)
def test_failures_go_through_the_apps_exception_handlers(path, body, status, needle):
    r = _post(_app_with_fast_infer(), path, body)
    assert r.status_code == status and needle in r.text


def test_malformed_json_is_a_400_naming_json():
    r = _post(
        _app_with_fast_infer(),
        "/v2/models/echo/infer",
        content=b"{",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400 and "JSON" in r.text


BODY = orjson.dumps({"inputs": [X]})


@pytest.mark.parametrize(
    "ctype",
    [
        None,
        "",
        "application/x-www-form-urlencoded",
        "text/plain",
        "application/json; charset=utf-8",
        "application/octet-stream",
    ],
)
def test_a_json_body_is_a_json_request_whatever_the_declared_type(ctype):
    """tritonclient sends no content-type, ``curl -d`` a form type: the fast path answers."""
    headers = {} if ctype is None else {"content-type": ctype}
    r = _post(_app_with_fast_infer(), "/v2/models/echo/infer", content=BODY, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [1, 2]


def test_a_json_body_selecting_outputs_reaches_the_full_stack_as_json():
    body = orjson.dumps({"inputs": [X], "outputs": [{"name": "y"}]})
    r = _post(_app_with_fast_infer(), "/v2/models/echo/infer", content=body, headers={})
    assert r.status_code == 299 and orjson.loads(r.json()["body"])["outputs"] == [{"name": "y"}]


@pytest.mark.parametrize(
    ("ctype", "status", "needle"),
    [
        (None, 400, "not valid JSON"),
        ("application/x-www-form-urlencoded", 400, "not valid JSON"),
        ("application/json", 400, "not valid JSON"),
        ("image/png", 415, "'image/png' is not supported"),
        ("application/octet-stream", 415, "'application/octet-stream'"),
    ],
)
def test_a_body_that_is_not_json_is_400_or_415_by_the_declared_type(ctype, status, needle):
    headers = {} if ctype is None else {"content-type": ctype}
    r = _post(_app_with_fast_infer(), "/v2/models/echo/infer", content=b"a=1", headers=headers)
    assert r.status_code == status and needle in r.json()["error"]


def test_metadata_lists_the_served_version():
    r = _get(_app_with_fast_infer(), "/v2/models/echo")
    assert r.status_code == 200
    assert r.json()["versions"] == ["v7"] and r.json()["inputs"][0]["name"] == "x"


@pytest.mark.parametrize("route", ["", "/ready", "/infer"])
def test_a_version_that_is_not_served_is_a_404_naming_the_served_one(route):
    app = _app_with_fast_infer()
    path = f"/v2/models/echo/versions/v8{route}"
    r = _post(app, path, {"inputs": [X]}) if route == "/infer" else _get(app, path)
    assert r.status_code == 404
    assert "'v8'" in r.json()["error"] and "v7" in r.json()["error"]


def test_the_served_version_is_the_unversioned_route():
    app = _app_with_fast_infer()
    r = _post(app, "/v2/models/echo/versions/v7/infer", {"inputs": [X]})
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [1, 2]
    assert _get(app, "/v2/models/echo/versions/v7").json()["versions"] == ["v7"]
    r = _get(app, "/v2/models/echo/versions/v7/ready")
    assert r.status_code == 298 and r.json() == {"ready_route": "echo"}


def test_a_versioned_path_of_an_unknown_model_is_the_model_404():
    r = _post(_app_with_fast_infer(), "/v2/models/nope/versions/1/infer", {"inputs": [X]})
    assert r.status_code == 404 and "nope" in r.json()["error"]


def test_the_model_name_kserves_client_sends_in_the_body_is_accepted():
    r = _post(
        _app_with_fast_infer(), "/v2/models/echo/infer", {"model_name": "echo", "inputs": [X]}
    )
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [1, 2]


def test_read_body_joins_chunks_and_sees_a_disconnect():
    import asyncio

    from predictor.protocol.fast_rest import read_body

    def receiver(*messages):
        it = iter(messages)

        async def receive():
            return next(it)

        return receive

    chunks = receiver(
        {"type": "http.request", "body": b'{"a"', "more_body": True},
        {"type": "http.request", "body": b": 1}", "more_body": False},
    )
    assert asyncio.run(read_body(chunks)) == b'{"a": 1}'
    gone = receiver(
        {"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}
    )
    assert asyncio.run(read_body(gone)) is None


def test_send_json_sets_length_and_type_and_the_models_headers_win():
    import asyncio

    from predictor.protocol.fast_rest import raw_headers
    from predictor.protocol.rest import send_json

    sent = []

    async def send(message):
        sent.append(message)

    model_headers = raw_headers({"X-Model": "m", "Content-Type": "application/x"})
    asyncio.run(send_json(send, 200, b'{"x":1}', model_headers))
    start, body = sent
    headers = dict(start["headers"])
    assert start["status"] == 200 and body["body"] == b'{"x":1}'
    assert headers == {b"x-model": b"m", b"content-type": b"application/x", b"content-length": b"7"}
