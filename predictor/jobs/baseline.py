"""The reference distribution of a model's inputs and score: ``baseline.json`` beside the model.

``predictor.jobs.train`` writes it from the hold-out set: for every model input (the features after
on-demand transforms, in model order and with the model's names) and for the score, fixed bins
with quantile edges, the hold-out count in each bin and the share of missing values. The
transformer's live drift monitor counts served values in the same bins.

The file names the model version it describes (``model_version``) and is not part of the
version hash: a model directory without it loads and serves as before, without monitoring.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from predictor.protocol.artifact import validated_json

BASELINE_FILE = "baseline.json"
SCORE = "score"  # the name the score's distribution goes by


class BaselineError(Exception):
    """An unreadable baseline; the message names the file and the field."""


class Distribution(BaseModel):
    """Bins of one variable: ``edges`` are the K-1 inner edges of K bins.

    Bin k holds ``edges[k-1] <= x < edges[k]`` (bin 0 everything below ``edges[0]``, the
    last bin everything at or above ``edges[-1]``), the same rule as
    ``np.searchsorted(edges, x, side="right")``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    edges: list[float] = Field(description="Inner bin edges, strictly increasing")
    counts: list[int] = Field(description="Hold-out rows per bin (len(edges) + 1)")
    missing_share: float = Field(ge=0.0, le=1.0, description="Share of rows with no value")

    @model_validator(mode="after")
    def _shape(self) -> Distribution:
        if len(self.counts) != len(self.edges) + 1:
            raise ValueError(f"{self.name}: {len(self.counts)} counts for {len(self.edges)} edges")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError(f"{self.name}: edges must be strictly increasing")
        if any(c < 0 for c in self.counts) or sum(self.counts) == 0:
            raise ValueError(f"{self.name}: counts must be non-negative and not all zero")
        return self


class Baseline(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    model_version: str = Field(description="Version of the model these distributions belong to")
    source: str = Field("holdout", description="Which rows: the training hold-out")
    rows: int = Field(ge=1)
    features: list[Distribution] = Field(min_length=1, description="Model inputs, model order")
    score: Distribution
    metrics: dict[str, float] = Field(
        default_factory=dict, description="Hold-out quality (auc, log_loss) live quality is held to"
    )

    @property
    def feature_names(self) -> list[str]:
        return [d.name for d in self.features]


def distribution(name: str, values: np.ndarray, bins: int = 10) -> Distribution:
    """Quantile bins of ``values`` (NaN = missing); repeated quantiles (integer or
    point-mass features) collapse, so a variable may get fewer than ``bins`` bins."""
    values = np.asarray(values, dtype=np.float64)
    present = values[~np.isnan(values)]
    missing = 1.0 - present.size / max(values.size, 1)
    if present.size == 0:
        return Distribution(name=name, edges=[], counts=[1], missing_share=1.0)
    qs = np.quantile(present, np.linspace(0.0, 1.0, bins + 1)[1:-1], method="lower")
    edges = np.unique(qs)
    # an edge equal to the minimum would leave bin 0 empty: drop it
    edges = edges[edges > present.min()]
    counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=edges.size + 1)
    return Distribution(
        name=name,
        edges=[float(e) for e in edges],
        counts=[int(c) for c in counts],
        missing_share=float(missing),
    )


def compute(
    model_version: str,
    names: list[str],
    x: np.ndarray,
    scores: np.ndarray,
    bins: int = 10,
    metrics: dict[str, float] | None = None,
) -> Baseline:
    return Baseline(
        model_version=model_version,
        metrics=metrics or {},
        rows=int(x.shape[0]),
        features=[distribution(n, x[:, j], bins) for j, n in enumerate(names)],
        score=distribution(SCORE, scores, bins),
    )


def write(model_dir: Path, baseline: Baseline) -> Path:
    path = model_dir / BASELINE_FILE
    path.write_text(baseline.model_dump_json(indent=1) + "\n")
    return path


def read(path: Path) -> Baseline:
    return validated_json(path, Baseline, BaselineError)
