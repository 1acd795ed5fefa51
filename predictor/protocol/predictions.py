"""The predictions view's schema, defined once.

Cached mode (``transformer.cache``), the producer, the stream worker, the Ray batch job
(``predictor.jobs.batch``), the data generator (``predictor.jobs.datagen``, the view's empty
batch source) and the Feast definition itself (``feature_repo/features.py``, loaded by
``feast apply`` from the transformer image, where this package is installed) read the columns
from here. Rows are keyed by the entity (``user_id``) and carry an ``event_timestamp``: when
the prediction was computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VIEW = "model_predictions"
ENTITY = "user_id"


@dataclass(frozen=True)
class Column:
    name: str
    datatype: str  # v2 datatype: FP64, INT64, BYTES
    description: str


COLUMNS = (
    Column("score", "FP64", "Predicted click probability"),
    Column("model_version", "BYTES", "Version id of the model"),
    Column(
        "features_timestamp",
        "INT64",
        "Event time (epoch µs) of the user_data row the score was computed from",
    ),
    Column(
        "request_key",
        "BYTES",
        "Request-time fields the score was computed for; empty for batch scores",
    ),
)
FIELDS = tuple(c.name for c in COLUMNS)
TYPES = [(c.name, c.datatype) for c in COLUMNS]  # (name, v2 datatype), view order
_PANDAS = {"FP64": "float64", "INT64": "int64", "BYTES": "object"}


def frame_dtypes(entity: str = ENTITY) -> dict[str, Any]:
    """Column → pandas dtype of a predictions table (entity, the columns, event time)."""
    return {
        entity: "int64",
        **{c.name: _PANDAS[c.datatype] for c in COLUMNS},
        "event_timestamp": "datetime64[us, UTC]",
    }


def frame(rows: list[tuple], entity: str = ENTITY) -> Any:
    """A DataFrame of prediction rows ``(entity, *COLUMNS, event_timestamp)``, as
    ``FeatureStore.write_to_online_store`` takes it."""
    import pandas as pd

    return pd.DataFrame(rows, columns=[entity, *FIELDS, "event_timestamp"])
