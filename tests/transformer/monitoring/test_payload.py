"""Payload logging: sampling, hashed keys, a bounded queue that drops, failures that never
reach the request."""

import asyncio
import json

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from transformer.monitoring.payload import PayloadLogger, hash_key

pytestmark = pytest.mark.unit


class FakeRedis:
    def __init__(self, fail: bool = False):
        self.entries: list[tuple[str, dict, int]] = []
        self.fail = fail

    async def xadd(self, stream, fields, maxlen, approximate):
        if self.fail:
            raise ConnectionError("redis down")
        self.entries.append((stream, fields, maxlen))

    async def aclose(self):
        pass


def make(client, registry, draws=None, queue_size=10, salt="s3cret", features=("a", "b")):
    it = iter(draws) if draws is not None else None
    return PayloadLogger(
        client, "payloads", 0.5, queue_size, 1000,
        list(features) if features else None, "sklearn-1", salt, registry,
        draw=(lambda: next(it)) if it else (lambda: 0.0),
    )  # fmt: skip


def batch(n=2):
    x = np.arange(2.0 * n).reshape(n, 2)
    return x, np.array([0.25] + [np.nan] * (n - 1)), np.arange(40, 40 + n, dtype=np.int64)


def count(registry, name):
    """A payload logger counter, read through the registry it was given."""
    return registry.get_sample_value(f"transformer_payload_{name}_total")


async def drain(p, registry, expected):
    """Run the writer until ``expected`` entries were written or failed (at most 5 s)."""
    await p.start()
    for _ in range(500):
        if count(registry, "logged") + count(registry, "failures") >= expected:
            break
        await asyncio.sleep(0.01)
    await p.stop()


def test_sampled_entries_have_hashed_keys_scores_and_features():
    redis = FakeRedis()
    registry = CollectorRegistry()
    p = make(redis, registry, draws=[0.1, 0.9, 0.2])  # rate 0.5: first and third sampled

    async def go():
        for _ in range(3):
            p.offer(*batch())
        await drain(p, registry, 2)

    asyncio.run(go())
    assert len(redis.entries) == 2
    stream, fields, maxlen = redis.entries[0]
    assert stream == "payloads" and maxlen == 1000 and fields["model_version"] == "sklearn-1"
    keys = json.loads(fields["keys"])
    assert keys == [hash_key("s3cret", 40), hash_key("s3cret", 41)] and "40" not in fields["keys"]
    assert json.loads(fields["scores"]) == [0.25, None]
    assert json.loads(fields["features"]) == {"a": [0.0, 2.0], "b": [1.0, 3.0]}


def test_keys_in_clear_and_no_features_when_asked():
    redis = FakeRedis()
    registry = CollectorRegistry()
    p = make(redis, registry, salt=None, features=None)

    async def go():
        p.offer(*batch())
        await drain(p, registry, 1)

    asyncio.run(go())
    (_, fields, _) = redis.entries[0]
    assert json.loads(fields["keys"]) == [40, 41] and "features" not in fields


def test_full_queue_drops_without_waiting_and_failures_are_counted():
    redis = FakeRedis(fail=True)
    registry = CollectorRegistry()
    p = make(redis, registry, queue_size=2)

    async def go():
        for _ in range(5):  # nothing drains the queue yet: 2 queued, 3 dropped
            p.offer(*batch())
        assert count(registry, "dropped") == 3
        await drain(p, registry, 2)

    asyncio.run(go())
    assert count(registry, "failures") == 2 and count(registry, "logged") == 0


def test_unreachable_redis_is_a_counted_failure():
    import redis.asyncio as aioredis

    from devtools.stack import free_port

    client = aioredis.from_url(f"redis://127.0.0.1:{free_port()}", socket_connect_timeout=1)
    registry = CollectorRegistry()
    p = make(client, registry)

    async def go():
        p.offer(*batch())
        await drain(p, registry, 1)

    asyncio.run(go())
    assert count(registry, "failures") == 1
