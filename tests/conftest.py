"""Session fixtures that start real parts: redis-server, Feast repos, model servers.

Nothing here starts unless a test asks for it, so ``-m unit`` stays fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools import stack
from tests.servers import N_USERS, copy_repo, features_on


@pytest.fixture(scope="session")
def redis() -> Iterator[stack.Redis]:
    with stack.redis_server() as r:
        yield r


@pytest.fixture(scope="session")
def sqlite_features(tmp_path_factory) -> stack.FeatureEnv:
    fenv = stack.FeatureEnv(copy_repo(tmp_path_factory.mktemp("fs") / "feature_repo"))
    stack.prepare_features(fenv, n_users=N_USERS, force=True)
    return fenv


@pytest.fixture(scope="session")
def redis_features(tmp_path_factory, redis) -> stack.FeatureEnv:
    return features_on(tmp_path_factory, redis)


@pytest.fixture(scope="session")
def model_dir(sqlite_features, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("models") / "sklearn"
    stack.ensure_model(sqlite_features.repo, out, "sklearn")
    return out


@dataclass
class Stack:
    ports: stack.Ports
    grpc_ports: stack.Ports  # the transformer that talks gRPC to the predictor
    predictor: stack.Server
    transformer: stack.Server
    transformer_grpc: stack.Server
    features: stack.FeatureEnv
    model_dir: Path

    @property
    def url(self) -> str:
        return self.transformer.url


@pytest.fixture(scope="session")
def local_stack(redis_features, model_dir, tmp_path_factory) -> Iterator[Stack]:
    """Predictor + a REST-forwarding and a gRPC-forwarding transformer, Feast on Redis."""
    logs = tmp_path_factory.mktemp("logs")
    ports = stack.Ports.free()
    grpc_ports = stack.Ports(
        ports.predictor_http, ports.predictor_grpc, stack.free_port(), stack.free_port()
    )
    pred = stack.start_predictor(model_dir, ports, logs)
    servers = [pred]
    try:
        stack.wait_ready(pred)
        tr = stack.start_transformer(redis_features, ports, "v2", logs, ["--max_batch_size", "500"])
        tg = stack.start_transformer(
            redis_features, grpc_ports, "grpc-v2", logs, ["--max_batch_size", "500"]
        )
        servers += [tr, tg]
        stack.wait_ready(tr)
        stack.wait_ready(tg)
        yield Stack(ports, grpc_ports, pred, tr, tg, redis_features, model_dir)
    finally:
        stack.stop(*servers)
