"""The baseline of a transformer without the model directory: fetched from the predictor.

In the chart's default (non-collocated) form the transformer has no model directory. The
predictor has it whatever the storage URI (KServe mounts a pvc://, its storage initializer
downloads s3:// and gs://), and serves the model's validated ``baseline.json`` at ``GET
/v2/models/{name}/baseline`` (404 with the reason when it has none). The transformer fetches
it once at start-up, right after the predictor's metadata answered, within
``monitoring_baseline_wait_s``: start-up (and so readiness) waits at most that long, and a
failure turns drift and quality off with a warning; monitoring never keeps the transformer
from serving.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import ValidationError

from predictor.jobs.baseline import Baseline

log = logging.getLogger(__name__)


def baseline_url(settings: Any) -> str | None:
    """The predictor's baseline route, or None (gRPC to the predictor and no explicit URL)."""
    if settings.monitoring_baseline_url:
        return str(settings.monitoring_baseline_url)
    if settings.predictor_protocol == "grpc-v2":
        return None
    scheme = "https" if settings.predictor_use_ssl else "http"
    return f"{scheme}://{settings.predictor_host}/v2/models/{settings.model_name}/baseline"


def fetch(
    url: str, wait_s: float, get: Callable[..., httpx.Response] = httpx.get
) -> Baseline | None:
    """The baseline at ``url``; retries connection errors and 5xx until ``wait_s`` passes.
    A 404 (the model has none) or an invalid body ends at once. None: logged why."""
    deadline = time.monotonic() + wait_s
    problem = "no attempt (monitoring_baseline_wait_s=0)"
    while time.monotonic() < deadline:
        try:
            r = get(url, timeout=max(0.1, min(5.0, deadline - time.monotonic())))
        except httpx.HTTPError as e:
            problem = f"{type(e).__name__}: {e}"
        else:
            if r.status_code == 200:
                try:
                    return Baseline.model_validate_json(r.content)
                except ValidationError as e:
                    problem = f"invalid baseline: {str(e)[:500]}"
                    break
            problem = f"HTTP {r.status_code}: {r.text[:300]}"
            if r.status_code < 500:
                break
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    log.warning("monitoring: no baseline from %s (%s); drift and quality off", url, problem)
    return None


def from_predictor(settings: Any, served_version: str) -> Baseline | None:
    """The served model's baseline from the predictor, if the settings ask for it."""
    if not (settings.monitoring_enabled and settings.monitoring_baseline_fetch):
        return None
    if settings.monitoring_baseline is not None or settings.collocated_model_dir is not None:
        return None  # a file is named or the model directory is here
    url = baseline_url(settings)
    if url is None:
        log.warning(
            "monitoring: the predictor is reached over gRPC; set monitoring_baseline_url "
            "(its HTTP port: http://<host>:8080/v2/models/%s/baseline) to fetch the baseline",
            settings.model_name,
        )
        return None
    b = fetch(url, settings.monitoring_baseline_wait_s)
    if b is not None:
        log.info("monitoring: baseline of model %s fetched from %s", b.model_version, url)
        if served_version and b.model_version != served_version:
            log.warning(
                "monitoring: the baseline describes model %s, the predictor's metadata names "
                "%s (a canary split answered both?); gauges are labelled %s",
                b.model_version,
                served_version,
                b.model_version,
            )
    return b
