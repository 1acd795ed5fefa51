"""Offline checks of a rendered ensemble deployment (kustomize overlay `ensemble`, the Helm
chart with `ensemble.enabled`): the InferenceGraph's Ensemble node, the transformer-driven
ensemble in the rules file, and the NetworkPolicies both need. Each ``check_*`` returns
human-readable problems (empty: fine); tests/deploy/test_ensemble.py shows each one
catching a broken render.

The schemas (InferenceGraph CRD of every supported KServe release) are checked by
``validation.schema_errors`` like every other object.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

import yaml
from pydantic import ValidationError

from tests.deploy import validation as v
from transformer.rules import BusinessRules

Obj = dict[str, Any]

# http://<isvc>-predictor.<namespace>.svc.cluster.local[:port]/v2/models/<model>/infer
STEP_URL = re.compile(
    r"^http://(?P<host>[a-z0-9-]+-predictor\.[a-z0-9-]+\.svc\.cluster\.local(?::\d+)?)"
    r"/v2/models/(?P<model>[a-z0-9-]+)/infer$"
)


def predictor_host(isvc: Obj) -> str:
    """The in-cluster host of an InferenceService's predictor component."""
    md = isvc["metadata"]
    return f"{md['name']}-predictor.{md['namespace']}.svc.cluster.local"


def _predictors(objs: list[Obj]) -> dict[str, Obj]:
    """Rendered InferenceServices with a model predictor, by predictor host. The runtime
    serves the model under the InferenceService's name (``--model_name={{.Name}}``)."""
    return {
        predictor_host(o): o
        for o in objs
        if o["kind"] == "InferenceService" and (o["spec"].get("predictor") or {}).get("model")
    }


def _endpoint(host: str, model: str, predictors: dict[str, Obj]) -> tuple[Obj | None, str]:
    """The InferenceService behind host + model name, or a problem."""
    isvc = predictors.get(host.rsplit(":", 1)[0])
    if isvc is None:
        return None, f"{host} is no rendered InferenceService predictor {sorted(predictors)}"
    if model != isvc["metadata"]["name"]:
        return None, f"{host} serves model '{isvc['metadata']['name']}', not '{model}'"
    return isvc, ""


def graph_members(graph: Obj, objs: list[Obj]) -> tuple[dict[str, Obj], list[str]]:
    """The InferenceServices an InferenceGraph's root Ensemble node calls, by step name."""
    problems: list[str] = []
    where = v.ident(graph)
    root = (graph["spec"].get("nodes") or {}).get("root")
    if root is None:
        return {}, [f"{where}: no 'root' node (the router starts there)"]
    if root.get("routerType") != "Ensemble":
        problems.append(f"{where}: root routerType is {root.get('routerType')!r}, not 'Ensemble'")
    steps = root.get("steps") or []
    if len(steps) < 2:
        problems.append(f"{where}: an ensemble needs at least two steps, got {len(steps)}")
    predictors = _predictors(objs)
    members: dict[str, Obj] = {}
    for i, step in enumerate(steps):
        name = step.get("name") or ""
        if not name or name in members:
            problems.append(f"{where}: step {i} needs a unique name (it keys the response)")
        if step.get("dependency") != "Hard":
            problems.append(
                f"{where}: step {name or i} is not dependency Hard: a failing member would be "
                "left out of the answer instead of failing it"
            )
        m = STEP_URL.match(step.get("serviceUrl") or "")
        if m is None:
            problems.append(
                f"{where}: step {name or i} serviceUrl {step.get('serviceUrl')!r} is not a "
                "predictor's v2 infer URL"
            )
            continue
        isvc, problem = _endpoint(m["host"], m["model"], predictors)
        if isvc is None:
            problems.append(f"{where}: step {name or i}: {problem}")
        else:
            members[name] = isvc
    if len({o["metadata"]["name"] for o in members.values()}) != len(members):
        problems.append(f"{where}: two steps call the same InferenceService")
    uris = [o["spec"]["predictor"]["model"].get("storageUri") for o in members.values()]
    if len(set(uris)) != len(uris):
        problems.append(f"{where}: two members serve the same model {uris}")
    return members, problems


def check_inference_graph(objs: list[Obj]) -> list[str]:
    graphs = [o for o in objs if o["kind"] == "InferenceGraph"]
    if not graphs:
        return ["no InferenceGraph rendered"]
    return [p for g in graphs for p in graph_members(g, objs)[1]]


def mounted_file(
    objs: list[Obj], transformer: v.PodSource, path: str, setting: str
) -> tuple[str | None, str]:
    """The text of the file at ``path`` in the transformer's kserve-container, read from the
    ConfigMap volume mounted at its directory, or (None, the problem); ``setting`` names what
    points there (in the problems)."""
    (c,) = [c for c in transformer.spec["containers"] if c["name"] == "kserve-container"]
    p = PurePosixPath(path)
    mounts = [m for m in c.get("volumeMounts") or [] if PurePosixPath(m["mountPath"]) == p.parent]
    if not mounts:
        return None, f"no volume is mounted at {p.parent} ({setting} {path})"
    volumes = {vol["name"]: vol for vol in transformer.spec.get("volumes") or []}
    cm_name = (volumes.get(mounts[0]["name"], {}).get("configMap") or {}).get("name")
    if cm_name is None:
        return None, f"volume {mounts[0]['name']} at {p.parent} is not a ConfigMap"
    cms = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ConfigMap"}
    data = (cms.get(cm_name) or {}).get("data") or {}
    if p.name not in data:
        return None, f"ConfigMap {cm_name} has no key {p.name} ({setting} {path})"
    return data[p.name], f"ConfigMap/{cm_name}[{p.name}]"


def _rules_text(objs: list[Obj], transformer: v.PodSource) -> tuple[str | None, str]:
    """The rules file the transformer reads: TRANSFORMER_RULES_FILE in a ConfigMap volume."""
    (c,) = [c for c in transformer.spec["containers"] if c["name"] == "kserve-container"]
    env = {e["name"]: e.get("value") for e in c.get("env") or []}
    path = env.get("TRANSFORMER_RULES_FILE")
    if not path:
        return None, "the transformer has no TRANSFORMER_RULES_FILE"
    return mounted_file(objs, transformer, path, "TRANSFORMER_RULES_FILE")


def transformer_members(objs: list[Obj]) -> tuple[dict[str, Obj], list[str]]:
    """The InferenceServices the transformer's ensemble calls, by member name."""
    sources = [s for s in v.pod_sources(objs) if s.kind == "isvc-transformer"]
    if len(sources) != 1:
        return {}, [f"expected one transformer, got {[s.where for s in sources]}"]
    text, where = _rules_text(objs, sources[0])
    if text is None:
        return {}, [where]
    try:
        rules = BusinessRules.model_validate(yaml.safe_load(text) or {})
    except (yaml.YAMLError, ValidationError) as e:
        return {}, [f"{where}: the transformer would refuse these rules: {e}"]
    if rules.ensemble is None:
        return {}, [f"{where}: no ensemble"]
    entry = v._isvc(objs)  # the InferenceService with the transformer: its own predictor
    predictors = _predictors(objs)
    members: dict[str, Obj] = {}
    problems: list[str] = []
    for m in rules.ensemble.members:
        if m.host is None:  # KServe's --predictor_host: the entry's own predictor
            host, model = predictor_host(entry), m.model_name or entry["metadata"]["name"]
        else:
            host, model = m.host, m.model_name or entry["metadata"]["name"]
        isvc, problem = _endpoint(host, model, predictors)
        if isvc is None:
            problems.append(f"{where}: member {m.name}: {problem}")
        else:
            members[m.name] = isvc
    if len({o["metadata"]["name"] for o in members.values()}) != len(members):
        problems.append(f"{where}: two members call the same InferenceService")
    return members, problems


def check_transformer_ensemble(objs: list[Obj]) -> list[str]:
    """The rules file validates, names two or more rendered predictors; with an
    InferenceGraph too, both forms combine the same models."""
    members, problems = transformer_members(objs)
    for graph in (o for o in objs if o["kind"] == "InferenceGraph"):
        in_graph = {o["metadata"]["name"] for o in graph_members(graph, objs)[0].values()}
        in_rules = {o["metadata"]["name"] for o in members.values()}
        if in_graph != in_rules:
            problems.append(
                f"{v.ident(graph)} combines {sorted(in_graph)} but the transformer's "
                f"ensemble {sorted(in_rules)}"
            )
    return problems


def check_member_network_policies(objs: list[Obj]) -> list[str]:
    """Every member predictor admits the transformer (transformer-driven form) and the graph
    router pods (KServe labels them serving.kserve.io/inferencegraph=<graph>) on 8080."""
    problems: list[str] = []
    (transformer,) = [s for s in v.pod_sources(objs) if s.kind == "isvc-transformer"]
    callers: list[tuple[str, dict[str, str], dict[str, Obj]]] = [
        ("the transformer", transformer.labels, transformer_members(objs)[0])
    ]
    for g in (o for o in objs if o["kind"] == "InferenceGraph"):
        router = {"serving.kserve.io/inferencegraph": g["metadata"]["name"]}
        callers.append((f"{v.ident(g)}'s router", router, graph_members(g, objs)[0]))
    for who, labels, members in callers:
        for name, isvc in members.items():
            pod_labels = isvc["spec"]["predictor"].get("labels") or {}
            pols = v._policies_for(objs, pod_labels)
            if not pols:
                problems.append(f"no NetworkPolicy selects member {name}'s predictor pods")
            elif not v._admits_pod(pols, labels, 8080):
                problems.append(f"member {name}'s predictor does not admit {who} on 8080")
    return problems


def check_ensemble(objs: list[Obj]) -> list[str]:
    return (
        v._guarded(check_inference_graph, objs)
        + v._guarded(check_transformer_ensemble, objs)
        + v._guarded(check_member_network_policies, objs)
    )
