"""The producer in-process: its route over httpx's ASGITransport, fake store and predictor.

The subprocess tests (tests/integration/test_cached_mode.py, test_auth.py, faults/) run it
against real Redis, Feast and the predictor; these pin the route's answers and the logic's
decisions without a server.
"""

import asyncio
from types import SimpleNamespace

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from tests.transformer.fakes import FEATURES, FakeClient, FakeReader
from transformer.errors import FeatureStoreUnavailable, PredictorTimeout
from transformer.metrics import Metrics
from transformer.policy import build_policy
from transformer.producer.core import MAX_ROWS, Producer
from transformer.producer.http import install_route

pytestmark = pytest.mark.unit


class StoreReader(FakeReader):
    """The fake reader with a feature view to write to, recording the writes."""

    model_features = FEATURES

    def __init__(self):
        super().__init__()
        dtype = lambda name: SimpleNamespace(name=name)  # noqa: E731
        view = SimpleNamespace(
            features=[
                SimpleNamespace(name="x", dtype=dtype("FLOAT64")),
                SimpleNamespace(name="k", dtype=dtype("INT64")),
            ]
        )
        self.store = SimpleNamespace(get_feature_view=lambda name: view)
        self.written: list[tuple[str, object]] = []

    async def write(self, view, df):
        if self.down:
            raise FeatureStoreUnavailable("online feature store write failed: refused")
        self.written.append((view, df))


class Sink:
    """The write-back queue of the cached policy: what write_now stores."""

    def __init__(self):
        self.rows = []
        self.ok = True

    async def write(self, rows):
        self.rows += rows
        return self.ok


def make(mode="cached", client=None):
    reader, client = StoreReader(), client or FakeClient()
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    sink = Sink()
    writer = SimpleNamespace(write=sink.write)  # the write-back queue's awaited write
    policy = build_policy(mode, max_age_s=3600, metrics=metrics, writer=lambda: writer)
    producer = Producer(reader, "v", policy, lambda: client, metrics)
    app = Starlette()
    install_route(app, producer)
    return app, reader, client, sink, registry


def post(app, body=None, content=None):
    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            if content is not None:
                return await c.post("/producer/v1/write", content=content)
            return await c.post("/producer/v1/write", json=body)

    return asyncio.run(go())


def test_write_with_context_stores_rows_and_refreshes_predictions():
    app, reader, client, sink, registry = make()
    r = post(app, {"rows": [{"user_id": 1, "x": 0.5, "k": 2, "hour": 7}]})
    assert r.status_code == 200, r.text
    assert r.json()["written"] == 1 and r.json()["refreshed"] == 1
    view, df = reader.written[0]
    assert view == "v" and df["user_id"].tolist() == [1] and "event_timestamp" in df
    assert len(client.calls) == 1  # one predictor call for the refreshed users
    ((user, score, version, _fts, key, _at),) = sink.rows
    assert (user, score, version, key) == (1, 0.9, "sklearn-abc", "hour=7")
    assert registry.get_sample_value("transformer_producer_rows_total") == 1


def test_online_mode_writes_features_only():
    app, reader, client, sink, _ = make("online")
    r = post(app, {"rows": [{"user_id": 1, "x": 0.5, "k": 2}]})
    assert r.status_code == 200 and r.json()["refreshed"] == 0
    assert len(reader.written) == 1 and not client.calls and not sink.rows


def test_without_context_refreshes_the_last_cached_context_only():
    app, reader, _, sink, _ = make()
    reader.cache = {1: (0.3, "sklearn-abc", 0, "hour=5", 0), 2: (0.3, "v", 0, "", 0)}
    rows = [{"user_id": u, "x": 0.5, "k": 2} for u in (1, 2, 3)]
    r = post(app, {"rows": rows})
    assert r.status_code == 200 and r.json() | {"features_timestamp": 0} == {
        "written": 3,
        "refreshed": 1,
        "features_timestamp": 0,
    }
    assert [(row[0], row[4]) for row in sink.rows] == [(1, "hour=5")]
    assert reader.reads == [True, False]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "body is not valid JSON"),
        (b"[]", 'body must be {"rows": [...]}'),
        (b'{"rowz": []}', 'body must be {"rows": [...]}'),
        (b"{}", '"rows" must be a non-empty list of objects'),
        (b'{"rows": "abc"}', '"rows" must be a non-empty list of objects'),
        (b'{"rows": {"user_id": 1}}', '"rows" must be a non-empty list of objects'),
        (b'{"rows": []}', '"rows" must be a non-empty list of objects'),
        (b'{"rows": [1]}', "row 0: must be an object"),
        (b'{"rows": [{"user_id": 1}]}', "row 0: missing ['k', 'x'], unknown []"),
        (b'{"rows": [{"user_id": 1, "x": 1, "k": 1, "y": 2}]}', "unknown ['y']"),
        (b'{"rows": [{"user_id": 1, "x": "a", "k": 1}]}', "'x' must be a FP64 number"),
        (b'{"rows": [{"user_id": 1, "x": 1.0, "k": 1.5}]}', "'k' must be a INT64 number"),
        (b'{"rows": [{"user_id": true, "x": 1.0, "k": 1}]}', "'user_id' must be a INT64"),
        (
            b'{"rows": [{"user_id": 1, "x": 1, "k": 1, "hour": 2},'
            b' {"user_id": 2, "x": 1, "k": 1}]}',
            "request fields on every row or on none",
        ),
    ],
)
def test_bad_bodies_are_400_naming_the_problem(body, message):
    app, reader, client, _, _ = make()
    r = post(app, content=body)
    assert r.status_code == 400 and message in r.json()["error"], r.text
    assert not reader.written and not client.calls


def test_too_many_rows_is_400():
    app, _, _, _, _ = make()
    rows = [{"user_id": 1, "x": 1.0, "k": 1}] * (MAX_ROWS + 1)
    r = post(app, {"rows": rows})
    assert r.status_code == 400 and f"limit of {MAX_ROWS}" in r.json()["error"]


def test_store_down_is_503_and_nothing_refreshed():
    app, reader, client, sink, _ = make()
    reader.down = True
    r = post(app, {"rows": [{"user_id": 1, "x": 0.5, "k": 2, "hour": 7}]})
    assert r.status_code == 503 and "write failed" in r.json()["error"]
    assert not client.calls and not sink.rows


def test_failed_prediction_write_is_503():
    app, _, _, sink, _ = make()
    sink.ok = False
    r = post(app, {"rows": [{"user_id": 1, "x": 0.5, "k": 2, "hour": 7}]})
    assert r.status_code == 503 and "refreshing their predictions failed" in r.json()["error"]


def test_predictor_timeout_is_504():
    class Slow(FakeClient):
        async def infer(self, features, matrix):
            raise PredictorTimeout("predictor did not answer within 2.0s")

    app, reader, _, sink, _ = make(client=Slow())
    r = post(app, {"rows": [{"user_id": 1, "x": 0.5, "k": 2, "hour": 7}]})
    assert r.status_code == 504 and "did not answer" in r.json()["error"]
    assert len(reader.written) == 1 and not sink.rows  # the features were written


def test_ids_of_unknown_users_are_not_scored():
    app, _, client, sink, _ = make()
    r = post(app, {"rows": [{"user_id": 99, "x": 0.5, "k": 2, "hour": 7}]})
    assert r.status_code == 200 and r.json()["refreshed"] == 0  # the fake store has no user 99
    assert not client.calls and not sink.rows
