"""Which precomputed rows the transformer may serve, given the committed generation."""

from __future__ import annotations

import asyncio

import pytest

from predictor.protocol.generation import commit_key, committed_generation, new_generation, row_key
from transformer.generations import CommittedGeneration

pytestmark = pytest.mark.unit


def reader_of(values: list[str | Exception | None]):
    it = iter(values)

    async def read() -> str | None:
        v = next(it)
        if isinstance(v, Exception):
            raise v
        return v

    return read


def test_only_the_committed_generation_is_servable():
    g = CommittedGeneration(reader_of([commit_key("A")]), 1.0)
    keys = [row_key("A"), row_key("B"), "", "hour_of_day=20|session_duration_s=35.0"]
    assert g.servable(keys).tolist() == [False, False, True, True]  # nothing committed yet
    asyncio.run(g.refresh())
    assert g.generation == "A"
    assert g.servable(keys).tolist() == [True, False, True, True]
    assert g.servable([]).tolist() == []


def test_the_pointer_moves_with_commits_and_survives_failed_reads():
    g = CommittedGeneration(
        reader_of([commit_key("A"), None, OSError("down"), commit_key("B"), "garbage"]), 1.0
    )
    asyncio.run(g.refresh())
    asyncio.run(g.refresh())  # no commit row (e.g. a flushed store read as missing): keep A
    assert g.generation == "A"
    asyncio.run(g.refresh_logged())  # a failed read is logged, the last value kept
    assert g.generation == "A"
    asyncio.run(g.refresh())
    assert g.servable([row_key("A"), row_key("B")]).tolist() == [False, True]
    asyncio.run(g.refresh())  # not a commit row: ignored
    assert g.generation == "B"


def test_generation_format():
    a, b = new_generation(), new_generation()
    assert a <= b and len(a) == len(b) == len("20261129T220102123456Z")
    assert committed_generation(commit_key(a)) == a
    assert committed_generation(row_key(a)) is None  # a row is not a commit
    assert committed_generation("batch-commit@") is None
    assert committed_generation(None) is None
