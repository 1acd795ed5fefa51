"""Feast wiring: client configs point at the rendered registry, Redis strings at Redis."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.deploy.checks.objects import Obj
from tests.deploy.checks.pods import pod_sources


def feature_store_configs(objs: list[Obj]) -> dict[str, dict[str, Any]]:
    return {
        o["metadata"]["name"]: yaml.safe_load(o["data"]["feature_store.yaml"])
        for o in objs
        if o["kind"] == "ConfigMap" and "feature_store.yaml" in (o.get("data") or {})
    }


def check_feast(objs: list[Obj], *, redis_bundled: bool = True) -> list[str]:
    """Client configs point at a rendered registry Service; Redis strings at the Redis Service."""
    problems: list[str] = []
    services = {
        o["metadata"]["name"]: o
        for o in objs
        if o["kind"] == "Service" and o.get("apiVersion") == "v1"
    }
    for name, cfg in feature_store_configs(objs).items():
        if cfg.get("project") != "click_inference":
            problems.append(
                f"ConfigMap/{name}: project {cfg.get('project')!r} is not click_inference"
            )
        reg = cfg.get("registry") or {}
        if reg.get("registry_type") == "remote":
            host, _, port = reg["path"].rpartition(":")
            svc = services.get(host)
            if svc is None:
                problems.append(
                    f"ConfigMap/{name}: registry {reg['path']} is not a rendered Service"
                )
            elif int(port) not in {p["port"] for p in svc["spec"]["ports"]}:
                problems.append(f"ConfigMap/{name}: registry port {port} not on Service/{host}")
        elif reg.get("registry_type") == "file":
            problems.append(
                f"ConfigMap/{name}: a file registry behind the registry server drops a feast "
                "apply's objects when a client reads during the apply; use registry_type: sql "
                "(tests/integration/test_registry_server.py)"
            )
        elif reg.get("registry_type") != "sql" or not str(reg.get("path", "")).startswith(
            "sqlite:////var/lib/feast/registry/"
        ):
            problems.append(f"ConfigMap/{name}: unexpected registry {reg}")
        online = cfg.get("online_store") or {}
        if reg.get("registry_type") == "remote" and online != {
            "type": "redis",
            "connection_string": "${REDIS_CONNECTION_STRING}",
        }:
            problems.append(
                f"ConfigMap/{name}: online store is not Redis via REDIS_CONNECTION_STRING"
            )
    for src in pod_sources(objs):
        for c in src.spec.get("containers") or []:
            env = {e["name"]: e for e in c.get("env") or []}
            conn = env.get("REDIS_CONNECTION_STRING")
            if not conn:
                continue
            names = list(env)
            if "REDIS_PASSWORD" not in env or names.index("REDIS_PASSWORD") > names.index(
                "REDIS_CONNECTION_STRING"
            ):
                problems.append(
                    f"{src.where}: REDIS_PASSWORD must be defined before "
                    "REDIS_CONNECTION_STRING for $(REDIS_PASSWORD) to expand"
                )
            value = conn.get("value", "")
            m = re.fullmatch(r"([^:,]+):(\d+),password=\$\(REDIS_PASSWORD\)(,ssl=true)?", value)
            if not m:
                problems.append(
                    f"{src.where}: REDIS_CONNECTION_STRING {value!r} is not "
                    "host:port,password=$(REDIS_PASSWORD)"
                )
                continue
            if redis_bundled:
                svc = services.get(m.group(1))
                if svc is None or int(m.group(2)) not in {p["port"] for p in svc["spec"]["ports"]}:
                    problems.append(
                        f"{src.where}: Redis {m.group(1)}:{m.group(2)} "
                        "is not a rendered Service port"
                    )
            path = (env.get("FEAST_FS_YAML_FILE_PATH") or {}).get("value")
            if path != "/etc/feast/feature_store.yaml":
                problems.append(f"{src.where}: FEAST_FS_YAML_FILE_PATH is {path!r}")
            if not any(m_.get("mountPath") == "/etc/feast" for m_ in c.get("volumeMounts") or []):
                problems.append(f"{src.where}: /etc/feast (feature_store.yaml) is not mounted")
    return problems
