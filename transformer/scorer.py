"""The scorer a process uses, chosen once at start: the transformer's server and the stream
worker make the same choice, so their predictions (and the cache rows they write) agree.

- a model directory: the model in-process (``LocalPredictorClient``, the predictor's loader);
- ``ensemble:`` in the rules file: several predictors, scores combined
  (``transformer.multimodel.ensemble``);
- otherwise: the predictor over v2 REST or gRPC.

Blocking (it waits for the predictors' metadata): call it before the event loop, or in a
thread.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from predictor.protocol.artifact import FeatureSpec, load_model
from transformer.multimodel import ensemble
from transformer.predictor_client import (
    LocalPredictorClient,
    PredictorClient,
    fetch_model_metadata,
    make_client,
)
from transformer.rules import BusinessRules

log = logging.getLogger(__name__)


@dataclass
class Scorer:
    features: list[FeatureSpec]  # the model's inputs, in order
    versions: list[str]  # the model version(s) it serves
    client_factory: Callable[[], PredictorClient]  # called inside the running event loop


def choose(
    settings: ensemble.PredictorSettings,
    rules: BusinessRules,
    rules_file: Path | None,
    model_dir: Path | None,
    model_dir_field: str,
) -> Scorer:
    """``model_dir`` is the in-process model's directory, named ``model_dir_field`` in the
    process's settings (for the error that refuses it together with an ensemble)."""
    if model_dir is not None:
        if rules.ensemble is not None:
            raise ValueError(f"{rules_file}: ensemble: not with {model_dir_field}")
        loaded = load_model(model_dir)
        log.info("scoring %s in-process", loaded.metadata.version)
        return Scorer(
            list(loaded.metadata.features),
            [loaded.metadata.version],
            functools.partial(LocalPredictorClient, loaded),
        )
    if rules.ensemble is not None:
        features, version = ensemble.member_metadata(settings, rules.ensemble)
        log.info("scoring with the ensemble %s", version)
        return Scorer(features, [version], ensemble.client_factory(settings, rules.ensemble))
    meta = fetch_model_metadata(
        settings.predictor_host,
        settings.model_name,
        settings.predictor_protocol,
        settings.predictor_wait_s,
        settings.predictor_use_ssl,
    )
    log.info("scoring through the predictor at %s", settings.predictor_host)
    return Scorer(
        meta.features,
        meta.versions,
        functools.partial(
            make_client,
            settings.predictor_protocol,
            settings.predictor_host,
            settings.model_name,
            settings.predictor_timeout_s,
            settings.predictor_use_ssl,
        ),
    )
