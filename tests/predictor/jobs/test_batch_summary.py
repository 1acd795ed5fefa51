"""The batch job's summary: its log line, and the same numbers on a real HTTP Pushgateway
stand-in on loopback (prometheus_client's push_to_gateway speaks plain HTTP PUT/POST)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from predictor.jobs.batch import BatchResult, push_metrics

pytestmark = pytest.mark.integration

RESULT = BatchResult(
    users=1000,
    scored=990,
    written=990,
    model_version="sklearn-abc",
    seconds={"read_features": 1.5, "score": 2.0, "write": 3.0, "commit": 0.5},
    generation="20261129T220102123456Z",
)


class Gateway:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str]] = []  # method, path, body


@pytest.fixture
def gateway() -> Iterator[tuple[str, Gateway]]:
    seen = Gateway()

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
            seen.requests.append((self.command, self.path, body))
            self.send_response(200)
            self.end_headers()

        do_PUT = do_POST = _record

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def metric(body: str, name: str) -> float:
    lines = [ln for ln in body.splitlines() if ln.startswith(name + " ")]
    assert len(lines) == 1, f"{name} not in {body}"
    return float(lines[0].split()[1])


def test_summary_line_names_every_number():
    assert RESULT.failed == 10
    assert RESULT.summary() == (
        "batch summary: generation=20261129T220102123456Z model_version=sklearn-abc "
        "users=1000 scored=990 written=990 failed=10 duration_s=7.0 committed=true"
    )


def test_success_replaces_the_group_with_the_summary(gateway):
    url, seen = gateway
    push_metrics(url, "feast-kserve-batch", RESULT)
    ((method, path, body),) = seen.requests
    assert (method, path) == ("PUT", "/metrics/job/feast-kserve-batch")
    assert metric(body, "batch_success") == 1
    assert metric(body, "batch_users") == 1000
    assert metric(body, "batch_scored") == 990
    assert metric(body, "batch_written") == 990
    assert metric(body, "batch_failed") == 10
    assert metric(body, "batch_duration_seconds") == 7.0
    assert metric(body, "batch_last_success_timestamp_seconds") > 1.7e9
    assert (
        'batch_generation_info{generation="20261129T220102123456Z",'
        'model_version="sklearn-abc"} 1.0' in body
    )


def test_failure_adds_to_the_group_and_keeps_the_last_success(gateway):
    url, seen = gateway
    push_metrics(url, "feast-kserve-batch", None, "ConnectionError")
    ((method, path, body),) = seen.requests
    assert (method, path) == ("POST", "/metrics/job/feast-kserve-batch")  # pushadd
    assert metric(body, "batch_success") == 0
    assert metric(body, "batch_last_failure_timestamp_seconds") > 1.7e9
    assert "batch_last_success_timestamp_seconds" not in body
    assert "batch_written" not in body


def test_an_unreachable_gateway_is_an_oserror():
    with pytest.raises(OSError):
        push_metrics("127.0.0.1:1", "feast-kserve-batch", RESULT)
