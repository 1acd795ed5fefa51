"""Fakes of the bandit's tests: arms that answer or fail on demand, a settable clock, and a
``BanditClient`` over them without Redis."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry

from transformer.multimodel.bandit import Arm, BanditClient, BanditMetrics, SharedStats, Thompson
from transformer.predictor_client import Prediction


class FakeArm:
    def __init__(self, version: str, error: Exception | None = None):
        self.version, self.error, self.calls = version, error, 0

    async def infer(self, features, matrix):
        self.calls += 1
        if self.error is not None:
            raise self.error
        return Prediction(np.full(matrix.shape[0], 0.5), self.version)

    async def close(self):
        return None


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def client(arms: list[FakeArm], clock: Clock, registry=None):
    metrics = BanditMetrics(registry or CollectorRegistry())
    policy = Thompson(0.0)
    stats = SharedStats(None, "t", [a.version for a in arms], 1.0, policy, metrics)
    stats.ensure_started = lambda: None  # type: ignore[method-assign]  # no Redis here
    c = BanditClient([Arm(a.version, a) for a in arms], policy, stats, metrics, 1.0, 0, clock)
    return c, stats, metrics
