"""Request limits on a real predictor over loopback sockets: body size (413 before the body is
read), header size (431), header-read timeout (408), concurrent requests (503), bind address.
The transformer starts through the same code (``predictor.protocol.serving``); its producer port is
checked in test_auth."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import grpc
import httpx
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from devtools import stack
from tests.integration.helpers import JSON

pytestmark = pytest.mark.integration

INFER = "/v2/models/click-model/infer"
MAX_BODY = 64 * 1024
MAX_HEADER = 4096
HEADER_TIMEOUT_S = 0.5
MAX_CONCURRENT = 2


@pytest.fixture(scope="module")
def predictor(model_dir, tmp_path_factory):
    ports = stack.Ports.free()
    flags = [
        *("--max_body_bytes", str(MAX_BODY), "--max_header_bytes", str(MAX_HEADER)),
        *("--header_timeout_s", str(HEADER_TIMEOUT_S)),
        *("--max_concurrent_requests", str(MAX_CONCURRENT)),
    ]
    server = stack.start_predictor(model_dir, ports, tmp_path_factory.mktemp("logs"), flags)
    try:
        stack.wait_ready(server)
        yield server, ports
    finally:
        stack.stop(server)


def connect(ports: stack.Ports) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", ports.predictor_http), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_all(s: socket.socket) -> bytes:
    """What the server sends until it closes the connection (or 5 s pass)."""
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return out


def read_response(s: socket.socket) -> tuple[int, bytes]:
    """One response of a kept-alive connection (its headers, then content-length bytes)."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = s.recv(65536)
        assert chunk, f"connection closed after {raw!r}"
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        body += s.recv(65536)
    return status_and_body(head + b"\r\n\r\n" + body)


def status_and_body(raw: bytes) -> tuple[int, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_oversized_body_gets_413_before_it_is_sent(predictor):
    _, ports = predictor
    with connect(ports) as s:
        # announce 10 MB, send only the headers and 1 KB: the answer must not wait for the rest
        s.sendall(
            f"POST {INFER} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            f"content-length: {10 * 1024 * 1024}\r\n\r\n".encode()
            + b" " * 1024
        )
        t0 = time.monotonic()
        raw = read_all(s)
    status, body = status_and_body(raw)
    assert status == 413 and b"max_body_bytes" in body and b'"error"' in body
    assert time.monotonic() - t0 < 2


def test_oversized_chunked_body_gets_413(predictor):
    server, _ = predictor

    def chunks():
        for _ in range(40):
            yield b" " * 4096

    r = httpx.post(server.url + INFER, content=chunks(), headers=JSON)
    assert r.status_code == 413 and "max_body_bytes" in r.json()["error"]


def test_a_body_under_the_limit_passes(predictor):
    server, _ = predictor
    body = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]}]}
    r = httpx.post(server.url + INFER, json=body)
    assert r.status_code == 400  # reached the model (wrong inputs), not stopped by the limits

    def chunks():
        yield b'{"inputs": '
        yield b"[]}"

    r = httpx.post(server.url + INFER, content=chunks(), headers=JSON)
    assert r.status_code == 400 and "413" not in r.text


@pytest.mark.parametrize("size", [64 * 1024, 1024 * 1024])
def test_oversized_headers_get_431(predictor, size):
    _, ports = predictor
    request = f"GET /v2/health/ready HTTP/1.1\r\nhost: x\r\nx-big: {'a' * size}\r\n\r\n".encode()
    sent = 0
    with connect(ports) as s:
        try:
            for i in range(0, len(request), 16384):
                s.sendall(request[i : i + 16384])
                sent = i + 16384
        except OSError:
            pass  # the server closed the connection before we were done
        raw = read_all(s)
    if raw:
        status, body = status_and_body(raw)
        assert status == 431 and b"max_header_bytes" in body
    else:  # reset before we could read the 431: at least it stopped reading early
        assert sent < len(request)


def test_headers_just_under_the_limit_pass(predictor):
    server, _ = predictor
    r = httpx.get(server.url + "/v2/health/ready", headers={"x-pad": "a" * (MAX_HEADER - 500)})
    assert r.status_code == 200


def test_slow_headers_get_408_and_the_connection_closes(predictor):
    _, ports = predictor
    with connect(ports) as s:
        assert_slow_headers_get_408(s)


def assert_slow_headers_get_408(s: socket.socket) -> None:
    """A slowloris request on ``s`` is answered 408 about one header timeout after its
    first byte, and the connection closed."""
    s.sendall(b"GET /v2/health/ready HTTP/1.1\r\nhost: x\r\n")
    t0 = time.monotonic()
    for _ in range(3):  # a slowloris client: a byte now and then, never the blank line
        time.sleep(HEADER_TIMEOUT_S / 4)
        s.sendall(b"x")
    raw = read_all(s)
    took = time.monotonic() - t0
    status, body = status_and_body(raw)
    assert status == 408 and b"header_timeout_s" in body
    assert HEADER_TIMEOUT_S * 0.8 < took < HEADER_TIMEOUT_S + 2


def test_kept_alive_connection_outlives_the_header_timeout_until_a_request_is_slow(predictor):
    """One timer per connection, re-armed per request: complete requests for longer than
    the timeout keep the connection open; a later request whose headers trickle gets its 408
    about one timeout after its first byte, not after the connection's start."""
    _, ports = predictor
    ready = b"GET /v2/health/ready HTTP/1.1\r\nhost: x\r\n\r\n"
    with connect(ports) as s:
        t_end = time.monotonic() + HEADER_TIMEOUT_S * 3
        while time.monotonic() < t_end:
            s.sendall(ready)
            assert read_response(s)[0] == 200
            time.sleep(HEADER_TIMEOUT_S / 5)
        assert_slow_headers_get_408(s)


def test_an_idle_connection_is_closed_after_the_header_timeout(predictor):
    _, ports = predictor
    with connect(ports) as s:
        t0 = time.monotonic()
        assert read_all(s) == b""  # closed without a word: no request was started
        assert time.monotonic() - t0 < HEADER_TIMEOUT_S + 2


def test_past_the_concurrency_cap_requests_get_503_and_probes_do_not(predictor):
    server, ports = predictor
    held = []
    try:
        for _ in range(MAX_CONCURRENT):  # in flight: headers sent, body still coming
            s = connect(ports)
            s.sendall(
                f"POST {INFER} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                "content-length: 100\r\n\r\n{".encode()
            )
            held.append(s)
        time.sleep(0.3)
        r = httpx.post(server.url + INFER, json={"inputs": []})
        assert r.status_code == 503 and "max_concurrent_requests" in r.json()["error"]
        assert r.headers["retry-after"] == "1"
        assert httpx.get(server.url + "/v2/health/ready").status_code == 200
        assert httpx.get(server.url + "/metrics").status_code == 200
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 5
    while httpx.post(server.url + INFER, json={"inputs": []}).status_code == 503:
        assert time.monotonic() < deadline, "slots not released after the clients left"
        time.sleep(0.05)


def listening(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp*)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(addr)
    return found


def test_local_servers_listen_on_loopback_only(predictor):
    _, ports = predictor
    # 127.0.0.1 in /proc's little-endian hex, as IPv4 or IPv4-mapped IPv6 (gRPC's choice)
    loopback = {"0100007F", "0000000000000000FFFF00000100007F"}
    for port in (ports.predictor_http, ports.predictor_grpc):
        assert listening(port), f"nothing listens on {port}"
        assert listening(port) <= loopback, f"{port} listens beyond loopback"


def test_grpc_messages_over_the_body_limit_are_refused(predictor):
    _, ports = predictor
    req = pb.ModelInferRequest(model_name="click-model")
    t = req.inputs.add(name="x", datatype="FP64")
    t.shape.append(MAX_BODY)  # 8 bytes each: 8x the limit
    t.contents.fp64_contents.extend([1.0] * MAX_BODY)
    with grpc.insecure_channel(f"127.0.0.1:{ports.predictor_grpc}") as ch:
        stub = GRPCInferenceServiceStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            stub.ModelInfer(req, timeout=10)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
