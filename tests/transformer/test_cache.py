import asyncio

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from transformer.cache import LiveVersions, PredictionWriter, request_keys
from transformer.metrics import Metrics

pytestmark = pytest.mark.unit


def test_request_keys_are_canonical():
    cols = {"b": np.array([1.5, 2.0]), "a": np.array([3, 4])}
    assert request_keys(cols, ["b", "a"], 2) == ["a=3|b=1.5", "a=4|b=2.0"]
    assert request_keys(cols, [], 2) == ["", ""]


def test_live_versions_expire():
    now = [0.0]
    v = LiveVersions(10, clock=lambda: now[0])
    v.note("a")
    now[0] = 5
    v.note("b")
    assert v.live() == {"a", "b"}
    now[0] = 12
    assert v.live() == {"b"}


def rows(n, start=0):
    ids = np.arange(start, start + n)
    return ids, ids / 100.0, "v1", ids * 10, [f"k{i}" for i in ids]


def test_writer_batches_in_the_background_and_flushes_on_close():
    written = []

    async def sink(df):
        await asyncio.sleep(0.01)
        written.append(df)

    registry = CollectorRegistry()

    async def go():
        w = PredictionWriter(sink, "user_id", Metrics(registry), batch_rows=4)
        assert w.submit(*rows(10)) == 0
        await w.close()

    asyncio.run(go())
    assert [len(df) for df in written] == [4, 4, 2]
    df = written[0]
    assert list(df.columns) == [
        "user_id",
        "score",
        "model_version",
        "features_timestamp",
        "request_key",
        "event_timestamp",
    ]
    assert df["user_id"].tolist() == [0, 1, 2, 3] and df["request_key"].tolist()[0] == "k0"
    assert registry.get_sample_value("transformer_writeback_rows_total") == 10


def test_full_queue_drops_and_counts_without_blocking():
    gate = asyncio.Event
    registry = CollectorRegistry()

    async def go():
        release = gate()

        async def sink(df):
            await release.wait()

        w = PredictionWriter(sink, "user_id", Metrics(registry), queue_size=3)
        dropped = w.submit(*rows(5))
        release.set()
        await w.close()
        return dropped

    dropped = asyncio.run(go())
    assert dropped == 2 and registry.get_sample_value("transformer_writeback_dropped_total") == 2


def test_failed_write_is_counted_not_raised():
    async def sink(df):
        raise ConnectionError("redis down")

    registry = CollectorRegistry()

    async def go():
        w = PredictionWriter(sink, "user_id", Metrics(registry))
        w.submit(*rows(3))
        await w.close()

    asyncio.run(go())
    assert registry.get_sample_value("transformer_writeback_failures_total") == 3
    assert registry.get_sample_value("transformer_writeback_rows_total") == 0
