"""The event schema: one user-activity event, JSON in the stream entry's ``event`` field.

Validated per event; anything that does not validate (malformed JSON, unknown type, missing
or mistyped field, extra field) is a ``BadEvent`` carrying a message that names the problem,
and goes to the dead-letter stream. docs/CONTRACT.md documents the schema.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from transformer.stream.fold import Activity

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
EVENT_FIELD = b"event"  # the stream entry field that holds the JSON


class Context(BaseModel):
    """Request-time fields of the moment, for the on-demand features of the new prediction."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    session_duration_s: float = Field(ge=0, le=86_400, description="Current session length")
    hour_of_day: StrictInt = Field(ge=0, le=23, description="Local hour of the event, 0-23")

    @field_validator("session_duration_s")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be finite")
        return v


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    event_id: str = Field(min_length=1, max_length=128, description="Unique per event")
    user_id: StrictInt = Field(ge=0, description="The user (entity key)")
    event_time: AwareDatetime = Field(description="When it happened, ISO 8601 with a zone")
    context: Context | None = Field(None, description="Request-time fields, for the prediction")


class Click(_Base):
    type: Literal["click"]
    converted: StrictBool = Field(False, description="The click led to a conversion")


class PageView(_Base):
    type: Literal["page_view"]
    duration_s: float = Field(ge=0, le=86_400, description="Seconds on the page")


class SessionEnd(_Base):
    type: Literal["session_end"]
    session_duration_s: float | None = Field(None, ge=0, description="Length of the session")


Event = Annotated[Click | PageView | SessionEnd, Field(discriminator="type")]
_ADAPTER: TypeAdapter[Click | PageView | SessionEnd] = TypeAdapter(Event)


class BadEvent(ValueError):
    """An entry that is not a valid event; the message names the problem."""


def parse(raw: bytes | str) -> Click | PageView | SessionEnd:
    """One event from its JSON text, or ``BadEvent``."""
    try:
        return _ADAPTER.validate_json(raw)
    except ValidationError as e:
        raise BadEvent(_describe(e)) from None


def _describe(e: ValidationError) -> str:
    parts = []
    for err in e.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "(event)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def from_entry(fields: dict[bytes, bytes]) -> Click | PageView | SessionEnd:
    """The event of one stream entry (its ``event`` field)."""
    raw = fields.get(EVENT_FIELD)
    if raw is None:
        raise BadEvent(f"entry has no '{EVENT_FIELD.decode()}' field (has {sorted(fields)})")
    return parse(raw)


def activity(e: Click | PageView | SessionEnd) -> Activity:
    ts_us = (e.event_time - _EPOCH) // _US
    if isinstance(e, Click):
        return Activity(e.event_id, e.user_id, ts_us, "click", converted=e.converted)
    if isinstance(e, PageView):
        return Activity(e.event_id, e.user_id, ts_us, "page_view", round(e.duration_s * 1000))
    return Activity(e.event_id, e.user_id, ts_us, "session_end")


def to_json(a: Activity, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """An activity as an event (the inverse of ``activity``), for producers and tests."""
    out: dict[str, Any] = {
        "event_id": a.event_id,
        "user_id": a.user_id,
        "type": a.type,
        "event_time": (_EPOCH + a.ts_us * _US).isoformat(),
    }
    if a.type == "click":
        out["converted"] = a.converted
    elif a.type == "page_view":
        out["duration_s"] = a.duration_ms / 1000
    if context is not None:
        out["context"] = context
    return out


def record_json(row: dict[str, Any]) -> bytes:
    """A table row (``event_id``, ``user_id``, ``event_time``, ``type``, ``duration_s``,
    ``converted``, ``context.<field>``; empty cells left out) as the event's JSON text."""
    import orjson
    import pandas as pd

    out: dict[str, Any] = {}
    ctx: dict[str, Any] = {}
    for k, v in row.items():
        if v is None or (not isinstance(v, str | list | dict) and pd.isna(v)):
            continue
        if isinstance(v, pd.Timestamp | datetime):
            v = v.isoformat()
        elif hasattr(v, "item"):
            v = v.item()
        if k.startswith("context."):
            ctx[k.removeprefix("context.")] = v
        else:
            out[k] = v
    if ctx:
        out["context"] = ctx
    return orjson.dumps(out)
