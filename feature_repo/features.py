"""Feast definitions for the click model, in the shape of Feast's model-inference guide.

- ``user``: the entity, joined on ``user_id``.
- ``user_data``: batch features per user (materialized to the online store).
- ``request_context`` + ``user_request_features``: request-time fields and the on-demand
  features computed from them (``mode="python"``: no pandas on the request path).
- ``model_predictions``: predictions keyed by user (prediction cache / precomputed scores).
- ``click_model_v1``: the FeatureService naming exactly the model's inputs.

Paths are relative to this folder (Feast resolves them against the repo path).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from feast import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    PushSource,
    RequestSource,
    ValueType,
)
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float32, Float64, Int64, String

from predictor.protocol import predictions

user = Entity(
    name="user", join_keys=["user_id"], value_type=ValueType.INT64, description="A site user"
)

user_data_source = FileSource(
    name="user_data_source",
    path="data/user_data.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)

# Producers push fresh rows here (serving approach 2: refresh on change).
user_data_push = PushSource(name="user_data_push", batch_source=user_data_source)

user_data = FeatureView(
    name="user_data",
    entities=[user],
    # How far back a point-in-time join looks for a row; online reads older than this
    # come back as OUTSIDE_MAX_AGE and the transformer's stale rule applies.
    ttl=timedelta(days=90),
    schema=[
        Field(
            name="click_through_rate", dtype=Float32, description="Clicks / impressions, 30 days"
        ),
        Field(name="number_of_clicks", dtype=Int64, description="Clicks, 30 days"),
        Field(name="average_page_duration", dtype=Float32, description="Seconds per page view"),
        Field(name="sessions_last_7d", dtype=Int64, description="Sessions in the last 7 days"),
        Field(name="days_since_signup", dtype=Int64, description="Account age in days"),
        Field(name="conversion_rate", dtype=Float32, description="Conversions / clicks, 90 days"),
    ],
    online=True,
    source=user_data_push,
    tags={"owner": "ml-platform"},
)

request_context = RequestSource(
    name="request_context",
    schema=[
        Field(name="session_duration_s", dtype=Float64, description="Current session length"),
        Field(name="hour_of_day", dtype=Int64, description="Local hour of the request, 0-23"),
    ],
)


@on_demand_feature_view(
    sources=[user_data, request_context],
    schema=[
        Field(name="engagement_ratio", dtype=Float64),
        Field(name="is_peak_hour", dtype=Int64),
        Field(name="clicks_per_session", dtype=Float64),
    ],
    mode="python",
)
def user_request_features(inputs: dict[str, Any]) -> dict[str, Any]:
    """Request-time features. Missing batch features (unknown users) yield None."""
    out: dict[str, list[Any]] = {
        "engagement_ratio": [],
        "is_peak_hour": [],
        "clicks_per_session": [],
    }
    for dur, avg, hour, clicks, sessions in zip(
        inputs["session_duration_s"],
        inputs["average_page_duration"],
        inputs["hour_of_day"],
        inputs["number_of_clicks"],
        inputs["sessions_last_7d"],
        strict=True,
    ):
        out["engagement_ratio"].append(
            None if dur is None or avg is None else float(dur) / max(float(avg), 1.0)
        )
        out["is_peak_hour"].append(None if hour is None else int(18 <= int(hour) <= 22))
        out["clicks_per_session"].append(
            None if clicks is None or sessions is None else float(clicks) / max(int(sessions), 1)
        )
    return out


model_predictions_source = FileSource(
    name="model_predictions_source",
    path="data/model_predictions.parquet",
    timestamp_field="event_timestamp",
)
model_predictions_push = PushSource(
    name="model_predictions_push", batch_source=model_predictions_source
)

# The columns are defined once, in predictor.protocol.predictions (installed in the image
# that runs `feast apply`), for the transformer, the stream worker and the batch job alike.
_FEAST_TYPES = {"FP64": Float64, "INT64": Int64, "BYTES": String}

model_predictions = FeatureView(
    name=predictions.VIEW,
    entities=[user],
    ttl=timedelta(days=7),
    schema=[
        Field(name=c.name, dtype=_FEAST_TYPES[c.datatype], description=c.description)
        for c in predictions.COLUMNS
    ],
    online=True,
    source=model_predictions_push,
    tags={"owner": "ml-platform"},
)

click_model_v1 = FeatureService(
    name="click_model_v1",
    features=[user_data, user_request_features],
    description="Exactly the inputs of the click model, in training order",
)
