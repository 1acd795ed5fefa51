"""Containers: pinned images, resources, the restricted security context, probes, volumes."""

from __future__ import annotations

from typing import Any

from tests.deploy.checks.images import PROJECT_IMAGES
from tests.deploy.checks.objects import Obj
from tests.deploy.checks.pods import pod_sources


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
