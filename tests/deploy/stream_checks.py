"""Checks of the stream inference worker's manifests (docs/stream.md, docs/deploy.md).

The worker's Deployment, PDB and NetworkPolicies also go through the stack checks of
``validation`` (pinned image, resources, restricted security context, probes, references, Redis
and registry admitting their clients); these add what is particular to the worker:

- :func:`keda_schema_errors`: the KEDA ``ScaledObject`` against KEDA's CRD (vendored in
  ``schemas/keda.sh_scaledobjects.yaml``, strict the way the KServe CRDs are) and the
  ``TriggerAuthentication`` by structure (its CRD is not vendored: the schema below is
  written from KEDA's Go types, ``apis/keda/v1alpha1/triggerauthentication_types.go``, for the
  part the chart uses, ``secretTargetRef``);
- :func:`check_stream_worker`: the worker runs ``python -m transformer.stream run`` with the
  transformer image, every replica in one consumer group under its pod name, the transformer's
  Redis Secret and connection string, its probes and metrics on :8090, the transformer's
  security context, a PDB, ingress from the metrics scrape only, egress to DNS, Redis, the
  registry and the predictor only, the predictor admitting it; and a KEDA ScaledObject, when
  there is one, scaling that Deployment on that group with the same Secret.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema
import referencing
import yaml

from tests.deploy import validation as v

PORT = 8090
COMMAND = ["python", "-m", "transformer.stream", "run"]
KEDA_API = "keda.sh/v1alpha1"
KEDA_CRD = v.SCHEMAS / "keda.sh_scaledobjects.yaml"

#: TriggerAuthentication (keda.sh/v1alpha1), the part of KEDA's Go types the chart uses: a
#: namespaced object whose spec maps scaler parameters to Secret keys. Other auth sources
#: (env, hashiCorpVault, podIdentity, ...) are allowed as objects, not checked further.
TRIGGER_AUTH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": KEDA_API},
        "kind": {"const": "TriggerAuthentication"},
        "metadata": {
            "$ref": f"{v.K8S_DEFS}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        },
        "spec": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": False,
            "properties": {
                "secretTargetRef": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["parameter", "name", "key"],
                        "properties": {
                            "parameter": {"type": "string", "minLength": 1},
                            "name": {"type": "string", "minLength": 1},
                            "key": {"type": "string", "minLength": 1},
                        },
                    },
                },
                **{
                    k: {"type": "object"}
                    for k in (
                        "env",
                        "hashiCorpVault",
                        "podIdentity",
                        "azureKeyVault",
                        "awsSecretManager",
                        "gcpSecretManager",
                        "configMapTargetRef",
                        "boundServiceAccountToken",
                    )
                },
            },
        },
    },
}


@functools.cache
def _validator(kind: str, k8s: str) -> jsonschema.protocols.Validator:
    registry = referencing.Registry().with_resource(v.K8S_DEFS, v._k8s_definitions(k8s))
    if kind == "TriggerAuthentication":
        return jsonschema.Draft202012Validator(TRIGGER_AUTH_SCHEMA, registry=registry)
    crd = yaml.safe_load(KEDA_CRD.read_text())
    (served,) = [x for x in crd["spec"]["versions"] if x["name"] == "v1alpha1"]
    schema = v._strict_crd_schema(served["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {
        "$ref": f"{v.K8S_DEFS}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    }
    schema["properties"]["apiVersion"] = {"const": KEDA_API}
    schema["properties"]["kind"] = {"const": "ScaledObject"}
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
    return jsonschema.Draft202012Validator(schema, registry=registry)


def keda_schema_errors(obj: v.Obj, k8s: str) -> list[str]:
    """A keda.sh object against KEDA's CRD (ScaledObject) or Go types (TriggerAuthentication)."""
    kind = str(obj.get("kind"))
    if obj.get("apiVersion") != KEDA_API or kind not in ("ScaledObject", "TriggerAuthentication"):
        return [f"{v.ident(obj)}: no schema for {obj.get('apiVersion')} {kind}"]
    problems = [
        f"{v.ident(obj)} (k8s {k8s}, KEDA): {'.'.join(str(p) for p in e.path)}: {e.message[:300]}"
        for e in sorted(_validator(kind, k8s).iter_errors(obj), key=lambda e: list(e.path))
    ]
    spec = obj.get("spec") or {}
    # the CRD's CEL rule (x-kubernetes-validations), which JSON Schema cannot express
    lo, hi = spec.get("minReplicaCount"), spec.get("maxReplicaCount", 100)
    if kind == "ScaledObject" and isinstance(lo, int) and isinstance(hi, int) and lo > hi:
        problems.append(f"{v.ident(obj)}: minReplicaCount must be <= maxReplicaCount")
    return problems


# --------------------------------------------------------------------------- the worker


def workers(objs: list[v.Obj]) -> list[v.PodSource]:
    """Pod templates of the stream worker: labelled as its component, or running it."""
    return [
        s
        for s in v.pod_sources(objs)
        if s.labels.get("feast-kserve.io/component") == "stream-worker"
        or any("transformer.stream" in " ".join(c.get("command") or []) for c in _cs(s))
    ]


def _cs(src: v.PodSource) -> list[dict[str, Any]]:
    return src.spec.get("containers") or []


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env") or []}


def _secret_ref(env: dict[str, dict[str, Any]], name: str) -> tuple[str, str] | None:
    ref = ((env.get(name) or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
    return (ref.get("name"), ref.get("key")) if ref else None


def _probe(c: dict[str, Any], probe: str) -> tuple[str | None, Any]:
    http = (c.get(probe) or {}).get("httpGet") or {}
    return http.get("path"), http.get("port")


def _by_kind(objs: list[v.Obj], kind: str) -> list[v.Obj]:
    return [o for o in objs if o.get("kind") == kind]


def check_stream_worker(objs: list[v.Obj], *, expect: bool = True) -> list[str]:
    """The worker and its objects (see the module doc). ``expect`` False: there must be none."""
    found = workers(objs)
    if not expect:
        return [f"{w.where}: a stream worker is rendered, but it is off by default" for w in found]
    if len(found) != 1:
        return [f"expected one stream worker Deployment, found {[w.where for w in found]}"]
    (w,) = found
    problems: list[str] = []
    if w.kind != "Deployment":
        problems.append(f"{w.where}: the worker is a {w.kind}, not a Deployment")
    (c,) = _cs(w) or [{}]
    env = _env(c)
    sources = list(v.pod_sources(objs))
    transformer = next((s for s in sources if s.kind == "isvc-transformer"), None)
    t = _cs(transformer)[0] if transformer else {}
    t_env = _env(t)
    where = w.where
    if c.get("command") != COMMAND or c.get("args"):
        problems.append(f"{where}: runs {c.get('command')} {c.get('args') or ''}, not {COMMAND}")
    image, t_image = str(c.get("image", "")), str(t.get("image", ""))
    if "feast-kserve-transformer" not in image or (t_image and image != t_image):
        problems.append(f"{where}: image {image} is not the transformer's ({t_image})")
    # one consumer group, one consumer per pod
    consumer = ((env.get("STREAM_CONSUMER") or {}).get("valueFrom") or {}).get("fieldRef") or {}
    if consumer.get("fieldPath") != "metadata.name":
        problems.append(f"{where}: STREAM_CONSUMER is not the pod name (fieldRef metadata.name)")
    if "value" not in (env.get("STREAM_GROUP") or {}):
        problems.append(f"{where}: STREAM_GROUP is not one literal group for every replica")
    # the transformer's Redis auth
    if transformer is not None:
        if _secret_ref(env, "REDIS_PASSWORD") != _secret_ref(t_env, "REDIS_PASSWORD"):
            problems.append(
                f"{where}: REDIS_PASSWORD {_secret_ref(env, 'REDIS_PASSWORD')} is not the "
                f"transformer's Secret {_secret_ref(t_env, 'REDIS_PASSWORD')}"
            )
        for name in ("REDIS_CONNECTION_STRING", "FEAST_FS_YAML_FILE_PATH"):
            if (env.get(name) or {}).get("value") != (t_env.get(name) or {}).get("value"):
                problems.append(f"{where}: {name} differs from the transformer's")
        if c.get("securityContext") != t.get("securityContext"):
            problems.append(f"{where}: securityContext differs from the transformer's")
        t_cm = {
            x["configMap"]["name"]
            for x in transformer.spec.get("volumes") or []
            if "configMap" in x
        }
        w_cm = {x["configMap"]["name"] for x in w.spec.get("volumes") or [] if "configMap" in x}
        if not w_cm or not w_cm <= t_cm:
            problems.append(f"{where}: mounts ConfigMaps {w_cm}, not the transformer's {t_cm}")
    # probes and metrics on :8090
    if (env.get("STREAM_HTTP_PORT") or {}).get("value", str(PORT)) != str(PORT):
        problems.append(f"{where}: STREAM_HTTP_PORT is not {PORT}")
    if PORT not in {p.get("containerPort") for p in c.get("ports") or []}:
        problems.append(f"{where}: container port {PORT} not declared")
    for probe, path in (
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
        ("startupProbe", "/healthz"),
    ):
        got = _probe(c, probe)
        if got != (path, PORT):
            problems.append(f"{where}: {probe} is {got}, not GET {path} on {PORT}")
    if w.spec.get("automountServiceAccountToken") is not False:
        problems.append(f"{where}: mounts a ServiceAccount token (it calls no Kubernetes API)")
    problems += _check_pdb(objs, w)
    problems += _check_policies(objs, w, transformer, sources, model_dir="STREAM_MODEL_DIR" in env)
    problems += _check_keda(objs, w, env)
    return problems


def _check_pdb(objs: list[v.Obj], w: v.PodSource) -> list[str]:
    pdbs = [
        p
        for p in _by_kind(objs, "PodDisruptionBudget")
        if v._matches((p["spec"].get("selector") or {}), w.labels)
    ]
    if not pdbs:
        return [f"{w.where}: no PodDisruptionBudget selects the worker pods"]
    return [
        f"{v.ident(p)}: maxUnavailable must be >= 1 (or the worker could never be drained)"
        for p in pdbs
        if "minAvailable" in p["spec"] or int(p["spec"].get("maxUnavailable", 0)) < 1
    ]


def _check_policies(
    objs: list[v.Obj],
    w: v.PodSource,
    transformer: v.PodSource | None,
    sources: list[v.PodSource],
    *,
    model_dir: bool,
) -> list[str]:
    if not _by_kind(objs, "NetworkPolicy"):
        return []  # networkPolicy.enabled=false: nothing to check
    problems: list[str] = []
    ingress = v._policies_for(objs, w.labels)
    if not ingress:
        problems.append(f"no ingress NetworkPolicy selects {w.where}")
    for np in ingress:
        for rule in np["spec"].get("ingress") or []:
            ports = {p.get("port") for p in rule.get("ports") or []}
            peers = rule.get("from") or []
            text = json.dumps(peers, sort_keys=True)
            if ports != {PORT}:
                problems.append(
                    f"{v.ident(np)}: the worker admits ports {ports or 'all'}, not {PORT} only"
                )
            if not peers or any("namespaceSelector" not in p or "podSelector" in p for p in peers):
                problems.append(
                    f"{v.ident(np)}: the worker admits {text}, not the metrics scrape only"
                )
    egress = v._egress_policies(objs, w.labels)
    if not egress:
        return [*problems, f"no egress NetworkPolicy selects {w.where}"]
    serverless = v.deployment_mode(objs) in v.SERVERLESS_MODES if transformer else False
    predictor = next((s for s in sources if s.kind == "isvc-predictor"), None)
    redis = [s for s in sources if s.labels.get("app.kubernetes.io/name") == "redis"]
    registry = [s for s in sources if s.labels.get("app.kubernetes.io/name") == "feast-registry"]
    may = [p.labels for p in redis + registry] + [v.REDIS, v.REGISTRY]
    releases = {r for s in sources if (r := s.labels.get("app.kubernetes.io/instance"))}
    may += [{**d, "app.kubernetes.io/instance": r} for d in (v.REDIS, v.REGISTRY) for r in releases]
    if predictor is not None and not model_dir:
        may.append(predictor.labels)
    if not v._reaches_dns(egress):
        problems.append("the stream worker's egress does not reach DNS (kube-system, 53/UDP)")
    for dep in redis + registry:
        if not v._egress_reaches(egress, dep.labels, v._pod_port(dep)):
            problems.append(f"the stream worker's egress does not reach {dep.where}")
    if predictor is not None and not model_dir:
        if not serverless and not v._egress_reaches(egress, predictor.labels, 8080):
            problems.append("the stream worker's egress does not reach the predictor on 8080")
        pred_in = v._policies_for(objs, predictor.labels)
        if pred_in and not serverless and not v._admits_pod(pred_in, w.labels, 8080):
            problems.append(
                "the predictor's NetworkPolicies do not admit the stream worker on 8080"
            )
    for np in egress:
        for rule in np["spec"].get("egress") or []:
            peers = rule.get("to")
            if not peers:
                problems.append(f"{v.ident(np)}: an egress rule without 'to' opens everything")
                continue
            for peer in peers:
                problems += _peer_problem(np, peer, may, serverless)
    return problems


def _peer_problem(
    np: v.Obj, peer: dict[str, Any], may: list[dict[str, str]], serverless: bool
) -> list[str]:
    text = json.dumps(peer, sort_keys=True)
    if "ipBlock" in peer:
        cidr = str(peer["ipBlock"].get("cidr", ""))
        if cidr.endswith(("/32", "/128")) and not peer["ipBlock"].get("except"):
            return []  # one host: an external Redis
        return [f"{v.ident(np)}: stream worker egress to an ipBlock {text}"]
    if "namespaceSelector" in peer:
        ns = peer["namespaceSelector"]
        if not (ns.get("matchLabels") or ns.get("matchExpressions")):
            return [f"{v.ident(np)}: stream worker egress to every namespace {text}"]
        if "kube-system" in text and "kube-dns" in text:
            return []
        if serverless and "knative-serving" in text:
            return []  # the predictor through Knative's gateway/activator
        return [f"{v.ident(np)}: stream worker egress to other namespaces {text}"]
    sel = peer.get("podSelector") or {}
    if not sel.get("matchLabels") and not sel.get("matchExpressions"):
        return [f"{v.ident(np)}: stream worker egress to every pod of the namespace"]
    if not any(v._matches(sel, labels) for labels in may):
        return [f"{v.ident(np)}: stream worker egress to {text}, none of its dependencies"]
    return []


def _check_keda(objs: list[v.Obj], w: v.PodSource, env: dict[str, dict[str, Any]]) -> list[str]:
    scaled = [
        s
        for s in _by_kind(objs, "ScaledObject")
        if (s["spec"].get("scaleTargetRef") or {}).get("name") == w.where.split("/", 1)[1]
    ]
    deployment = next(
        (
            o
            for o in _by_kind(objs, "Deployment")
            if f"Deployment/{o['metadata']['name']}" == w.where
        ),
        None,
    )
    if not scaled:
        if _by_kind(objs, "ScaledObject"):
            return ["a ScaledObject is rendered but none scales the stream worker Deployment"]
        return []
    problems: list[str] = []
    if deployment is not None and "replicas" in deployment["spec"]:
        problems.append(
            f"{w.where}: sets replicas while a ScaledObject scales it (every upgrade would reset "
            "KEDA's count)"
        )
    auths = {o["metadata"]["name"]: o for o in _by_kind(objs, "TriggerAuthentication")}
    password = _secret_ref(env, "REDIS_PASSWORD")
    for so in scaled:
        ref = so["spec"]["scaleTargetRef"]
        if (
            ref.get("kind", "Deployment") != "Deployment"
            or ref.get("apiVersion", "apps/v1") != "apps/v1"
        ):
            problems.append(f"{v.ident(so)}: scaleTargetRef is not the apps/v1 Deployment")
        triggers = so["spec"].get("triggers") or []
        if [t.get("type") for t in triggers] != ["redis-streams"]:
            types = [t.get("type") for t in triggers]
            problems.append(f"{v.ident(so)}: triggers {types}, not one redis-streams")
            continue
        meta = triggers[0].get("metadata") or {}
        for key, var in (("stream", "STREAM_STREAM"), ("consumerGroup", "STREAM_GROUP")):
            if meta.get(key) != (env.get(var) or {}).get("value"):
                problems.append(f"{v.ident(so)}: {key} {meta.get(key)!r} is not the worker's {var}")
        if not str(meta.get("pendingEntriesCount", "")).isdigit():
            problems.append(f"{v.ident(so)}: no pendingEntriesCount (the pending-entries target)")
        host = str(meta.get("address", "")).rsplit(":", 1)[0]
        conn = str((env.get("REDIS_CONNECTION_STRING") or {}).get("value", "")).split(":", 1)[0]
        if not host or host.split(".")[0] != conn.split(".")[0]:
            problems.append(
                f"{v.ident(so)}: address {meta.get('address')!r} is not the worker's Redis {conn!r}"
            )
        auth_ref = (triggers[0].get("authenticationRef") or {}).get("name")
        auth = auths.get(auth_ref or "")
        if auth is None:
            problems.append(f"{v.ident(so)}: authenticationRef {auth_ref!r} is not in the render")
            continue
        refs = {
            r.get("parameter"): (r.get("name"), r.get("key"))
            for r in (auth.get("spec") or {}).get("secretTargetRef") or []
        }
        if refs.get("password") != password:
            problems.append(
                f"{v.ident(auth)}: password from {refs.get('password')}, the worker's is {password}"
            )
    return problems
