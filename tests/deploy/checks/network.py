"""NetworkPolicies that really admit every Feast/Redis client and only the transformer into
the predictor (ingress), and let each pod reach its dependencies and nothing else (egress)."""

from __future__ import annotations

import json
from typing import Any

from tests.deploy.checks.objects import Obj, ident
from tests.deploy.checks.pods import PodSource, _matches, pod_sources


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
                    # the stream worker scores through the predictor (stream_checks)
                    and other.labels.get("feast-kserve.io/component") != "stream-worker"
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
