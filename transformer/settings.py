"""Transformer settings: one object, built once in ``__main__`` and passed down.

Every field is a flag (``--field_name``) and an environment variable (``TRANSFORMER_FIELD``).
KServe injects ``--model_name``, ``--predictor_host`` and ``--http_port`` into transformer
containers; ``--protocol`` is accepted as KServe's older spelling of ``--predictor_protocol``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from predictor.limits import LimitSettings


class TransformerSettings(LimitSettings):
    """Feast-backed KServe transformer: v1/v2 in, features + model + rules, decision out."""

    model_config = SettingsConfigDict(env_prefix="TRANSFORMER_", extra="forbid")

    model_name: str = Field("click-model", description="Model name served and forwarded")
    predictor_host: str = Field("127.0.0.1:8085", description="host:port of the predictor")
    predictor_protocol: Literal["v2", "grpc-v2"] = Field(
        "v2",
        description="v2 REST or v2 gRPC to the predictor",
        json_schema_extra={"cli_aliases": ["--protocol"]},
    )
    predictor_use_ssl: bool = Field(False, description="https / TLS to the predictor")
    predictor_timeout_s: float = Field(
        2.0, gt=0, description="Timeout of one predictor call; past it the request gets 504"
    )
    predictor_wait_s: float = Field(
        60.0, ge=0, description="At start-up, how long to wait for the predictor's metadata"
    )
    collocated_model_dir: Path | None = Field(
        None,
        description="Collocated mode: load this model directory into the transformer and score "
        "in-process instead of calling the predictor (no hop, no serialization; for the most "
        "latency-sensitive deployments). The predictor_* settings are then unused",
    )
    http_port: int = Field(8080, ge=1, le=65535, description="HTTP port (v1 + v2 REST, /metrics)")
    grpc_port: int = Field(8081, ge=1, le=65535, description="v2 gRPC port")
    enable_grpc: bool = Field(True, description="Serve v2 gRPC")
    grpc_threads: int = Field(4, ge=1, description="gRPC server threads")
    feast_repo_path: Path = Field(Path("feature_repo"), description="Feast feature repo folder")
    feast_fs_yaml: Path | None = Field(
        None,
        description="feature_store.yaml to use instead of the repo's (also read from "
        "FEAST_FS_YAML_FILE_PATH)",
    )
    feature_service: str = Field("click_model_v1", description="Feast FeatureService to read")
    registry_wait_s: float = Field(
        120.0,
        ge=0,
        description="At start-up, how long to wait for a Feast registry that is unreachable or "
        "still empty (feast apply not run yet, e.g. a first install); a registry that has other "
        "feature services but not ours fails at once",
    )
    redis_direct_reads: bool = Field(
        True,
        description="On a Redis online store, read Feast's hashes directly (one HMGET per user, "
        "parity-tested against the SDK) instead of through get_online_features",
    )
    registry_refresh_s: float = Field(
        60.0, ge=0, description="Refresh the Feast registry in the background this often (0: never)"
    )
    max_batch_size: int = Field(1000, ge=1, description="Largest number of users in one request")
    mode: Literal["online", "cached", "precomputed"] = Field(
        "online",
        description="online: features + model on every request; cached: serve fresh cached "
        "predictions, compute and write back the rest; precomputed: serve batch-job predictions",
    )
    predictions_view: str = Field(
        "model_predictions", description="Feast feature view holding cached/precomputed predictions"
    )
    cache_max_age_s: float = Field(
        3600.0, gt=0, description="cached/precomputed: oldest prediction that may be served"
    )
    precomputed_fallback: Literal["model", "default"] = Field(
        "model",
        description="precomputed: users the batch job missed get the model (or the default answer)",
    )
    writeback_queue_size: int = Field(
        10_000, ge=1, description="cached: predictions waiting for write-back before new ones drop"
    )
    writeback_batch_rows: int = Field(512, ge=1, description="cached: rows per write-back batch")
    rules_file: Path | None = Field(
        None, description="YAML business rules (default rules if unset)"
    )
    enable_latency_logging: bool = Field(
        False, description="Log pre/predict/post latency per request"
    )
    log_level: str = Field("INFO", description="Python log level")
    access_log: bool = Field(
        False, description="Log every request (access and timing lines; never payloads)"
    )
    # Security (docs/security.md); the request limits and --host come from LimitSettings.
    auth_tokens_file: Path | None = Field(
        None,
        description="Bearer tokens, one 'scope[,scope]:token' per line (scopes: infer, write; "
        "'#' comments); unset: no authentication. Re-read when it changes, so a rotated "
        "Kubernetes Secret needs no restart",
    )
    auth_reload_s: float = Field(
        2.0, gt=0, le=300, description="How often to check the tokens file for a change"
    )
    auth_probes: bool = Field(
        False,
        description="Require a token (any scope) for health, readiness and /metrics too; off: "
        "kubelet probes and Prometheus need none",
    )
    producer_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Serve POST /producer/v1/write on this port only (so a NetworkPolicy can "
        "admit producers alone); unset: on http_port with inference",
    )
