"""The ASGI limits layer without a server (the socket-level checks: tests/integration)."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from predictor.protocol.limits import Limits, is_probe

pytestmark = pytest.mark.unit


def run(layer, method="POST", path="/v2/models/m/infer", headers=(), chunks=(b"",)):
    sent, got = [], []
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": list(headers)}
    asyncio.run(layer(scope, receive, send))
    return sent, got, messages


def echo_app(got):
    async def app(scope, receive, send):
        body = b""
        while True:
            m = await receive()
            body += m.get("body", b"")
            if not m.get("more_body"):
                break
        got.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def test_content_length_over_the_limit_is_413_without_reading():
    got: list[bytes] = []
    sent, _, left = run(
        Limits(echo_app(got), 100, 10),
        headers=[(b"content-length", b"101")],
        chunks=(b"x" * 50, b"x" * 51),
    )
    assert sent[0]["status"] == 413 and (b"connection", b"close") in sent[0]["headers"]
    assert b"max_body_bytes" in orjson.loads(sent[1]["body"])["error"].encode()
    assert not got and len(left) == 2  # the app never ran, nothing was read


def test_chunked_body_is_counted_and_replayed():
    got: list[bytes] = []
    sent, _, _ = run(Limits(echo_app(got), 100, 10), chunks=(b"a" * 60, b"b" * 40))
    assert sent[0]["status"] == 200 and got == [b"a" * 60 + b"b" * 40]
    got.clear()
    sent, _, left = run(Limits(echo_app(got), 100, 10), chunks=(b"a" * 60, b"b" * 41, b"c"))
    assert sent[0]["status"] == 413 and not got and len(left) == 1  # stopped at the limit


def test_bad_content_length_is_400():
    sent, _, _ = run(Limits(echo_app([]), 100, 10), headers=[(b"content-length", b"x")])
    assert sent[0]["status"] == 400


def test_concurrency_cap_answers_503_and_spares_probes():
    async def main():
        release = asyncio.Event()
        statuses = []

        async def slow(scope, receive, send):
            await release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        layer = Limits(slow, 100, 2)

        async def call(method="POST", path="/v2/models/m/infer"):
            sent = []

            async def receive():
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(m):
                sent.append(m)

            hdrs = [(b"content-length", b"0")]
            await layer(
                {"type": "http", "method": method, "path": path, "headers": hdrs}, receive, send
            )
            statuses.append((path, sent[0]["status"]))

        held = [asyncio.create_task(call()) for _ in range(2)]
        await asyncio.sleep(0)
        await call()  # the third: refused at once
        probe = asyncio.create_task(call("GET", "/v2/health/ready"))
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(*held, probe)
        assert layer.in_flight == 0
        return statuses

    statuses = asyncio.run(main())
    assert statuses[0] == ("/v2/models/m/infer", 503)
    assert sorted(statuses[1:]) == [
        ("/v2/health/ready", 200),
        ("/v2/models/m/infer", 200),
        ("/v2/models/m/infer", 200),
    ]


@pytest.mark.parametrize(
    ("method", "path", "probe"),
    [
        ("GET", "/", True),
        ("GET", "/metrics", True),
        ("HEAD", "/v2/health/live", True),
        ("GET", "/v2/models/m/ready", True),
        ("GET", "/v1/models/m", True),
        ("GET", "/v2/models/m", False),
        ("POST", "/v2/health/ready", False),
        ("POST", "/v1/models/m:predict", False),
    ],
)
def test_is_probe(method, path, probe):
    assert is_probe({"method": method, "path": path}) is probe
