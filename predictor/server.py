"""Wire settings → ClickModel → kserve.ModelServer, plus the model's baseline route."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from predictor.jobs import baseline
from predictor.model import ClickModel
from predictor.protocol.serving import run_model_server
from predictor.settings import PredictorSettings

log = logging.getLogger(__name__)


def baseline_answer(model_dir: Path, version: str) -> tuple[int, bytes | str]:
    """(200, the validated baseline.json) or (404, why not): read once at start-up.

    The transformer fetches it when it has no model directory (the chart's default form):
    the predictor has the directory whatever the storage URI (pvc://, s3://, gs://)."""
    path = model_dir / baseline.BASELINE_FILE
    if not path.is_file():
        return 404, f"model {version} has no {baseline.BASELINE_FILE} (trained without one)"
    try:
        b = baseline.read(path)
    except baseline.BaselineError as e:
        log.warning("baseline route: %s", e)
        return 404, f"unusable {baseline.BASELINE_FILE}: {e}"
    if b.model_version != version:
        log.warning("baseline route: %s describes %s, not %s", path, b.model_version, version)
        return 404, f"{baseline.BASELINE_FILE} describes model {b.model_version}, not {version}"
    return 200, b.model_dump_json().encode()


def install_baseline_route(app: Any, model_name: str, answer: tuple[int, bytes | str]) -> None:
    """``GET /v2/models/{name}/baseline``: the served model's reference distributions."""
    from starlette.requests import Request
    from starlette.responses import Response

    from predictor.protocol.rest import json_error

    status, body = answer

    async def route(request: Request) -> Response:
        name = request.path_params["name"]
        if name != model_name:
            return json_error(404, f"model {name!r} is not served here (only {model_name!r})")
        if isinstance(body, str):
            return json_error(status, body)
        return Response(body, 200, media_type="application/json")

    app.router.add_route("/v2/models/{name}/baseline", route, methods=["GET"])


def serve(settings: PredictorSettings) -> None:
    from kserve.model_server import app

    model = ClickModel(settings.model_name, str(settings.model_dir), settings.max_batch_size)
    model.load()
    answer = baseline_answer(Path(settings.model_dir), model.version)
    install_baseline_route(app, settings.model_name, answer)
    run_model_server(model, settings, workers=settings.workers)
