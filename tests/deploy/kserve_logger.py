"""Checks of KServe's payload logger (the InferenceService components' ``logger`` field).

The CRDs of both supported KServe releases (validation.schema_errors) type the field: ``mode``
is an enum, ``url`` any string. What they cannot say, checked here:

- ``check_logger_urls``: the sink is an absolute http(s) URL (KServe's agent posts CloudEvents
  to it; a bare host or a relative path passes the CRD and fails at run time, silently for
  the requests: the agent logs the failure);
- ``check_logger_egress``: where egress NetworkPolicies select a logged component, one of
  their rules opens the sink's port (80/443 unless the url names one) to a named peer;
  otherwise every event is dropped by the network. The sink rule names its peers (no empty
  selector, no open ipBlock).

``without_sink_rules`` hands validation.check_egress_policies ("each pod reaches its
dependencies and nothing else") the policies without the sink rules, which are checked here.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from tests.deploy import validation as v

COMPONENTS = ("predictor", "transformer")


def loggers(objs: list[v.Obj]) -> dict[str, dict[str, Any]]:
    """'InferenceService/name.component' -> its logger, for every component that has one."""
    return {
        f"{v.ident(o)}.{comp}": o["spec"][comp]["logger"]
        for o in objs
        if o.get("kind") == "InferenceService"
        for comp in COMPONENTS
        if (o["spec"].get(comp) or {}).get("logger")
    }


def sink_port(url: str) -> int | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.port or (443 if parts.scheme == "https" else 80)


def check_logger_urls(objs: list[v.Obj]) -> list[str]:
    return [
        f"{where}: logger.url {log.get('url')!r} is not an absolute http(s) URL of the sink"
        for where, log in loggers(objs).items()
        if sink_port(str(log.get("url") or "")) is None
    ]


def _sink_rules(objs: list[v.Obj]) -> Iterator[tuple[str, str, int, v.Obj, dict[str, Any]]]:
    """(component, url, port, policy, rule) for each logged component's egress rules that
    open exactly the sink's port, and (rule None) a policy-less marker when none does."""
    logged = loggers(objs)
    for src in v.pod_sources(objs):
        url = str((logged.get(src.where) or {}).get("url") or "")
        port = sink_port(url)
        if port is None:
            continue  # no logger, or a bad url (check_logger_urls)
        for np in v._egress_policies(objs, src.labels):
            for rule in np["spec"].get("egress") or []:
                if [p.get("port") for p in rule.get("ports") or []] == [port]:
                    yield src.where, url, port, np, rule


def _open_peer(peer: dict[str, Any]) -> bool:
    if "ipBlock" in peer:
        return not str(peer["ipBlock"].get("cidr", "")).endswith(("/32", "/128"))
    selectors = [peer[k] for k in ("podSelector", "namespaceSelector") if k in peer]
    return not selectors or all(
        not (sel.get("matchLabels") or sel.get("matchExpressions")) for sel in selectors
    )


def check_logger_egress(objs: list[v.Obj]) -> list[str]:
    problems = []
    rules = list(_sink_rules(objs))
    logged = loggers(objs)
    for src in v.pod_sources(objs):
        port = sink_port(str((logged.get(src.where) or {}).get("url") or ""))
        policies = v._egress_policies(objs, src.labels)
        if port is None or not policies:
            continue  # no logger, a bad url (check_logger_urls), or egress unrestricted
        mine = [r for where, *_, r in rules if where == src.where and r.get("to")]
        if not mine:
            problems.append(
                f"{src.where}: logs to {logged[src.where]['url']} but no egress rule of "
                f"{[np['metadata']['name'] for np in policies]} opens port {port} to a peer"
            )
        problems += [
            f"{src.where}: the egress rule to the logger's sink opens {peer} (name the sink)"
            for rule in mine
            for peer in rule["to"]
            if _open_peer(peer)
        ]
    return problems


def without_sink_rules(objs: list[v.Obj]) -> list[v.Obj]:
    """A copy of the objects without the logged components' sink rules."""
    drop = {id(rule) for *_, rule in _sink_rules(objs)}
    if not drop:
        return objs
    out = copy.deepcopy(objs)
    for old, new in zip(objs, out, strict=True):
        if old.get("kind") == "NetworkPolicy" and "egress" in old["spec"]:
            new["spec"]["egress"] = [
                n
                for o, n in zip(old["spec"]["egress"], new["spec"]["egress"], strict=True)
                if id(o) not in drop
            ]
    return out


def check_kserve_logger(objs: list[v.Obj]) -> list[str]:
    return check_logger_urls(objs) + check_logger_egress(objs)
