"""The bandit's policies, configuration and fail-over, with fixed seeds and fake arms."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from tests.transformer.fakes import FEATURES
from tests.transformer.multimodel.fakes import Clock, FakeArm, client
from transformer.errors import PredictorRejected, PredictorTimeout, PredictorUnavailable
from transformer.multimodel.bandit import (
    ArmStats,
    BanditClient,
    BanditConfigError,
    BanditMetrics,
    EpsilonGreedy,
    Policy,
    SharedStats,
    Thompson,
    load_config,
)
from transformer.predictor_client import Prediction

pytestmark = pytest.mark.unit

REFRESH_EVERY = 50  # requests between statistics refreshes (the local copy lags like in serving)


def run(policy: Policy, rates: list[float], n: int, seed: int) -> np.ndarray:
    """``n`` requests, each rewarded 1 with its arm's click rate; the arm picked per request."""
    rng, env = random.Random(seed), random.Random(seed + 10_000)
    live = [ArmStats() for _ in rates]
    snap = [ArmStats() for _ in rates]
    picks = np.empty(n, np.int64)
    arms = list(range(len(rates)))
    for t in range(n):
        a = policy.choose(snap, arms, rng)
        picks[t] = a
        live[a].trials += 1
        live[a].reward += env.random() < rates[a]
        if t % REFRESH_EVERY == 0:
            snap = [ArmStats(s.requests, s.trials, s.reward) for s in live]
    return picks


SEEDS = range(8)


@pytest.mark.parametrize("seed", SEEDS)
def test_thompson_moves_90_percent_to_a_clearly_better_arm_within_2000_rewards(seed):
    # click rates 12 % vs 6 %: after 2,000 rewards the next 2,000 requests go >= 90 % to arm 0
    picks = run(Thompson(floor=0.02, indifference=0.1), [0.12, 0.06], 4000, seed)
    assert (picks[2000:] == 0).mean() >= 0.9


@pytest.mark.parametrize("seed", SEEDS)
def test_epsilon_greedy_moves_90_percent_to_a_clearly_better_arm_within_2000_rewards(seed):
    picks = run(EpsilonGreedy(epsilon=0.1), [0.12, 0.06], 4000, seed)
    assert (picks[2000:] == 0).mean() >= 0.9


@pytest.mark.parametrize("seed", SEEDS)
def test_equal_arms_split_45_55_percent_after_10000_rewards(seed):
    # equal click rates (10 %), indifference 0.2: once 10,000 rewards narrowed the posteriors
    # below the band, the next 20,000 requests split within 45-55 % (measured 49.5-50.6 %)
    picks = run(Thompson(floor=0.02, indifference=0.2), [0.1, 0.1], 30_000, seed)
    assert 0.45 <= (picks[10_000:] == 0).mean() <= 0.55


def test_plain_thompson_does_not_balance_equal_arms():
    """Why the indifference band exists, and proof that the band test above can fail: without
    it, some seeds send equal arms a lopsided split."""
    shares = [(run(Thompson(0.02, 0.0), [0.1, 0.1], 30_000, s)[10_000:] == 0).mean() for s in SEEDS]
    assert any(not 0.45 <= x <= 0.55 for x in shares)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_floor_holds_for_a_hopeless_arm(seed):
    # floor 0.1, two arms: a uniform pick 20 % of the time, so the bad arm keeps >= 10 %
    picks = run(Thompson(floor=0.1), [0.5, 0.01], 8000, seed)
    assert (picks[2000:] == 1).mean() >= 0.09  # 0.1 minus sampling noise of 6,000 picks
    assert (run(Thompson(floor=0.0), [0.5, 0.01], 8000, seed)[2000:] == 1).mean() < 0.02


def test_expected_shares():
    stats = [ArmStats(0, 5000, 600), ArmStats(0, 5000, 300)]
    s = Thompson(0.05).shares(stats)
    assert s.sum() == pytest.approx(1.0)
    assert s[1] == pytest.approx(0.05, abs=1e-9) and s[0] == pytest.approx(0.95, abs=1e-9)
    tied = Thompson(0.0, indifference=0.2).shares([ArmStats(0, 9000, 900)] * 2)
    assert tied == pytest.approx([0.5, 0.5], abs=0.03)
    e = EpsilonGreedy(0.1).shares(stats)
    assert e == pytest.approx([0.95, 0.05])


# --- configuration ---------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bandit.yaml"
    p.write_text(text)
    return p


ARMS = "arms: [{host: '127.0.0.1:1'}, {host: '127.0.0.1:2'}]\n"


def test_config_defaults_and_fields(tmp_path):
    cfg = load_config(write(tmp_path, ARMS + "policy: epsilon_greedy\nepsilon: 0.2\n"))
    assert cfg.policy == "epsilon_greedy" and cfg.epsilon == 0.2 and len(cfg.arms) == 2
    assert cfg.refresh_ms == 250 and cfg.prediction_ttl_s == 3600


@pytest.mark.parametrize(
    "text, named",
    [
        (ARMS + "floor: 0.6\n", "floor"),
        ("arms: [{host: '127.0.0.1:1'}, {host: '127.0.0.1:1'}]\n", "same host"),
        (ARMS + "floor: 0.5\n" + "arms: [{host: 'a:1'}, {host: 'b:1'}, {host: 'c:1'}]\n", ""),
        ("arms: [{host: '127.0.0.1:1'}]\n", "arms"),
        (ARMS + "policy: ucb\n", "policy"),
        (ARMS + "epsilon: 1.5\n", "epsilon"),
        (ARMS + "refresh_ms: 1\n", "refresh_ms"),
        (ARMS + "prediction_ttl_s: 0\n", "prediction_ttl_s"),
        (ARMS + "colour: red\n", "colour"),
        ("arms: [{host: 'a:1', port: 3}, {host: 'b:1'}]\n", "arms.0.port"),
        (ARMS + "key_prefix: 'a b'\n", "key_prefix"),
        ("arms: [", "bandit.yaml"),
    ],
)
def test_config_errors_name_the_file_and_the_field(tmp_path, text, named):
    with pytest.raises(BanditConfigError) as e:
        load_config(write(tmp_path, text))
    assert str(e.value).startswith(str(tmp_path / "bandit.yaml"))
    assert named in str(e.value)


def test_floor_times_arms_over_one_is_refused(tmp_path):
    arms3 = "arms: [{host: 'a:1'}, {host: 'b:1'}, {host: 'c:1'}]\n"
    with pytest.raises(BanditConfigError, match=r"floor: 0\.4 x 3 arms exceeds 1"):
        load_config(write(tmp_path, arms3 + "floor: 0.4\n"))


# --- the composite client: fail-over -----------------------------------------------------------


def infer(c: BanditClient) -> Prediction:
    return asyncio.run(c.infer(FEATURES, np.zeros((2, 2))))


def test_a_failing_arm_is_skipped_counted_and_cooled_down():
    registry = CollectorRegistry()
    bad, good, clock = FakeArm("a", PredictorUnavailable("refused")), FakeArm("b"), Clock()
    c, stats, _ = client([bad, good], clock, registry)
    for _ in range(20):
        assert infer(c).model_version == "b"
    assert bad.calls == 1  # then left out for the cool-down
    assert (
        registry.get_sample_value(
            "transformer_bandit_arm_failures_total", {"arm": "a", "error": "PredictorUnavailable"}
        )
        == 1.0
    )
    assert stats.pending == [0, 20]
    assert registry.get_sample_value("transformer_bandit_requests_total", {"arm": "b"}) == 20.0
    clock.t = 1.5  # cool-down over: tried again when picked, still failing, skipped again
    for _ in range(20):
        assert infer(c).model_version == "b"
    assert bad.calls == 2
    bad.error = None
    clock.t = 3.0
    assert {infer(c).model_version for _ in range(40)} == {"a", "b"}  # back in the choice


@pytest.mark.parametrize(
    "errors, status",
    [
        ([PredictorUnavailable("x"), PredictorTimeout("y")], 503),
        ([PredictorTimeout("x"), PredictorTimeout("y")], 504),
        ([PredictorRejected("x"), PredictorTimeout("y")], 504),
        ([PredictorRejected("x"), PredictorRejected("y")], 502),
    ],
)
def test_only_when_every_arm_fails_the_client_gets_an_error(errors, status):
    arms = [FakeArm("a", errors[0]), FakeArm("b", errors[1])]
    c, _, _ = client(arms, Clock())
    with pytest.raises((PredictorUnavailable, PredictorTimeout, PredictorRejected)) as e:
        infer(c)
    assert e.value.status == status
    assert "every bandit arm failed" in e.value.reason and "a:" in e.value.reason
    assert "b:" in e.value.reason


def test_refresh_parses_the_shared_hash_into_posteriors():
    registry = CollectorRegistry()
    metrics = BanditMetrics(registry)
    stats = SharedStats(None, "t", ["a", "b"], 1.0, Thompson(0.05), metrics)
    stats.apply({b"a|requests": b"10", b"a|trials": b"8", b"a|reward": b"6", b"b|trials": b"2"})
    assert stats.snapshot[0] == ArmStats(10, 8, 6) and stats.snapshot[1] == ArmStats(0, 2, 0)
    assert registry.get_sample_value(
        "transformer_bandit_posterior_mean", {"arm": "a"}
    ) == pytest.approx(7 / 10)
    share = registry.get_sample_value("transformer_bandit_traffic_share", {"arm": "b"})
    assert 0.05 <= share < 0.2


@pytest.mark.parametrize(
    "policy",
    [Thompson(0.05, 0.1), Thompson(0.0, 0.0), EpsilonGreedy(0.1)],
    ids=["thompson", "plain", "epsilon"],
)
def test_picks_drawn_ahead_follow_the_same_distribution_as_choose(policy):
    """The serving path takes its picks from a pool drawn at each refresh (no draws per
    request); it must be the policy's distribution, floor and ties included."""
    stats = [ArmStats(0, 300, 40), ArmStats(0, 300, 33), ArmStats(0, 50, 2)]
    n = 20_000
    pool = policy.pool(stats, n, np.random.default_rng(1))
    rng = random.Random(1)
    one_by_one = [policy.choose(stats, [0, 1, 2], rng) for _ in range(n)]
    a = np.bincount(pool, minlength=3) / n
    b = np.bincount(one_by_one, minlength=3) / n
    assert a == pytest.approx(b, abs=0.015)
    assert a == pytest.approx(policy.shares(stats, draws=20_000), abs=0.015)


def test_the_client_uses_the_pool_only_while_every_arm_is_healthy():
    bad, good, clock = FakeArm("a", PredictorUnavailable("refused")), FakeArm("b"), Clock()
    c, stats, _ = client([bad, good], clock)
    stats.apply({b"a|trials": b"100", b"a|reward": b"90", b"b|trials": b"100", b"b|reward": b"1"})
    assert stats.picks is not None and (stats.picks == 0).mean() > 0.95  # a is the best arm
    before = stats.pick_pos
    assert infer(c).model_version == "b"  # a (from the pool) failed: b answered
    assert stats.pick_pos == before + 1
    for _ in range(10):  # a cools down: choices come from the policy among healthy arms
        assert infer(c).model_version == "b"
    assert stats.pick_pos == before + 1 and bad.calls == 1
