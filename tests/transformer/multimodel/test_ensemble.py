"""The ensemble client: combination, version derivation, member failures, and the transformer
serving it online and from the cache (fakes; tests/integration/test_ensemble.py runs the
real predictors)."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from kserve.protocol.infer_type import InferInput, InferRequest
from prometheus_client import CollectorRegistry

from tests.transformer.fakes import FEATURES, TABLE, FakeReader
from transformer.cache import Freshness, LiveVersions
from transformer.errors import PredictorRejected, PredictorTimeout, PredictorUnavailable
from transformer.metrics import Metrics
from transformer.model import FeastTransformer
from transformer.multimodel.ensemble import (
    EnsembleClient,
    EnsemblePrediction,
    combine,
    ensemble_version,
    normalized_weights,
)
from transformer.policy import CachedPolicy, OnlinePolicy
from transformer.predictor_client import Prediction
from transformer.rules import BusinessRules, Ensemble, RulesFileError, load_rules

pytestmark = pytest.mark.unit


class Member:
    """A fake predictor: score = factor * x (the first feature), or a failure."""

    def __init__(self, version: str, factor: float, error: Exception | None = None, delay=0.0):
        self.version, self.factor, self.error, self.delay = version, factor, error, delay
        self.calls = 0
        self.cancelled = False
        self.closed = False
        self.started = self.finished = 0.0

    async def infer(self, features, matrix):
        self.calls += 1
        self.started = time.monotonic()
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        self.finished = time.monotonic()
        if self.error is not None:
            raise self.error
        return Prediction(self.factor * matrix[:, 0], self.version)

    async def close(self):
        self.closed = True


def config(w1=1.0, w2=3.0, combine_rule="weighted_mean") -> Ensemble:
    return Ensemble.model_validate(
        {
            "combine": combine_rule,
            "members": [
                {"name": "sklearn", "weight": w1},
                {"name": "xgboost", "host": "127.0.0.1:9", "weight": w2},
            ],
        }
    )


def matrix(*xs: float) -> np.ndarray:
    return np.array([[x, 1.0] for x in xs])


# ------------------------------------------------------------------ combination and versions


def test_weighted_mean_and_mean():
    a, b = np.array([0.2, 0.6]), np.array([0.6, 0.2])
    assert combine([a, b], normalized_weights(config(1, 3))).tolist() == pytest.approx([0.5, 0.3])
    mean = normalized_weights(config(combine_rule="mean", w2=1.0))
    assert combine([a, b], mean).tolist() == pytest.approx([0.4, 0.4])
    assert normalized_weights(config(1, 3)).sum() == pytest.approx(1.0)


def test_version_is_deterministic_and_follows_members_and_weights():
    v = ensemble_version(config(1, 3), ["sklearn-a", "xgboost-b"])
    assert v.startswith("ensemble-") and len(v) == len("ensemble-") + 12
    assert v == ensemble_version(config(1, 3), ["sklearn-a", "xgboost-b"])
    # same shares, same scores: same version
    assert v == ensemble_version(config(2, 6), ["sklearn-a", "xgboost-b"])
    # a member's new model, another share, another rule: new versions, all different
    others = {
        ensemble_version(config(1, 3), ["sklearn-a", "xgboost-c"]),
        ensemble_version(config(1, 3), ["sklearn-c", "xgboost-b"]),
        ensemble_version(config(1, 2), ["sklearn-a", "xgboost-b"]),
        ensemble_version(config(1, 1), ["sklearn-a", "xgboost-b"]),
        ensemble_version(config(1, 1, "mean"), ["sklearn-a", "xgboost-b"]),
    }
    assert len(others) == 5 and v not in others
    # the order members are listed in does not matter
    swapped = Ensemble.model_validate(
        {
            "members": [
                {"name": "xgboost", "weight": 3},
                {"name": "sklearn", "weight": 1},
            ]
        }
    )
    assert ensemble_version(swapped, ["xgboost-b", "sklearn-a"]) == v


def test_infer_combines_members_concurrently():
    a, b = Member("sklearn-a", 1.0, delay=0.2), Member("xgboost-b", 0.5, delay=0.2)
    client = EnsembleClient(config(1, 3), [a, b])
    pred = asyncio.run(client.infer(FEATURES, matrix(0.8, 0.4)))
    # concurrently: each member started before the other one finished
    assert a.started < b.finished and b.started < a.finished
    assert isinstance(pred, EnsemblePrediction)
    # 0.25 * x + 0.75 * 0.5x
    assert pred.scores.tolist() == pytest.approx([0.25 * 0.8 + 0.75 * 0.4, 0.25 * 0.4 + 0.75 * 0.2])
    assert pred.model_version == ensemble_version(config(1, 3), ["sklearn-a", "xgboost-b"])
    assert list(pred.members) == ["sklearn", "xgboost"]
    assert pred.members["xgboost"].scores.tolist() == [0.4, 0.2]
    assert pred.members["xgboost"].model_version == "xgboost-b"
    asyncio.run(client.close())
    assert a.closed and b.closed


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (PredictorUnavailable("cannot reach the predictor at 127.0.0.1:9: refused"), 503),
        (PredictorTimeout("predictor did not answer within 2.0s"), 504),
        (PredictorRejected("predictor answered 500: boom"), 502),
    ],
)
def test_a_failing_member_fails_the_request_naming_it_and_cancels_the_others(error, status):
    ok = Member("sklearn-a", 1.0, delay=5.0)
    bad = Member("xgboost-b", 1.0, error=error, delay=0.01)
    client = EnsembleClient(config(), [ok, bad])
    t0 = time.perf_counter()
    with pytest.raises(type(error)) as e:
        asyncio.run(client.infer(FEATURES, matrix(0.5)))
    assert time.perf_counter() - t0 < 4.0  # not the slow member's 5 s: its call was cancelled
    assert ok.cancelled
    assert e.value.status == status
    assert e.value.reason.startswith("ensemble member 'xgboost': ")
    assert error.reason in e.value.reason


def test_a_bug_in_a_member_is_not_swallowed():
    client = EnsembleClient(config(), [Member("a", 1.0), Member("b", 1.0, error=KeyError("x"))])
    with pytest.raises(KeyError):
        asyncio.run(client.infer(FEATURES, matrix(0.5)))


# ------------------------------------------------------------------ the rules file


def test_rules_file_with_an_ensemble(tmp_path):
    p = tmp_path / "rules.yaml"
    p.write_text(
        "ensemble:\n  combine: weighted_mean\n  members:\n"
        "    - {name: sklearn, weight: 0.3}\n"
        "    - {name: xgboost, host: 'xgb:8080', model_name: m2, protocol: grpc-v2, weight: 0.7}\n"
    )
    rules = load_rules(p)
    assert rules.ensemble is not None
    assert [m.name for m in rules.ensemble.members] == ["sklearn", "xgboost"]
    assert rules.ensemble.members[0].host is None
    assert rules.ensemble.members[1].protocol == "grpc-v2"
    assert load_rules(None).ensemble is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("members: [{name: a}]", "ensemble.members: Tuple should have at least 2 items"),
        ("members: [{name: a, weight: 0}, {name: b}]", "ensemble.members.0.weight"),
        ("members: [{name: a, weight: -1}, {name: b}]", "ensemble.members.0.weight"),
        ("members: [{name: a}, {name: a}]", "duplicate name(s) ['a']"),
        ("members: [{name: a}, {name: 'B c'}]", "ensemble.members.1.name"),
        ("members: [{name: a}, {name: b, wieght: 2}]", "ensemble.members.1.wieght"),
        ("members: [{name: a}, {name: b, host: ''}]", "ensemble.members.1.host"),
        ("members: [{name: a}, {name: b, protocol: v1}]", "ensemble.members.1.protocol"),
        ("combine: median\nmembers: [{name: a}, {name: b}]", "ensemble.combine"),
        (
            "combine: mean\nmembers: [{name: a, weight: 2}, {name: b}]",
            "weights are set but combine is 'mean'",
        ),
    ],
)
def test_bad_ensemble_config_names_file_and_field(tmp_path, text, message):
    p = tmp_path / "rules.yaml"
    p.write_text("ensemble:\n" + "\n".join("  " + line for line in text.splitlines()))
    with pytest.raises(RulesFileError) as e:
        load_rules(p)
    assert str(p) in str(e.value) and message in str(e.value), str(e.value)


# ------------------------------------------------------------------ in the transformer


class Writer:
    def __init__(self):
        self.rows = []

    def submit(self, user_ids, scores, version, features_ts, keys, written_at=None):
        self.rows += list(
            zip(user_ids.tolist(), scores.tolist(), [version] * len(keys), strict=True)
        )
        return 0

    async def close(self):
        return None


class Clock:
    t = 1000.0

    def __call__(self) -> float:
        return self.t


def transformer(members, mode="online", clock=None):
    client = EnsembleClient(config(1, 3), members)
    metrics = Metrics(CollectorRegistry())
    writer = Writer()
    freshness = Freshness(3600, LiveVersions(3600, clock or Clock()))
    policy = CachedPolicy(freshness, writer, metrics) if mode == "cached" else OnlinePolicy()
    model = FeastTransformer(
        "click-model",
        FakeReader(),
        lambda: client,
        BusinessRules(ensemble=config(1, 3)),
        policy,
        metrics,
        max_batch_size=100,
    )
    model.writer = writer  # what the cached policy wrote back
    return model


def ask(model, ids, params=None):
    n = len(ids)
    body = InferRequest(
        "click-model",
        [InferInput("user_id", [n], "INT64", ids), InferInput("hour", [n], "INT64", [1] * n)],
        parameters=params,
    )
    response, _ = asyncio.run(model(body))
    return {o.name: o.data for o in response.outputs}


def test_return_members_adds_each_members_score_and_version():
    model = transformer([Member("sklearn-a", 1.0), Member("xgboost-b", 0.5)])
    out = ask(model, [1, 99], {"return_members": True})
    version = ensemble_version(config(1, 3), ["sklearn-a", "xgboost-b"])
    assert out["model_version"] == [version, ""]
    assert out["score"][0] == pytest.approx(0.25 * 0.9 + 0.75 * 0.45)
    assert out["member_score__sklearn"][0] == 0.9
    assert out["member_score__xgboost"][0] == 0.45
    assert np.isnan(out["member_score__xgboost"][1])  # unknown user: nobody scored it
    assert out["member_version__sklearn"] == ["sklearn-a", ""]
    assert out["member_version__xgboost"] == ["xgboost-b", ""]
    assert "member_score__sklearn" not in ask(model, [1])  # only when asked


def test_return_members_in_v1():
    model = transformer([Member("sklearn-a", 1.0), Member("xgboost-b", 0.5)])
    response, _ = asyncio.run(
        model({"instances": [{"user_id": 2, "hour": 1}], "parameters": {"return_members": True}})
    )
    (row,) = response["predictions"]
    assert row["members"] == {
        "sklearn": {"score": 0.1, "model_version": "sklearn-a"},
        "xgboost": {"score": 0.05, "model_version": "xgboost-b"},
    }


def now_us():
    return int(time.time() * 1e6)


def test_cached_mode_serves_an_ensemble_prediction_until_a_member_changes():
    clock = Clock()
    sk, xgb = Member("sklearn-a", 1.0), Member("xgboost-b", 0.5)
    model = transformer([sk, xgb], mode="cached", clock=clock)
    first = ask(model, [1])
    v1 = first["model_version"][0]
    assert first["prediction_source"] == ["model"] and v1.startswith("ensemble-")
    # the write-back carries the ensemble's version, as one model's would
    assert model.writer.rows == [(1, pytest.approx(first["score"][0]), v1)]
    fts = int((time.time() - TABLE[1][2]) * 1e6)
    model.reader.cache = {1: (first["score"][0], v1, fts, "hour=1", now_us())}
    hit = ask(model, [1], {"return_members": True})
    assert hit["prediction_source"] == ["cache"] and hit["model_version"] == [v1]
    assert np.isnan(hit["member_score__sklearn"][0])  # members did not run for a cache hit
    assert sk.calls == xgb.calls == 1
    # the xgboost member rolls out a new model: the ensemble answers with a new version
    xgb.version = "xgboost-c"
    v2 = ask(model, [2])["model_version"][0]
    assert v2.startswith("ensemble-") and v2 != v1
    # while both ensemble versions are live (a rollout), the cached row still counts ...
    assert ask(model, [1])["prediction_source"] == ["cache"]
    # ... once the old one has not answered for the version TTL, it is a miss, recomputed
    clock.t += 3601
    ask(model, [2])  # the new version answers again (noted at the new time)
    after = ask(model, [1])
    assert after["prediction_source"] == ["model"] and after["model_version"] == [v2]
    assert model.writer.rows[-1][2] == v2
