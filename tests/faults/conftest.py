"""The real stack for fault injection: one redis-server with an append-only file (so a
SIGKILL + restart on the same port and data dir reloads it), Feast materialized into it,
and per test a predictor + transformer with the flags the test needs."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
import redis as redis_py

from devtools import stack
from tests.conftest import features_on


@pytest.fixture(scope="session")
def aof_redis() -> Iterator[stack.Redis]:
    with stack.redis_server(appendfsync="everysec") as r:
        yield r


@pytest.fixture(scope="session")
def aof_features(tmp_path_factory, aof_redis) -> stack.FeatureEnv:
    return features_on(tmp_path_factory, aof_redis)


def ping(r: stack.Redis, timeout_s: float = 0.05) -> bool:
    try:
        with redis_py.Redis(
            port=r.port, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        ) as c:
            return bool(c.ping())
    except (redis_py.RedisError, OSError):
        return False


def wait_ping(r: stack.Redis, timeout_s: float = 10.0) -> float:
    """Poll PING every 5 ms; the monotonic time of the first answer."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ping(r):
            return time.monotonic()
        time.sleep(0.005)
    raise AssertionError("redis-server does not answer PING")


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
