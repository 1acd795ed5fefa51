"""The circuit breaker: opens after N consecutive failures, fails fast while open, closes on
the first successful probe (after dropping pooled connections), and shows it in metrics."""

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from transformer.errors import FeatureStoreUnavailable
from transformer.features.store_health import StoreBreaker
from transformer.metrics import Metrics

pytestmark = pytest.mark.unit


class Store:
    def __init__(self):
        self.up = True
        self.calls = 0
        self.probes = 0
        self.recovered = 0

    async def op(self):
        self.calls += 1
        if not self.up:
            raise ConnectionError("refused")
        return "ok"

    async def probe(self):
        self.probes += 1
        if not self.up:
            raise ConnectionError("refused")

    async def recover(self):
        self.recovered += 1


def gauge(registry, name):
    return registry.get_sample_value(f"transformer_online_{name}")


def test_opens_fails_fast_probes_and_closes():
    async def scenario():
        registry = CollectorRegistry()
        store, metrics = Store(), Metrics(registry)
        b = StoreBreaker(store.probe, metrics, 3, 0.01, store.recover)
        assert await b.call(store.op) == "ok"
        store.up = False
        for _ in range(2):  # below the threshold: each call reaches the store
            with pytest.raises(ConnectionError):
                await b.call(store.op)
        assert not b.is_open and gauge(registry, "store_up") == 0
        with pytest.raises(ConnectionError):
            await b.call(store.op)
        assert b.is_open and gauge(registry, "store_breaker_open") == 1
        calls = store.calls
        with pytest.raises(FeatureStoreUnavailable, match="failing fast"):
            await b.call(store.op)
        assert store.calls == calls  # refused without touching the store
        await asyncio.sleep(0.05)
        assert b.is_open and store.probes >= 2 and store.recovered == 0
        store.up = True
        await asyncio.sleep(0.05)
        assert not b.is_open and store.recovered == 1
        assert gauge(registry, "store_up") == 1 and gauge(registry, "store_breaker_open") == 0
        assert await b.call(store.op) == "ok"
        await b.close()

    asyncio.run(scenario())


def test_a_success_resets_the_failure_count():
    async def scenario():
        store = Store()
        b = StoreBreaker(store.probe, None, 2, 0.01)
        for _ in range(5):  # fail, succeed, fail, ...: never two in a row
            store.up = False
            with pytest.raises(ConnectionError):
                await b.call(store.op)
            store.up = True
            await b.call(store.op)
        assert not b.is_open and store.probes == 0
        await b.close()

    asyncio.run(scenario())
