"""The transformer's prediction_id output: present with the bandit's recorder, absent without."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from tests.transformer.harness import call, make, outputs, v2
from transformer.multimodel.bandit import BanditMetrics
from transformer.multimodel.feedback import PredictionRecorder

pytestmark = pytest.mark.unit


class NoRedis:
    """Records are written by a background task; these tests only look at the queue."""


def with_recorder():
    model, _ = make()
    rec = PredictionRecorder(NoRedis(), "t", 60.0, 100, BanditMetrics(CollectorRegistry()))
    rec._run = lambda: asyncio.sleep(0)  # type: ignore[method-assign]  # no writer task
    model.recorder = rec
    return model, rec


def test_every_scored_row_gets_an_id_and_a_record():
    model, rec = with_recorder()
    out = outputs(call(model, v2([1, 99, 2])))
    ids = out["prediction_id"]
    assert ids[1] == "" and ids[0] and ids[2] and ids[0] != ids[2]  # 99: default answer
    queued = [rec.queue.get_nowait() for _ in range(rec.queue.qsize())]
    assert [(q[0], q[1], q[2], q[3]) for q in queued] == [
        (ids[0], "sklearn-abc", 1, 0.9),
        (ids[2], "sklearn-abc", 2, 0.1),
    ]
    assert {"name": "prediction_id", "datatype": "BYTES", "shape": [-1]} in (
        model.get_output_types()
    )


def test_v1_rows_carry_the_id_too():
    model, _ = with_recorder()
    body = {"instances": [{"user_id": 1, "hour": 3}]}
    (row,) = call(model, body)["predictions"]
    assert row["prediction_id"] and row["model_version"] == "sklearn-abc"


def test_no_recorder_no_output():
    model, _ = make()
    assert "prediction_id" not in outputs(call(model, v2([1])))
    assert all(o["name"] != "prediction_id" for o in model.get_output_types())


def test_a_full_queue_drops_records_not_requests():
    model, rec = with_recorder()
    rec.queue = asyncio.Queue(1)
    ids = outputs(call(model, v2([1, 2, 3])))["prediction_id"]
    assert all(ids) and rec.queue.qsize() == 1  # every row answered, with an id
    assert rec.metrics.records_dropped._value.get() == 2.0
