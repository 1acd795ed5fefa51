"""Is the fault-injection redis-server answering? (PING with a short timeout.)"""

from __future__ import annotations

import time

import redis as redis_py

from devtools import stack


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
