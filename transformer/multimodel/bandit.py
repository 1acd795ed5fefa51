"""A multi-armed bandit over model versions, behind the ``PredictorClient`` protocol.

Each request (all its rows) goes to one arm, a predictor serving one model version. The policy
picks it from the arms' reward statistics: Thompson sampling on Beta-Bernoulli rewards (click =
1) with an exploration floor per arm, or epsilon-greedy. The statistics live in one Redis hash
that every replica updates atomically (``HINCRBY``, the feedback Lua script), so replicas share
them and a restart loses nothing; the policy reads them from a local copy that a background
task refreshes every ``refresh_ms`` (one pipelined round trip that also flushes this replica's
request counts): the request path itself never touches Redis.

A failing arm (connection refused, timeout, 5xx) is skipped for that request, its failure
counted, and another arm answers; it is left out of the choice for ``arm_cooldown_s`` and then
tried again. Only when every arm fails does the client see the usual 503 / 504 / 502.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from predictor.protocol.artifact import FeatureSpec
from transformer.errors import PredictorTimeout, PredictorUnavailable, UpstreamError
from transformer.predictor_client import Prediction, PredictorClient
from transformer.rules import Ensemble

log = logging.getLogger(__name__)


# --- configuration -------------------------------------------------------------------------


class ArmConfig(BaseModel):
    """One arm: a v2 endpoint serving one model version (like the single predictor), or an
    ensemble of such endpoints whose combined score is the arm's answer (its version the
    ensemble's, docs/multi-model.md#ensemble)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    host: str | None = Field(
        None, min_length=3, description="host:port of the arm's predictor (unset: ensemble)"
    )
    model_name: str | None = Field(
        None,
        min_length=1,
        description="Model name at that endpoint, or of the ensemble members that set none "
        "(default: model_name)",
    )
    protocol: Literal["v2", "grpc-v2"] = Field(
        "v2", description="v2 REST or v2 gRPC (of the ensemble members that set none)"
    )
    use_ssl: bool = Field(False, description="https / TLS to this arm (every member)")
    timeout_s: float | None = Field(
        None, gt=0, description="Timeout of one call (default: predictor_timeout_s)"
    )
    ensemble: Ensemble | None = Field(
        None,
        description="The arm is this ensemble (the rules file's `ensemble:` form, every member "
        "with its host) instead of one host",
    )

    @model_validator(mode="after")
    def _check(self) -> ArmConfig:
        if (self.host is None) == (self.ensemble is None):
            raise ValueError("an arm has either a host or an ensemble")
        if self.ensemble is not None and any(m.host is None for m in self.ensemble.members):
            raise ValueError("ensemble: every member needs a host (a bandit has no predictor_host)")
        return self


class BanditConfig(BaseModel):
    """The bandit file (``--bandit_file``), validated at start; errors name the field."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    arms: tuple[ArmConfig, ...] = Field(min_length=2, description="The arms (model versions)")
    policy: Literal["thompson", "epsilon_greedy"] = Field("thompson", description="Policy")
    floor: float = Field(
        0.02,
        ge=0.0,
        le=0.5,
        description="thompson: each healthy arm gets at least this share of requests "
        "(uniform picks with probability floor x arms); floor x arms must be <= 1",
    )
    indifference: float = Field(
        0.05,
        ge=0.0,
        lt=1.0,
        description="thompson: arms whose sampled click rates are within this relative "
        "difference of the best draw count as tied and share the request uniformly (0: plain "
        "Thompson sampling, whose split of equal arms wanders anywhere in 0-100 %)",
    )
    epsilon: float = Field(
        0.1, ge=0.0, le=1.0, description="epsilon_greedy: share of uniformly random picks"
    )
    refresh_ms: float = Field(
        250.0, ge=20.0, le=60_000.0, description="Read the shared statistics this often"
    )
    prediction_ttl_s: float = Field(
        3600.0,
        gt=0,
        le=30 * 86400,
        description="How long a prediction id accepts feedback (Redis TTL of its record)",
    )
    arm_cooldown_s: float = Field(
        1.0, ge=0.0, description="After a failure, leave the arm out of the choice this long"
    )
    key_prefix: str = Field(
        "bandit:click-model",
        min_length=1,
        pattern=r"^[A-Za-z0-9:_.-]+$",
        description="Redis key prefix (in a {hash tag}: one cluster slot for every key)",
    )
    record_linger_ms: float = Field(
        50.0,
        ge=0.0,
        le=1000.0,
        description="Gather prediction records this long before writing them in one call "
        "(feedback reaching this replica waits for its records; another replica may answer "
        "404 for a prediction younger than this)",
    )
    record_queue_size: int = Field(
        10_000, ge=1, description="Prediction records waiting to be written before new ones drop"
    )
    seed: int | None = Field(None, description="Seed of the policy's random numbers (tests)")

    @model_validator(mode="after")
    def _check(self) -> BanditConfig:
        if self.floor * len(self.arms) > 1.0:
            raise ValueError(
                f"floor: {self.floor} x {len(self.arms)} arms exceeds 1 (at most "
                f"{1 / len(self.arms):.3g} for {len(self.arms)} arms)"
            )
        hosts = [(a.host, a.model_name, a.ensemble) for a in self.arms]
        if len(set(hosts)) != len(hosts):
            raise ValueError("arms: two arms name the same host and model (or ensemble)")
        return self


class BanditConfigError(ValueError):
    pass


def load_config(path: Path) -> BanditConfig:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise BanditConfigError(f"{path}: {e}") from e
    try:
        return BanditConfig.model_validate(raw or {})
    except ValidationError as e:
        msg = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in e.errors()
        )
        raise BanditConfigError(f"{path}: {msg}") from e


# --- statistics and policies -----------------------------------------------------------------


@dataclass
class ArmStats:
    """Shared counts of one arm: requests answered, feedback received, rewards (clicks)."""

    requests: int = 0
    trials: int = 0
    reward: int = 0

    @property
    def alpha(self) -> float:  # Beta(1, 1) prior
        return 1.0 + self.reward

    @property
    def beta(self) -> float:
        return 1.0 + max(0, self.trials - self.reward)

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


class Policy:
    def choose(self, stats: Sequence[ArmStats], healthy: Sequence[int], rng: random.Random) -> int:
        raise NotImplementedError

    def shares(self, stats: Sequence[ArmStats], draws: int = 4000, seed: int = 0) -> np.ndarray:
        """The expected share of requests per arm under the current statistics."""
        raise NotImplementedError

    def pool(self, stats: Sequence[ArmStats], size: int, rng: np.random.Generator) -> np.ndarray:
        """``size`` independent picks among all arms, vectorized: what ``choose`` returns,
        drawn ahead. The statistics only change at a refresh, so picks drawn right after it
        are draws from the same distribution as picks drawn per request."""
        raise NotImplementedError


class Thompson(Policy):
    """Draw a click rate per arm from its Beta posterior, pick the highest; with probability
    ``floor`` x arms pick uniformly instead, so every arm keeps at least ``floor``.

    Arms whose draws are within ``indifference`` (relative) of the highest draw are tied and
    the pick is uniform among them. Plain Thompson sampling (``indifference`` 0) sends equal
    arms a split that wanders anywhere in 0-100 % (their probability of being best is itself
    uniform); the tie rule settles equal arms at 50/50 once their posteriors are narrower
    than the band, at a cost bounded by the band: an arm less than ``indifference`` better
    than another may share the traffic with it.
    """

    def __init__(self, floor: float, indifference: float = 0.0):
        self.floor = floor
        self.indifference = indifference

    def choose(self, stats: Sequence[ArmStats], healthy: Sequence[int], rng: random.Random) -> int:
        if len(healthy) == 1:
            return healthy[0]
        if rng.random() < self.floor * len(healthy):
            return healthy[rng.randrange(len(healthy))]
        draws = [rng.betavariate(stats[i].alpha, stats[i].beta) for i in healthy]
        cut = max(draws) * (1.0 - self.indifference)
        tied = [i for i, d in zip(healthy, draws, strict=True) if d >= cut]
        return tied[0] if len(tied) == 1 else tied[rng.randrange(len(tied))]

    def shares(self, stats: Sequence[ArmStats], draws: int = 4000, seed: int = 0) -> np.ndarray:
        k = len(stats)
        rng = np.random.default_rng(seed)  # fixed: the gauge moves with the statistics only
        d = rng.beta([s.alpha for s in stats], [s.beta for s in stats], size=(draws, k))
        tied = d >= d.max(axis=1, keepdims=True) * (1.0 - self.indifference)
        p_pick = (tied / tied.sum(axis=1, keepdims=True)).mean(axis=0)
        return self.floor + (1.0 - self.floor * k) * p_pick

    def pool(self, stats: Sequence[ArmStats], size: int, rng: np.random.Generator) -> np.ndarray:
        k = len(stats)
        d = rng.beta([s.alpha for s in stats], [s.beta for s in stats], size=(size, k))
        tied = d >= d.max(axis=1, keepdims=True) * (1.0 - self.indifference)
        picks = (tied * rng.random((size, k))).argmax(axis=1)  # uniform among the tied
        uniform = rng.random(size) < self.floor * k
        picks[uniform] = rng.integers(0, k, int(uniform.sum()))
        return picks


class EpsilonGreedy(Policy):
    """The arm with the highest posterior mean; with probability ``epsilon`` a uniform one."""

    def __init__(self, epsilon: float):
        self.epsilon = epsilon

    def choose(self, stats: Sequence[ArmStats], healthy: Sequence[int], rng: random.Random) -> int:
        if rng.random() < self.epsilon:
            return healthy[rng.randrange(len(healthy))]
        top = max(stats[i].mean for i in healthy)
        best = [i for i in healthy if stats[i].mean == top]
        return best[0] if len(best) == 1 else best[rng.randrange(len(best))]

    def shares(self, stats: Sequence[ArmStats], draws: int = 4000, seed: int = 0) -> np.ndarray:
        k = len(stats)
        means = np.array([s.mean for s in stats])
        greedy = (means == means.max()).astype(float)
        return self.epsilon / k + (1.0 - self.epsilon) * greedy / greedy.sum()

    def pool(self, stats: Sequence[ArmStats], size: int, rng: np.random.Generator) -> np.ndarray:
        k = len(stats)
        means = np.array([s.mean for s in stats])
        best = np.flatnonzero(means == means.max())
        picks = best[rng.integers(0, len(best), size)]
        explore = rng.random(size) < self.epsilon
        picks[explore] = rng.integers(0, k, int(explore.sum()))
        return picks


def make_policy(cfg: BanditConfig) -> Policy:
    if cfg.policy == "thompson":
        return Thompson(cfg.floor, cfg.indifference)
    return EpsilonGreedy(cfg.epsilon)


# --- shared statistics in Redis --------------------------------------------------------------


POOL = 4096  # most picks drawn ahead per refresh
MIN_POOL = 256  # fewest: twice what the last interval used, within these bounds (4,096 cost
# 0.57 ms a refresh on the test machine; a replica at 1,300 req/s uses ~330 per 250 ms)


def keys_prefix(prefix: str) -> str:
    """Every key starts with ``{prefix}``: one Redis Cluster slot, so scripts may touch all."""
    return "{" + prefix + "}"


class BanditMetrics:
    def __init__(self, registry: CollectorRegistry | None = REGISTRY):
        r = registry
        self.requests = Counter(
            "transformer_bandit_requests",
            "Requests answered by each arm (this replica)",
            ["arm"],
            registry=r,
        )
        self.rewards = Counter(
            "transformer_bandit_rewards",
            "Feedback applied per arm and reward (0 / 1; this replica)",
            ["arm", "reward"],
            registry=r,
        )
        self.failures = Counter(
            "transformer_bandit_arm_failures",
            "Calls to an arm that failed and were retried on another arm",
            ["arm", "error"],
            registry=r,
        )
        self.posterior_mean = Gauge(
            "transformer_bandit_posterior_mean",
            "Posterior mean click rate of each arm (Beta(1+clicks, 1+non-clicks), all replicas)",
            ["arm"],
            registry=r,
        )
        self.share = Gauge(
            "transformer_bandit_traffic_share",
            "Share of requests the policy sends to each arm under the current statistics",
            ["arm"],
            registry=r,
        )
        self.shared_requests = Gauge(
            "transformer_bandit_shared_requests",
            "Requests answered by each arm, all replicas (from Redis)",
            ["arm"],
            registry=r,
        )
        self.shared_trials = Gauge(
            "transformer_bandit_shared_feedback",
            "Feedback received per arm, all replicas (from Redis)",
            ["arm"],
            registry=r,
        )
        self.refresh_errors = Counter(
            "transformer_bandit_stats_refresh_errors",
            "Statistics refreshes that failed (Redis down): the policy keeps the last copy",
            registry=r,
        )
        self.records_dropped = Counter(
            "transformer_bandit_records_dropped",
            "Prediction records not stored (queue full or Redis write failed)",
            registry=r,
        )
        self.feedback_calls = Counter(
            "transformer_bandit_feedback_items",
            "Feedback items by result (applied, duplicate, unknown)",
            ["result"],
            registry=r,
        )


class SharedStats:
    """The arms' statistics: a local copy, refreshed from (and flushed to) one Redis hash."""

    def __init__(
        self,
        redis: Any,  # redis.asyncio.Redis
        prefix: str,
        arms: Sequence[str],
        refresh_s: float,
        policy: Policy,
        metrics: BanditMetrics,
        seed: int | None = None,
    ):
        self.redis = redis
        self.key = f"{keys_prefix(prefix)}:stats"
        self.arms = list(arms)
        self.refresh_s = refresh_s
        self.policy = policy
        self.metrics = metrics
        self.snapshot = [ArmStats() for _ in self.arms]
        self.pending = [0] * len(self.arms)
        self.refreshed_at = -math.inf
        self._shares_done = False
        # picks drawn ahead at each refresh for requests while every arm is healthy
        self.picks: np.ndarray | None = None
        self.pick_pos = 0
        self._np_rng = np.random.default_rng(seed)
        self._task: asyncio.Task[None] | None = None

    def count_request(self, arm: int) -> None:
        self.pending[arm] += 1

    async def refresh(self) -> bool:
        """Flush this replica's request counts and read every arm's counts: one round trip."""
        pending, self.pending = self.pending, [0] * len(self.arms)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for name, n in zip(self.arms, pending, strict=True):
                    if n:
                        pipe.hincrby(self.key, f"{name}|requests", n)
                pipe.hgetall(self.key)
                res = await pipe.execute()
        except Exception as e:  # Redis down: keep the last copy, count what was not flushed
            for i, n in enumerate(pending):
                self.pending[i] += n
            self.metrics.refresh_errors.inc()
            log.warning("bandit statistics refresh failed: %s", e)
            return False
        self.apply(res[-1])
        return True

    def apply(self, raw: dict[Any, Any]) -> None:
        h = {_s(k): int(v) for k, v in raw.items()}
        snapshot = [
            ArmStats(h.get(f"{a}|requests", 0), h.get(f"{a}|trials", 0), h.get(f"{a}|reward", 0))
            for a in self.arms
        ]
        self.refreshed_at = time.monotonic()
        rewards = [(s.trials, s.reward) for s in snapshot]
        changed = rewards != [(s.trials, s.reward) for s in self.snapshot] or not self._shares_done
        self.snapshot = snapshot
        # fresh picks every refresh: at most refresh_s of requests consume them
        size = min(POOL, max(MIN_POOL, 2 * self.pick_pos))  # a shortfall: per-request draws
        self.picks, self.pick_pos = self.policy.pool(snapshot, size, self._np_rng), 0
        for a, s in zip(self.arms, snapshot, strict=True):
            self.metrics.shared_requests.labels(a).set(s.requests)
        if not changed:  # the posteriors did not move: the shares neither
            return
        self._shares_done = True
        shares = self.policy.shares(snapshot, draws=2000)
        for a, s, share in zip(self.arms, snapshot, shares, strict=True):
            self.metrics.posterior_mean.labels(a).set(s.mean)
            self.metrics.share.labels(a).set(float(share))
            self.metrics.shared_trials.labels(a).set(s.trials)

    async def run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.refresh_s)

    def ensure_started(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            await self.refresh()  # the last request counts


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


# --- the composite client --------------------------------------------------------------------


@dataclass
class Arm:
    version: str  # the model version the arm serves: its identity in stats and responses
    client: PredictorClient
    down_until: float = -math.inf


class BanditClient:
    """``PredictorClient`` over several arms: the policy picks one per call, others back it up."""

    def __init__(
        self,
        arms: list[Arm],
        policy: Policy,
        stats: SharedStats,
        metrics: BanditMetrics,
        cooldown_s: float,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.arms = arms
        self.policy = policy
        self.stats = stats
        self.metrics = metrics
        self.cooldown_s = cooldown_s
        self.rng = random.Random(seed)
        self.clock = clock
        self._all = list(range(len(arms)))
        self._answered = [metrics.requests.labels(a.version) for a in arms]  # no lookup per call

    def first(self) -> int:
        """The policy's pick among the healthy arms (all arms if none is): from the picks
        drawn ahead at the last refresh while every arm is healthy (no per-request draws)."""
        arms, st = self.arms, self.stats
        if any(a.down_until != -math.inf for a in arms):
            now = self.clock()
            healthy = [i for i in self._all if arms[i].down_until <= now] or self._all
        else:
            healthy = self._all
            if st.picks is not None and st.pick_pos < len(st.picks):
                st.pick_pos += 1
                return int(st.picks[st.pick_pos - 1])
        return self.policy.choose(st.snapshot, healthy, self.rng)

    def fallbacks(self, tried: set[int]) -> list[int]:
        """After a failure: the arms not tried yet, healthy ones first, best mean first."""
        now, snap = self.clock(), self.stats.snapshot
        rest = [i for i in self._all if i not in tried]
        return sorted(rest, key=lambda i: (self.arms[i].down_until > now, -snap[i].mean))

    async def infer(self, features: list[FeatureSpec], matrix: np.ndarray) -> Prediction:
        self.stats.ensure_started()
        failures: list[tuple[Arm, UpstreamError]] = []
        i = self.first()
        order = [i]
        while order:
            i = order.pop(0)
            arm = self.arms[i]
            try:
                pred = await arm.client.infer(features, matrix)
            except UpstreamError as e:
                arm.down_until = self.clock() + self.cooldown_s
                self.metrics.failures.labels(arm.version, type(e).__name__).inc()
                log.warning("bandit arm %s failed (%s); trying another arm", arm.version, e)
                failures.append((arm, e))
                if len(failures) == 1:
                    order = self.fallbacks({i})
                continue
            if arm.down_until != -math.inf:
                arm.down_until = -math.inf
            self.stats.pending[i] += 1
            self._answered[i].inc()
            return Prediction(pred.scores, pred.model_version or arm.version)
        raise _all_failed(failures)

    async def close(self) -> None:
        await self.stats.close()
        for a in self.arms:
            await a.client.close()


def _all_failed(failures: list[tuple[Arm, UpstreamError]]) -> UpstreamError:
    """One error for the client: 503 if any arm was unreachable, else 504 if any timed out,
    else the first arm's status; the message names every arm."""
    msg = "every bandit arm failed: " + "; ".join(f"{a.version}: {e.reason}" for a, e in failures)
    kinds = {type(e) for _, e in failures}
    if PredictorUnavailable in kinds:
        return PredictorUnavailable(msg)
    if PredictorTimeout in kinds:
        return PredictorTimeout(msg)
    err = failures[0][1]
    return type(err)(msg)
