"""Batch-prediction generations: how a finished batch run is told from a running one.

Shared by the batch job (``predictor.jobs.batch``, writer) and the transformer's ``precomputed``
mode (``transformer.generations``, reader); it lives with the other store formats
(``predictor.protocol.feast_redis``), in the protocol layer both sides import.

Every batch run gets a generation id (``new_generation()``: its start time, UTC, to the
microsecond). Each prediction row it writes carries ``request_key = "batch@<generation>"``.
Only after the last row is written does the run write the *commit row*: the predictions row
of the reserved entity ``COMMIT_ENTITY`` (-1, no real user), whose ``request_key`` is
``"batch-commit@<generation>"``. One row, one online-store write: the pointer flips
atomically. A run that dies before (killed, out of memory, Redis gone) leaves the pointer
at the previous generation, and its rows are not served as precomputed.

The commit row's own ``request_key`` has another prefix than the rows', so the row is never
mistaken for a prediction of user -1, and ``cached`` mode never matches either prefix against
a request key (those are ``name=value|...``).
"""

from __future__ import annotations

from datetime import UTC, datetime

ROW_PREFIX = "batch@"
COMMIT_PREFIX = "batch-commit@"
COMMIT_ENTITY = -1


def new_generation(now: datetime | None = None) -> str:
    """A sortable id, unique per run: ``20261129T220102123456Z``."""
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")


def row_key(generation: str) -> str:
    """``request_key`` of a batch row of ``generation``."""
    return ROW_PREFIX + generation


def commit_key(generation: str) -> str:
    """``request_key`` of the commit row that marks ``generation`` complete."""
    return COMMIT_PREFIX + generation


def committed_generation(commit_request_key: str | None) -> str | None:
    """The generation a commit row names (None: no commit row, or not one)."""
    if commit_request_key and commit_request_key.startswith(COMMIT_PREFIX):
        return commit_request_key[len(COMMIT_PREFIX) :] or None
    return None
