"""The deploy-side make targets, dry-run: what they would run, on which context, with which
image and which Python (docs/deploy.md, docs/canary.md)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import pytest

from tests.deploy import validation as v

pytestmark = pytest.mark.unit


def dry(*args: str) -> str:
    proc = subprocess.run(
        ["make", "-n", "--no-print-directory", *args],
        cwd=v.REPO,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},  # no IMAGE_* or contexts leak in
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("target", ["canary", "promote", "rollback", "rollout-status"])
def test_rollout_targets_use_the_current_context_unless_told(target: str) -> None:
    assert "--context" not in dry(target)
    assert "--context my-ctx" in dry(target, "ROLLOUT_CONTEXT=my-ctx")
    assert "--context kind-feast-kserve" in dry(target, "KUBE_CONTEXT=kind-feast-kserve")


def test_rollout_targets_without_the_dev_venv_install_only_the_rollout_extra() -> None:
    out = dry("canary", "VENV=/nonexistent/venv")
    assert "pip install --quiet -e" not in out, "must not install the dev venv"
    assert "['optional-dependencies']['rollout']" in out
    assert re.search(r"^\.venv-rollout/bin/python -m predictor\.rollout canary ", out, re.M), out
    extra = tomllib.loads((v.REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["rollout"]
    assert [re.split(r"[<>=\[]", r)[0] for r in extra] == ["kubernetes"]


def test_rollout_cli_needs_nothing_but_the_standard_library_to_start() -> None:
    """python -S: no site-packages at all; the kubernetes client is imported on use."""
    proc = subprocess.run(
        [sys.executable, "-S", "-m", "predictor.rollout", "canary", "--help"],
        cwd=v.REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "--field-manager" in proc.stdout


def test_upload_model_uses_the_configured_image_namespace_and_store() -> None:
    out = dry(
        "upload-model",
        "MODEL=xgboost",
        "IMAGE_PREFIX=registry.example.com/ml",
        "IMAGE_TAG=1.2.3",
        "HELM_NAMESPACE=ml-prod",
        "MODEL_STORE_PVC=models-rwx",
        "KUBECTL=kubectl",
    )
    assert 'IMAGE="registry.example.com/ml/feast-kserve-predictor:1.2.3"' in out
    assert 'NAMESPACE="ml-prod"' in out and 'MODEL_STORE_PVC="models-rwx"' in out
    assert 'scripts/upload-model.sh "models/xgboost"' in out
    script = (v.REPO / "scripts" / "upload-model.sh").read_text()
    assert "kind.local" not in script and "0.1.0" not in script, "the image is configured"


def test_push_pushes_every_image_it_builds() -> None:
    out = dry("push", "IMAGE_PREFIX=registry.example.com/ml", "IMAGE_TAG=1.2.3")
    built = set(re.findall(r"-t (\S+)", out))
    pushed = set(re.findall(r"docker push (\S+)", out))
    assert (
        built
        == pushed
        == {
            f"registry.example.com/ml/feast-kserve-{n}:1.2.3"
            for n in ("transformer", "predictor", "collocated", "batch")
        }
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["IMAGE_TAG=1.2.3"], "local-only name"),  # the default prefix kind.local
        (["IMAGE_PREFIX=registry.example.com/ml", "IMAGE_TAG=dev"], "not an immutable tag"),
    ],
)
def test_push_refuses_names_a_registry_cannot_serve(args: list[str], message: str) -> None:
    proc = subprocess.run(
        ["make", "--no-print-directory", "push-check", *args],
        cwd=v.REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr


def test_drift_report_target_runs_the_report_module_with_its_knobs() -> None:
    out = dry("drift-report", "PAYLOAD_REDIS=r:1", "REPORT_WINDOW=30m", "MODEL_DIR=models/x")
    assert "-m transformer.monitoring.report --redis r:1" in out
    assert "--baseline models/x/baseline.json --window 30m --out build/drift-report.html" in out
