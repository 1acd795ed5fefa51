"""Image names: which registry Knative resolves a tag against, which the kind cluster skips."""

from __future__ import annotations

import re

from tests.deploy.checks.tools import REPO

PROJECT_IMAGES = ("feast-kserve-transformer", "feast-kserve-predictor")


def knative_registry(image: str) -> str:
    """The registry Knative resolves ``image``'s tag against. Knative parses names with
    go-containerregistry: the first path part is a registry only if it has a "." or ":"
    (unlike Docker, "localhost/x" is a Docker Hub repository there)."""
    first, sep, _ = image.partition("/")
    return first if sep and ("." in first or ":" in first) else "index.docker.io"


def kind_registries_skipping_tag_resolving() -> set[str]:
    """What scripts/kind/up.sh puts in Knative's config-deployment."""
    up = (REPO / "scripts" / "kind" / "up.sh").read_text()
    m = re.search(r'"registries-skipping-tag-resolving":"([^"]*)"', up)
    assert m, "scripts/kind/up.sh no longer sets registries-skipping-tag-resolving"
    return set(m.group(1).split(","))
