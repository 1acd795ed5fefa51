"""Fixtures of the deploy tests: rendered manifests to check, and to break on purpose."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable

import pytest

from tests.deploy.checks.objects import Obj, load_docs
from tests.deploy.checks.tools import REPO, run, tool


@functools.cache
def _kustomize(path: str) -> tuple[Obj, ...]:
    out = run([tool("kubectl"), "kustomize", str(REPO / "manifests" / path)]).stdout
    return tuple(load_docs(out))


@pytest.fixture
def overlay() -> Callable[[str], list[Obj]]:
    """A fresh copy of a kustomize overlay's render (rendered once per session): a complete,
    valid stack that a test may break one field at a time."""

    def render(name: str) -> list[Obj]:
        return copy.deepcopy(list(_kustomize(f"overlays/{name}")))

    return render
