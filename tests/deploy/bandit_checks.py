"""Offline checks of a rendered bandit deployment (kustomize overlay `bandit`, the Helm chart
with `bandit.enabled`): the transformer's bandit file parses with the transformer's own
configuration model and names predictors of different models, its Redis comes from the
online store's Secret, and the NetworkPolicies let the transformer reach every arm. Each
``check_*`` returns human-readable problems (empty: fine); tests/deploy/test_bandit.py shows
each one catching a broken render.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from tests.deploy import ensemble_checks as ec
from tests.deploy import validation as v
from transformer.multimodel.bandit import ArmConfig, BanditConfig

Obj = dict[str, Any]

# redis[s]://:$(REDIS_PASSWORD)@host:port/db, the password a kubelet reference
REDIS_URL = re.compile(
    r"^rediss?://:\$\(REDIS_PASSWORD\)@(?P<host>[A-Za-z0-9.-]+):(?P<port>\d+)/(?P<db>\d+)$"
)


@dataclass
class Arm:
    index: int  # in the bandit file's arms (an ensemble arm: one Arm per member)
    config: ArmConfig  # the endpoint (an ensemble member's host, the arm's TLS)
    isvc: Obj | None  # the rendered InferenceService, or None: an endpoint deployed elsewhere


def _transformer(objs: list[Obj]) -> tuple[v.PodSource, dict[str, Any]]:
    (src,) = [s for s in v.pod_sources(objs) if s.kind == "isvc-transformer"]
    (c,) = [c for c in src.spec["containers"] if c["name"] == "kserve-container"]
    return src, c


def bandit_path(container: dict[str, Any]) -> str | None:
    """The --bandit_file argument (or TRANSFORMER_BANDIT_FILE) of the transformer."""
    args = [str(a) for a in container.get("args") or []]
    for i, a in enumerate(args):
        if a == "--bandit_file" and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--bandit_file="):
            return a.split("=", 1)[1]
    env = {e["name"]: e.get("value") for e in container.get("env") or []}
    return env.get("TRANSFORMER_BANDIT_FILE")


def bandit_config(objs: list[Obj]) -> tuple[BanditConfig | None, str]:
    """The bandit file the transformer reads, validated by the transformer's own model."""
    src, c = _transformer(objs)
    path = bandit_path(c)
    if path is None:
        return None, "the transformer has no --bandit_file"
    text, where = ec.mounted_file(objs, src, path, "--bandit_file")
    if text is None:
        return None, where
    mount = next(m for m in c["volumeMounts"] if path.startswith(m["mountPath"].rstrip("/") + "/"))
    if not mount.get("readOnly"):
        return None, f"{where}: mounted at {mount['mountPath']} writable, not readOnly"
    try:
        return BanditConfig.model_validate(yaml.safe_load(text) or {}), where
    except (yaml.YAMLError, ValidationError) as e:
        return None, f"{where}: the transformer would refuse this bandit file: {e}"


def arms(objs: list[Obj]) -> tuple[list[Arm], list[str]]:
    """The bandit's arms with the InferenceService each calls (None: not in this render)."""
    cfg, where = bandit_config(objs)
    if cfg is None:
        return [], [where]
    predictors = ec._predictors(objs)
    entry = v._isvc(objs)["metadata"]["name"]
    out: list[Arm] = []
    problems: list[str] = []
    for i, a in enumerate(cfg.arms):
        # an ensemble arm: each member is an endpoint the transformer calls
        endpoints = [(a, a.host, a.model_name)] if a.host else []
        endpoints += [
            (ArmConfig(host=m.host, use_ssl=a.use_ssl), m.host, m.model_name or a.model_name)
            for m in (a.ensemble.members if a.ensemble else ())
            if m.host
        ]
        for arm, host, model in endpoints:
            if host.rsplit(":", 1)[0].endswith(f".{v.NAMESPACE}.svc.cluster.local"):
                isvc, problem = ec._endpoint(host, model or entry, predictors)
                if isvc is None:
                    problems.append(f"{where}: arms.{i}: {problem}")
                    continue
                out.append(Arm(i, arm, isvc))
            else:
                out.append(Arm(i, arm, None))
    single = [a.isvc for a in out if a.isvc is not None and cfg.arms[a.index].host]
    if len({o["metadata"]["name"] for o in single}) != len(single):
        problems.append(f"{where}: two arms call the same InferenceService")
    uris = [o["spec"]["predictor"]["model"].get("storageUri") for o in single]
    if len(set(uris)) != len(uris):
        problems.append(f"{where}: two arms serve the same model {uris} (arms are model versions)")
    return out, problems


def check_bandit_file(objs: list[Obj]) -> list[str]:
    return arms(objs)[1]


def check_bandit_redis(objs: list[Obj]) -> list[str]:
    """TRANSFORMER_BANDIT_REDIS is the online store's Redis, its password $(REDIS_PASSWORD)
    from the same Secret the Feast connection uses, defined before it (the kubelet expands
    only earlier entries); no password in the file, the args or a value."""
    _, c = _transformer(objs)
    env = c.get("env") or []
    names = [e["name"] for e in env]
    if "TRANSFORMER_BANDIT_REDIS" not in names:
        return ["the transformer has no TRANSFORMER_BANDIT_REDIS"]
    problems: list[str] = []
    url = env[names.index("TRANSFORMER_BANDIT_REDIS")].get("value") or ""
    m = REDIS_URL.match(url)
    if m is None:
        problems.append(
            f"TRANSFORMER_BANDIT_REDIS {url!r} is not redis[s]://:$(REDIS_PASSWORD)@host:port/db"
        )
    if "REDIS_PASSWORD" not in names or names.index("REDIS_PASSWORD") > names.index(
        "TRANSFORMER_BANDIT_REDIS"
    ):
        problems.append("REDIS_PASSWORD is not defined before TRANSFORMER_BANDIT_REDIS")
    else:
        ref = (env[names.index("REDIS_PASSWORD")].get("valueFrom") or {}).get("secretKeyRef")
        if not ref:
            problems.append("REDIS_PASSWORD is not read from a Secret")
    feast = next((e.get("value") for e in env if e["name"] == "REDIS_CONNECTION_STRING"), "")
    if m is not None and feast and not feast.startswith(f"{m['host']}:{m['port']},"):
        problems.append(
            f"the bandit's Redis {m['host']}:{m['port']} is not the online store's ({feast})"
        )
    if m is not None and url.startswith("rediss://") != (",ssl=true" in (feast or "")):
        problems.append("the bandit's Redis TLS differs from the online store's")
    if any("$(REDIS_PASSWORD)" in str(a) or "redis://" in str(a) for a in c.get("args") or []):
        problems.append("a Redis address (and its password) is in the transformer's args")
    return problems


def _via_knative(egress: list[Obj]) -> bool:
    """Knative mode: calls to a predictor go through the activator / gateway namespaces."""
    return any(
        "knative-serving" in str(peer.get("namespaceSelector") or "")
        for np in egress
        for r in np["spec"].get("egress") or []
        for peer in r.get("to") or []
    )


def check_arm_network_policies(objs: list[Obj]) -> list[str]:
    """Every arm admits the transformer (ingress) and the transformer's egress reaches it:
    a rendered arm's predictor pods on 8080 (in Knative mode through the Knative namespaces),
    an arm deployed elsewhere on its port through a rule naming its peers."""
    found, problems = arms(objs)
    src, _ = _transformer(objs)
    egress = v._egress_policies(objs, src.labels)
    knative = v.deployment_mode(objs) == "Knative"
    for arm in found:
        label = f"bandit arm {arm.index} ({arm.config.host})"
        if arm.isvc is not None:
            pod_labels = arm.isvc["spec"]["predictor"].get("labels") or {}
            pols = v._policies_for(objs, pod_labels)
            if not pols:
                problems.append(f"no NetworkPolicy selects {label}'s predictor pods")
            elif not v._admits_pod(pols, src.labels, 8080):
                problems.append(f"{label}'s predictor does not admit the transformer on 8080")
            if not egress:
                continue
            if not (
                v._egress_reaches(egress, pod_labels, 8080) or (knative and _via_knative(egress))
            ):
                problems.append(f"the transformer's egress does not reach {label}")
            continue
        if not egress:
            continue
        host = arm.config.host or ""
        port = int(host.rsplit(":", 1)[1]) if ":" in host else (443 if arm.config.use_ssl else 80)
        if not any(
            r.get("to") and any(p.get("port") == port for p in r.get("ports") or [])
            for np in egress
            for r in np["spec"].get("egress") or []
        ):
            problems.append(f"the transformer's egress has no rule to {label} on {port}")
    return problems


def check_bandit(objs: list[Obj]) -> list[str]:
    checks = (check_bandit_file, check_bandit_redis, check_arm_network_policies)
    return [p for check in checks for p in v._guarded(check, objs)]
