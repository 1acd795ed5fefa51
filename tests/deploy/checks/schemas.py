"""Each rendered object against its schema, for every supported Kubernetes and KServe release.

Built-in kinds against the Kubernetes OpenAPI-derived JSON schemas that the
``kubernetes-validate`` package ships (strict variant: unknown fields are errors), for every
version in :data:`K8S_VERSIONS`. ``serving.kserve.io`` kinds against the InferenceService and
ServingRuntime CRDs of every KServe release in :data:`KSERVE_VERSIONS`
(``schemas/kserve-<tag>/``, made strict the way ``kubectl apply --validate=strict`` treats
structural schemas), ServingRuntimes also against a hand-written schema of the Go types
(``schemas/serving.kserve.io_servingruntimes.schema.json``), and every ``serving.kserve.io/*``
annotation against the keys each release defines (``schemas/kserve-<tag>/annotations.txt``).
A kind with no schema is an error: nothing we render may go unchecked (e.g. Knative or KEDA
objects would fail here).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import referencing
import yaml

from tests.deploy.checks.objects import Obj, ident

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"

#: Kubernetes versions every rendered object is validated against: the oldest the charts
#: declare (kubeVersion >=1.29) and the one of the pinned kubectl / kind node image.
K8S_VERSIONS = ("1.29", "1.34")
#: KServe releases every serving.kserve.io object is validated against: the oldest supported
#: and the newest (scripts/kind/versions.env KSERVE_MIN_VERSION and KSERVE_VERSION).
KSERVE_VERSIONS = ("v0.17.0", "v0.20.0")
K8S_DEFS = "https://kubernetes.io/api/_definitions.json"


@functools.cache
def _k8s_definitions(version: str) -> referencing.Resource:
    """The _definitions.json kubernetes-validate ships for `version` (strict variant)."""
    root = importlib_resources.files("kubernetes_validate") / "kubernetes-json-schema"
    path = root / f"v{version}.0-local-strict" / "_definitions.json"
    if not path.is_file():
        pytest.fail(
            f"kubernetes-validate has no strict schemas for {version} ({path})", pytrace=False
        )
    contents = json.loads(path.read_text())
    return referencing.Resource.from_contents(contents)


def _strict_crd_schema(node: Any) -> Any:
    """CRD openAPIV3Schema -> JSON Schema with the API server's semantics.

    Objects with `properties` and neither `additionalProperties` nor
    `x-kubernetes-preserve-unknown-fields` reject unknown fields (strict field validation);
    `nullable` admits null; int32/int64 formats get their bounds.
    """
    if isinstance(node, list):
        return [_strict_crd_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict_crd_schema(v) for k, v in node.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if out.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if out.get("type") == "integer" and out.get("format") == "int32":
        out.setdefault("minimum", -(2**31))
        out.setdefault("maximum", 2**31 - 1)
    return out


@functools.cache
def _crd_schema(kserve: str, file: str, kind: str, api_version: str) -> dict[str, Any]:
    # 2 MB of trusted YAML: the C loader when PyYAML has it (seconds faster).
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crd = yaml.load((SCHEMAS / f"kserve-{kserve}" / file).read_text(), Loader=loader)
    assert crd["kind"] == "CustomResourceDefinition", crd["kind"]
    served = api_version.split("/")[1]
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == served]
    schema = _strict_crd_schema(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {
        "$ref": f"{K8S_DEFS}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    }
    schema["properties"]["apiVersion"] = {"const": api_version}
    schema["properties"]["kind"] = {"const": kind}
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
    return schema


@functools.cache
def _servingruntime_schema() -> dict[str, Any]:
    return json.loads((SCHEMAS / "serving.kserve.io_servingruntimes.schema.json").read_text())


#: kind -> (CRD file, served apiVersion) in schemas/kserve-<tag>/
CRDS = {
    "InferenceService": ("serving.kserve.io_inferenceservices.yaml", "serving.kserve.io/v1beta1"),
    "ServingRuntime": ("serving.kserve.io_servingruntimes.yaml", "serving.kserve.io/v1alpha1"),
    "InferenceGraph": ("serving.kserve.io_inferencegraphs.yaml", "serving.kserve.io/v1alpha1"),
}


@functools.cache
def _crd_validator(kind: str, version: str, kserve: str | None) -> jsonschema.protocols.Validator:
    """``kserve`` None: the hand-written ServingRuntime schema (no CRD file behind it)."""
    registry = referencing.Registry().with_resource(K8S_DEFS, _k8s_definitions(version))
    if kserve is None:
        schema = _servingruntime_schema()
    else:
        file, api = CRDS[kind]
        schema = _crd_schema(kserve, file, kind, api)
    return jsonschema.Draft202012Validator(schema, registry=registry)


@functools.cache
def kserve_annotations(kserve: str) -> frozenset[str]:
    """The ``serving.kserve.io/*`` keys KServe ``kserve`` defines."""
    text = (SCHEMAS / f"kserve-{kserve}" / "annotations.txt").read_text()
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def _annotation_keys(node: Any) -> Iterator[str]:
    """Every key of every ``annotations`` map in ``node`` (metadata, component specs, pod
    templates)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "annotations" and isinstance(v, dict):
                yield from (str(key) for key in v)
            else:
                yield from _annotation_keys(v)
    elif isinstance(node, list):
        for item in node:
            yield from _annotation_keys(item)


def annotation_errors(obj: Obj, kserve_versions: Iterable[str] = KSERVE_VERSIONS) -> list[str]:
    """``serving.kserve.io/*`` annotations some supported KServe release does not know."""
    problems = []
    for key in sorted(set(_annotation_keys(obj))):
        if not key.startswith("serving.kserve.io/"):
            continue
        missing = [kv for kv in kserve_versions if key not in kserve_annotations(kv)]
        if missing:
            problems.append(f"{ident(obj)}: annotation {key} is unknown to KServe {missing}")
    return problems


def schema_errors(
    obj: Obj,
    versions: Iterable[str] = K8S_VERSIONS,
    kserve_versions: Iterable[str] = KSERVE_VERSIONS,
) -> list[str]:
    """Problems of one object against its schema, for each Kubernetes version (and each
    KServe release, for serving.kserve.io kinds)."""
    problems: list[str] = annotation_errors(obj, kserve_versions)
    api = str(obj.get("apiVersion", ""))
    for version in versions:
        if api.startswith("keda.sh/"):  # the stream worker's autoscaling (stream_checks)
            from tests.deploy.stream_checks import keda_schema_errors

            problems += keda_schema_errors(obj, version)
            continue
        if api.startswith("serving.kserve.io/"):
            kind = str(obj.get("kind"))
            if kind not in CRDS or api != CRDS[kind][1]:
                problems.append(f"{ident(obj)}: no schema for {api} {kind}")
                continue
            checks: list[tuple[str | None, str]] = [(kv, f"KServe {kv}") for kv in kserve_versions]
            if kind == "ServingRuntime":
                checks.append((None, "ServingRuntime Go types"))
            for kserve, label in checks:
                validator = _crd_validator(kind, version, kserve)
                for err in sorted(validator.iter_errors(obj), key=lambda e: list(e.path)):
                    path = ".".join(str(p) for p in err.path)
                    problems.append(
                        f"{ident(obj)} (k8s {version}, {label}): {path}: {err.message[:300]}"
                    )
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{ident(obj)}: no Kubernetes {version} schema: {exc.message}")
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            problems.append(f"{ident(obj)} (k8s {version}): {path}: {exc.message[:300]}")
    return problems
