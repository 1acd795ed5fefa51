"""Wire settings → ClickModel → kserve.ModelServer."""

from __future__ import annotations

from predictor.model import ClickModel
from predictor.serving import run_model_server
from predictor.settings import PredictorSettings


def serve(settings: PredictorSettings) -> None:
    model = ClickModel(settings.model_name, str(settings.model_dir), settings.max_batch_size)
    model.load()
    run_model_server(
        model,
        http_port=settings.http_port,
        grpc_port=settings.grpc_port,
        enable_grpc=settings.enable_grpc,
        grpc_threads=settings.grpc_threads,
        enable_latency_logging=settings.enable_latency_logging,
        workers=settings.workers,
    )
