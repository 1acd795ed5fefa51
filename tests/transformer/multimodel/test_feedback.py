"""Prediction records and the feedback script against a real redis-server; parsing as units."""

from __future__ import annotations

import asyncio
import time
import uuid

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from transformer.multimodel.arms import redis_client
from transformer.multimodel.bandit import BanditMetrics, SharedStats, Thompson
from transformer.multimodel.feedback import (
    FeedbackError,
    FeedbackService,
    PredictionRecorder,
    parse_feedback,
)


@pytest.mark.unit
@pytest.mark.parametrize(
    "body, message",
    [
        ({"reward": 1}, "needs 'prediction_id'"),
        ({"prediction_id": "x", "reward": 2}, "'reward' must be 0 or 1"),
        ({"prediction_id": "x", "reward": 1.0}, "'reward' must be 0 or 1"),
        ({"prediction_id": 7, "reward": 1}, "'prediction_id' must be a string"),
        ({"prediction_id": "x", "user_id": 1, "reward": 1}, "not both"),
        ({"user_id": 1, "reward": 1}, "'model_version' must be a non-empty string"),
        ({"user_id": "1", "model_version": "v", "reward": 1}, "'user_id' (an integer)"),
        ({"prediction_id": "x", "reward": 1, "extra": 1}, "unknown fields ['extra']"),
        ({"feedback": []}, "non-empty list"),
        ({"feedback": [{"prediction_id": "x", "reward": 1}, 3]}, "feedback[1]: must be an object"),
        ({"feedback": [{"prediction_id": "x", "reward": 1}], "x": 1}, "nothing beside it"),
        ([1, 2], "must be an object"),
    ],
)
def test_bad_feedback_is_named(body, message):
    with pytest.raises(FeedbackError) as e:
        parse_feedback(body)
    assert e.value.status == 400 and message in str(e.value)


@pytest.mark.unit
def test_single_and_batch_forms():
    (one,) = parse_feedback({"prediction_id": "abc", "reward": True})
    assert one.prediction_id == "abc" and one.reward == 1
    two = parse_feedback(
        {
            "feedback": [
                {"user_id": 4, "model_version": "v", "reward": 0},
                {"prediction_id": "p", "reward": 1},
            ]
        }
    )
    assert [(i.user_id, i.model_version, i.reward) for i in two] == [(4, "v", 0), (None, None, 1)]


class Quality:
    def __init__(self):
        self.pairs = []

    def add_pairs(self, scores, outcomes):
        self.pairs += list(zip(scores.tolist(), outcomes.tolist(), strict=True))


class Monitor:
    def __init__(self):
        self.quality = Quality()


@pytest.mark.integration
def test_feedback_is_atomic_idempotent_and_shared(redis):
    async def go():
        r = redis_client(redis.connection_string, 1.0)
        prefix = f"fb-{uuid.uuid4().hex[:8]}"  # the session's Redis holds other tests' data
        registry = CollectorRegistry()
        metrics = BanditMetrics(registry)
        rec = PredictionRecorder(r, prefix, 60.0, 100, metrics, linger_s=5.0)
        monitor = Monitor()
        svc = FeedbackService(rec, metrics, monitor)
        ids = rec.record(np.array([1, 2, 3]), np.array([0.9, 0.2, 0.0]), ["va", "vb", ""])
        assert ids[0] and ids[1] and ids[2] == "" and ids[0] != ids[1]
        await asyncio.sleep(0.05)
        assert await r.exists(rec.record_key(ids[0])) == 0  # lingering: not written yet
        items = parse_feedback(
            {
                "feedback": [
                    {"prediction_id": ids[0], "reward": 1},
                    {"user_id": 2, "model_version": "vb", "reward": 0},
                    {"prediction_id": ids[0], "reward": 0},
                ]
            }
        )
        # feedback on this replica does not wait out the linger, nor miss the records
        t0 = time.monotonic()
        assert await svc.apply(items) == {"received": 3, "applied": 2, "duplicates": 1}
        assert time.monotonic() - t0 < 2.0
        assert 0 < await r.pttl(rec.record_key(ids[0])) <= 60_000
        # the same again, concurrently from two "replicas": nothing more is counted
        again = [svc.apply(parse_feedback({"prediction_id": i, "reward": 1})) for i in ids[:2]]
        assert [x["duplicates"] for x in await asyncio.gather(*again, *again)] == [1, 1, 1, 1]
        stats = SharedStats(r, prefix, ["va", "vb"], 1.0, Thompson(0.0), metrics)
        stats.count_request(0)
        assert await stats.refresh()
        assert [(s.requests, s.trials, s.reward) for s in stats.snapshot] == [(1, 1, 1), (0, 1, 0)]
        assert monitor.quality.pairs == [(0.9, 1), (0.2, 0)]  # exact scores, joined by id
        # unknown ids: nothing applied, every unknown one named
        with pytest.raises(FeedbackError) as e:
            await svc.apply(
                parse_feedback(
                    {
                        "feedback": [
                            {"prediction_id": "nope", "reward": 1},
                            {"prediction_id": ids[1], "reward": 1},
                        ]
                    }
                )
            )
        assert e.value.status == 404 and e.value.unknown == ["nope"]
        with pytest.raises(FeedbackError) as e:
            await svc.apply(parse_feedback({"user_id": 9, "model_version": "va", "reward": 1}))
        assert e.value.unknown == ["user_id=9 model_version=va"]
        assert await stats.refresh()
        assert [s.trials for s in stats.snapshot] == [1, 1]
        assert (
            registry.get_sample_value(
                "transformer_bandit_feedback_items_total", {"result": "unknown"}
            )
            == 2.0
        )
        # expired: the record's TTL ran out
        await r.delete(rec.record_key(ids[1]))
        with pytest.raises(FeedbackError, match="unknown or expired prediction_id: " + ids[1]):
            await svc.apply(parse_feedback({"prediction_id": ids[1], "reward": 1}))
        await r.aclose()

    asyncio.run(go())


@pytest.mark.integration
def test_records_are_dropped_not_waited_for_when_redis_is_down():
    async def go():
        r = redis_client("127.0.0.1:1", 0.2)  # nothing listens
        metrics = BanditMetrics(CollectorRegistry())
        rec = PredictionRecorder(r, "fb", 60.0, 2, metrics)
        ids = rec.record(np.arange(5), np.zeros(5), ["v"] * 5)  # queue holds 2: 3 dropped
        assert len(ids) == 5 and all(ids)
        await rec.flush(5.0)
        stats = SharedStats(r, "fb", ["v"], 1.0, Thompson(0.0), metrics)
        stats.count_request(0)
        assert not await stats.refresh() and stats.pending == [1]  # kept for the next refresh
        await r.aclose()
        return metrics

    metrics = asyncio.run(go())
    assert metrics.records_dropped._value.get() == 5.0
