"""The suite's ``kubectl port-forward`` helper (gRPC on a cluster), against a fake kubectl
that lists pods and forwards a loopback port to an echo server, as the real one would; and
the pod query itself with the pinned kubectl against a stand-in API server."""

from __future__ import annotations

import http.server
import json
import socket
import stat
import sys
import textwrap
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import kube
from tests.e2e.kube import kubectl_port_forward, ready_pods

pytestmark = pytest.mark.unit

FAKE_KUBECTL = textwrap.dedent(
    """\
    #!{python}
    import os, socket, sys, time
    args = sys.argv[1:]
    with open(os.environ["FAKE_KUBECTL_LOG"], "a") as log:
        log.write(" ".join(args) + "\\n")
    if "get" in args:
        print(os.environ.get("FAKE_PODS", ""), end="")
    elif "port-forward" in args:
        if os.environ.get("FAKE_FORWARD_FAILS"):
            print("error: unable to forward port because pod is not running")
            sys.exit(1)
        target = int(os.environ["FAKE_TARGET_PORT"])
        srv = socket.create_server(("127.0.0.1", 0))
        preamble = os.environ.get("FAKE_PREAMBLE", "")  # written together with the next line
        print(f"{{preamble}}Forwarding from 127.0.0.1:{{srv.getsockname()[1]}} -> 8081", flush=True)
        conn, _ = srv.accept()
        print("Handling connection for", srv.getsockname()[1], flush=True)
        up = socket.create_connection(("127.0.0.1", target))
        up.sendall(conn.recv(1024))
        conn.sendall(up.recv(1024))
        time.sleep(60)
    """
)


@pytest.fixture
def fake_kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    exe = tmp_path / "bin" / "kubectl"
    exe.parent.mkdir()
    exe.write_text(FAKE_KUBECTL.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(kube, "tool", lambda name: str(exe))
    log = tmp_path / "kubectl.log"
    monkeypatch.setenv("FAKE_KUBECTL_LOG", str(log))
    return log


@pytest.fixture
def echo_port() -> int:
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.sendall(b"echo:" + conn.recv(1024))
        srv.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1]


def test_forwards_a_local_port_to_the_first_ready_pod(
    fake_kubectl: Path, echo_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PODS", "tr-starting False\ntr-ready True\n")
    monkeypatch.setenv("FAKE_TARGET_PORT", str(echo_port))
    with kubectl_port_forward("ns", "app=t", 8081, "kind-x", timeout_s=20) as target:
        host, port = target.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(b"ping")
            assert s.recv(1024) == b"echo:ping"
    calls = fake_kubectl.read_text().splitlines()
    assert calls[0].startswith("--context kind-x get pods -n ns -l app=t -o jsonpath=")
    assert calls[1] == "--context kind-x port-forward -n ns pod/tr-ready :8081 --address 127.0.0.1"


def test_the_forwarding_line_is_found_when_it_arrives_with_others(
    fake_kubectl: Path, echo_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PODS", "tr True\n")
    monkeypatch.setenv("FAKE_TARGET_PORT", str(echo_port))
    monkeypatch.setenv("FAKE_PREAMBLE", "W1129 deprecated flag\nI1129 starting\n")
    with kubectl_port_forward("ns", "app=t", 8081, None, timeout_s=10) as target:
        host, port = target.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(b"ping")
            assert s.recv(1024) == b"echo:ping"


def test_no_ready_pod_fails_naming_the_selector(
    fake_kubectl: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PODS", "tr-starting False\n")
    with pytest.raises(AssertionError, match="no Ready pod matches app=t in ns"):
        with kubectl_port_forward("ns", "app=t", 8081, None, timeout_s=3):
            pass


def test_a_failed_port_forward_reports_what_kubectl_said(
    fake_kubectl: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PODS", "tr True\n")
    monkeypatch.setenv("FAKE_FORWARD_FAILS", "1")
    with pytest.raises(AssertionError, match="pod is not running"):
        with kubectl_port_forward("ns", "app=t", 8081, None, timeout_s=10):
            pass


POD_LIST = {
    "kind": "PodList",
    "apiVersion": "v1",
    "metadata": {},
    "items": [
        {  # running, not ready yet
            "metadata": {"name": "tr-a"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]},
        },
        {  # ready condition left over, but terminating into Succeeded
            "metadata": {"name": "tr-b"},
            "status": {"phase": "Succeeded", "conditions": [{"type": "Ready", "status": "True"}]},
        },
        {
            "metadata": {"name": "tr-c"},
            "status": {
                "phase": "Running",
                "conditions": [
                    {"type": "PodScheduled", "status": "True"},
                    {"type": "Ready", "status": "True"},
                ],
            },
        },
    ],
}


@pytest.fixture
def fake_apiserver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Just enough of the Kubernetes API for `kubectl get pods`: discovery and one PodList."""
    queries: list[str] = []
    discovery = {
        "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
        "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
        "/api/v1": {
            "kind": "APIResourceList",
            "groupVersion": "v1",
            "resources": [
                {
                    "name": "pods",
                    "singularName": "pod",
                    "namespaced": True,
                    "kind": "Pod",
                    "verbs": ["get", "list"],
                },
            ],
        },
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            body: object
            if path == "/api/v1/namespaces/ns/pods":
                queries.append(urllib.parse.urlsplit(self.path).query)
                body = POD_LIST
            elif path in discovery:
                body = discovery[path]
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "fake",
                        "cluster": {"server": f"http://127.0.0.1:{server.server_port}"},
                    }
                ],
                "users": [{"name": "fake", "user": {}}],
                "contexts": [{"name": "kind-fake", "context": {"cluster": "fake", "user": "fake"}}],
                "current-context": "",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("HOME", str(tmp_path))  # no discovery cache from elsewhere
    try:
        yield queries
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.integration
def test_ready_pods_with_the_real_kubectl(fake_apiserver: list[str]) -> None:
    """The jsonpath and the label selector, as the pinned kubectl reads and sends them."""
    assert ready_pods("ns", "a=b,c=d", "kind-fake") == ["tr-c"]
    (query,) = fake_apiserver
    assert urllib.parse.parse_qs(query)["labelSelector"] == ["a=b,c=d"]
