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

from predictor.protocol.limits import LimitSettings


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
    batch_generation_refresh_s: float = Field(
        5.0,
        gt=0,
        description="precomputed: re-read the batch job's committed generation this often; "
        "rows of any other generation are not served (docs/serving-approaches.md)",
    )
    writeback_queue_size: int = Field(
        10_000, ge=1, description="cached: predictions waiting for write-back before new ones drop"
    )
    writeback_batch_rows: int = Field(512, ge=1, description="cached: rows per write-back batch")
    # --- online-store fault tolerance (docs/reliability.md) ---
    store_connect_timeout_s: float = Field(
        0.25,
        gt=0,
        description="Online store (Redis): TCP connect timeout of one connection; replaces "
        "socket_connect_timeout in the Feast connection string",
    )
    store_timeout_s: float = Field(
        0.3,
        gt=0,
        description="Online store (Redis): read timeout of one operation (a feature read, a "
        "producer write, a write-back batch); past it the request gets 503. Replaces "
        "socket_timeout in the Feast connection string; redis-py's retries are turned off",
    )
    store_breaker_failures: int = Field(
        3,
        ge=1,
        description="Consecutive online-store failures that open the circuit breaker: while "
        "open, store operations fail at once (503) and a background probe PINGs the store",
    )
    store_probe_interval_s: float = Field(
        0.05,
        gt=0,
        description="While the breaker is open, PING the store this often; the first answer "
        "closes it (drops the pooled connections first), so recovery takes at most this long",
    )
    shutdown_grace_s: int = Field(
        20,
        ge=1,
        description="On SIGTERM: stop accepting, finish in-flight requests and flush the "
        "write-back queue within this many seconds, then exit. Keep it below the pod's "
        "terminationGracePeriodSeconds minus the preStop sleep",
    )
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

    # --- monitoring (issue 15): live drift and quality against the model's baseline.json ---
    monitoring_enabled: bool = Field(
        True,
        description="HTTP request counts/latency by endpoint, and drift of the served features "
        "and scores + quality from joined outcomes (these two need a baseline file; without "
        "one they are off, with a log line)",
    )
    monitoring_baseline: Path | None = Field(
        None,
        description="The model's baseline.json (written by predictor.jobs.train beside the model); "
        "default: <collocated_model_dir>/baseline.json in collocated mode, else fetched from "
        "the predictor (monitoring_baseline_fetch)",
    )
    monitoring_baseline_fetch: bool = Field(
        True,
        description="Without monitoring_baseline and not collocated: fetch the served model's "
        "baseline from the predictor (GET /v2/models/<name>/baseline) once at start-up",
    )
    monitoring_baseline_url: str | None = Field(
        None,
        description="Where to fetch the baseline; default: http(s)://<predictor_host>/v2/"
        "models/<model_name>/baseline with the v2 REST protocol (set it for grpc-v2: the "
        "predictor's HTTP port)",
    )
    monitoring_baseline_wait_s: float = Field(
        10.0,
        ge=0,
        description="Start-up time allowed for the baseline fetch (after the predictor's "
        "metadata answered); past it drift and quality stay off, with a warning",
    )
    monitoring_window: Literal["time", "rows"] = Field(
        "time", description="Sliding window over time (seconds) or over served rows"
    )
    monitoring_window_size: float = Field(
        3600.0, gt=0, description="Window length: seconds (time) or rows (rows)"
    )
    monitoring_buckets: int = Field(
        12, ge=1, le=1000, description="Buckets of the window (it slides one bucket at a time)"
    )
    monitoring_min_rows: int = Field(
        200, ge=1, description="Fewer present values in the window: drift statistics are NaN"
    )
    monitoring_psi_threshold: float = Field(
        0.2, gt=0, description="PSI above which the JSON view flags a variable as drifted"
    )
    monitoring_compute_interval_ms: float = Field(
        1000.0, ge=0, description="Recompute drift/quality statistics at most this often"
    )
    monitoring_prediction_log_size: int = Field(
        100_000, ge=1, description="Scored rows kept to join late outcomes (labels) to"
    )
    monitoring_label_join_window_s: float = Field(
        3600.0, gt=0, description="An outcome joins the user's latest prediction this recent"
    )
    monitoring_quality_window: int = Field(
        5000, ge=10, description="Joined (score, outcome) pairs behind AUC/log loss/calibration"
    )
    monitoring_min_labels: int = Field(
        200, ge=1, description="Fewer joined pairs: quality gauges are NaN"
    )
    payload_log_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of requests whose inputs and scores are logged to a Redis stream "
        "(0: off); sampled, through a bounded queue that drops rather than waits",
    )
    payload_log_redis: str | None = Field(
        None,
        description="Redis of the payload stream: host:port or redis://[:password@]host:port/db",
    )
    payload_log_stream: str = Field("click-model:payloads", description="Stream key")
    payload_log_maxlen: int = Field(
        100_000, ge=1, description="Stream length kept (XADD MAXLEN ~, oldest trimmed)"
    )
    payload_log_queue_size: int = Field(
        1000, ge=1, description="Sampled requests waiting to be written before new ones drop"
    )
    payload_log_features: bool = Field(True, description="Include the model inputs in entries")
    payload_log_hash_keys: bool = Field(
        True, description="Log entity keys hashed (blake2b with payload_log_salt), not in clear"
    )
    payload_log_salt: str = Field(
        "",
        description="Salt of the key hash (set it from a Secret so hashes match across pods; "
        "empty: a random salt per process)",
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="Log lines as text or as one JSON object each (with the request id)"
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
    # --- multi-armed bandit over model versions (docs/multi-model.md#bandit) ---
    bandit_file: Path | None = Field(
        None,
        description="YAML of the bandit (arms = predictor endpoints of different model "
        "versions, policy, floor, epsilon, refresh_ms, prediction_ttl_s); unset: one "
        "predictor, no bandit. When set, predictor_host is unused and responses carry "
        "prediction_id",
    )
    bandit_redis: str | None = Field(
        None,
        description="Redis of the bandit's shared statistics and prediction records: host:port "
        "or redis://[:password@]host:port/db (required with bandit_file)",
    )
    producer_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Serve POST /producer/v1/write on this port only (so a NetworkPolicy can "
        "admit producers alone); unset: on http_port with inference",
    )
