"""Wire settings → ClickModel → kserve.ModelServer."""

from __future__ import annotations

from predictor.model import ClickModel
from predictor.protocol.serving import run_model_server
from predictor.settings import PredictorSettings


def serve(settings: PredictorSettings) -> None:
    model = ClickModel(settings.model_name, str(settings.model_dir), settings.max_batch_size)
    model.load()
    run_model_server(model, settings, workers=settings.workers)
