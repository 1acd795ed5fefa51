"""Direct Redis reads return exactly what Feast's SDK returns, for every feature type in the
repo, known and unknown users, with and without the predictions view."""

import asyncio
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from predictor.protocol.artifact import FeatureSpec
from transformer.features import FeatureReader, open_store

pytestmark = pytest.mark.integration

MODEL_FEATURES = [
    FeatureSpec(name="user_data__click_through_rate", datatype="FP32"),
    FeatureSpec(name="user_data__number_of_clicks", datatype="INT64"),
    FeatureSpec(name="user_request_features__engagement_ratio", datatype="FP64"),
    FeatureSpec(name="user_request_features__is_peak_hour", datatype="INT64"),
]


def make_readers(redis_features):
    mp = pytest.MonkeyPatch()
    for k, v in redis_features.env.items():
        mp.setenv(k, v)
    store = open_store(redis_features.repo, None)
    make = lambda direct: FeatureReader(  # noqa: E731
        store, "click_model_v1", MODEL_FEATURES, 30 * 86400.0, "model_predictions", direct
    )
    direct, sdk = make(True), make(False)
    assert direct.direct is not None and sdk.direct is None
    now = datetime.now(UTC)
    store.write_to_online_store(
        feature_view_name="model_predictions",
        df=pd.DataFrame(
            {
                "user_id": [3, 4],
                "score": [0.25, 0.75],
                "model_version": ["v1", "v2"],
                "features_timestamp": [123, 456],
                "request_key": ["a=1", ""],
                "event_timestamp": [now, now],
            }
        ),
    )
    mp.undo()
    return direct, sdk


def columns(ids):
    n = len(ids)
    return {
        "user_id": np.array(ids, dtype=np.int64),
        "session_duration_s": np.linspace(1.0, 90.0, n),
        "hour_of_day": np.arange(n, dtype=np.int64) % 24,
    }


BATCH = [*range(1, 60), 77_777_777, 3, 4]


# a batch of one user, known or unknown to the store, takes the same path as a full batch
# (one HMGET per key, all in one round trip): the smallest batch, checked on its own
@pytest.mark.parametrize("ids", [BATCH, [3], [77_777_777]], ids=["batch", "one", "one-unknown"])
@pytest.mark.parametrize("with_predictions", [False, True])
def test_parity_with_the_sdk(redis_features, with_predictions, ids):
    direct, sdk = make_readers(redis_features)

    async def both():  # one event loop: Feast's async Redis client belongs to the loop
        try:
            return [await r.read(columns(ids), with_predictions) for r in (direct, sdk)]
        finally:
            await direct.close()

    (b1, v1), (b2, v2) = asyncio.run(both())
    assert v1 == v2  # every feature of the service, ODFV included, value for value
    np.testing.assert_array_equal(b1.matrix, b2.matrix)
    np.testing.assert_array_equal(b1.missing, b2.missing)
    np.testing.assert_array_equal(b1.feature_ts, b2.feature_ts)
    assert b1.missing.tolist() == [i == 77_777_777 for i in ids]
    if ids == BATCH:
        assert set(v1["user_request_features__is_peak_hour"][:59]) == {0, 1}
    if with_predictions and ids == BATCH:
        c1, c2 = b1.cached, b2.cached
        np.testing.assert_array_equal(c1.present, c2.present)
        np.testing.assert_array_equal(c1.written_ts, c2.written_ts)
        np.testing.assert_array_equal(c1.features_ts, c2.features_ts)
        assert c1.model_version == c2.model_version and c1.request_key == c2.request_key
        np.testing.assert_array_equal(
            np.nan_to_num(c1.score, nan=-1), np.nan_to_num(c2.score, nan=-1)
        )
        assert c1.present.tolist()[-2:] == [True, True] and c1.score[-2:].tolist() == [0.25, 0.75]
        assert c1.request_key[-2:] == ["a=1", ""]


def test_lean_connections_reuse_only_a_clean_connection(redis):
    import redis.asyncio as aioredis

    from transformer.features.redis_direct import LeanConnections

    async def run():
        client = aioredis.Redis(host="127.0.0.1", port=redis.port)
        lean = LeanConnections.for_client(client)
        assert lean is not None
        try:
            assert await lean.run([("SET", "lean:s", "v"), ("GET", "lean:s")]) == [
                b"OK",
                b"v",
            ]  # raw replies
            assert len(lean.idle) == 1  # read every reply: reused
            with pytest.raises(aioredis.ResponseError):
                await lean.run([("HMGET", "lean:s", "f"), ("GET", "lean:s")])
            assert lean.idle == []  # a reply left unread: closed, not reused
            blocked = asyncio.create_task(lean.run([("BLPOP", "lean:empty", 1)]))
            await asyncio.sleep(0.1)
            blocked.cancel()
            with pytest.raises(asyncio.CancelledError):
                await blocked
            assert lean.idle == []  # the BLPOP reply would have gone to the next caller
            assert await lean.run([("GET", "lean:s")]) == [b"v"]
        finally:
            await lean.close()
            await client.aclose()

    asyncio.run(run())
    assert LeanConnections.for_client(object()) is None


def test_a_dead_idle_connection_is_replaced_but_a_timeout_is_not_retried():
    """After a Redis restart the idle connections are dead: the read is sent once more on a
    fresh connection. A paused Redis times out once, at the read timeout, not twice."""
    import signal

    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import TimeoutError as RedisTimeout

    from devtools import stack
    from transformer.features.redis_direct import LeanConnections

    async def run(r):
        client = aioredis.Redis(port=r.port, socket_timeout=0.3, retry=Retry(NoBackoff(), 0))
        lean = LeanConnections.for_client(client)
        assert lean is not None
        try:
            await asyncio.gather(*(lean.run([("PING",)]) for _ in range(3)))
            assert len(lean.idle) == 3
            r.proc.kill()
            r.proc.wait()
            r.restart()
            assert await lean.run([("HMGET", "k", "f")]) == [[None]]
            assert len(lean.idle) == 1  # the other dead ones were dropped, not tried in turn
            r.proc.send_signal(signal.SIGSTOP)
            t0 = time.monotonic()
            with pytest.raises(RedisTimeout):
                await lean.run([("HMGET", "k", "f")])
            assert 0.25 < time.monotonic() - t0 < 0.55  # one read timeout, no retry
            r.proc.send_signal(signal.SIGCONT)
        finally:
            await lean.close()
            await client.aclose()

    with stack.redis_server() as r:
        asyncio.run(run(r))


def test_feast_client_gets_the_time_bounds_and_no_retry(redis_features):
    direct, _ = make_readers(redis_features)

    async def run():
        try:
            client = await direct.redis.get()
            kwargs = client.connection_pool.connection_kwargs
            assert kwargs["socket_timeout"] == 0.3 and kwargs["socket_connect_timeout"] == 0.25
            assert kwargs["retry"].get_retries() == 0
        finally:
            await direct.close()

    asyncio.run(run())
