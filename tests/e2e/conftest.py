"""The e2e suite runs against a base URL: a kind cluster (E2E_BASE_URL, optional
E2E_HOST_HEADER for Kourier's routing, E2E_GRPC_TARGET) or, when E2E_BASE_URL is unset, a
local stack that this fixture starts: redis-server, Feast on Redis, the predictor and the
transformer in cached mode, all on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import serving


@dataclass(frozen=True)
class Target:
    base_url: str
    host_header: str | None
    grpc_target: str | None  # None: the deployment exposes no gRPC endpoint to the suite
    model: str

    def client(self, **kw) -> httpx.Client:
        headers = {"Host": self.host_header} if self.host_header else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30, **kw)

    @property
    def grpc_options(self) -> list[tuple[str, str]]:
        return [("grpc.default_authority", self.host_header)] if self.host_header else []


@pytest.fixture(scope="session")
def target(request, tmp_path_factory) -> Iterator[Target]:
    model = os.environ.get("E2E_MODEL_NAME", "click-model")
    base = os.environ.get("E2E_BASE_URL", "").rstrip("/")
    if base:
        # KServe gives a Serverless component one port (REST here); gRPC needs its own h2c
        # endpoint, so the cluster run names it explicitly or the gRPC test says why it skips.
        grpc = os.environ.get("E2E_GRPC_TARGET") or None
        yield Target(base, os.environ.get("E2E_HOST_HEADER") or None, grpc, model)
        return
    fenv = request.getfixturevalue("redis_features")
    model_dir = request.getfixturevalue("model_dir")
    logs = tmp_path_factory.mktemp("e2e-logs")
    with serving(fenv, model_dir, logs, "--mode", "cached") as (tr, _, ports):
        yield Target(tr.url, None, f"127.0.0.1:{ports.transformer_grpc}", model)


@pytest.fixture
def http(target: Target) -> Iterator[httpx.Client]:
    with target.client() as c:
        yield c
