"""Rendering both tools and comparing what they render: the machinery of test_parity.py
(names mapped to canonical ones, the tools' own labels and hooks stripped, field-by-field
differences), used by every deploy test that pairs a chart variant with an overlay."""

from __future__ import annotations

import copy
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.deploy import validation as v

RELEASE = "feast-kserve"
MANIFESTS = v.REPO / "manifests"

# Labels each tool adds for itself.
TOOL_LABELS = {
    "helm.sh/chart",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
}
HELM_HOOK_ANNOTATIONS = {"helm.sh/hook", "helm.sh/hook-weight", "helm.sh/hook-delete-policy"}
# Objects only one tool has, on purpose.
# The Secrets the chart generates with random values (Redis password, bearer tokens): the
# kustomize base commits none, the user creates them (tests/deploy/test_kustomize.py).
HELM_ONLY = {
    "Pod/click-model-test-inference",  # `helm test`
    "Secret/redis-auth",
    "Secret/click-model-transformer-auth",
}
# the chart creates no Namespace (helm --create-namespace + kubectl label, docs/deploy.md);
# the kustomize base carries it with its Pod Security labels.
KUSTOMIZE_ONLY = {"Namespace/feast-inference"}
# helm name (release prefix removed) -> kustomize name, where they differ on purpose.
# The inference-service sub-chart renders its own copy of the client feature_store.yaml
# (it can be installed without the feast chart); kustomize has one ConfigMap for all clients.
ALIASES = {"ConfigMap/click-model-feature-store": "ConfigMap/feast-feature-store"}
HASH_SUFFIX = re.compile(r"-[a-z0-9]{10}$")


class Helm:
    """helm on a private copy of helm/ with an empty home (offline, no repositories)."""

    def __init__(self, root: Path) -> None:
        shutil.copytree(
            v.REPO / "helm", root / "helm", ignore=shutil.ignore_patterns("charts", "*.tgz")
        )
        self.chart = root / "helm" / "feast-kserve"
        home = root / "home"
        self.env = {
            **os.environ,
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
            "KUBECONFIG": str(home / "no-kubeconfig"),
        }
        v.run([v.tool("helm"), "dependency", "build", str(self.chart)], env=self.env)

    def template(self, *args: str) -> list[v.Obj]:
        cmd = [v.tool("helm"), "template", RELEASE, str(self.chart), "-n", v.NAMESPACE, *args]
        return v.load_docs(v.run(cmd, env=self.env).stdout)


def kustomize(overlay: str) -> list[v.Obj]:
    out = v.run([v.tool("kubectl"), "kustomize", str(MANIFESTS / "overlays" / overlay)]).stdout
    return v.load_docs(out)


# --------------------------------------------------------------------------- normalisation


def _key(obj: v.Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def helm_names(objs: list[v.Obj]) -> dict[str, str]:
    """rendered name -> canonical name (release prefix off, aliases applied)."""
    names = {}
    for o in objs:
        name = o["metadata"]["name"]
        short = name.removeprefix(f"{RELEASE}-")
        alias = ALIASES.get(f"{o['kind']}/{short}")
        names[name] = alias.split("/", 1)[1] if alias else short
    return names | _runtime_names(objs)


def kustomize_names(objs: list[v.Obj]) -> dict[str, str]:
    """rendered name -> canonical name (generators' hash suffix off)."""
    names = {
        o["metadata"]["name"]: HASH_SUFFIX.sub("", o["metadata"]["name"])
        if o["kind"] in {"ConfigMap", "Secret"}
        else o["metadata"]["name"]
        for o in objs
    }
    return names | _runtime_names(objs)


def _runtime_names(objs: list[v.Obj]) -> dict[str, str]:
    """The one ServingRuntime is matched by kind (the chart derives its name from the
    release and the InferenceService, kustomize keeps a fixed one)."""
    runtimes = [o["metadata"]["name"] for o in objs if o["kind"] == "ServingRuntime"]
    return {runtimes[0]: "serving-runtime"} if len(runtimes) == 1 else {}


def _rename(node: Any, names: dict[str, str]) -> Any:
    """Replace every whole-token occurrence of a rendered name by its canonical one."""
    if isinstance(node, dict):
        return {k: _rename(val, names) for k, val in node.items()}
    if isinstance(node, list):
        return [_rename(val, names) for val in node]
    if isinstance(node, str):
        changed = {k: val for k, val in names.items() if k != val}
        if not changed:
            return node
        pattern = "|".join(re.escape(k) for k in sorted(changed, key=len, reverse=True))
        return re.sub(rf"(?<![\w./-])({pattern})(?![\w-])", lambda m: changed[m.group(1)], node)
    return node


def _strip(node: Any) -> Any:
    """Drop the tools' labels and annotations, namespaces, and the empty maps they leave."""
    if isinstance(node, dict):
        out = {}
        for k, val in node.items():
            if k in TOOL_LABELS or k in HELM_HOOK_ANNOTATIONS or k.startswith("checksum/"):
                continue
            if k == "namespace" and isinstance(val, str):
                continue
            val = _strip(val)
            if val == {} and k in {"labels", "annotations", "metadata", "matchLabels"}:
                continue
            out[k] = val
        return out
    if isinstance(node, list):
        return [_strip(val) for val in node]
    return node


def _generated_values(obj: v.Obj) -> v.Obj:
    if obj["kind"] == "Secret":
        obj["data"] = dict.fromkeys(obj.get("data", {}), "<generated>")
    if obj["kind"] == "ConfigMap":
        for k, text in obj.get("data", {}).items():
            if k.endswith((".yaml", ".yml")):  # compared as data, not as text with comments
                obj["data"][k] = yaml.safe_load(text)
            elif k.endswith(".conf"):  # redis.conf: directives only
                lines = [ln.strip() for ln in text.splitlines()]
                obj["data"][k] = [ln for ln in lines if ln and not ln.startswith("#")]
    return obj


def normalise(objs: list[v.Obj], names: dict[str, str]) -> dict[str, v.Obj]:
    out = {}
    for o in copy.deepcopy(objs):
        short = o["metadata"]["name"].removeprefix(f"{RELEASE}-")
        aliased = f"{o['kind']}/{short}" in ALIASES
        o = _generated_values(_strip(_rename(o, names)))
        out[f"{o['kind']}/{short}" if aliased else _key(o)] = o
    return out


def differences(a: Any, b: Any, path: str = "") -> Iterator[str]:
    """Every path where a (helm) and b (kustomize) differ, with both values."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            where = f"{path}.{k}" if path else k
            if k not in b:
                yield f"{where}: only in helm: {a[k]!r}"
            elif k not in a:
                yield f"{where}: only in kustomize: {b[k]!r}"
            else:
                yield from differences(a[k], b[k], where)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            name = x.get("name") if isinstance(x, dict) else None
            yield from differences(x, y, f"{path}[{name or i}]")
    elif a != b:
        yield f"{path}: helm {a!r} != kustomize {b!r}"


def checksummed_configmaps(objs: list[v.Obj]) -> dict[str, set[str]]:
    """Workload -> ConfigMaps mounted by pods whose template carries a checksum annotation."""
    out: dict[str, set[str]] = {}
    for src in v.pod_sources(objs):
        if any(k.startswith("checksum/") for k in src.annotations):
            out[src.where] = {
                vol["configMap"]["name"]
                for vol in src.spec.get("volumes", [])
                if "configMap" in vol
            }
    return out


def _where(where: str, names: dict[str, str]) -> str:
    """A pod source's "Kind/name[.component]" with the canonical name."""
    kind, _, rest = where.partition("/")
    name, dot, component = rest.partition(".")
    return f"{kind}/{names.get(name, name)}{dot}{component}"


def compare(helm_objs: list[v.Obj], kust_objs: list[v.Obj]) -> list[str]:
    h_names, k_names = helm_names(helm_objs), kustomize_names(kust_objs)
    h, k = normalise(helm_objs, h_names), normalise(kust_objs, k_names)
    problems = []
    for key in sorted(set(h) - set(k) - HELM_ONLY):
        if key in ALIASES:
            continue
        problems.append(f"{key}: rendered by helm, missing from kustomize")
    for key in sorted(set(k) - set(h) - KUSTOMIZE_ONLY):
        problems.append(f"{key}: rendered by kustomize, missing from helm")
    for key in sorted(set(h) & set(k)):
        problems += [f"{key}: {d}" for d in differences(h[key], k[key])]
    # Aliased objects: the helm copy must equal the kustomize object it stands for.
    for helm_key, kust_key in ALIASES.items():
        helm_obj = next((o for kk, o in h.items() if kk == helm_key), None)
        if helm_obj is not None and kust_key in k:
            problems += [
                f"{helm_key} (as {kust_key}): {d}"
                for d in differences(helm_obj.get("data"), k[kust_key].get("data"))
            ]
    # A checksum annotation in helm <=> hashed ConfigMap names in kustomize.
    hashed = {n for n, canon in k_names.items() if n != canon}
    for where, cms in checksummed_configmaps(helm_objs).items():
        canon = {h_names.get(c, c) for c in cms}
        kust_src = next(
            (
                s
                for s in v.pod_sources(kust_objs)
                if _where(s.where, k_names) == _where(where, h_names)
            ),
            None,
        )
        if kust_src is None:
            continue  # reported above as a missing object
        mounted = {
            vol["configMap"]["name"]
            for vol in kust_src.spec.get("volumes", [])
            if "configMap" in vol
        }
        for cm in mounted:
            if k_names[cm] in canon and cm not in hashed:
                problems.append(
                    f"{kust_src.where}: helm rolls its pods when ConfigMap {k_names[cm]} changes "
                    "(checksum annotation); in kustomize that ConfigMap must be generated "
                    "(configMapGenerator: a hashed name) to do the same"
                )
    return problems
