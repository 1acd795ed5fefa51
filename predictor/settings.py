"""Predictor settings: one object, built once in ``__main__`` and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from predictor.protocol.limits import LimitSettings


class PredictorSettings(LimitSettings):
    """Serve a click model directory with kserve.ModelServer (v1 + v2 REST, v2 gRPC)."""

    model_config = SettingsConfigDict(env_prefix="PREDICTOR_", extra="forbid")

    model_name: str = Field("click-model", description="Name in the URL path (/v2/models/<name>)")
    model_dir: Path = Field(
        Path("/mnt/models"),
        description="Model directory (metadata.json + model file); KServe mounts storageUri here",
    )
    http_port: int = Field(8080, ge=1, le=65535, description="HTTP port (v1 + v2 REST, /metrics)")
    grpc_port: int = Field(8081, ge=1, le=65535, description="v2 gRPC port")
    enable_grpc: bool = Field(True, description="Serve v2 gRPC")
    max_batch_size: int = Field(
        10_000, ge=1, description="Largest number of rows in one request; larger → 400"
    )
    workers: int = Field(1, ge=1, description="Uvicorn worker processes for REST")
    grpc_threads: int = Field(4, ge=1, description="gRPC server threads")
    enable_latency_logging: bool = Field(
        False, description="Log pre/predict/post latency per request (costs ~0.1 ms)"
    )
    log_level: str = Field("INFO", description="Python log level")
    log_format: Literal["text", "json"] = Field(
        "text", description="Log lines as text or as one JSON object each (with the request id)"
    )
    access_log: bool = Field(
        False, description="Log every request (access and timing lines; never payloads)"
    )
