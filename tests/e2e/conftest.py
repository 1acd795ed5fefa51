"""The e2e suite runs against a base URL: a kind cluster (E2E_BASE_URL, optional
E2E_HOST_HEADER for Kourier's routing) or, when E2E_BASE_URL is unset, a local stack that this
fixture starts: redis-server, Feast on Redis, the predictor and the transformer in cached mode,
all on loopback.

gRPC on a cluster: KServe gives a Knative component one port (REST here), so the transformer's
v2 gRPC server (:8081 in the same container) has no route through Kourier. Either name an
endpoint (E2E_GRPC_TARGET=host:port) or set E2E_GRPC_PORT_FORWARD=1 (the kind deploy writes
it): the suite wakes the transformer over REST, then ``kubectl port-forward``s a local port to
:8081 of a running transformer pod for the gRPC tests."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.e2e.kube import kubectl_port_forward
from tests.servers import serving

TRANSFORMER_GRPC_PORT = 8081


@dataclass(frozen=True)
class Target:
    base_url: str
    host_header: str | None
    grpc_target: str | None  # None: the deployment exposes no gRPC endpoint to the suite
    model: str
    grpc_port_forward: bool = False  # cluster: reach gRPC by kubectl port-forward
    token: str | None = None  # bearer token of scope "infer" (E2E_TOKEN); None: auth off
    write_token: str | None = None  # scope "write", for the producer (E2E_WRITE_TOKEN)
    # the local stack's predictor (v2 REST host:port): its stream worker scores there, as the
    # cluster's does; None against a cluster
    predictor_host: str | None = None

    def client(self, **kw) -> httpx.Client:
        headers = {"Host": self.host_header} if self.host_header else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30, **kw)

    @property
    def write_headers(self) -> dict[str, str]:
        """Headers of a producer write (the write token in place of the infer one)."""
        return {"Authorization": f"Bearer {self.write_token}"} if self.write_token else {}

    @property
    def grpc_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    @property
    def grpc_options(self) -> list[tuple[str, str]]:
        if self.host_header and not self.grpc_port_forward:
            return [("grpc.default_authority", self.host_header)]
        return []


@pytest.fixture(scope="session")
def target(request, tmp_path_factory) -> Iterator[Target]:
    model = os.environ.get("E2E_MODEL_NAME", "click-model")
    base = os.environ.get("E2E_BASE_URL", "").rstrip("/")
    if base:
        yield Target(
            base,
            os.environ.get("E2E_HOST_HEADER") or None,
            os.environ.get("E2E_GRPC_TARGET") or None,
            model,
            grpc_port_forward=os.environ.get("E2E_GRPC_PORT_FORWARD") == "1",
            token=os.environ.get("E2E_TOKEN") or None,
            write_token=os.environ.get("E2E_WRITE_TOKEN") or None,
        )
        return
    fenv = request.getfixturevalue("redis_features")
    model_dir = request.getfixturevalue("model_dir")
    logs = tmp_path_factory.mktemp("e2e-logs")
    # with auth on, as deployed
    token, write_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    tokens = logs / "tokens"
    tokens.write_text(f"infer:{token}\nwrite:{write_token}\n")
    args = ("--mode", "cached", "--auth_tokens_file", str(tokens))
    with serving(fenv, model_dir, logs, *args) as (tr, _, ports):
        grpc = f"127.0.0.1:{ports.transformer_grpc}"
        yield Target(
            tr.url,
            None,
            grpc,
            model,
            token=token,
            write_token=write_token,
            predictor_host=f"127.0.0.1:{ports.predictor_http}",
        )


@pytest.fixture
def http(target: Target) -> Iterator[httpx.Client]:
    with target.client() as c:
        yield c


@pytest.fixture
def grpc_target(target: Target) -> Iterator[str]:
    """host:port of the transformer's v2 gRPC server, or a skip that says why there is none."""
    if target.grpc_target:
        yield target.grpc_target
        return
    if not target.grpc_port_forward:
        if os.environ.get("E2E_REQUIRE_CLUSTER") == "1":
            pytest.fail("E2E_REQUIRE_CLUSTER=1 but no E2E_GRPC_TARGET or E2E_GRPC_PORT_FORWARD=1")
        pytest.skip("no gRPC endpoint: set E2E_GRPC_TARGET or E2E_GRPC_PORT_FORWARD=1")
    with target.client() as http:
        # Wakes a scaled-to-zero transformer (through the activator) and keeps it busy.
        r = http.get(f"/v2/models/{target.model}/ready", timeout=300)
        assert r.status_code == 200, f"transformer not ready: {r.status_code} {r.text[:200]}"
    namespace = os.environ.get("E2E_NAMESPACE", "feast-inference")
    with kubectl_port_forward(
        namespace,
        f"serving.kserve.io/inferenceservice={target.model},feast-kserve.io/component=transformer",
        TRANSFORMER_GRPC_PORT,
        os.environ.get("E2E_KUBE_CONTEXT") or None,
    ) as local:
        yield local
