"""Ensemble: several predictors score the same feature rows concurrently; their scores are
combined (mean or weighted mean) into one.

``EnsembleClient`` implements ``transformer.predictor_client.PredictorClient`` over member
clients, so the transformer (online, cached, precomputed, producer, passthrough) uses it like
one predictor. Its ``model_version`` is derived from the members' versions and the weights
(``ensemble_version``): a member that changes model, or a weight change, is a new ensemble
version, so cached predictions follow the same freshness rules as for one model.

A member that fails fails the request with the member's own status (503 unreachable, 504
timeout, 502 rejected) and its name in the message: an ensemble without one of its members
is another model, and serving it under the ensemble's name would be wrong. The members are
called concurrently, each bounded by the predictor timeout, so a request waits at most that
long; the first failure cancels the others' calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import orjson

from predictor.protocol.artifact import FeatureSpec
from transformer.errors import UpstreamError
from transformer.predictor_client import (
    Prediction,
    PredictorClient,
    PredictorMetadata,
    fetch_model_metadata,
    make_client,
)
from transformer.rules import Ensemble

log = logging.getLogger(__name__)

VERSION_PREFIX = "ensemble-"


class PredictorSettings(Protocol):
    """The predictor settings members default to (TransformerSettings, StreamSettings)."""

    @property
    def predictor_host(self) -> str: ...
    @property
    def model_name(self) -> str: ...
    @property
    def predictor_protocol(self) -> str: ...
    @property
    def predictor_timeout_s(self) -> float: ...
    @property
    def predictor_wait_s(self) -> float: ...
    @property
    def predictor_use_ssl(self) -> bool: ...


@dataclass
class EnsemblePrediction(Prediction):
    """The combined prediction, and each member's (by member name, in configured order)."""

    members: dict[str, Prediction] = field(default_factory=dict)


def normalized_weights(config: Ensemble) -> np.ndarray:
    """Each member's share of the combined score (they sum to 1)."""
    if config.combine == "mean":
        w = np.ones(len(config.members))
    else:
        w = np.array([m.weight for m in config.members], dtype=np.float64)
    return w / w.sum()


def combine(scores: Sequence[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """sum_i weights[i] * scores[i], row by row (``weights`` already sum to 1)."""
    return np.asarray(weights, dtype=np.float64) @ np.vstack(scores)


def ensemble_version(config: Ensemble, member_versions: Sequence[str]) -> str:
    """``ensemble-<12 hex>``: sha256 of the combination rule and the (name, model version,
    share) of every member, in name order. Deterministic across processes and replicas;
    scaling every weight by the same factor (same scores) keeps the version."""
    shares = normalized_weights(config)
    members = sorted(
        (m.name, v, round(float(s), 12))
        for m, v, s in zip(config.members, member_versions, shares, strict=True)
    )
    canon = orjson.dumps({"combine": config.combine, "members": members})
    return VERSION_PREFIX + hashlib.sha256(canon).hexdigest()[:12]


def _named(name: str, e: UpstreamError) -> UpstreamError:
    """The same error class (so the same 503/504/502), its message naming the member."""
    out = type(e)(f"ensemble member '{name}': {e.reason}")
    out.__cause__ = e
    return out


class EnsembleClient:
    """A ``PredictorClient`` over member clients (same order as ``config.members``)."""

    def __init__(self, config: Ensemble, clients: Sequence[PredictorClient]):
        if len(clients) != len(config.members):
            raise ValueError(f"{len(config.members)} members but {len(clients)} clients")
        self.config = config
        self.names = [m.name for m in config.members]
        self.clients = list(clients)
        self.weights = normalized_weights(config)
        self._versions: dict[tuple[str, ...], str] = {}  # member versions -> ensemble version

    def version_of(self, member_versions: Sequence[str]) -> str:
        key = tuple(member_versions)
        version = self._versions.get(key)
        if version is None:
            if len(self._versions) >= 64:  # versions change rarely; never grow without bound
                self._versions.clear()
            version = self._versions[key] = ensemble_version(self.config, key)
        return version

    async def _member(
        self, name: str, client: PredictorClient, features: list[FeatureSpec], matrix: np.ndarray
    ) -> Prediction:
        try:
            return await client.infer(features, matrix)
        except UpstreamError as e:
            raise _named(name, e) from e

    async def infer(self, features: list[FeatureSpec], matrix: np.ndarray) -> EnsemblePrediction:
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(self._member(name, client, features, matrix))
                    for name, client in zip(self.names, self.clients, strict=True)
                ]
        except BaseExceptionGroup as group:
            # the first member error (the group's order is the order they failed in); a
            # cancelled sibling never appears here
            first = group.exceptions[0]
            raise first from None
        preds = [t.result() for t in tasks]
        scores = combine([p.scores for p in preds], self.weights)
        version = self.version_of([p.model_version for p in preds])
        return EnsemblePrediction(scores, version, dict(zip(self.names, preds, strict=True)))

    async def close(self) -> None:
        for c in self.clients:
            await c.close()


def member_metadata(settings: PredictorSettings, config: Ensemble) -> tuple[list[FeatureSpec], str]:
    """Start-up: every member's v2 metadata (waiting up to ``predictor_wait_s`` each). All
    members must take the same inputs in the same order (the rows are built once); returns
    them and the ensemble version of the members' reported versions."""
    metas: list[tuple[str, PredictorMetadata]] = []
    for m in config.members:
        host, model, protocol = _endpoint(settings, m.host, m.model_name, m.protocol)
        try:
            meta = fetch_model_metadata(
                host, model, protocol, settings.predictor_wait_s, settings.predictor_use_ssl
            )
        except RuntimeError as e:
            raise RuntimeError(f"ensemble member '{m.name}': {e}") from e
        metas.append((m.name, meta))
    first_name, first = metas[0]
    for name, meta in metas[1:]:
        if meta.features != first.features:
            raise RuntimeError(
                f"ensemble members '{first_name}' and '{name}' take different inputs: "
                f"{[f.name for f in first.features]} vs {[f.name for f in meta.features]}"
            )
    version = ensemble_version(
        config, [meta.versions[0] if meta.versions else "" for _, meta in metas]
    )
    log.info(
        "ensemble %s (%s) of %s",
        version,
        config.combine,
        ", ".join(f"{n}={meta.versions[:1]}" for n, meta in metas),
    )
    return first.features, version


def _endpoint(
    settings: PredictorSettings, host: str | None, model: str | None, protocol: str | None
) -> tuple[str, str, str]:
    return (
        host or settings.predictor_host,
        model or settings.model_name,
        protocol or settings.predictor_protocol,
    )


def client_factory(settings: PredictorSettings, config: Ensemble) -> Callable[[], EnsembleClient]:
    """Builds the ensemble's client inside the running event loop (gRPC aio channels bind
    to it), one member client per endpoint."""

    def build() -> EnsembleClient:
        clients = []
        for m in config.members:
            host, model, protocol = _endpoint(settings, m.host, m.model_name, m.protocol)
            clients.append(
                make_client(
                    protocol, host, model, settings.predictor_timeout_s, settings.predictor_use_ssl
                )
            )
        return EnsembleClient(config, clients)

    return build


def member_columns(
    client: PredictorClient, pred: Prediction | None, rows: np.ndarray, n: int
) -> dict[str, tuple[np.ndarray, list[str]]]:
    """``return_members``: each member's score and model version per response row (NaN and
    "" for rows no model scored in this request: cached, precomputed, default); empty when
    ``client`` is not an ensemble."""
    if not isinstance(client, EnsembleClient):
        return {}
    out = {name: (np.full(n, np.nan), [""] * n) for name in client.names}
    if isinstance(pred, EnsemblePrediction):
        for name, p in pred.members.items():
            scores, versions = out[name]
            scores[rows] = p.scores
            for i in rows.tolist():
                versions[i] = p.model_version
    return out
