"""Conformance: standard v2 clients, unmodified, against both servers.

NVIDIA's ``tritonclient`` (HTTP with JSON tensors, HTTP with the binary tensor extension,
gRPC) and KServe's own ``InferenceRESTClient`` / ``InferenceGRPCClient`` drive the predictor,
the transformer, and the transformer that forwards to the predictor over gRPC (so the
transformer's own gRPC client reads the predictor's raw outputs too). Each call's outputs are
compared with the same request sent as plain JSON with ``application/json``: one user and
batches of 64, metadata, readiness, inference, on the unversioned and the versioned routes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from predictor.protocol.artifact import read_metadata
from tests.integration import triton_calls

pytestmark = pytest.mark.integration

MODEL = "click-model"
TRANSFORMER_OUTPUTS = ["score", "decision", "model_version", "prediction_source", "feature_status"]
PREDICTOR_OUTPUTS = ["probability", "model_version"]
NP = {"INT64": np.int64, "INT32": np.int32, "FP64": np.float64, "FP32": np.float32, "BOOL": bool}


def json_body(inputs: list[tuple[str, str, np.ndarray]]) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": n, "datatype": dt, "shape": [len(v)], "data": v.tolist()}
            for n, dt, v in inputs
        ]
    }


@dataclass
class Target:
    name: str
    http: str  # host:port
    grpc: str
    outputs: list[str]
    version: str  # the version the server reports and serves
    log: Path | None  # the server's log file

    def inputs(self, n: int) -> list[tuple[str, str, np.ndarray]]:
        """(name, datatype, values) for each input the metadata lists, ``n`` rows."""
        meta = httpx.get(f"http://{self.http}/v2/models/{MODEL}", timeout=10).json()
        out = []
        for i, t in enumerate(meta["inputs"]):
            dt = t["datatype"]
            if dt == "BOOL":
                values = np.arange(n) % 2 == 0
            elif dt.startswith("INT"):  # user ids and hours: 1..23
                values = (np.arange(n) * (i + 1)) % 23 + 1
            else:
                values = np.linspace(1.0, 60.0, n) + i
            out.append((t["name"], dt, values.astype(NP[dt])))
        return out

    def reference(self, inputs: list[tuple[str, str, np.ndarray]]) -> dict[str, list[Any]]:
        """The outputs of the same request as plain JSON with ``application/json``."""
        r = httpx.post(
            f"http://{self.http}/v2/models/{MODEL}/infer", json=json_body(inputs), timeout=30
        )
        assert r.status_code == 200, r.text
        return {o["name"]: o["data"] for o in r.json()["outputs"]}


@pytest.fixture(
    scope="module",
    params=["predictor", "transformer", "transformer-grpc-to-predictor"],
)
def target(request, local_stack) -> Target:
    version = read_metadata(local_stack.model_dir).version
    if request.param == "predictor":
        p, server, outputs = local_stack.ports, local_stack.predictor, PREDICTOR_OUTPUTS
        addr = _addr(p.predictor_http, p.predictor_grpc)
    else:
        via_rest = request.param == "transformer"
        p = local_stack.ports if via_rest else local_stack.grpc_ports
        server = local_stack.transformer if via_rest else local_stack.transformer_grpc
        addr, outputs = _addr(p.transformer_http, p.transformer_grpc), TRANSFORMER_OUTPUTS
    return Target(request.param, *addr, outputs, version, server.log_path)


def _addr(http: int, grpc: int) -> tuple[str, str]:
    return f"127.0.0.1:{http}", f"127.0.0.1:{grpc}"


def assert_same(got: dict[str, np.ndarray], want: dict[str, list[Any]], n: int) -> None:
    assert sorted(got) == sorted(want)
    for name, values in want.items():
        arr = got[name]
        assert arr.shape == (n,), name
        if arr.dtype == object:  # BYTES
            assert [_b(v).decode() for v in arr.tolist()] == values, name
        else:
            np.testing.assert_allclose(arr, np.asarray(values, dtype=np.float64), rtol=1e-12)


# --- plain HTTP: what curl and tritonclient send ---------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"content-type": "application/x-www-form-urlencoded"}],
    ids=["no-content-type", "curl-form-default"],
)
def test_a_json_body_without_a_json_content_type_is_served(target, headers):
    inputs = target.inputs(64)
    body = json_body(inputs)
    for path in (
        f"/v2/models/{MODEL}/infer",
        f"/v2/models/{MODEL}/versions/{target.version}/infer",
    ):
        r = httpx.post(
            f"http://{target.http}{path}", content=orjson.dumps(body), headers=headers, timeout=30
        )
        assert r.status_code == 200, r.text
        got = {o["name"]: o["data"] for o in r.json()["outputs"]}
        assert got == target.reference(inputs)


def test_versioned_paths_serve_the_served_version_and_404_others_without_a_traceback(target):
    assert target.log is not None
    seen = target.log.stat().st_size  # other tests' requests log their own errors before this
    base = f"http://{target.http}/v2/models/{MODEL}/versions"
    body = orjson.dumps(json_body(target.inputs(1)))
    assert httpx.get(f"{base}/{target.version}").json()["versions"] == [target.version]
    assert httpx.get(f"{base}/{target.version}/ready").json()["ready"] is True
    assert httpx.post(f"{base}/{target.version}/infer", content=body).status_code == 200
    for r in (
        httpx.get(f"{base}/7"),
        httpx.get(f"{base}/7/ready"),
        httpx.post(f"{base}/7/infer", content=body),
    ):
        assert r.status_code == 404, r.text
        error = r.json()["error"]
        assert "'7'" in error and target.version in error
    with target.log.open("rb") as f:
        f.seek(seen)
        log = f.read().decode(errors="replace")
    assert "Model versioning not supported" not in log and "Traceback" not in log


# --- tritonclient (in a worker process: see triton_calls) ---------------------------------


@pytest.fixture(scope="module")
def triton():
    """Calls ``triton_calls.<fn>(*args)`` in a spawned process that never imports kserve."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:

        def call(fn, *args):
            return pool.apply(fn, args)

        yield call


@pytest.mark.parametrize("n", [1, 64])
@pytest.mark.parametrize("mode", ["json", "json-in-binary-out", "binary"])
def test_tritonclient_http_infer(target, triton, n, mode):
    """``json``: JSON tensors both ways, no content-type sent (the case that was a 415)."""
    inputs = target.inputs(n)
    got = triton(triton_calls.http_infer, target.http, MODEL, inputs, target.outputs, mode)
    assert not isinstance(got, triton_calls.Failure), got
    assert got["model_name"] == MODEL
    assert_same(got["outputs"], target.reference(inputs), n)


@pytest.mark.parametrize("mode", ["json", "binary"])
def test_tritonclient_http_versioned_infer(target, triton, mode):
    inputs = target.inputs(64)
    args = (target.http, MODEL, inputs, target.outputs, mode)
    got = triton(triton_calls.http_infer, *args, target.version)
    assert not isinstance(got, triton_calls.Failure), got
    assert_same(got["outputs"], target.reference(inputs), 64)
    failed = triton(triton_calls.http_infer, *args, "7")
    assert isinstance(failed, triton_calls.Failure) and failed.status == "404"
    assert "'7'" in failed.message and target.version in failed.message


def test_tritonclient_http_metadata_and_ready(target, triton):
    got = triton(triton_calls.http_meta, target.http, MODEL, target.version)
    assert got["live"] and got["ready"] and got["model_ready"] and got["version_ready"]
    assert got["other_version_ready"] is False
    for meta in (got["metadata"], got["version_metadata"]):
        assert meta["name"] == MODEL and meta["versions"] == [target.version]
        assert [o["name"] for o in meta["outputs"]] == target.outputs
    failed = got["other_version_metadata"]
    assert isinstance(failed, triton_calls.Failure) and failed.status == "404"
    assert "'7'" in failed.message and target.version in failed.message


@pytest.mark.parametrize("n", [1, 64])
@pytest.mark.parametrize("version", ["unversioned", "served", "other"])
def test_tritonclient_grpc_infer(target, triton, n, version):
    inputs = target.inputs(n)
    v = {"unversioned": "", "served": target.version, "other": "7"}[version]
    got = triton(triton_calls.grpc_infer, target.grpc, MODEL, inputs, target.outputs, v)
    if version == "other":
        assert isinstance(got, triton_calls.Failure) and got.status == "StatusCode.NOT_FOUND"
        assert "'7'" in got.message and target.version in got.message
        return
    assert not isinstance(got, triton_calls.Failure), got
    assert got["model_name"] == MODEL
    assert_same(got["outputs"], target.reference(inputs), n)


def test_tritonclient_grpc_metadata_and_ready(target, triton):
    got = triton(triton_calls.grpc_meta, target.grpc, MODEL, target.version)
    assert got["live"] and got["ready"] and got["model_ready"] and got["version_ready"]
    for meta in (got["metadata"], got["version_metadata"]):
        assert meta["name"] == MODEL and meta["versions"] == [target.version]
        assert [o["name"] for o in meta["outputs"]] == target.outputs
    for key in ("other_version_ready", "other_version_metadata"):
        failed = got[key]
        assert isinstance(failed, triton_calls.Failure), (key, failed)
        assert failed.status == "StatusCode.NOT_FOUND"
        assert "'7'" in failed.message and target.version in failed.message


# --- KServe's own clients keep working ------------------------------------------------------


def _kserve_request(inputs):
    from kserve import InferInput, InferRequest

    tensors = []
    for name, dt, values in inputs:
        t = InferInput(name, [len(values)], dt)
        t.set_data_from_numpy(values, binary_data=False)
        tensors.append(t)
    return InferRequest(model_name=MODEL, infer_inputs=tensors)


def _kserve_outputs(response, names) -> dict[str, np.ndarray]:
    out = {}
    for name in names:
        arr = response.get_output_by_name(name).as_numpy().reshape(-1)
        out[name] = arr if arr.dtype != object else np.array([_b(v) for v in arr], dtype=object)
    return out


def _b(v: Any) -> bytes:
    return v if isinstance(v, bytes) else str(v).encode()


@pytest.mark.parametrize("n", [1, 64])
def test_kserve_clients(target, n):
    from kserve import InferenceGRPCClient, InferenceRESTClient, RESTConfig

    inputs = target.inputs(n)
    want = target.reference(inputs)

    async def go():
        rest = InferenceRESTClient(RESTConfig(protocol="v2"))
        try:
            r = await rest.infer(f"http://{target.http}", _kserve_request(inputs), MODEL)
        finally:
            await rest.close()
        async with InferenceGRPCClient(target.grpc) as grpc_client:
            g = await grpc_client.infer(_kserve_request(inputs))
            ready = await grpc_client.is_model_ready(MODEL)
        return r, g, ready

    rest_response, grpc_response, ready = asyncio.run(go())
    assert ready
    assert_same(_kserve_outputs(rest_response, target.outputs), want, n)
    assert_same(_kserve_outputs(grpc_response, target.outputs), want, n)
