"""Fixtures of the rollout tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from tests.predictor.rollout.fakes import FakeApiServer


@pytest.fixture
def api_server() -> Iterator[tuple[str, type[FakeApiServer]]]:
    handler = type("Handler", (FakeApiServer,), {"isvc": None, "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
