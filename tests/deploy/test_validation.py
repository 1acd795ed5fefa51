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


def _isvc(**spec_extra: object) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "m",
            "annotations": {"serving.kserve.io/deploymentMode": "Knative"},
        },
        "spec": {
            "predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "pvc://x"}},
            **spec_extra,
        },
    }


def test_an_isvc_is_checked_against_every_supported_kserve_release() -> None:
    assert v.KSERVE_VERSIONS == ("v0.17.0", "v0.20.0")
    assert v.schema_errors(_isvc(), versions=("1.34",)) == []
    # spec.canary exists in v0.20.0's CRD only: the check names the release that rejects it
    problems = v.schema_errors(_isvc(canary=[]), versions=("1.34",))
    assert problems and all("KServe v0.17.0" in p for p in problems), problems
    # a field neither release knows: rejected by both
    problems = v.schema_errors(_isvc(nonsense=1), versions=("1.34",))
    assert {p.split(",")[1].split(")")[0].strip() for p in problems} == {
        "KServe v0.17.0",
        "KServe v0.20.0",
    }


def test_kserve_annotations_must_be_known_to_every_supported_release() -> None:
    obj = _isvc()
    assert v.annotation_errors(obj) == []
    obj["spec"]["predictor"]["annotations"] = {"serving.kserve.io/exp-dra-device-class": "gpu"}
    assert v.annotation_errors(obj) == [
        "InferenceService/m: annotation serving.kserve.io/exp-dra-device-class is unknown to "
        "KServe ['v0.17.0']"
    ]
    obj["metadata"]["annotations"]["serving.kserve.io/deploymentmode"] = "Knative"  # a typo
    assert "unknown to KServe ['v0.17.0', 'v0.20.0']" in v.annotation_errors(obj)[0]
