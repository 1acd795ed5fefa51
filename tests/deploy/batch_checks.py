"""Checks of the scheduled batch (values `batch`, overlays/batch): the RayJob against KubeRay's
CRD schemas, its pods, RBAC, NetworkPolicies, the model volume and the schedule.

The RayJob is not applied by the chart: it is the template a CronJob creates one RayJob from
per run (`kubectl create -f`, in a ConfigMap), so it is found inside ConfigMaps as well as as
a top-level object. Each check returns a list of problems (empty: fine) and is shown to flag
a bad object in tests/deploy/test_batch_checks.py.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import referencing
import yaml

from tests.deploy import validation as v

Obj = dict[str, Any]
KUBERAY = v.SCHEMAS / "kuberay"
BATCH = {"feast-kserve.io/component": "batch"}
SUBMIT = {"feast-kserve.io/component": "batch-submit"}
RAY_API = "ray.io/v1"
REDIS_REGISTRY = (v.REDIS, v.REGISTRY)


# --------------------------------------------------------------------------- finding them


def rayjobs(objs: list[Obj]) -> list[Obj]:
    """RayJobs rendered as objects, or as templates in a ConfigMap's data."""
    found = [o for o in objs if o.get("kind") == "RayJob"]
    for cm in (o for o in objs if o.get("kind") == "ConfigMap"):
        for text in (cm.get("data") or {}).values():
            if "kind: RayJob" not in text:
                continue
            for doc in yaml.safe_load_all(text):
                if isinstance(doc, dict) and doc.get("kind") == "RayJob":
                    found.append(doc)
    return found


def _name(obj: Obj) -> str:
    md = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{md.get('name') or md.get('generateName', '?')}"


def ray_pods(job: Obj) -> Iterator[tuple[str, Obj]]:
    """(role, pod template) of a RayJob: head, each worker group, the submitter."""
    spec = job.get("spec") or {}
    cluster = spec.get("rayClusterSpec") or {}
    head = (cluster.get("headGroupSpec") or {}).get("template")
    if head:
        yield "head", head
    for group in cluster.get("workerGroupSpecs") or []:
        yield f"worker {group.get('groupName')}", group.get("template") or {}
    if spec.get("submitterPodTemplate"):
        yield "submitter", spec["submitterPodTemplate"]


def as_pods(objs: list[Obj]) -> list[Obj]:
    """The RayJobs' pod templates as Pods, so the project's pod checks apply to them."""
    pods = []
    for job in rayjobs(objs):
        for role, tpl in ray_pods(job):
            md = tpl.get("metadata") or {}
            pods.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": f"{_name(job)} {role}", "labels": md.get("labels") or {}},
                    "spec": tpl.get("spec") or {},
                }
            )
    return pods


def batch_sources(objs: list[Obj]) -> list[v.PodSource]:
    """Every batch pod: the CronJob's (cronjob mode) and the RayJob's (kuberay mode)."""
    return [
        s
        for s in v.pod_sources([*objs, *as_pods(objs)])
        if v._matches({"matchLabels": BATCH}, s.labels)
    ]


# --------------------------------------------------------------------------- CRD schemas


@functools.cache
def _schema(file: str, kind: str) -> dict[str, Any]:
    crd = json.loads((KUBERAY / file).read_text())
    assert crd["kind"] == "CustomResourceDefinition", crd["kind"]
    (version,) = [x for x in crd["spec"]["versions"] if x["name"] == "v1"]
    schema = v._strict_crd_schema(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {
        "$ref": f"{v.K8S_DEFS}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    }
    schema["properties"]["apiVersion"] = {"const": RAY_API}
    schema["properties"]["kind"] = {"const": kind}
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
    return schema


@functools.cache
def _validator(file: str, kind: str, k8s: str) -> jsonschema.protocols.Validator:
    registry = referencing.Registry().with_resource(v.K8S_DEFS, v._k8s_definitions(k8s))
    return jsonschema.Draft202012Validator(_schema(file, kind), registry=registry)


def check_ray_schemas(objs: list[Obj]) -> list[str]:
    """Each RayJob against KubeRay's RayJob CRD, its rayClusterSpec as a RayCluster against
    the RayCluster CRD (strict: unknown fields are errors), for each Kubernetes version."""
    problems = []
    for job in rayjobs(objs):
        cluster = {
            "apiVersion": RAY_API,
            "kind": "RayCluster",
            "metadata": {"name": "rayjob-cluster"},
            "spec": (job.get("spec") or {}).get("rayClusterSpec") or {},
        }
        for k8s in v.K8S_VERSIONS:
            for obj, file, kind in (
                (job, "ray.io_rayjobs.json", "RayJob"),
                (cluster, "ray.io_rayclusters.json", "RayCluster"),
            ):
                for err in _validator(file, kind, k8s).iter_errors(obj):
                    path = ".".join(str(p) for p in err.path)
                    problems.append(
                        f"{_name(job)} as {kind} (k8s {k8s}): {path}: {err.message[:200]}"
                    )
    return problems


# --------------------------------------------------------------------------- pods


def check_batch_pods(objs: list[Obj]) -> list[str]:
    """The RayJob's pods pass the project's pod checks (pinned image, resources, restricted
    non-root read-only security context, /tmp); the head runs Ray's dashboard for the
    submitter; every batch pod mounts the model read-only and has a Ray object-store volume."""
    problems = v.check_containers(as_pods(objs))
    for job in rayjobs(objs):
        spec = job.get("spec") or {}
        if spec.get("submissionMode", "K8sJobMode") != "K8sJobMode":
            problems.append(f"{_name(job)}: submissionMode is not K8sJobMode")
        if spec.get("shutdownAfterJobFinishes") is not True:
            problems.append(f"{_name(job)}: the Ray cluster outlives the job")
    for src in batch_sources(objs):
        if src.kind == "Pod" and src.where.endswith("submitter"):
            continue
        for c in src.spec.get("containers") or []:
            mounts = {m["mountPath"]: m for m in c.get("volumeMounts") or []}
            model = mounts.get("/mnt/models")
            if model is None or model.get("readOnly") is not True:
                problems.append(f"{src.where}[{c.get('name')}]: no read-only model at /mnt/models")
            if "/dev/shm" not in mounts:
                problems.append(f"{src.where}[{c.get('name')}]: no /dev/shm for Ray's object store")
    return problems


def check_batch_model(objs: list[Obj], storage_uri: str) -> list[str]:
    """The batch pods mount the claim (and directory) of the predictor's pvc:// storageUri."""
    claim, _, sub = storage_uri.removeprefix("pvc://").partition("/")
    problems = []
    sources = batch_sources(objs)
    if not sources:
        problems.append("no batch pod rendered")
    for src in sources:
        vols = {x["name"]: x for x in src.spec.get("volumes") or []}
        for c in src.spec.get("containers") or []:
            for m in c.get("volumeMounts") or []:
                if m["mountPath"] != "/mnt/models":
                    continue
                pvc = (vols.get(m["name"]) or {}).get("persistentVolumeClaim") or {}
                if pvc.get("claimName") != claim or m.get("subPath", "") != sub:
                    problems.append(
                        f"{src.where}: model from {pvc.get('claimName')}/{m.get('subPath', '')}, "
                        f"the predictor's is {claim}/{sub}"
                    )
    return problems


# --------------------------------------------------------------------------- schedule, RBAC


def check_batch_schedule(objs: list[Obj]) -> list[str]:
    """One CronJob schedules the batch, one run at a time (runs commit generations in order)."""
    crons = [
        o
        for o in objs
        if o.get("kind") == "CronJob"
        and (o["metadata"].get("labels") or {}).get("app.kubernetes.io/component")
        in ("batch", "batch-submit")
    ]
    if len(crons) != 1:
        return [f"{len(crons)} batch CronJobs, expected 1"]
    problems = []
    if crons[0]["spec"].get("concurrencyPolicy") != "Forbid":
        problems.append(f"{v.ident(crons[0])}: concurrencyPolicy is not Forbid")
    return problems


def check_batch_rbac(objs: list[Obj]) -> list[str]:
    """kuberay mode: the CronJob's ServiceAccount may create RayJobs in its namespace and do
    nothing else; no batch pod but the creator gets a token."""
    problems = []
    cron_pods = [s for s in v.pod_sources(objs) if s.kind == "CronJob"]
    submit = [s for s in cron_pods if v._matches({"matchLabels": SUBMIT}, s.labels)]
    for src in batch_sources(objs):
        if src.spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{src.where}: mounts a ServiceAccount token it does not need")
    if not submit:
        return problems
    sa = submit[0].spec.get("serviceAccountName")
    bindings = [
        b
        for b in objs
        if b.get("kind") in ("RoleBinding", "ClusterRoleBinding")
        and any(s.get("name") == sa for s in b.get("subjects") or [])
    ]
    if not bindings:
        problems.append(f"ServiceAccount {sa} (the RayJob creator) is bound to no Role")
    roles = {
        (o["kind"], o["metadata"]["name"]): o
        for o in objs
        if o.get("kind") in ("Role", "ClusterRole")
    }
    for b in bindings:
        if b["kind"] == "ClusterRoleBinding" or b["roleRef"]["kind"] == "ClusterRole":
            problems.append(f"{v.ident(b)}: cluster-wide rights for the RayJob creator")
            continue
        role = roles.get((b["roleRef"]["kind"], b["roleRef"]["name"]))
        if role is None:
            problems.append(f"{v.ident(b)}: Role {b['roleRef']['name']} not rendered")
            continue
        for rule in role.get("rules") or []:
            if rule.get("apiGroups") != ["ray.io"] or rule.get("resources") != ["rayjobs"]:
                problems.append(f"{v.ident(role)}: rights beyond ray.io rayjobs: {rule}")
            elif set(rule.get("verbs") or []) != {"create"}:
                problems.append(
                    f"{v.ident(role)}: verbs {rule.get('verbs')}, only create is needed"
                )
    return problems


# --------------------------------------------------------------------------- network policies


def check_batch_network(objs: list[Obj], *, kuberay: bool) -> list[str]:
    """Batch pods: admitted by Redis and the registry server (when rendered); ingress only
    from each other (and, kuberay, the operator on the dashboard port); egress to DNS, Redis,
    the registry, (kuberay) each other, and nothing else but a named Pushgateway."""
    problems = []
    sources = batch_sources(objs)
    redis = [s for s in v.pod_sources(objs) if s.labels.get("app.kubernetes.io/name") == "redis"]
    registry = [
        s for s in v.pod_sources(objs) if s.labels.get("app.kubernetes.io/name") == "feast-registry"
    ]
    if not sources:
        return ["no batch pod rendered"]
    labels = sources[0].labels
    for src in sources:
        for r in redis:
            if not v._admits_pod(v._policies_for(objs, r.labels), src.labels, 6379):
                problems.append(f"Redis does not admit {src.where}")
        for reg in registry:
            if not v._admits_pod(v._policies_for(objs, reg.labels), src.labels, v._pod_port(reg)):
                problems.append(f"the registry server does not admit {src.where}")
    ingress = v._policies_for(objs, labels)
    if not ingress:
        problems.append("no ingress NetworkPolicy selects the batch pods")
    for np in ingress:
        for rule in np["spec"].get("ingress") or []:
            for peer in rule.get("from") or [{}]:
                text = json.dumps(peer, sort_keys=True)
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    if not v._matches(peer["podSelector"], labels):
                        problems.append(f"{v.ident(np)}: batch pods admit {text}")
                    continue
                ports = {p.get("port") for p in rule.get("ports") or []}
                if not (kuberay and "namespaceSelector" in peer and ports == {8265}):
                    problems.append(
                        f"{v.ident(np)}: batch pods admit {text} on {ports or 'any port'}"
                    )
    egress = v._egress_policies(objs, labels)
    if not egress:
        return [*problems, "no egress NetworkPolicy selects the batch pods"]
    if not v._reaches_dns(egress):
        problems.append("the batch pods' egress does not reach DNS")
    if kuberay and not v._egress_reaches(egress, labels, 6379):
        problems.append("the Ray pods of one job cannot reach each other")
    for dep, port in [(r.labels, 6379) for r in redis] + [
        (g.labels, v._pod_port(g)) for g in registry
    ]:
        if not v._egress_reaches(egress, dep, port):
            problems.append(f"the batch pods' egress does not reach {dep} on {port}")
    for np in egress:
        for rule in np["spec"].get("egress") or []:
            if not rule.get("to"):
                problems.append(f"{v.ident(np)}: an egress rule without 'to' opens everything")
                continue
            for peer in rule["to"]:
                text = json.dumps(peer, sort_keys=True)
                if "kube-dns" in text or "pushgateway" in text:
                    continue
                sel = (peer.get("podSelector") or {}).get("matchLabels") or {}
                if "ipBlock" in peer or "namespaceSelector" in peer or not sel:
                    problems.append(f"{v.ident(np)}: batch egress to {text}")
                    continue
                dependency = any(all(sel.get(k) == x for k, x in d.items()) for d in REDIS_REGISTRY)
                own_job = kuberay and sel.get("feast-kserve.io/component") == "batch"
                if not (dependency or own_job):
                    problems.append(f"{v.ident(np)}: batch egress to {text}, not a dependency")
    return problems


def check_batch(objs: list[Obj], storage_uri: str) -> list[str]:
    """Every batch check on one rendering."""
    kuberay = bool(rayjobs(objs))
    return (
        check_ray_schemas(objs)
        + check_batch_pods(objs)
        + check_batch_model(objs, storage_uri)
        + check_batch_schedule(objs)
        + check_batch_rbac(objs)
        + check_batch_network(objs, kuberay=kuberay)
    )


def mutated(objs: list[Obj], fn: Any) -> list[Obj]:
    """A deep copy of ``objs`` with ``fn`` applied to it (the failing fixtures)."""
    out = copy.deepcopy(objs)
    fn(out)
    return out
