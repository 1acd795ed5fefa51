"""Business rules: turn a score into a decision, and decide what users without usable
features get. Configured by a YAML file (``--rules_file``) or left at the defaults below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class Band(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    decision: str = Field(min_length=1, description="Decision returned for this band")
    min_score: float = Field(ge=0.0, le=1.0, description="Lowest score (inclusive) of the band")


class EnsembleMember(BaseModel):
    """One model of an ensemble: a v2 endpoint (its own server, or one of several models on
    one server) and its weight."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$",
        description="Member name: names its outputs with return_members, and its errors",
    )
    host: str | None = Field(
        None,
        min_length=1,
        description="host:port of the member's predictor; unset: the transformer's predictor_host",
    )
    model_name: str | None = Field(
        None, min_length=1, description="Model name on that server; unset: the transformer's"
    )
    protocol: Literal["v2", "grpc-v2"] | None = Field(
        None, description="v2 REST or v2 gRPC; unset: the transformer's predictor_protocol"
    )
    weight: float = Field(1.0, gt=0, le=1e6, description="Weight in weighted_mean")


class Ensemble(BaseModel):
    """Several models scored concurrently on the same rows, their scores combined."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    combine: Literal["mean", "weighted_mean"] = Field(
        "weighted_mean",
        description="mean: every member counts the same (weights must be left at 1); "
        "weighted_mean: sum(weight * score) / sum(weight)",
    )
    members: tuple[EnsembleMember, ...] = Field(
        min_length=2, description="The models, at least two"
    )

    @model_validator(mode="after")
    def _check(self) -> Ensemble:
        names = [m.name for m in self.members]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"members: duplicate name(s) {dupes}")
        if self.combine == "mean" and any(m.weight != 1.0 for m in self.members):
            raise ValueError("members: weights are set but combine is 'mean' (use weighted_mean)")
        return self


class BusinessRules(BaseModel):
    """Score → decision, plus the policies for missing and stale features."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bands: tuple[Band, ...] = Field(
        (
            Band(decision="show_offer", min_score=0.5),
            Band(decision="show_banner", min_score=0.2),
            Band(decision="no_action", min_score=0.0),
        ),
        description="Decision bands, highest min_score first; the last must start at 0",
    )
    clamp_min: float = Field(0.0, ge=0.0, le=1.0, description="Scores below are raised to this")
    clamp_max: float = Field(1.0, ge=0.0, le=1.0, description="Scores above are lowered to this")
    missing_features: Literal["default"] = Field(
        "default",
        description="Users with no feature row (unknown users): answer the default, skip the model",
    )
    stale_features: Literal["model", "default"] = Field(
        "model",
        description="Users whose features are older than stale_after_s: score anyway, or default",
    )
    stale_after_s: float = Field(
        30 * 24 * 3600.0, gt=0, description="Feature rows older than this are stale"
    )
    store_unavailable: Literal["error", "default"] = Field(
        "error",
        description="When the online store is down or times out: error answers 503 (the "
        "client decides), default answers 200 with the default decision for every row "
        "(prediction_source default, feature_status unavailable), within the store timeout",
    )
    default_score: float = Field(0.0, ge=0.0, le=1.0, description="Score of a default answer")
    default_decision: str = Field("no_action", min_length=1, description="Default decision")
    ensemble: Ensemble | None = Field(
        None,
        description="Score with several models and combine their scores (docs/multi-model.md); "
        "unset: the one predictor",
    )

    @model_validator(mode="after")
    def _check(self) -> BusinessRules:
        if not self.bands:
            raise ValueError("bands: at least one band is required")
        scores = [b.min_score for b in self.bands]
        if scores != sorted(scores, reverse=True) or len(set(scores)) != len(scores):
            raise ValueError(f"bands: min_score must strictly decrease, got {scores}")
        if scores[-1] != 0.0:
            raise ValueError("bands: the last band must have min_score 0 so every score maps")
        if self.clamp_min > self.clamp_max:
            raise ValueError("clamp_min must not exceed clamp_max")
        return self

    def clamp(self, scores: np.ndarray) -> np.ndarray:
        return np.clip(scores, self.clamp_min, self.clamp_max)

    def decide(self, scores: np.ndarray) -> list[str]:
        thresholds = np.array([b.min_score for b in self.bands])
        # index of the first band whose min_score <= score (bands are descending)
        idx = np.argmax(scores[:, None] >= thresholds[None, :], axis=1)
        names = [b.decision for b in self.bands]
        return [names[i] for i in idx]


class RulesFileError(Exception):
    pass


def load_rules(path: Path | None) -> BusinessRules:
    """The rules in ``path`` (YAML), or the defaults; errors name the file and the field."""
    if path is None:
        return BusinessRules()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise RulesFileError(f"{path}: {e}") from e
    try:
        return BusinessRules.model_validate(raw)
    except ValidationError as e:
        msg = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in e.errors()
        )
        raise RulesFileError(f"{path}: {msg}") from e
