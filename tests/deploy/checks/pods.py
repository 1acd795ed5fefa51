"""Every pod template in a render (workloads, Jobs, InferenceService components, runtimes),
and label-selector matching: what the workload, reference and network checks walk."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.deploy.checks.objects import Obj, ident


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
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"):
            spec = obj["spec"]["jobTemplate"]["spec"] if kind == "CronJob" else obj["spec"]
            tpl = spec["template"]
            yield PodSource(
                name,
                kind,
                tpl.get("metadata", {}).get("labels", {}) or {},
                tpl.get("metadata", {}).get("annotations", {}) or {},
                tpl["spec"],
                kind not in ("Job", "CronJob"),
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
