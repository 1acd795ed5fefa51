"""Start-up wiring of the bandit: the arms' metadata, the shared Redis, the parts server.py
plugs in (the client factory, the prediction recorder, the feedback service)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry

from predictor.protocol.artifact import FeatureSpec
from transformer.multimodel import ensemble
from transformer.multimodel.bandit import (
    Arm,
    BanditClient,
    BanditConfig,
    BanditConfigError,
    BanditMetrics,
    SharedStats,
    load_config,
    make_policy,
)
from transformer.multimodel.feedback import FeedbackService, PredictionRecorder
from transformer.predictor_client import PredictorClient, fetch_model_metadata, make_client
from transformer.rules import Ensemble

log = logging.getLogger(__name__)


@dataclass
class ArmEndpoint:
    version: str
    host: str  # an ensemble arm: "ensemble(<member>, ...)" (logs only)
    model_name: str
    protocol: str
    timeout_s: float
    use_ssl: bool
    ensemble: Ensemble | None = None  # the arm is this ensemble of endpoints

    def client(self) -> PredictorClient:
        if self.ensemble is not None:
            return ensemble.client_factory(_ArmSettings.of(self, 0.0), self.ensemble)()
        return make_client(self.protocol, self.host, self.model_name, self.timeout_s, self.use_ssl)


@dataclass(frozen=True)
class _ArmSettings:
    """An ensemble arm's defaults for its members (``ensemble.PredictorSettings``): the arm's
    model name, protocol, timeout and TLS; every member names its host."""

    predictor_host: str
    model_name: str
    predictor_protocol: str
    predictor_timeout_s: float
    predictor_wait_s: float
    predictor_use_ssl: bool

    @classmethod
    def of(cls, arm: ArmEndpoint, wait_s: float) -> _ArmSettings:
        return cls("", arm.model_name, arm.protocol, arm.timeout_s, wait_s, arm.use_ssl)


@dataclass
class Bandit:
    """What the transformer needs when ``bandit_file`` is set."""

    config: BanditConfig
    endpoints: list[ArmEndpoint]
    features: list[FeatureSpec]
    stats: SharedStats
    recorder: PredictionRecorder
    feedback: FeedbackService
    metrics: BanditMetrics

    @property
    def versions(self) -> list[str]:
        return [e.version for e in self.endpoints]

    def client(self) -> BanditClient:
        """The composite client; called inside the running event loop (gRPC channels)."""
        arms = [Arm(e.version, e.client()) for e in self.endpoints]
        cfg = self.config
        return BanditClient(
            arms, self.stats.policy, self.stats, self.metrics, cfg.arm_cooldown_s, cfg.seed
        )

    async def close(self, flush_timeout_s: float) -> None:
        await self.recorder.flush(flush_timeout_s)
        await self.redis.aclose()

    @property
    def redis(self) -> Any:
        return self.recorder.redis


def redis_client(url: str, timeout_s: float) -> Any:
    import redis.asyncio as aioredis

    return aioredis.from_url(
        url if "://" in url else f"redis://{url}",
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
    )


def build(
    path: Path,
    redis_url: str | None,
    model_name: str,
    default_timeout_s: float,
    wait_s: float,
    registry: CollectorRegistry | None = REGISTRY,
) -> Bandit:
    """Read and check the bandit file, fetch every arm's metadata (they must serve the same
    inputs and different model versions); errors name the file and the arm."""
    cfg = load_config(path)
    if not redis_url:
        raise BanditConfigError(f"{path}: bandit_redis is not set (the arms' shared statistics)")
    endpoints: list[ArmEndpoint] = []
    features: list[FeatureSpec] | None = None
    for i, a in enumerate(cfg.arms):
        name = a.model_name or model_name
        members = a.ensemble.members if a.ensemble is not None else ()
        host = a.host or f"ensemble({', '.join(m.name for m in members)})"
        endpoint = ArmEndpoint(
            "", host, name, a.protocol, a.timeout_s or default_timeout_s, a.use_ssl, a.ensemble
        )
        arm_versions: list[str]
        if a.ensemble is not None:
            try:  # every member's metadata; the version is the ensemble's
                arm_features, version = ensemble.member_metadata(
                    _ArmSettings.of(endpoint, wait_s), a.ensemble
                )
            except RuntimeError as e:
                raise BanditConfigError(f"{path}: arms.{i}: {e}") from e
            arm_versions = [version]
        else:
            meta = fetch_model_metadata(host, name, a.protocol, wait_s, a.use_ssl)
            arm_features, arm_versions = meta.features, meta.versions
        if not arm_versions:
            raise BanditConfigError(f"{path}: arms.{i}: {host} reports no model version")
        if features is None:
            features = arm_features
        elif arm_features != features:
            raise BanditConfigError(
                f"{path}: arms.{i}: {host} takes inputs {[f.name for f in arm_features]}, "
                f"arms.0 takes {[f.name for f in features]}; arms must share the inputs"
            )
        endpoint.version = arm_versions[0]
        if endpoint.version in [e.version for e in endpoints]:
            raise BanditConfigError(
                f"{path}: arms.{i}: {host} serves model version {endpoint.version} like another "
                "arm; arms are model versions"
            )
        endpoints.append(endpoint)
    assert features is not None
    redis = redis_client(redis_url, timeout_s=1.0)
    metrics = BanditMetrics(registry)
    stats = SharedStats(
        redis,
        cfg.key_prefix,
        [e.version for e in endpoints],
        cfg.refresh_ms / 1000,
        make_policy(cfg),
        metrics,
        cfg.seed,
    )
    recorder = PredictionRecorder(
        redis,
        cfg.key_prefix,
        cfg.prediction_ttl_s,
        cfg.record_queue_size,
        metrics,
        cfg.record_linger_ms / 1000,
    )
    log.info(
        "bandit: %s over %s, statistics in %s",
        cfg.policy,
        ", ".join(e.version for e in endpoints),
        redis_url.split("@")[-1],
    )
    service = FeedbackService(recorder, metrics)
    return Bandit(cfg, endpoints, features, stats, recorder, service, metrics)
