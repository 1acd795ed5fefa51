"""The transformer model wired to fakes (reader, predictor client, write-back), and the calls
the model tests make: shared by tests/transformer/test_model.py and the multimodel tests."""

import asyncio

from kserve.protocol.infer_type import InferInput, InferRequest
from prometheus_client import CollectorRegistry

from tests.transformer.fakes import FakeClient, FakeReader
from transformer.cache import Freshness
from transformer.metrics import Metrics
from transformer.model import FeastTransformer
from transformer.policy import build_policy
from transformer.rules import BusinessRules


class RecordingWriter:
    def __init__(self):
        self.rows = []

    def submit(self, user_ids, scores, version, features_ts, keys, written_at=None):
        self.rows += list(
            zip(user_ids.tolist(), scores.tolist(), [version] * len(keys), keys, strict=True)
        )
        return 0

    async def close(self):
        return None


class Harness(FeastTransformer):
    """The model, with the write-back queue and freshness rule the test inspects."""

    writer: RecordingWriter
    freshness: Freshness | None


def make(rules=None, mode="online", fallback="model", registry=None):
    client = FakeClient()
    metrics = Metrics(registry or CollectorRegistry())
    writer = RecordingWriter()
    policy = build_policy(
        mode, max_age_s=3600, metrics=metrics, writer=lambda: writer, fallback=fallback
    )
    model = Harness(
        "click-model",
        FakeReader(),
        lambda: client,
        rules or BusinessRules(),
        policy,
        metrics,
        max_batch_size=100,
    )
    model.writer = writer  # written to by the cached policy only
    model.freshness = getattr(policy, "freshness", None)
    return model, client


def v2(ids, params=None):
    n = len(ids)
    return InferRequest(
        "click-model",
        [InferInput("user_id", [n], "INT64", ids), InferInput("hour", [n], "INT64", [1] * n)],
        parameters=params,
    )


def call(model, body):
    response, _ = asyncio.run(model(body))
    return response


def outputs(response):
    return {o.name: o.data for o in response.outputs}
