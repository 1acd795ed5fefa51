"""What a feature service looks like, resolved once from the Feast registry, and the data that
an online read produces.

``FeatureLayout.resolve`` reads the registry at start-up: the model's features by short and
full name, the batch views (those with rows in the online store) and their features, the
on-demand views and the request fields they need, the entity join key, and the predictions
view when the serving mode reads one. Both fetchers (``redis_direct.RedisDirect``,
``sdk.SdkFetch``) take it as their only description of what to read, and
``FeatureLayout.assemble`` turns what they return (``Fetched``) into the model's matrix
(``FeatureBatch``). The stream worker assembles its vectors with the same two public calls
(``on_demand`` then ``assemble``), so it scores exactly what online serving would.

This module imports neither fetcher: the data flows fetcher → layout → model.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from predictor.protocol import predictions
from predictor.protocol.artifact import FeatureSpec
from predictor.protocol.codec import TensorSpec, feast_to_v2


class FeatureConfigError(Exception):
    """The feature repo and the model disagree; raised at start-up."""


@dataclass
class CachedPredictions:
    """What the predictions view holds for each user (read with the features)."""

    present: np.ndarray  # (N,) bool: a prediction row exists
    score: np.ndarray  # (N,) float64
    model_version: list[str]
    features_ts: np.ndarray  # (N,) int64 µs: event time of the features it was computed from
    request_key: list[str]  # request context it was computed for ("" = any, batch job)
    written_ts: np.ndarray  # (N,) int64 µs: when it was computed

    @classmethod
    def empty(cls, n: int) -> CachedPredictions:
        return cls(
            np.zeros(n, bool),
            np.zeros(n),
            [""] * n,
            np.zeros(n, np.int64),
            [""] * n,
            np.zeros(n, np.int64),
        )


@dataclass
class Fetched:
    """What an online read returned, before it is put in model order.

    ``values``: short feature name → one Python value per row (None: missing), on-demand
    features and prediction fields included; per feature view, whether each row was found and
    the event time of the row (µs).
    """

    values: dict[str, list[Any]]
    view_present: dict[str, np.ndarray]
    view_ts: dict[str, np.ndarray]


@dataclass
class FeatureBatch:
    """Features for N users, in model order."""

    names: list[str]  # full feature names, model order
    matrix: np.ndarray  # (N, F) float64; NaN where a value is missing
    missing: np.ndarray  # (N,) bool: the user has no usable feature row
    stale: np.ndarray  # (N,) bool: the row is older than the staleness limit
    feature_ts: np.ndarray  # (N,) int64 epoch µs of the user's feature row (0: none)
    cached: CachedPredictions | None = None

    def columns(self) -> dict[str, np.ndarray]:
        return {n: self.matrix[:, j] for j, n in enumerate(self.names)}


def v2_type(dtype: Any) -> str:
    """The v2 datatype of a Feast field type; a type without one is a configuration error."""
    datatype = feast_to_v2(dtype)
    if datatype is None:
        raise FeatureConfigError(f"Feast type {dtype} has no v2 tensor type")
    return datatype


class OnDemand:
    """One on-demand view's transformation over a dict of columns.

    For ``python``-mode batch views it does what Feast's ``transform_dict`` does (add the
    full ``view__feature`` alias of each source feature, call the UDF, overlay its outputs on
    the inputs) without the per-call runtime type checks Feast's class carries, which cost
    more than the UDF itself on a one-user request. Other modes call ``transform_dict``.
    """

    def __init__(self, odfv: Any):
        self.odfv = odfv
        self.features = [f.name for f in odfv.features]
        self.aliases = [
            (f"{p.name}__{f.name}", f.name)
            for p in odfv.source_feature_view_projections.values()
            for f in p.features
        ]
        transformation = odfv.feature_transformation
        plain = odfv.mode == "python" and not odfv.singleton
        self.udf = getattr(transformation, "udf", None) if plain else None

    def __call__(self, inputs: dict[str, Any]) -> dict[str, Any]:
        if self.udf is None:
            return self.odfv.transform_dict(dict(inputs))
        d = dict(inputs)
        for full, short in self.aliases:
            if full in inputs:
                d[short] = inputs[full]
            elif short in inputs:
                d[full] = inputs[short]
        return {**d, **self.udf(d)}


@dataclass
class FeatureLayout:
    """One feature service as the model reads it (``resolve`` builds it from the registry)."""

    service: Any  # feast FeatureService
    short_to_full: dict[str, str]  # every feature of the service
    batch_views: dict[str, list[str]]  # batch view → its short names (stored rows)
    odfvs: list[OnDemand]  # on-demand views, in service order
    request_fields: dict[str, TensorSpec]  # what the on-demand views need from the request
    entity_spec: TensorSpec  # the join key
    model_features: list[FeatureSpec]  # what the model takes, in its order
    model_short: list[str]  # their short names
    predictions_view: str | None  # read with the features (cached, precomputed modes)
    stale_after_s: float

    @property
    def join_key(self) -> str:
        return self.entity_spec.name

    @functools.cached_property  # read several times per request
    def input_specs(self) -> list[TensorSpec]:
        """What a request must carry: the entity key, then the request fields."""
        return [self.entity_spec, *self.request_fields.values()]

    @classmethod
    def resolve(
        cls,
        store: Any,
        feature_service: str,
        model_features: list[FeatureSpec],
        stale_after_s: float,
        predictions_view: str | None = None,
    ) -> FeatureLayout:
        try:
            service = store.get_feature_service(feature_service)
        except Exception as e:
            raise FeatureConfigError(f"feature service '{feature_service}': {e}") from e
        odfvs = {v.name: v for v in store.list_on_demand_feature_views()}
        short_to_full: dict[str, str] = {}
        batch_views: dict[str, list[str]] = {}
        request_fields: dict[str, TensorSpec] = {}
        join_keys: dict[str, str] = {}
        for proj in service.feature_view_projections:
            for f in proj.features:
                if f.name in short_to_full:
                    raise FeatureConfigError(
                        f"feature service '{feature_service}': feature name '{f.name}' is used by "
                        "two views; short names must be unique"
                    )
                short_to_full[f.name] = f"{proj.name_to_use()}__{f.name}"
                if proj.name not in odfvs:
                    batch_views.setdefault(proj.name, []).append(f.name)
            if proj.name in odfvs:
                for src in odfvs[proj.name].source_request_sources.values():
                    for field in src.schema:
                        request_fields[field.name] = TensorSpec(field.name, v2_type(field.dtype))
            else:
                fv = store.get_feature_view(proj.name)
                for col in fv.entity_columns:
                    join_keys[col.name] = v2_type(col.dtype)
        if len(join_keys) != 1:
            raise FeatureConfigError(
                f"feature service '{feature_service}': expected one entity join key, "
                f"got {join_keys}"
            )
        ((join_key, key_type),) = join_keys.items()
        full_to_short = {v: k for k, v in short_to_full.items()}
        unknown = [f.name for f in model_features if f.name not in full_to_short]
        if unknown:
            raise FeatureConfigError(
                f"the model needs {unknown}, which feature service '{feature_service}' does not "
                f"provide (it has {sorted(full_to_short)})"
            )
        if predictions_view is not None:
            try:
                view = store.get_feature_view(predictions_view)
            except Exception as e:
                raise FeatureConfigError(f"predictions view '{predictions_view}': {e}") from e
            have = {f.name for f in view.features}
            lacking = [f for f in predictions.FIELDS if f not in have]
            if lacking:
                raise FeatureConfigError(f"predictions view '{predictions_view}' lacks {lacking}")
            clash = set(predictions.FIELDS) & set(short_to_full)
            if clash:
                raise FeatureConfigError(f"feature names {sorted(clash)} clash with predictions")
        return cls(
            service=service,
            short_to_full=short_to_full,
            batch_views=batch_views,
            odfvs=[
                OnDemand(odfvs[p.name]) for p in service.feature_view_projections if p.name in odfvs
            ],
            request_fields=request_fields,
            entity_spec=TensorSpec(join_key, key_type),
            model_features=model_features,
            model_short=[full_to_short[f.name] for f in model_features],
            predictions_view=predictions_view,
            stale_after_s=stale_after_s,
        )

    def on_demand(self, values: dict[str, list[Any]], rows: dict[str, list[Any]]) -> None:
        """Add the on-demand features to ``values`` (stored features by short name), computed
        by the views' own transformations from them and the request fields in ``rows``."""
        if not self.odfvs:
            return
        inputs = {**values, **rows}
        for odfv in self.odfvs:
            out = odfv(inputs)
            for name in odfv.features:
                values[name] = list(out[name])

    def assemble(
        self, fetched: Fetched, n: int, with_predictions: bool = False
    ) -> tuple[FeatureBatch, dict[str, list]]:
        """The model-ordered batch (missing/stale per row), and every feature of the service
        by full name (for ``return_features``)."""
        values = fetched.values
        missing = np.zeros(n, dtype=bool)
        feature_ts = np.zeros(n, dtype=np.int64)
        for view in self.batch_views:
            missing |= ~fetched.view_present[view]
            feature_ts = np.maximum(feature_ts, fetched.view_ts[view])
        # one conversion of every column at once (None -> NaN): half the cost of one per column
        cols = np.array([values[s] for s in self.model_short], np.float64)
        matrix = cols.reshape(len(self.model_short), n).T.copy()
        missing |= np.isnan(matrix).any(axis=1)
        stale = ~missing & (time.time() * 1e6 - feature_ts > self.stale_after_s * 1e6)
        feature_ts[missing] = 0
        by_full = {self.short_to_full[s]: values[s] for s in self.short_to_full}
        cached = None
        if with_predictions:
            assert self.predictions_view is not None
            cached = CachedPredictions(
                fetched.view_present[self.predictions_view],
                np.array([np.nan if v is None else v for v in values["score"]], np.float64),
                [v or "" for v in values["model_version"]],
                np.array([v or 0 for v in values["features_timestamp"]], np.int64),
                [v or "" for v in values["request_key"]],
                fetched.view_ts[self.predictions_view],
            )
        batch = FeatureBatch(
            [f.name for f in self.model_features], matrix, missing, stale, feature_ts, cached
        )
        return batch, by_full
