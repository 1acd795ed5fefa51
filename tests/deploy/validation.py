"""Offline validation of rendered Kubernetes manifests (Helm charts, kustomize overlays).

Three layers, all without a cluster or network:

1. **Schemas.** Built-in kinds against the Kubernetes OpenAPI-derived JSON schemas that the
   ``kubernetes-validate`` package ships (strict variant: unknown fields are errors), for
   every version in :data:`K8S_VERSIONS`. ``serving.kserve.io`` kinds against the
   InferenceService and ServingRuntime CRDs of every KServe release in
   :data:`KSERVE_VERSIONS` (``schemas/kserve-<tag>/``, made strict the way
   ``kubectl apply --validate=strict`` treats structural schemas), ServingRuntimes also
   against a hand-written schema of the Go types
   (``schemas/serving.kserve.io_servingruntimes.schema.json``), and every
   ``serving.kserve.io/*`` annotation against the keys each release defines
   (``schemas/kserve-<tag>/annotations.txt``). A kind
   with no schema is an error: nothing we render may go unchecked (e.g. Knative or KEDA
   objects would fail here).
2. **KServe semantics** the API server's webhook enforces or KServe relies on: runtime and
   model format resolution, deployment-mode dependent autoscaling fields, canary limits,
   injected transformer flags.
3. **Stack invariants**: pinned images, resources, restricted security contexts, probes,
   references between objects (ConfigMaps, Secrets, ServiceAccounts, PVCs, Services), and
   NetworkPolicies that really admit every Feast/Redis client and only the transformer
   into the predictor.

Each ``check_*`` function returns a list of human-readable problems; tests assert it is
empty, so one run reports every problem at once.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import referencing
import yaml

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = Path(__file__).resolve().parent / "schemas"
TOOLS_BIN = REPO / ".tools" / "bin"

#: Kubernetes versions every rendered object is validated against: the oldest the charts
#: declare (kubeVersion >=1.29) and the one of the pinned kubectl / kind node image.
K8S_VERSIONS = ("1.29", "1.34")
#: KServe releases every serving.kserve.io object is validated against: the oldest supported
#: and the newest (scripts/kind/versions.env KSERVE_MIN_VERSION and KSERVE_VERSION).
KSERVE_VERSIONS = ("v0.17.0", "v0.20.0")
NAMESPACE = "feast-inference"
ISVC_NAME = "click-model"

SERVERLESS_MODES = {"Serverless", "Knative"}
STANDARD_MODES = {"RawDeployment", "Standard"}
LEGACY_MODES = {"Serverless", "RawDeployment"}
PROJECT_IMAGES = ("feast-kserve-transformer", "feast-kserve-predictor")
CONTRACT_OUTPUTS = {"score", "decision", "model_version", "prediction_source"}
K8S_DEFS = "https://kubernetes.io/api/_definitions.json"

Obj = dict[str, Any]


# --------------------------------------------------------------------------- Knative images


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


# --------------------------------------------------------------------------- tools


def tool(name: str) -> str:
    """Path of helm/kubectl: .tools/bin first (scripts/install-k8s-tools.sh), then PATH."""
    local = TOOLS_BIN / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(
        f"`{name}` not found in {TOOLS_BIN} or on PATH. Install the pinned helm and kubectl "
        "with `make k8s-tools` (scripts/install-k8s-tools.sh); the deploy tests cannot run "
        "without them.",
        pytrace=False,
    )


def run(
    cmd: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    expect_ok: bool = True,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    if expect_ok and proc.returncode != 0:
        pytest.fail(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}",
            pytrace=False,
        )
    return proc


# --------------------------------------------------------------------------- YAML


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (kubectl does; PyYAML keeps the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"duplicate key {key!r}",
                key_node.start_mark,
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_docs(text: str) -> list[Obj]:
    """All non-empty documents of a multi-document YAML stream (duplicate keys fail)."""
    docs = [d for d in yaml.load_all(text, Loader=_UniqueKeyLoader) if d is not None]
    for d in docs:
        assert isinstance(d, dict), f"a YAML document is not a mapping: {d!r:.200}"
    return docs


def load_file(path: Path) -> list[Obj]:
    return load_docs(path.read_text())


def ident(obj: Obj) -> str:
    md = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{md.get('name')}"


# --------------------------------------------------------------------------- schemas


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


# --------------------------------------------------------------------------- pod specs


@dataclass
class PodSource:
    """A pod template found in the manifests (workloads, Jobs, ISVC components, runtimes)."""

    where: str
    kind: str  # Deployment, StatefulSet, Job, CronJob, Pod, isvc-transformer, servingruntime
    labels: dict[str, str]
    annotations: dict[str, str]
    spec: dict[str, Any]  # has containers / volumes / securityContext (pod-level) if any
    long_running: bool
    pod_security: dict[str, Any] = field(default_factory=dict)


def pod_sources(objs: list[Obj]) -> Iterator[PodSource]:
    for obj in objs:
        kind = obj.get("kind")
        name = ident(obj)
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
            tpl = obj["spec"]["template"]
            yield PodSource(
                name,
                kind,
                tpl.get("metadata", {}).get("labels", {}) or {},
                tpl.get("metadata", {}).get("annotations", {}) or {},
                tpl["spec"],
                kind != "Job",
                tpl["spec"].get("securityContext") or {},
            )
        elif kind == "CronJob":
            tpl = obj["spec"]["jobTemplate"]["spec"]["template"]
            yield PodSource(
                name,
                kind,
                tpl.get("metadata", {}).get("labels", {}) or {},
                tpl.get("metadata", {}).get("annotations", {}) or {},
                tpl["spec"],
                False,
                tpl["spec"].get("securityContext") or {},
            )
        elif kind == "Pod":
            md = obj.get("metadata", {})
            yield PodSource(
                name,
                kind,
                md.get("labels", {}) or {},
                md.get("annotations", {}) or {},
                obj["spec"],
                False,
                obj["spec"].get("securityContext") or {},
            )
        elif kind == "InferenceService":
            for comp in ("predictor", "transformer", "explainer"):
                spec = obj["spec"].get(comp)
                if not spec:
                    continue
                containers = list(spec.get("containers") or [])
                if spec.get("model"):
                    containers.append({**spec["model"], "name": "kserve-container"})
                yield PodSource(
                    f"{name}.{comp}",
                    f"isvc-{comp}",
                    spec.get("labels", {}) or {},
                    spec.get("annotations", {}) or {},
                    {**spec, "containers": containers},
                    True,
                    spec.get("securityContext") or {},
                )
        elif kind in ("ServingRuntime", "ClusterServingRuntime"):
            yield PodSource(
                name,
                "servingruntime",
                obj["spec"].get("labels", {}) or {},
                obj["spec"].get("annotations", {}) or {},
                obj["spec"],
                True,
                {},
            )


def _effective(container: dict[str, Any], pod_sc: dict[str, Any], key: str) -> Any:
    sc = container.get("securityContext") or {}
    return sc.get(key, pod_sc.get(key))


def check_containers(objs: list[Obj]) -> list[str]:
    """Pinned images, resources, restricted security context, probes, writable /tmp."""
    problems: list[str] = []
    runtimes = {o["metadata"]["name"]: o for o in objs if o.get("kind") == "ServingRuntime"}
    for src in pod_sources(objs):
        for c in src.spec.get("containers") or []:
            where = f"{src.where}[{c.get('name')}]"
            image = c.get("image")
            if src.kind == "isvc-predictor" and not image:
                # model spec: image and most fields come from the ServingRuntime.
                rt = runtimes.get(c.get("runtime") or "")
                if rt is None:
                    continue  # reported by check_kserve
                continue
            if not image:
                problems.append(f"{where}: no image")
                continue
            ref = image.rsplit("/", 1)[-1]
            if "@sha256:" not in image and (":" not in ref or ref.endswith(":latest")):
                problems.append(f"{where}: image {image!r} is not pinned to a tag or digest")
            res = c.get("resources") or {}
            for bucket, keys in (("requests", ("cpu", "memory")), ("limits", ("memory",))):
                for key in keys:
                    if key not in (res.get(bucket) or {}):
                        problems.append(f"{where}: resources.{bucket}.{key} missing")
            pod_sc = src.pod_security
            if _effective(c, pod_sc, "runAsNonRoot") is not True:
                problems.append(f"{where}: runAsNonRoot is not true")
            if (c.get("securityContext") or {}).get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if (c.get("securityContext") or {}).get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: readOnlyRootFilesystem is not true")
            drop = ((c.get("securityContext") or {}).get("capabilities") or {}).get("drop") or []
            if "ALL" not in drop:
                problems.append(f"{where}: capabilities.drop lacks ALL")
            seccomp = (_effective(c, pod_sc, "seccompProfile") or {}).get("type")
            if seccomp not in ("RuntimeDefault", "Localhost"):
                problems.append(f"{where}: seccompProfile is {seccomp!r}, not RuntimeDefault")
            user = _effective(c, pod_sc, "runAsUser")
            if any(name in image for name in PROJECT_IMAGES) and user not in (None, 10001):
                problems.append(f"{where}: runs as uid {user}, the images' user is 10001")
            if src.long_running and not c.get("readinessProbe"):
                problems.append(f"{where}: no readinessProbe")
            if src.long_running and not c.get("livenessProbe"):
                problems.append(f"{where}: no livenessProbe")
            mounts = {m["mountPath"] for m in c.get("volumeMounts") or []}
            # Python (tempfile, Feast, KServe) and our Redis start script write to /tmp.
            writes_tmp = any(n in image for n in PROJECT_IMAGES) or "/redis:" in image
            if writes_tmp and "/tmp" not in mounts:
                problems.append(f"{where}: read-only root filesystem but no volume on /tmp")
            volumes = {v["name"] for v in src.spec.get("volumes") or []}
            if src.kind == "StatefulSet":
                volumes |= {"data"}  # volumeClaimTemplates, checked by the schema
            for m in c.get("volumeMounts") or []:
                if m["name"] not in volumes:
                    problems.append(f"{where}: volumeMount {m['name']!r} has no volume")
            if src.kind in ("isvc-transformer", "servingruntime"):
                problems += _check_v2_probes(where, c)
    return problems


def _check_v2_probes(where: str, c: dict[str, Any]) -> list[str]:
    problems = []
    for probe, path in (
        ("readinessProbe", "/v2/health/ready"),
        ("livenessProbe", "/v2/health/live"),
    ):
        http = (c.get(probe) or {}).get("httpGet") or {}
        if http.get("path") != path:
            problems.append(f"{where}: {probe} is not GET {path} ({http or c.get(probe)})")
        ports = {p.get("containerPort") for p in c.get("ports") or []}
        if http.get("port") not in ports:
            problems.append(f"{where}: {probe} port {http.get('port')} is not a container port")
    return problems


# --------------------------------------------------------------------------- references


def _index(objs: list[Obj]) -> dict[str, set[str]]:
    idx: dict[str, set[str]] = {}
    for o in objs:
        if (
            "/" not in o.get("apiVersion", "")
            or o["apiVersion"].split("/")[0].endswith(".k8s.io")
            or o["apiVersion"].split("/")[0] in ("apps", "batch", "policy", "autoscaling")
        ):
            idx.setdefault(o["kind"], set()).add(o["metadata"]["name"])
    return idx


def check_references(objs: list[Obj], external: Iterable[str] = ()) -> list[str]:
    """ConfigMaps, Secrets, PVCs and ServiceAccounts that pods use exist in the render.

    `external` names objects deliberately provided outside it ("Secret/name").
    """
    idx = _index(objs)
    ext = set(external)
    problems: list[str] = []

    def need(kind: str, name: str | None, where: str) -> None:
        if name and name not in idx.get(kind, set()) and f"{kind}/{name}" not in ext:
            problems.append(f"{where}: {kind} {name!r} is not in the rendered manifests")

    for src in pod_sources(objs):
        spec = src.spec
        for v in spec.get("volumes") or []:
            if "configMap" in v:
                need("ConfigMap", v["configMap"]["name"], src.where)
            if "secret" in v:
                need("Secret", v["secret"]["secretName"], src.where)
            if "persistentVolumeClaim" in v:
                need("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"], src.where)
        sa = spec.get("serviceAccountName")
        if sa:
            need("ServiceAccount", sa, src.where)
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            for e in c.get("env") or []:
                ref = e.get("valueFrom") or {}
                if "secretKeyRef" in ref:
                    need("Secret", ref["secretKeyRef"]["name"], f"{src.where}[{c['name']}]")
                if "configMapKeyRef" in ref:
                    need("ConfigMap", ref["configMapKeyRef"]["name"], f"{src.where}[{c['name']}]")
    for o in objs:
        if o["kind"] == "InferenceService":
            uri = o["spec"]["predictor"].get("model", {}).get("storageUri", "")
            if uri.startswith("pvc://"):
                need("PersistentVolumeClaim", uri[len("pvc://") :].split("/", 1)[0], ident(o))
    return problems


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Label selector semantics (matchLabels + matchExpressions)."""
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def check_services(objs: list[Obj]) -> list[str]:
    """Every Service selects pods that exist, on container ports those pods declare."""
    problems = []
    sources = list(pod_sources(objs))
    for svc in (o for o in objs if o["kind"] == "Service" and o.get("apiVersion") == "v1"):
        selector = svc["spec"].get("selector") or {}
        pods = [s for s in sources if selector and _matches({"matchLabels": selector}, s.labels)]
        if not pods:
            problems.append(f"{ident(svc)}: selector {selector} matches no pod template")
            continue
        for port in svc["spec"].get("ports") or []:
            target = port.get("targetPort", port["port"])
            for pod in pods:
                declared = {
                    (p.get("name"), p.get("containerPort"))
                    for c in pod.spec.get("containers") or []
                    for p in c.get("ports") or []
                }
                if not any(target in (n, cp) for n, cp in declared):
                    problems.append(
                        f"{ident(svc)}: targetPort {target!r} not declared by {pod.where}"
                    )
    for pdb in (o for o in objs if o["kind"] == "PodDisruptionBudget"):
        if not any(_matches(pdb["spec"]["selector"], s.labels) for s in sources):
            problems.append(f"{ident(pdb)}: selector matches no pod template")
    return problems


# --------------------------------------------------------------------------- network policy


def _policies_for(objs: list[Obj], labels: dict[str, str]) -> list[Obj]:
    return [
        np
        for np in objs
        if np["kind"] == "NetworkPolicy"
        and np.get("apiVersion") == "networking.k8s.io/v1"
        and "Ingress" in (np["spec"].get("policyTypes") or ["Ingress"])
        and _matches(np["spec"]["podSelector"], labels)
    ]


def _admits_pod(policies: list[Obj], client: dict[str, str], port: int) -> bool:
    """Does any rule admit a same-namespace pod with `client` labels on `port`?"""
    return _rules_allow(policies, "ingress", "from", client, port)


def _rules_allow(
    policies: list[Obj], direction: str, peers_key: str, other: dict[str, str], port: int
) -> bool:
    """Does any ``direction`` rule allow a same-namespace pod with `other` labels on `port`?"""
    for np in policies:
        for rule in np["spec"].get(direction) or []:
            ports = rule.get("ports")
            if ports and not any(p.get("port") == port for p in ports):
                continue
            peers = rule.get(peers_key)
            if not peers:
                return True
            for peer in peers:
                if "namespaceSelector" in peer or "ipBlock" in peer:
                    continue
                if _matches(peer.get("podSelector") or {}, other):
                    return True
    return False


def _same_namespace_peers(policies: list[Obj]) -> list[dict[str, Any]]:
    return [
        peer.get("podSelector") or {}
        for np in policies
        for rule in np["spec"].get("ingress") or []
        for peer in rule.get("from") or [{}]
        if "namespaceSelector" not in peer and "ipBlock" not in peer
    ]


def _env_names(src: PodSource) -> set[str]:
    return {e["name"] for c in src.spec.get("containers") or [] for e in c.get("env") or []}


def check_network_policies(objs: list[Obj], *, redis_bundled: bool = True) -> list[str]:
    """Predictor only from the transformer; Redis and the registry from (all) their clients."""
    problems: list[str] = []
    sources = list(pod_sources(objs))
    by_kind = {s.kind: s for s in sources}
    predictor, transformer = by_kind.get("isvc-predictor"), by_kind.get("isvc-transformer")
    if predictor and transformer:
        pols = _policies_for(objs, predictor.labels)
        if not pols:
            problems.append("no NetworkPolicy selects the predictor pods")
        if not _admits_pod(pols, transformer.labels, 8080):
            problems.append("the predictor's NetworkPolicies do not admit the transformer on 8080")
        for sel in _same_namespace_peers(pols):
            for other in sources:
                if (
                    other is not transformer
                    and other.kind != "isvc-predictor"
                    and _matches(sel, other.labels)
                ):
                    problems.append(
                        f"the predictor admits {other.where} (peer {sel}), not only the transformer"
                    )
        tpols = _policies_for(objs, transformer.labels)
        if not tpols:
            problems.append("no NetworkPolicy selects the transformer pods")
        for test_pod in (s for s in sources if s.kind == "Pod" and "test" in s.where):
            if not _admits_pod(tpols, test_pod.labels, 8080):
                problems.append(f"{test_pod.where} is not admitted to the transformer on 8080")

    def clients(var: str) -> list[PodSource]:
        return [s for s in sources if var in _env_names(s)]

    redis = [s for s in sources if s.labels.get("app.kubernetes.io/name") == "redis"]
    if redis_bundled and not redis:
        problems.append("no Redis pod template rendered")
    for r in redis:
        pols = _policies_for(objs, r.labels)
        if not pols:
            problems.append(f"no NetworkPolicy selects {r.where}")
        redis_clients = clients("REDIS_CONNECTION_STRING")
        for c in redis_clients:
            if not _admits_pod(pols, c.labels, 6379):
                problems.append(
                    f"{c.where} uses Redis but the Redis NetworkPolicy does not admit it"
                )
        for sel in _same_namespace_peers(pols):
            for other in sources:
                if (
                    other not in redis_clients
                    and other not in redis
                    and _matches(sel, other.labels)
                ):
                    problems.append(f"Redis admits {other.where}, which does not use Redis")
    registry = [s for s in sources if s.labels.get("app.kubernetes.io/name") == "feast-registry"]
    for reg in registry:
        pols = _policies_for(objs, reg.labels)
        if not pols:
            problems.append(f"no NetworkPolicy selects {reg.where}")
        # the port the registry listens on (6570 unless the chart's global.feast.registryPort)
        port = next(
            (
                p["containerPort"]
                for c in reg.spec.get("containers") or []
                for p in c.get("ports") or []
                if p.get("name") == "grpc"
            ),
            6570,
        )
        for c in clients("FEAST_FS_YAML_FILE_PATH"):
            if c is not reg and not _admits_pod(pols, c.labels, port):
                problems.append(f"{c.where} is a Feast client but the registry does not admit it")
    return problems


def _egress_policies(objs: list[Obj], labels: dict[str, str]) -> list[Obj]:
    return [
        np
        for np in objs
        if np["kind"] == "NetworkPolicy"
        and "Egress" in (np["spec"].get("policyTypes") or [])
        and _matches(np["spec"]["podSelector"], labels)
    ]


def _egress_reaches(policies: list[Obj], dest: dict[str, str], port: int) -> bool:
    """Does any egress rule let the pods reach a same-namespace pod with `dest` labels?"""
    return _rules_allow(policies, "egress", "to", dest, port)


def _reaches_dns(policies: list[Obj]) -> bool:
    return any(
        any(p.get("port") == 53 and p.get("protocol", "TCP") == "UDP" for p in r.get("ports") or [])
        and any("kube-system" in json.dumps(peer) for peer in r.get("to") or [])
        for np in policies
        for r in np["spec"].get("egress") or []
    )


REDIS = {"app.kubernetes.io/name": "redis"}
REGISTRY = {"app.kubernetes.io/name": "feast-registry"}
FEAST_CLIENTS = ("feast-feature-server", "feast-bootstrap", "feast-materialize")


def check_egress_policies(objs: list[Obj], *, serverless: bool | None = None) -> list[str]:
    """Each pod reaches its dependencies and nothing else: the transformer DNS, Redis, the
    Feast registry and the predictor; the predictor and the registry server DNS; the other
    Feast pods DNS, Redis and the registry; Redis nothing. "Nothing else": every rule names
    its peers, each a dependency's pods, kube-system's DNS, or (Knative, transformer) the
    Knative data-path namespaces; no open ipBlock, no empty selector."""
    from tests.deploy.kserve_logger import without_sink_rules  # checks those rules itself

    objs = without_sink_rules(objs)
    problems: list[str] = []
    sources = list(pod_sources(objs))
    by_kind = {s.kind: s for s in sources}
    predictor, transformer = by_kind.get("isvc-predictor"), by_kind.get("isvc-transformer")

    def named(name: str) -> list[PodSource]:
        return [s for s in sources if s.labels.get("app.kubernetes.io/name") == name]

    # (who, pod, dependencies it may reach, (dependency, port) it must reach, needs DNS)
    plan: list[tuple[str, PodSource, list[dict[str, str]], list[tuple[PodSource, int]], bool]]
    plan = []
    # by name and release (a sub-chart alone renders no Redis; its selectors name the Redis
    # and registry of its own release) and by the rendered pods' full labels
    releases = {r for s in sources if (r := s.labels.get("app.kubernetes.io/instance"))}
    deps = [{**dep, "app.kubernetes.io/instance": r} for dep in (REDIS, REGISTRY) for r in releases]
    deps += [REDIS, REGISTRY] + [p.labels for p in named("redis") + named("feast-registry")]
    # a NetworkPolicy sees the pod's port (a Service's targetPort), not the Service's port
    needs = [(p, _pod_port(p)) for p in named("redis") + named("feast-registry")]
    if predictor and transformer:
        t_needs = needs + ([] if serverless else [(predictor, 8080)])
        plan.append(("transformer", transformer, [predictor.labels, *deps], t_needs, True))
        plan.append(("predictor", predictor, [], [], True))
    elif predictor and predictor.labels.get("feast-kserve.io/component") == "transformer":
        plan.append(("transformer", predictor, deps, needs, True))  # collocated: one component
    elif not named("redis"):
        problems.append("no predictor/transformer pod templates rendered")
    plan += [("redis", p, [], [], False) for p in named("redis")]
    plan += [("feast registry", p, [], [], True) for p in named("feast-registry")]
    for name in FEAST_CLIENTS:
        plan += [(name, p, deps, needs, True) for p in named(name)]
    for who, src, may, must, dns in plan:
        pols = _egress_policies(objs, src.labels)
        if not pols:
            problems.append(f"no egress NetworkPolicy selects {who} ({src.where})")
            continue
        if dns and not _reaches_dns(pols):
            problems.append(f"the {who}'s egress does not reach DNS (kube-system, 53/UDP)")
        for dep, port in must:
            if not _egress_reaches(pols, dep.labels, port):
                problems.append(f"the {who}'s egress does not reach {dep.where} on {port}")
        for np in pols:
            for rule in np["spec"].get("egress") or []:
                peers = rule.get("to")
                if not peers:
                    problems.append(f"{ident(np)}: an egress rule without 'to' opens everything")
                    continue
                for peer in peers:
                    problems += _egress_peer_problems(
                        np, who, peer, may, serverless, external_redis=not named("redis")
                    )
    return problems


def _pod_port(src: PodSource) -> int:
    """The first port of the pod's first container (Redis, the registry server)."""
    return int(src.spec["containers"][0]["ports"][0]["containerPort"])


def _egress_peer_problems(
    np: Obj,
    who: str,
    peer: dict[str, Any],
    may: list[dict[str, str]],
    serverless: bool | None,
    *,
    external_redis: bool = False,
) -> list[str]:
    text = json.dumps(peer, sort_keys=True)
    if "ipBlock" in peer:
        # An external Redis (none rendered) is an address: one host, the clients' rules only.
        block = peer["ipBlock"]
        one_host = str(block.get("cidr", "")).endswith(("/32", "/128")) and not block.get("except")
        if external_redis and one_host and who in ("transformer", *FEAST_CLIENTS):
            return []
        return [f"{ident(np)}: {who} egress to an ipBlock {text}"]
    if "namespaceSelector" in peer:
        ns = peer["namespaceSelector"]
        if not (ns.get("matchLabels") or ns.get("matchExpressions")):
            return [f"{ident(np)}: {who} egress to every namespace {text}"]
        if "kube-system" in text and "kube-dns" in text:
            return []
        if serverless and "knative-serving" in text and who == "transformer":
            return []
        return [f"{ident(np)}: {who} egress to other namespaces {text}"]
    sel = peer.get("podSelector") or {}
    if not sel.get("matchLabels") and not sel.get("matchExpressions"):
        return [f"{ident(np)}: {who} egress to every pod of the namespace"]
    if not any(_matches(sel, labels) for labels in may):
        return [f"{ident(np)}: {who} egress to {text}, which is none of its dependencies"]
    return []


# --------------------------------------------------------------------------- Feast config


def feature_store_configs(objs: list[Obj]) -> dict[str, dict[str, Any]]:
    return {
        o["metadata"]["name"]: yaml.safe_load(o["data"]["feature_store.yaml"])
        for o in objs
        if o["kind"] == "ConfigMap" and "feature_store.yaml" in (o.get("data") or {})
    }


def check_feast(objs: list[Obj], *, redis_bundled: bool = True) -> list[str]:
    """Client configs point at a rendered registry Service; Redis strings at the Redis Service."""
    problems: list[str] = []
    services = {
        o["metadata"]["name"]: o
        for o in objs
        if o["kind"] == "Service" and o.get("apiVersion") == "v1"
    }
    for name, cfg in feature_store_configs(objs).items():
        if cfg.get("project") != "click_inference":
            problems.append(
                f"ConfigMap/{name}: project {cfg.get('project')!r} is not click_inference"
            )
        reg = cfg.get("registry") or {}
        if reg.get("registry_type") == "remote":
            host, _, port = reg["path"].rpartition(":")
            svc = services.get(host)
            if svc is None:
                problems.append(
                    f"ConfigMap/{name}: registry {reg['path']} is not a rendered Service"
                )
            elif int(port) not in {p["port"] for p in svc["spec"]["ports"]}:
                problems.append(f"ConfigMap/{name}: registry port {port} not on Service/{host}")
        elif reg.get("registry_type") == "file":
            problems.append(
                f"ConfigMap/{name}: a file registry behind the registry server drops a feast "
                "apply's objects when a client reads during the apply; use registry_type: sql "
                "(tests/integration/test_registry_server.py)"
            )
        elif reg.get("registry_type") != "sql" or not str(reg.get("path", "")).startswith(
            "sqlite:////var/lib/feast/registry/"
        ):
            problems.append(f"ConfigMap/{name}: unexpected registry {reg}")
        online = cfg.get("online_store") or {}
        if reg.get("registry_type") == "remote" and online != {
            "type": "redis",
            "connection_string": "${REDIS_CONNECTION_STRING}",
        }:
            problems.append(
                f"ConfigMap/{name}: online store is not Redis via REDIS_CONNECTION_STRING"
            )
    for src in pod_sources(objs):
        for c in src.spec.get("containers") or []:
            env = {e["name"]: e for e in c.get("env") or []}
            conn = env.get("REDIS_CONNECTION_STRING")
            if not conn:
                continue
            names = list(env)
            if "REDIS_PASSWORD" not in env or names.index("REDIS_PASSWORD") > names.index(
                "REDIS_CONNECTION_STRING"
            ):
                problems.append(
                    f"{src.where}: REDIS_PASSWORD must be defined before "
                    "REDIS_CONNECTION_STRING for $(REDIS_PASSWORD) to expand"
                )
            value = conn.get("value", "")
            m = re.fullmatch(r"([^:,]+):(\d+),password=\$\(REDIS_PASSWORD\)(,ssl=true)?", value)
            if not m:
                problems.append(
                    f"{src.where}: REDIS_CONNECTION_STRING {value!r} is not "
                    "host:port,password=$(REDIS_PASSWORD)"
                )
                continue
            if redis_bundled:
                svc = services.get(m.group(1))
                if svc is None or int(m.group(2)) not in {p["port"] for p in svc["spec"]["ports"]}:
                    problems.append(
                        f"{src.where}: Redis {m.group(1)}:{m.group(2)} "
                        "is not a rendered Service port"
                    )
            path = (env.get("FEAST_FS_YAML_FILE_PATH") or {}).get("value")
            if path != "/etc/feast/feature_store.yaml":
                problems.append(f"{src.where}: FEAST_FS_YAML_FILE_PATH is {path!r}")
            if not any(m_.get("mountPath") == "/etc/feast" for m_ in c.get("volumeMounts") or []):
                problems.append(f"{src.where}: /etc/feast (feature_store.yaml) is not mounted")
    return problems


# --------------------------------------------------------------------------- KServe


#: Container securityContext fields Knative Serving accepts in a revision (its webhook
#: rejects others with "must not set the field(s)"): knative/serving fieldmask.go;
#: allowPrivilegeEscalation and seccompProfile since Knative 1.8/1.9. `privileged` (false
#: only) needs Knative >= 1.17, so it is left out for older installations.
KNATIVE_CONTAINER_SECURITY_FIELDS = {
    "capabilities",
    "readOnlyRootFilesystem",
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "allowPrivilegeEscalation",
    "seccompProfile",
}
#: Pod-level fields of an InferenceService component that need a Knative feature flag
#: (kubernetes.podspec-*): avoided so the charts work on a default Knative install.
KNATIVE_GATED_POD_FIELDS = {
    "securityContext",
    "affinity",
    "nodeSelector",
    "tolerations",
    "runtimeClassName",
    "priorityClassName",
    "schedulerName",
    "hostAliases",
    "initContainers",
    "topologySpreadConstraints",
    "dnsPolicy",
    "dnsConfig",
    "shareProcessNamespace",
}


def check_knative_compatible(objs: list[Obj]) -> list[str]:
    """In Serverless mode, what KServe hands to Knative must pass Knative's field masks."""
    if deployment_mode(objs) not in SERVERLESS_MODES:
        return []
    problems: list[str] = []
    isvc = _isvc(objs)
    runtimes = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ServingRuntime"}
    for comp in ("predictor", "transformer"):
        spec = isvc["spec"].get(comp) or {}
        for key in sorted(KNATIVE_GATED_POD_FIELDS & set(spec)):
            problems.append(f"{comp}: `{key}` needs a Knative feature flag (config-features)")
        containers = list(spec.get("containers") or [])
        runtime = runtimes.get((spec.get("model") or {}).get("runtime", ""))
        if runtime:
            containers += runtime["spec"]["containers"]
        for c in containers:
            extra = set(c.get("securityContext") or {}) - KNATIVE_CONTAINER_SECURITY_FIELDS
            if extra:
                problems.append(
                    f"{comp}[{c['name']}]: Knative rejects securityContext fields {sorted(extra)}"
                )
            if len(c.get("ports") or []) > 1:
                problems.append(f"{comp}[{c['name']}]: Knative allows one container port")
            for probe in ("readinessProbe", "livenessProbe"):
                port = ((c.get(probe) or {}).get("httpGet") or {}).get("port")
                if port is not None and port not in {
                    p.get("containerPort") for p in c.get("ports") or []
                }:
                    problems.append(
                        f"{comp}[{c['name']}]: {probe} port {port} is not the serving port"
                    )
    return problems


def _isvc(objs: list[Obj]) -> Obj:
    isvcs = [o for o in objs if o["kind"] == "InferenceService"]
    assert len(isvcs) == 1, f"expected one InferenceService, got {[ident(o) for o in isvcs]}"
    return isvcs[0]


def deployment_mode(objs: list[Obj]) -> str:
    return (_isvc(objs)["metadata"].get("annotations") or {}).get(
        "serving.kserve.io/deploymentMode", ""
    )


def check_kserve(objs: list[Obj], *, metrics: bool = True) -> list[str]:
    """What KServe's webhook and controller require of our InferenceService + runtime.

    `metrics`: the render is expected to enable Prometheus scraping (chart default).
    """
    problems: list[str] = []
    isvc = _isvc(objs)
    name = isvc["metadata"]["name"]
    ann = isvc["metadata"].get("annotations") or {}
    spec = isvc["spec"]
    # The contract's name, or the Helm chart's release-derived "<release>-click-model".
    if name != ISVC_NAME and not name.endswith(f"-{ISVC_NAME}"):
        problems.append(f"InferenceService is {name!r}, the contract says {ISVC_NAME!r}")
    if not re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name) or len(name) > 45:
        problems.append(f"InferenceService name {name!r} is not a DNS-1035 label of <= 45 chars")
    mode = ann.get("serving.kserve.io/deploymentMode")
    if mode not in SERVERLESS_MODES | STANDARD_MODES:
        problems.append(f"deploymentMode annotation is {mode!r}")
    elif mode in LEGACY_MODES:
        problems.append(
            f"deploymentMode {mode!r} is KServe <= 0.15's name: 0.16+ rejects every update of "
            "the InferenceService (kserve/kserve#4798); use Knative / Standard"
        )
    serverless = mode in SERVERLESS_MODES

    pred = spec["predictor"]
    if "transformer" not in spec and pred.get("containers"):
        return problems + _check_collocated(name, spec)
    frameworks = [
        k
        for k in (
            "sklearn",
            "xgboost",
            "tensorflow",
            "pytorch",
            "onnx",
            "triton",
            "lightgbm",
            "pmml",
            "paddle",
            "huggingface",
        )
        if k in pred
    ]
    if bool(pred.get("model")) + bool(pred.get("containers")) + len(frameworks) != 1:
        problems.append("predictor must have exactly one of model / containers / a framework")
    model = pred.get("model") or {}
    runtimes = {
        o["metadata"]["name"]: o
        for o in objs
        if o["kind"] in ("ServingRuntime", "ClusterServingRuntime")
    }
    rt = runtimes.get(model.get("runtime", ""))
    if rt is None:
        problems.append(
            f"predictor runtime {model.get('runtime')!r} is not a rendered ServingRuntime"
        )
    else:
        rspec = rt["spec"]
        formats = {(f["name"], f.get("version")) for f in rspec.get("supportedModelFormats") or []}
        mf = model.get("modelFormat") or {}
        if (mf.get("name"), mf.get("version")) not in formats and (
            mf.get("name"),
            None,
        ) not in formats:
            problems.append(f"runtime {rt['metadata']['name']} does not support model format {mf}")
        if model.get("protocolVersion") not in (
            rspec.get("protocolVersions") or [model.get("protocolVersion")]
        ):
            problems.append(f"runtime does not serve protocol {model.get('protocolVersion')}")
        (kc,) = [c for c in rspec["containers"] if c["name"] == "kserve-container"] or [None]
        if kc is None:
            problems.append("ServingRuntime has no container named kserve-container")
        else:
            args = kc.get("args") or []
            for want in ("--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080"):
                if want not in args:
                    problems.append(f"ServingRuntime args lack {want!r}: {args}")
            if kc.get("command"):
                problems.append(
                    "ServingRuntime overrides the image ENTRYPOINT (python -m predictor)"
                )
            if not any(p.get("containerPort") == 8080 for p in kc.get("ports") or []):
                problems.append("ServingRuntime container does not declare port 8080")
            if "feast-kserve-predictor" not in kc.get("image", ""):
                problems.append(
                    f"ServingRuntime image {kc.get('image')} is not feast-kserve-predictor"
                )
    uri = model.get("storageUri", "")
    if not re.fullmatch(r"(pvc|s3|gs|https?|hdfs|webhdfs|oci|hf)://\S+", uri):
        problems.append(f"storageUri {uri!r} has no scheme KServe's storage initializer supports")
    if model.get("protocolVersion") != "v2":
        problems.append("predictor protocolVersion is not v2")
    if not {"cpu", "memory"} <= set((model.get("resources") or {}).get("requests") or {}):
        problems.append(
            "predictor.model has no resource requests: KServe's defaulting webhook "
            "would replace the ServingRuntime's with its cluster-wide defaults"
        )

    trans = spec.get("transformer") or {}
    tcs = trans.get("containers") or []
    if len(tcs) != 1 or tcs[0].get("name") != "kserve-container":
        problems.append("transformer must have exactly one container named kserve-container")
    else:
        args = tcs[0].get("args") or []
        joined = " ".join(args)
        if "--predictor_protocol v2" not in joined:
            problems.append(f"transformer args lack --predictor_protocol v2: {args}")
        for injected in ("--model_name", "--predictor_host", "--http_port"):
            if injected in joined:
                problems.append(f"transformer sets {injected}, which KServe injects")
        if "feast-kserve-transformer" not in tcs[0].get("image", ""):
            problems.append("transformer image is not feast-kserve-transformer")
        if not any(p.get("containerPort") == 8080 for p in tcs[0].get("ports") or []):
            problems.append(
                "transformer does not declare port 8080 (KServe passes --http_port 8080)"
            )

    for comp_name in ("predictor", "transformer"):
        comp = spec.get(comp_name) or {}
        lo, hi = comp.get("minReplicas", 1), comp.get("maxReplicas")
        if lo < 0 or (hi is not None and hi < max(lo, 1)):
            problems.append(f"{comp_name}: minReplicas {lo} / maxReplicas {hi}")
        cann = comp.get("annotations") or {}
        if serverless:
            if (
                cann.get("autoscaling.knative.dev/class", "kpa.autoscaling.knative.dev")
                != "kpa.autoscaling.knative.dev"
            ):
                problems.append(f"{comp_name}: Knative autoscaler class is not KPA")
            if cann.get("autoscaling.knative.dev/metric") not in ("concurrency", "rps"):
                problems.append(
                    f"{comp_name}: autoscaling.knative.dev/metric must be concurrency or rps"
                )
            target = cann.get("autoscaling.knative.dev/target", "")
            if not target.isdigit() or int(target) < 1:
                problems.append(
                    f"{comp_name}: autoscaling.knative.dev/target {target!r} "
                    "is not a positive integer"
                )
            if comp.get("scaleMetric") in ("cpu", "memory"):
                problems.append(
                    f"{comp_name}: scaleMetric {comp['scaleMetric']} needs HPA (RawDeployment)"
                )
            if metrics and (
                cann.get("prometheus.io/scrape") != "true"
                or ann.get("serving.kserve.io/enable-prometheus-scraping") != "true"
            ):
                problems.append(f"{comp_name}: Prometheus scraping not enabled")
        else:
            if lo < 1:
                problems.append(f"{comp_name}: minReplicas {lo}: no scale to zero without Knative")
            if comp.get("scaleMetric") not in ("cpu", "memory"):
                problems.append(f"{comp_name}: scaleMetric must be cpu or memory for the HPA")
            if not 1 <= int(comp.get("scaleTarget", 0)) <= 100:
                problems.append(f"{comp_name}: scaleTarget {comp.get('scaleTarget')} not in 1..100")
            if comp.get("canaryTrafficPercent") is not None:
                problems.append(f"{comp_name}: canaryTrafficPercent needs Serverless mode")
            if metrics and (
                cann.get("prometheus.io/port") != "8080"
                or cann.get("prometheus.io/scrape") != "true"
            ):
                problems.append(
                    f"{comp_name}: prometheus.io/scrape+port 8080 missing (no queue-proxy)"
                )
            if any(k.startswith("autoscaling.knative.dev/") for k in cann):
                problems.append(f"{comp_name}: Knative annotations in RawDeployment mode")
            if lo >= 2 and not any(
                o["kind"] == "PodDisruptionBudget"
                and _matches(o["spec"]["selector"], comp.get("labels") or {})
                for o in objs
            ):
                problems.append(f"{comp_name}: {lo} replicas but no PodDisruptionBudget")
        if "canaryTrafficPercent" in comp and not 0 <= comp["canaryTrafficPercent"] <= 100:
            problems.append(
                f"{comp_name}: canaryTrafficPercent {comp['canaryTrafficPercent']} not in 0..100"
            )
    if not serverless and ann.get("serving.kserve.io/autoscalerClass") != "hpa":
        problems.append("RawDeployment mode without serving.kserve.io/autoscalerClass: hpa")
    if serverless and pred.get("minReplicas", 1) == 0 and len(tcs) == 1:
        # The first call after the predictor idled waits for its cold start in the activator.
        env = {e["name"]: e.get("value") for e in tcs[0].get("env") or []}
        timeout = float(env.get("TRANSFORMER_PREDICTOR_TIMEOUT_S") or 2.0)
        if timeout < 60:
            problems.append(
                f"the predictor scales to zero but the transformer gives a predictor call only "
                f"{timeout:g}s (TRANSFORMER_PREDICTOR_TIMEOUT_S): every cold start would be a 504"
            )
    return problems


def _check_collocated(name: str, spec: dict[str, Any]) -> list[str]:
    """Collocated mode: one predictor container that is the transformer scoring the model."""
    problems: list[str] = []
    pred = spec["predictor"]
    cs = pred.get("containers") or []
    if len(cs) != 1 or cs[0].get("name") != "kserve-container":
        return ["collocated predictor must have exactly one container named kserve-container"]
    c = cs[0]
    joined = " ".join(c.get("args") or [])
    for want in (f"--model_name {name}", "--http_port 8080", "--collocated_model_dir /mnt/models"):
        if want not in joined:
            problems.append(f"collocated container args lack {want!r}: {joined}")
    if "--predictor_" in joined:
        problems.append("collocated container is given predictor flags")
    if "feast-kserve-collocated" not in c.get("image", ""):
        problems.append(f"collocated image {c.get('image')} is not feast-kserve-collocated")
    env = {e["name"]: e.get("value") for e in c.get("env") or []}
    uri = env.get("STORAGE_URI") or ""
    if not re.fullmatch(r"(pvc|s3|gs|https?|hdfs|webhdfs|oci|hf)://\S+", uri):
        problems.append(f"collocated STORAGE_URI {uri!r}: KServe would not mount a model")
    if "canaryTrafficPercent" in pred:
        problems.append("collocated mode has no predictor revision to canary")
    if not any(p.get("containerPort") == 8080 for p in c.get("ports") or []):
        problems.append("collocated container does not declare port 8080")
    return problems


def check_no_namespace_scoped_surprises(
    objs: list[Obj], *, allow_namespace_object: bool
) -> list[str]:
    """Only namespaced objects (no ClusterRoles, CRDs...) and, for Helm, no Namespace."""
    problems = []
    for o in objs:
        if o["kind"] in (
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "ClusterServingRuntime",
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
            "PersistentVolume",
        ):
            problems.append(f"{ident(o)}: cluster-scoped object in an application install")
        if o["kind"] == "Namespace" and not allow_namespace_object:
            problems.append(f"{ident(o)}: the Helm chart must not create its namespace")
    return problems


def _guarded(check, *args, **kwargs) -> list[str]:
    """Run one check; a crash on malformed input is reported as a problem, not a traceback."""
    try:
        return check(*args, **kwargs)
    except (KeyError, TypeError, ValueError, AttributeError, AssertionError) as exc:
        return [f"{check.__name__} could not check the manifests: {type(exc).__name__}: {exc}"]


def check_stack(
    objs: list[Obj], *, external: Iterable[str] = (), redis_bundled: bool = True
) -> list[str]:
    """Every check that needs the complete stack (umbrella chart, kustomize overlays)."""
    return (
        _guarded(check_containers, objs)
        + _guarded(check_references, objs, external)
        + _guarded(check_services, objs)
        + _guarded(check_network_policies, objs, redis_bundled=redis_bundled)
        + _guarded(
            check_egress_policies, objs, serverless=deployment_mode(objs) in SERVERLESS_MODES
        )
        + _guarded(check_feast, objs, redis_bundled=redis_bundled)
        + _guarded(check_kserve, objs)
        + _guarded(check_knative_compatible, objs)
    )
