"""The cluster's Feast registry server, configured as the manifests configure it, keeps every
object of a `feast apply` while clients read the registry.

On a first install the transformer (waiting for its feature service), the feature server and
the bootstrap Job's `feast apply` all talk to one `feast serve_registry`. A file registry keeps
an apply's objects in memory until the final commit, and a read with allow_cache=False in
between reloads the file and drops them: the apply exits 0 and leaves an empty or partial
registry. The registry here is configured as manifests/base/feast/registry-server.feature_store.yaml
configures it (the Helm chart renders the same; tests/deploy/test_parity.py checks they agree)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools import stack

pytestmark = pytest.mark.integration

# The registry server's feature_store.yaml, as the kustomize base generates its ConfigMap
# (tests/deploy/test_parity.py keeps the chart's equal to it).
MANIFEST = stack.ROOT / "manifests" / "base" / "feast" / "registry-server.feature_store.yaml"
FEAST = [sys.executable, "-m", "feast.cli.cli"]


def manifest_registry_config() -> dict[str, Any]:
    return yaml.safe_load(MANIFEST.read_text())


def with_path_under(config: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """The same registry, its database moved from the pod's volume into ``tmp``."""
    registry = dict(config["registry"])
    path = registry["path"]
    db = tmp / "registry.db"
    registry["path"] = f"sqlite:///{db}" if path.startswith("sqlite://") else str(db)
    return {**config, "registry": registry}


@pytest.fixture
def registry_server(sqlite_features, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(repo, client feature_store.yaml) of a fresh registry server with the manifest's config."""
    config = manifest_registry_config()
    server_yaml = tmp_path / "registry.yaml"
    server_yaml.write_text(yaml.safe_dump(with_path_under(config, tmp_path)))
    port = stack.free_port()
    client = {
        "project": config["project"],
        "provider": "local",
        "registry": {"registry_type": "remote", "path": f"127.0.0.1:{port}"},
        "online_store": {"type": "sqlite", "path": str(tmp_path / "online.db")},
        "offline_store": {"type": "file"},
        "entity_key_serialization_version": 3,
        "auth": {"type": "no_auth"},
    }
    client_yaml = tmp_path / "client.yaml"
    client_yaml.write_text(yaml.safe_dump(client))
    env = {**os.environ, "PYTHONOPTIMIZE": "1", "FEAST_FS_YAML_FILE_PATH": str(server_yaml)}
    log = (tmp_path / "registry-server.log").open("wb")
    repo = sqlite_features.repo
    proc = subprocess.Popen(
        [*FEAST, "--chdir", str(repo), "serve_registry", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        stack.wait_listening(port, proc, "feast serve_registry", timeout_s=60)
        yield repo, client_yaml
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def test_apply_through_the_registry_server_survives_concurrent_reads(registry_server) -> None:
    from feast import FeatureStore
    from feast.repo_config import load_repo_config

    repo, client_yaml = registry_server
    store = FeatureStore(repo_path=str(repo), config=load_repo_config(repo, client_yaml))
    stop = threading.Event()
    reads = [0]

    def poll() -> None:  # what a waiting transformer or feature server does, only faster
        while not stop.is_set():
            try:
                store.list_feature_services()
                reads[0] += 1
            except Exception:
                pass
            time.sleep(0.005)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        applied = subprocess.run(
            [*FEAST, "--chdir", str(repo), "apply"],
            env={**os.environ, "PYTHONOPTIMIZE": "1", "FEAST_FS_YAML_FILE_PATH": str(client_yaml)},
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        stop.set()
        poller.join(timeout=10)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert reads[0] > 10, "the poller never read the registry during the apply"

    fresh = FeatureStore(repo_path=str(repo), config=load_repo_config(repo, client_yaml))
    assert [s.name for s in fresh.list_feature_services()] == ["click_model_v1"]
    assert {v.name for v in fresh.list_feature_views()} >= {"user_data", "model_predictions"}
    assert [v.name for v in fresh.list_on_demand_feature_views()] == ["user_request_features"]
