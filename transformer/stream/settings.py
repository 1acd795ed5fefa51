"""Stream worker settings: one object, built once in ``cli`` and passed down.

Every field is a flag of ``run`` (``--field_name``) and an environment variable
(``STREAM_FIELD``). The Redis server is the Feast online store's (``feature_store.yaml``,
``REDIS_CONNECTION_STRING``): the events, the features, the predictions and the output stream
live on the same server, which is what lets one Lua script commit a user's update atomically.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_consumer() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class StreamSettings(BaseSettings):
    """Stream inference worker: events from a Redis Stream → features, predictions, decisions."""

    model_config = SettingsConfigDict(env_prefix="STREAM_", extra="forbid")

    stream: str = Field("events", min_length=1, description="Input stream of activity events")
    group: str = Field("stream-inference", min_length=1, description="Consumer group")
    consumer: str = Field(
        "",
        description="This worker's consumer name in the group (empty: <hostname>-<pid>; in a "
        "Deployment the pod name)",
    )
    start_id: str = Field(
        "0", description="Where a new group starts: 0 = the whole backlog, $ = new events only"
    )
    output_stream: str = Field(
        "predictions", min_length=1, description="Stream the decisions are appended to"
    )
    output_maxlen: int = Field(
        1_000_000, ge=1, description="Approximate length the output stream is trimmed to"
    )
    dead_letter_stream: str = Field(
        "events-dead", min_length=1, description="Stream bad events go to, with the error"
    )
    batch_size: int = Field(500, ge=1, le=10_000, description="XREADGROUP COUNT: events per batch")
    block_ms: int = Field(
        1000, ge=1, le=60_000, description="XREADGROUP BLOCK: longest wait for new events"
    )
    claim_idle_ms: int = Field(
        30_000,
        ge=100,
        description="Entries pending this long at another consumer are reclaimed (XAUTOCLAIM); "
        "above the longest batch time, or two workers would process the same batch",
    )
    claim_every_s: float = Field(5.0, gt=0, description="How often to look for such entries")
    lateness_s: float = Field(
        3600.0,
        gt=0,
        description="Events older than the user's newest event by more than this are dropped "
        "as stale; event ids are remembered for this window (replays inside it are no-ops)",
    )
    commit_retries: int = Field(
        5, ge=1, description="Attempts when another worker updated the same user concurrently"
    )
    feast_repo_path: Path = Field(Path("feature_repo"), description="Feast feature repo folder")
    feast_fs_yaml: Path | None = Field(
        None, description="feature_store.yaml (also read from FEAST_FS_YAML_FILE_PATH)"
    )
    feature_service: str = Field(
        "click_model_v1", description="Feast FeatureService the model uses"
    )
    features_view: str = Field("user_data", description="Feature view the events update")
    predictions_view: str = Field(
        "model_predictions", description="Feature view the predictions go to (cached mode reads it)"
    )
    model_dir: Path | None = Field(
        None,
        description="Embedded model: load this model directory (same loader as the predictor) "
        "and score in-process. Unset: call the predictor over v2 (predictor_host)",
    )
    model_name: str = Field("click-model", description="Model name at the predictor")
    predictor_host: str = Field("127.0.0.1:8085", description="host:port of the v2 predictor")
    predictor_protocol: Literal["v2", "grpc-v2"] = Field("v2", description="v2 REST or gRPC")
    predictor_use_ssl: bool = Field(False, description="https / TLS to the predictor")
    predictor_timeout_s: float = Field(2.0, gt=0, description="Timeout of one predictor call")
    predictor_wait_s: float = Field(
        0.0,
        ge=0,
        description="At start-up, how long to keep retrying Redis and what scoring needs (the "
        "Feast feature service, the predictor's metadata) before exiting 1; 0: for ever. The "
        "worker is live, and ready once Redis answers; it reads no events until it can score",
    )
    retry_max_s: float = Field(
        15.0,
        gt=0,
        le=30,
        description="Longest pause between two of those attempts (1, 2, 4 ... seconds)",
    )
    default_context: str = Field(
        "session_duration_s=30,hour_of_day=12",
        description="Request-time fields for users whose events carry no context (name=value,...)",
    )
    rules_file: Path | None = Field(None, description="YAML business rules (decisions)")
    http_port: int = Field(
        8090, ge=0, le=65535, description="/metrics, /healthz, /readyz (0: no HTTP server)"
    )
    max_events: int | None = Field(
        None, ge=1, description="Bounded run: stop after this many events"
    )
    until_idle: bool = Field(
        False, description="Bounded run: stop when nothing is left to read or reclaim"
    )
    progress_s: float = Field(10.0, gt=0, description="Progress log line every this many seconds")
    log_level: str = Field("INFO", description="Python log level")
