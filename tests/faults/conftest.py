"""The real stack for fault injection: one redis-server with an append-only file (so a
SIGKILL + restart on the same port and data dir reloads it), Feast materialized into it,
and per test a predictor + transformer with the flags the test needs."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from devtools import stack
from tests.faults.probes import wait_ping
from tests.servers import features_on


@pytest.fixture(scope="session")
def aof_redis() -> Iterator[stack.Redis]:
    with stack.redis_server(appendfsync="everysec") as r:
        yield r


@pytest.fixture(scope="session")
def aof_features(tmp_path_factory, aof_redis) -> stack.FeatureEnv:
    return features_on(tmp_path_factory, aof_redis)


@pytest.fixture
def redis_up(aof_redis, aof_features) -> Iterator[stack.Redis]:
    """The AOF redis-server, running and answering; left running after the test."""
    yield aof_redis
    if aof_redis.proc.poll() is None:
        aof_redis.proc.send_signal(signal.SIGCONT)
    else:
        aof_redis.restart()
    wait_ping(aof_redis)
    time.sleep(0.3)  # a transformer shared with the next test closes its breaker by then
