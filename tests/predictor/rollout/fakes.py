"""Stand-ins for the Kubernetes side of a rollout: a CustomObjectsApi that applies real merge
patches, an HTTP API server for the real client, a clock; and a runner of the CLI."""

from __future__ import annotations

import copy
import io
import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from kubernetes.client.exceptions import ApiException

from predictor.rollout.cli import main
from tests.predictor.rollout.isvcs import (
    NAME,
    NS,
    merge_patch,
)


class FakeCustomObjectsApi:
    """The two CustomObjectsApi methods rollout uses. PATCH applies a real merge patch; after a
    patch, each GET takes the next status from ``after_patch`` (the last one sticks), which is
    how KServe's status catches up over a few polls."""

    def __init__(
        self,
        isvc: dict[str, Any] | None,
        after_patch: list[dict[str, Any]] | None = None,
        *,
        get_error: Exception | None = None,
        patch_error: Exception | None = None,
    ):
        self.isvc = copy.deepcopy(isvc)
        self.after_patch = list(after_patch or [])
        self.get_error, self.patch_error = get_error, patch_error
        self.calls: list[tuple[Any, ...]] = []
        self.patched = False

    def get_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str
    ) -> dict[str, Any]:
        self.calls.append(("get", group, version, namespace, plural, name))
        if self.get_error is not None:
            raise self.get_error
        if self.isvc is None or (namespace, name) != (NS, NAME):
            raise ApiException(status=404, reason="Not Found")
        if self.patched and self.after_patch:
            status = self.after_patch.pop(0) if len(self.after_patch) > 1 else self.after_patch[0]
            self.isvc["status"] = copy.deepcopy(status)
        return copy.deepcopy(self.isvc)

    def patch_namespaced_custom_object(
        self,
        group: str,
        version: str,
        namespace: str,
        plural: str,
        name: str,
        body: Any,
        **kwargs: Any,
    ) -> dict[str, Any]:
        self.calls.append(("patch", group, version, namespace, plural, name, body, kwargs))
        if self.patch_error is not None:
            raise self.patch_error
        if self.isvc is None or (namespace, name) != (NS, NAME):
            raise ApiException(status=404, reason="Not Found")
        self.isvc = merge_patch(self.isvc, body)
        self.patched = True
        return copy.deepcopy(self.isvc)

    def patches(self) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == "patch"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def row(out: str, revision: str) -> list[str]:
    """The traffic-table row of ``revision`` in the predictor's table, split into columns."""
    rows = [line.split() for line in out.splitlines() if line.split()[:1] == [revision]]
    assert rows, f"{revision} not in the table:\n{out}"
    return rows[0]


def run(argv: list[str], api: Any, clock: Clock | None = None) -> tuple[int, str, str]:
    clock = clock or Clock()
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, api=api, stdout=out, stderr=err, sleep=clock.sleep, clock=clock)
    return code, out.getvalue(), err.getvalue()


class FakeApiServer(BaseHTTPRequestHandler):
    isvc: dict[str, Any] | None = None
    requests: list[tuple[str, str, str, bytes]] = []

    def _send(self, code: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        type(self).requests.append(
            (self.command, self.path, self.headers.get("Content-Type", ""), body)
        )
        expected = f"/apis/serving.kserve.io/v1beta1/namespaces/{NS}/inferenceservices/{NAME}"
        if self.path.partition("?")[0] != expected or type(self).isvc is None:
            self._send(
                404,
                {
                    "kind": "Status",
                    "status": "Failure",
                    "reason": "NotFound",
                    "message": "not found",
                    "code": 404,
                },
            )
            return
        if self.command == "PATCH":
            type(self).isvc = merge_patch(type(self).isvc, json.loads(body))
        self._send(200, type(self).isvc or {})

    do_GET = _handle
    do_PATCH = _handle

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass
