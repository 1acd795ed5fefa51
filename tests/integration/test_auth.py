"""Bearer-token auth on a real transformer (Feast on SQLite, real predictor): HTTP fast path and
full stack, producer scope, gRPC metadata, rotation through a Kubernetes-style symlink swap,
the producer on its own port."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import grpc
import httpx
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from devtools import stack
from tests.integration.helpers import producer_row, v2_body
from tests.servers import serving

pytestmark = pytest.mark.integration

MODEL = "click-model"
INFER = f"/v2/models/{MODEL}/infer"
INFER_TOKEN = "infer-" + secrets.token_hex(16)
WRITE_TOKEN = "write-" + secrets.token_hex(16)
BOTH_TOKEN = "both-" + secrets.token_hex(16)


ROW = producer_row(42)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def mount_secret(folder: Path, text: str) -> Path:
    """What the kubelet does for a Secret volume: files behind a ``..data`` symlink that is
    swapped atomically on update. Returns the path the server is given."""
    stamp = f"..{time.monotonic_ns()}"
    (folder / stamp).mkdir()
    (folder / stamp / "tokens").write_text(text)
    tmp = folder / "..data_tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(stamp)
    os.replace(tmp, folder / "..data")
    link = folder / "tokens"
    if not link.is_symlink():
        link.symlink_to("..data/tokens")
    return link


@pytest.fixture(scope="module")
def secret_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("secret")


@pytest.fixture(scope="module")
def authed(sqlite_features, model_dir, secret_dir, tmp_path_factory):
    tokens = mount_secret(
        secret_dir,
        f"# test tokens\ninfer:{INFER_TOKEN}\nwrite:{WRITE_TOKEN}\ninfer,write:{BOTH_TOKEN}\n",
    )
    logs = tmp_path_factory.mktemp("logs")
    args = ("--auth_tokens_file", str(tokens), "--auth_reload_s", "0.2")
    with serving(sqlite_features, model_dir, logs, *args) as (tr, _, ports):
        yield tr, ports


def test_fast_path_needs_a_token(authed):
    tr, _ = authed
    body = v2_body([42])
    r = httpx.post(tr.url + INFER, json=body)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "missing bearer token" in r.json()["error"]
    r = httpx.post(tr.url + INFER, json=body, headers=bearer("not-a-known-token-at-all"))
    assert r.status_code == 401 and r.json()["error"] == "unknown bearer token"
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    r = httpx.post(tr.url + INFER, json=body, headers={"authorization": f"Basic {INFER_TOKEN}"})
    assert r.status_code == 401
    assert httpx.post(tr.url + INFER, json=body, headers=bearer(INFER_TOKEN)).status_code == 200
    assert httpx.post(tr.url + INFER, json=body, headers=bearer(BOTH_TOKEN)).status_code == 200


def test_write_token_cannot_infer_and_infer_token_cannot_write(authed):
    tr, _ = authed
    r = httpx.post(tr.url + INFER, json=v2_body([42]), headers=bearer(WRITE_TOKEN))
    assert r.status_code == 403 and "'infer' scope" in r.json()["error"]
    rows = {"rows": [ROW]}
    r = httpx.post(tr.url + "/producer/v1/write", json=rows, headers=bearer(INFER_TOKEN))
    assert r.status_code == 403 and "'write' scope" in r.json()["error"]
    r = httpx.post(tr.url + "/producer/v1/write", json=rows)
    assert r.status_code == 401
    r = httpx.post(tr.url + "/producer/v1/write", json=rows, headers=bearer(WRITE_TOKEN))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"/v1/models/{MODEL}:predict"),
        ("GET", f"/v2/models/{MODEL}"),
        ("POST", "/v2/models/other-model/infer"),
        ("GET", "/docs"),
    ],
)
def test_full_stack_routes_need_a_token(authed, method, path):
    tr, _ = authed
    r = httpx.request(method, tr.url + path, json={"instances": []})
    assert r.status_code == 401, (path, r.text)
    r = httpx.request(method, tr.url + path, json={"instances": []}, headers=bearer(INFER_TOKEN))
    assert r.status_code != 401, path


@pytest.mark.parametrize(
    "path", ["/", "/v2/health/live", "/v2/health/ready", f"/v2/models/{MODEL}/ready", "/metrics"]
)
def test_probes_and_metrics_stay_public(authed, path):
    tr, _ = authed
    assert httpx.get(tr.url + path).status_code == 200


def grpc_infer(port: int, metadata: tuple[tuple[str, str], ...] = ()) -> pb.ModelInferResponse:
    req = pb.ModelInferRequest(model_name=MODEL)
    for name, field, values in (
        ("user_id", "int64_contents", [42]),
        ("session_duration_s", "fp64_contents", [35.0]),
        ("hour_of_day", "int64_contents", [20]),
    ):
        tensor = req.inputs.add(name=name, datatype="FP64" if "fp64" in field else "INT64")
        tensor.shape.append(1)
        getattr(tensor.contents, field).extend(values)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        return GRPCInferenceServiceStub(ch).ModelInfer(req, metadata=metadata, timeout=10)


def test_grpc_needs_a_token_in_metadata(authed):
    _, ports = authed
    port = ports.transformer_grpc
    with pytest.raises(grpc.RpcError) as e:
        grpc_infer(port)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as e:
        grpc_infer(port, (("authorization", "Bearer not-a-known-token-at-all"),))
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as e:
        grpc_infer(port, (("authorization", f"Bearer {WRITE_TOKEN}"),))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    out = grpc_infer(port, (("authorization", f"Bearer {INFER_TOKEN}"),))
    assert out.model_name == MODEL and out.outputs
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:  # probes stay public
        assert GRPCInferenceServiceStub(ch).ServerReady(pb.ServerReadyRequest(), timeout=10).ready


def test_rotation_through_a_symlink_swap_needs_no_restart(authed, secret_dir):
    tr, ports = authed
    new = "rotated-" + secrets.token_hex(16)
    mount_secret(secret_dir, f"infer:{new}\nwrite:{WRITE_TOKEN}\ninfer,write:{BOTH_TOKEN}\n")
    body = v2_body([42])
    deadline = time.monotonic() + 5
    while httpx.post(tr.url + INFER, json=body, headers=bearer(new)).status_code != 200:
        assert time.monotonic() < deadline, "the rotated token was not picked up in 5 s"
        time.sleep(0.1)
    assert httpx.post(tr.url + INFER, json=body, headers=bearer(INFER_TOKEN)).status_code == 401
    out = grpc_infer(ports.transformer_grpc, (("authorization", f"Bearer {new}"),))
    assert out.outputs
    # a broken update keeps the tokens in force instead of locking everyone out
    mount_secret(secret_dir, "infer:short\n")
    time.sleep(1.0)
    assert httpx.post(tr.url + INFER, json=body, headers=bearer(new)).status_code == 200
    mount_secret(secret_dir, f"infer:{INFER_TOKEN}\nwrite:{WRITE_TOKEN}\n")


def test_tokens_never_reach_the_log(authed):
    tr, _ = authed
    httpx.post(tr.url + INFER, json=v2_body([42]), headers=bearer(INFER_TOKEN))
    httpx.post(tr.url + INFER, json=v2_body([42]), headers=bearer(WRITE_TOKEN + "x"))
    log = tr.log_tail(100_000)
    assert "Uvicorn running" in log or "Started server" in log  # the log is the server's
    for token in (INFER_TOKEN, WRITE_TOKEN, BOTH_TOKEN, "short"):
        assert token not in log


def test_a_bad_tokens_file_stops_the_start_naming_file_and_line(
    sqlite_features, tmp_path, secret_dir
):
    bad = tmp_path / "tokens"
    bad.write_text(f"infer:{INFER_TOKEN}\nadmin:{WRITE_TOKEN}\n")
    ports = stack.Ports.free()
    server = stack.start_transformer(
        sqlite_features, ports, "v2", tmp_path, ["--auth_tokens_file", str(bad)]
    )
    assert server.proc.wait(timeout=60) == 1
    log = server.log_tail()
    assert f"{bad}:2: unknown scope ['admin']" in log
    assert WRITE_TOKEN not in log


def test_producer_on_its_own_port(sqlite_features, model_dir, tmp_path):
    producer_port = stack.free_port()
    with serving(sqlite_features, model_dir, tmp_path, "--producer_port", str(producer_port)) as (
        tr,
        _,
        _,
    ):
        rows = {"rows": [ROW]}
        producer = f"http://127.0.0.1:{producer_port}"
        assert httpx.post(tr.url + "/producer/v1/write", json=rows).status_code == 404
        r = httpx.post(producer + "/producer/v1/write", json=rows)
        assert r.status_code == 200, r.text
        assert httpx.post(producer + INFER, json=v2_body([42])).status_code == 404
        assert httpx.post(tr.url + INFER, json=v2_body([42])).status_code == 200
        # the producer port has the same limits as the main one
        r = httpx.post(producer + "/producer/v1/write", content=b"x" * (5 * 1024 * 1024))
        assert r.status_code == 413 and "max_body_bytes" in r.json()["error"]
