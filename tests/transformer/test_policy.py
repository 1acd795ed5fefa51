"""The serving policies on their own: what each mode reads, reuses, defaults and writes."""

import asyncio
import time

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from transformer.cache import NewPredictions
from transformer.features import CachedPredictions, FeatureBatch
from transformer.metrics import Metrics
from transformer.policy import CachedPolicy, OnlinePolicy, PrecomputedPolicy, build_policy

pytestmark = pytest.mark.unit


class Writer:
    def __init__(self):
        self.submitted, self.written = [], []

    def submit(self, user_ids, scores, version, features_ts, keys, written_at=None):
        self.submitted += user_ids.tolist()
        return 0

    async def write(self, rows):
        self.written += rows
        return True


def policy(mode, fallback="model"):
    writer = Writer()
    made = build_policy(
        mode,
        max_age_s=60,
        metrics=Metrics(CollectorRegistry()),
        writer=lambda: writer,
        fallback=fallback,
    )
    return made, writer


def batch(written_ago_s, present=(True, True), versions=("v1", "v1")):
    n = len(present)
    now_us = int(time.time() * 1e6)
    cached = CachedPredictions(
        np.array(present),
        np.full(n, 0.5),
        list(versions),
        np.full(n, now_us),
        ["hour=1"] * n,
        np.array([now_us - int(a * 1e6) for a in written_ago_s]),
    )
    return FeatureBatch(
        ["f"], np.zeros((n, 1)), np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, np.int64), cached
    )


COLUMNS = {"user_id": np.array([1, 2]), "hour": np.array([1, 1])}


def new(n=2):
    return NewPredictions(np.arange(n), np.full(n, 0.5), "v1", np.zeros(n, np.int64), [""] * n)


def test_each_mode_builds_its_policy_and_reads_what_it_needs():
    online, cached, pre = policy("online")[0], policy("cached")[0], policy("precomputed")[0]
    assert type(online) is OnlinePolicy and type(cached) is CachedPolicy
    assert type(pre) is PrecomputedPolicy
    assert not online.reads(True) and cached.reads(True) and pre.reads(True)
    assert not cached.reads(False) and not pre.reads(False)  # "cache": false reads nothing
    assert (online.label, cached.label, pre.label) == ("model", "cache", "precomputed")
    assert cached.refreshes_on_write and not online.refreshes_on_write
    assert not pre.refreshes_on_write


def test_precomputed_reuses_young_rows_of_any_context_and_its_fallback():
    pre, _ = policy("precomputed")
    reused, _ = pre.reuse(batch([10, 120]), COLUMNS, ["hour"])
    assert reused.tolist() == [True, False]  # max_age_s = 60
    assert not pre.must_default(reused, True).any()
    pre, _ = policy("precomputed", fallback="default")
    assert pre.must_default(reused, True).tolist() == [False, True]
    assert not pre.must_default(reused, False).any()  # "cache": false asks the model


def test_cached_reuses_only_live_versions_and_writes_back_on_use_cache():
    cached, writer = policy("cached")
    reused, keys = cached.reuse(batch([1, 1]), COLUMNS, ["hour"])
    assert not reused.any() and keys == ["hour=1", "hour=1"]  # v1 not answered yet
    cached.scored(new(), use_cache=False)
    assert writer.submitted == []
    reused, _ = cached.reuse(batch([1, 1], versions=("v1", "v0")), COLUMNS, ["hour"])
    assert reused.tolist() == [True, False]  # v1 is live now, v0 never was
    cached.scored(new(), use_cache=True)
    assert writer.submitted == [0, 1]
    assert asyncio.run(cached.write_now(new(1))) and len(writer.written) == 1


def test_online_never_reuses_or_writes():
    online, writer = policy("online")
    reused, _ = online.reuse(batch([1, 1]), COLUMNS, ["hour"])
    online.scored(new(), use_cache=True)
    assert not reused.any() and writer.submitted == []
