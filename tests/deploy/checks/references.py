"""References between objects: ConfigMaps, Secrets, PVCs, ServiceAccounts pods use exist;
Services and PodDisruptionBudgets select pods that exist."""

from __future__ import annotations

from collections.abc import Iterable

from tests.deploy.checks.objects import Obj, ident
from tests.deploy.checks.pods import _matches, pod_sources


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
