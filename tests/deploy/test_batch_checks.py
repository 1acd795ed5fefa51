"""The scheduled batch as rendered (Helm CI values, both modes; the kustomize overlay) passes
tests/deploy/batch_checks.py, and each check flags a bad object (one failing fixture each)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import batch_checks as b
from tests.deploy import validation as v

pytestmark = pytest.mark.unit

MODEL = "pvc://click-model-models/sklearn"
CASES = [
    ("inference-service", "batch-cronjob-values.yaml"),
    ("inference-service", "batch-kuberay-values.yaml"),
    ("feast-kserve", "batch-cronjob-values.yaml"),
    ("feast-kserve", "batch-kuberay-values.yaml"),
]


@pytest.fixture(scope="module")
def charts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("batch") / "helm"
    shutil.copytree(v.REPO / "helm", root, ignore=shutil.ignore_patterns("charts", "*.tgz"))
    v.run([v.tool("helm"), "dependency", "build", str(root / "feast-kserve")])
    return root


def render(charts: Path, chart: str, values: str | None, *extra: str) -> list[v.Obj]:
    cmd = [v.tool("helm"), "template", "feast-kserve", str(charts / chart), "-n", v.NAMESPACE]
    if values:
        cmd += ["-f", str(charts / chart / "ci" / values)]
    return v.load_docs(v.run([*cmd, *extra]).stdout)


@pytest.fixture(scope="module")
def kuberay(charts: Path) -> list[v.Obj]:
    return render(charts, "feast-kserve", "batch-kuberay-values.yaml")


@pytest.fixture(scope="module")
def cronjob(charts: Path) -> list[v.Obj]:
    return render(charts, "feast-kserve", "batch-cronjob-values.yaml")


@pytest.mark.parametrize(("chart", "values"), CASES, ids=[f"{c}:{f}" for c, f in CASES])
def test_rendered_batch_passes_every_check(charts: Path, chart: str, values: str) -> None:
    objs = render(charts, chart, values)
    assert b.check_batch(objs, MODEL) == []
    problems = [p for o in objs for p in v.schema_errors(o)]
    assert problems == []
    if "kuberay" in values:
        (job,) = b.rayjobs(objs)
        assert [role for role, _ in b.ray_pods(job)] == ["head", "worker score", "submitter"]
        assert not [o for o in objs if o["kind"] == "RayJob"]  # a template, created per run
    else:
        assert b.rayjobs(objs) == []


def test_batch_is_off_by_default(charts: Path) -> None:
    objs = render(charts, "feast-kserve", "minimal-values.yaml")
    assert not [o for o in objs if "batch" in o["metadata"]["name"]]


def test_the_overlay_passes_every_check() -> None:
    objs = v.load_docs(
        v.run([v.tool("kubectl"), "kustomize", str(v.REPO / "manifests/overlays/batch")]).stdout
    )
    assert b.check_batch(objs, MODEL) == []


# --------------------------------------------------------------------------- failing fixtures


def _job(objs: list[v.Obj]) -> tuple[v.Obj, dict[str, Any]]:
    """The ConfigMap holding the RayJob template, and the parsed RayJob (edit, then _put)."""
    import yaml

    cm = next(o for o in objs if o["kind"] == "ConfigMap" and "rayjob.yaml" in o.get("data", {}))
    return cm, yaml.safe_load(cm["data"]["rayjob.yaml"])


def _put(cm: v.Obj, job: dict[str, Any]) -> None:
    import yaml

    cm["data"]["rayjob.yaml"] = yaml.safe_dump(job)


def _edit_job(fn: Any) -> Any:
    def apply(objs: list[v.Obj]) -> None:
        cm, job = _job(objs)
        fn(job)
        _put(cm, job)

    return apply


def _head(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]


def _named(objs: list[v.Obj], kind: str, suffix: str) -> v.Obj:
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"].endswith(suffix))


def test_schema_check_flags_an_unknown_field_and_a_wrong_type(kuberay: list[v.Obj]) -> None:
    def typo(job: dict[str, Any]) -> None:
        job["spec"]["shutdownAfterJobFinish"] = True  # the real field ends in -es

    def wrong_type(job: dict[str, Any]) -> None:
        job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicas"] = "two"

    got = b.check_ray_schemas(b.mutated(kuberay, _edit_job(typo)))
    assert any("shutdownAfterJobFinish" in p and "as RayJob" in p for p in got), got
    got = b.check_ray_schemas(b.mutated(kuberay, _edit_job(wrong_type)))
    assert any("replicas" in p and "as RayCluster" in p for p in got), got


def test_pod_check_flags_a_root_writable_head(kuberay: list[v.Obj]) -> None:
    def root(job: dict[str, Any]) -> None:
        sc = _head(job)["containers"][0]["securityContext"]
        sc["readOnlyRootFilesystem"] = False
        sc["runAsNonRoot"] = False

    got = b.check_batch_pods(b.mutated(kuberay, _edit_job(root)))
    assert any("head" in p and "readOnlyRootFilesystem" in p for p in got), got
    assert any("head" in p and "runAsNonRoot" in p for p in got), got


def test_pod_check_flags_a_cluster_left_running(kuberay: list[v.Obj]) -> None:
    def keep(job: dict[str, Any]) -> None:
        job["spec"]["shutdownAfterJobFinishes"] = False

    got = b.check_batch_pods(b.mutated(kuberay, _edit_job(keep)))
    assert any("outlives" in p for p in got), got


def test_model_check_flags_another_model(cronjob: list[v.Obj]) -> None:
    def other(objs: list[v.Obj]) -> None:
        cron = _named(objs, "CronJob", "-batch")
        vols = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]
        next(x for x in vols if x["name"] == "model")["persistentVolumeClaim"]["claimName"] = "old"

    got = b.check_batch_model(b.mutated(cronjob, other), MODEL)
    assert any("the predictor's is click-model-models/sklearn" in p for p in got), got


def test_schedule_check_flags_overlapping_runs(cronjob: list[v.Obj]) -> None:
    def allow(objs: list[v.Obj]) -> None:
        _named(objs, "CronJob", "-batch")["spec"]["concurrencyPolicy"] = "Allow"

    got = b.check_batch_schedule(b.mutated(cronjob, allow))
    assert any("Forbid" in p for p in got), got


def test_rbac_check_flags_broad_rights_and_tokens(kuberay: list[v.Obj]) -> None:
    def broad(objs: list[v.Obj]) -> None:
        _named(objs, "Role", "-batch-submit")["rules"][0]["verbs"] = ["create", "delete", "list"]

    def token(job: dict[str, Any]) -> None:
        _head(job)["automountServiceAccountToken"] = True

    got = b.check_batch_rbac(b.mutated(kuberay, broad))
    assert any("only create" in p for p in got), got
    got = b.check_batch_rbac(b.mutated(kuberay, _edit_job(token)))
    assert any("head" in p and "token" in p for p in got), got


def test_network_check_flags_open_egress_and_a_missing_dependency(kuberay: list[v.Obj]) -> None:
    def open_egress(objs: list[v.Obj]) -> None:
        np = _named(objs, "NetworkPolicy", "-batch-egress")
        np["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]})

    def no_redis(objs: list[v.Obj]) -> None:
        np = _named(objs, "NetworkPolicy", "-batch-egress")
        np["spec"]["egress"] = [r for r in np["spec"]["egress"] if "redis" not in str(r)]

    def unlabelled(job: dict[str, Any]) -> None:
        labels = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["metadata"]["labels"]
        del labels["feast-kserve.io/redis-client"]

    got = b.check_batch_network(b.mutated(kuberay, open_egress), kuberay=True)
    assert any("0.0.0.0/0" in p for p in got), got
    got = b.check_batch_network(b.mutated(kuberay, no_redis), kuberay=True)
    assert any("does not reach" in p and "redis" in p for p in got), got
    got = b.check_batch_network(b.mutated(kuberay, _edit_job(unlabelled)), kuberay=True)
    assert any("Redis does not admit" in p and "head" in p for p in got), got


def test_network_check_flags_ingress_from_outside_the_job(cronjob: list[v.Obj]) -> None:
    def open_ingress(objs: list[v.Obj]) -> None:
        _named(objs, "NetworkPolicy", "-batch")["spec"]["ingress"] = [
            {"from": [{"namespaceSelector": {"matchLabels": {"x": "y"}}}]}
        ]

    got = b.check_batch_network(b.mutated(cronjob, open_ingress), kuberay=False)
    assert any("batch pods admit" in p for p in got), got


def test_batch_script_is_the_same_in_helm_and_kustomize() -> None:
    helm_copy = v.REPO / "helm" / "inference-service" / "files" / "batch.sh"
    kustomize_copy = v.REPO / "manifests" / "overlays" / "batch" / "batch.sh"
    assert helm_copy.read_bytes() == kustomize_copy.read_bytes(), (
        "batch.sh differs between helm/ and manifests/: edit one, copy it to the other"
    )
    v.run(["sh", "-n", str(helm_copy)])
