"""The deploy tests' own helpers, where a wrong answer would hide a broken deployment."""

from __future__ import annotations

import pytest

from tests.deploy import validation as v

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("kind.local/feast-kserve-transformer:dev", "kind.local"),
        ("localhost:5001/x:dev", "localhost:5001"),
        ("ghcr.io/org/x:1", "ghcr.io"),
        # go-containerregistry (and so Knative) reads these as Docker Hub repositories
        ("localhost/feast-kserve-transformer:dev", "index.docker.io"),
        ("redis:7.4", "index.docker.io"),
        ("library/redis:7.4", "index.docker.io"),
    ],
)
def test_knative_registry_parses_names_like_go_containerregistry(image: str, registry: str) -> None:
    assert v.knative_registry(image) == registry


def test_the_kind_cluster_skips_tag_resolution_for_kind_local() -> None:
    assert "kind.local" in v.kind_registries_skipping_tag_resolving()
