"""Helm charts: lint, render, validate every chart x values file; schema and contract checks.

Runs offline: the charts are copied to a temporary directory, the umbrella's `file://`
dependencies are rebuilt there from Chart.lock with `helm dependency build`, and Helm's
config/cache/data dirs point at empty temporary directories (no repositories, no network).
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import shutil
import tarfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy import validation as v
from tests.deploy.charts import (
    CHARTS,
    HELM_SRC,
    MINIMAL,
    RELEASE,
    REQUIRED_VALUES,
    SUBCHART_KEYS,
    UMBRELLA,
    Helm,
)

pytestmark = pytest.mark.unit

# Values without a default: the schema names them when they are missing.
REQUIRED_PATHS = {
    "feast-feature-server": ["global/imageRegistry", "global/imageTag"],
    "inference-service": ["global/imageRegistry", "global/imageTag", "predictor/storageUri"],
    UMBRELLA: ["global/imageRegistry", "global/imageTag"],
}


def _values_files(chart: str) -> list[str | None]:
    files: list[str | None] = sorted(p.name for p in (HELM_SRC / chart / "ci").glob("*.yaml"))
    return files if chart in REQUIRED_VALUES else [None, *files]


CASES = [(c, f) for c in CHARTS for f in _values_files(c)]
CASE_IDS = [f"{c}:{f or 'default'}" for c, f in CASES]


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    root = tmp_path_factory.mktemp("helm")
    # Never reuse packaged dependencies from the work tree: rebuild them from Chart.lock.
    shutil.copytree(HELM_SRC, root / "helm", ignore=shutil.ignore_patterns("charts", "*.tgz"))
    h = Helm(root)
    h.run("dependency", "build", str(h.charts / UMBRELLA))
    return h


# --------------------------------------------------------------------------- structure


def test_every_chart_dir_is_tested() -> None:
    found = {p.parent.name for p in HELM_SRC.glob("*/Chart.yaml")}
    assert found == set(CHARTS), f"charts on disk {sorted(found)} != tested {CHARTS}"


@pytest.mark.parametrize("chart", CHARTS)
def test_chart_metadata_and_files(chart: str) -> None:
    d = HELM_SRC / chart
    meta = yaml.safe_load((d / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2"
    assert re.fullmatch(r"\d+\.\d+\.\d+", meta["version"]), meta["version"]
    assert meta.get("appVersion"), "appVersion missing"
    assert meta.get("kubeVersion", "").startswith(">=1.29"), meta.get("kubeVersion")
    for required in ("values.yaml", "values.schema.json", "templates/NOTES.txt", ".helmignore"):
        assert (d / required).is_file(), f"{chart}/{required} missing"
    schema = json.loads((d / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema.get("additionalProperties") is False, (
        "top-level values must be closed (typos fail)"
    )
    # The defaults satisfy the schema (Helm checks this too; here with a second validator),
    # except the required values, which have no default on purpose.
    defaults = yaml.safe_load((d / "values.yaml").read_text())
    errors = sorted(
        "/".join(map(str, e.path)) for e in jsonschema.Draft7Validator(schema).iter_errors(defaults)
    )
    assert errors == sorted(REQUIRED_PATHS.get(chart, [])), errors


@pytest.mark.parametrize("chart", CHARTS)
def test_values_yaml_is_documented_in_place(chart: str) -> None:
    """Every top-level key of values.yaml has a comment directly above it."""
    lines = (HELM_SRC / chart / "values.yaml").read_text().splitlines()
    undocumented = []
    for i, line in enumerate(lines):
        m = re.match(r"^([A-Za-z][\w-]*):", line)
        if not m:
            continue
        prev = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        if not prev.lstrip().startswith("#"):
            undocumented.append(m.group(1))
    assert not undocumented, f"{chart}/values.yaml keys without a comment: {undocumented}"


def test_umbrella_uses_local_file_dependencies_and_lock_is_in_sync() -> None:
    meta = yaml.safe_load((HELM_SRC / UMBRELLA / "Chart.yaml").read_text())
    lock = yaml.safe_load((HELM_SRC / UMBRELLA / "Chart.lock").read_text())
    deps = {(d["name"], d["version"], d["repository"]) for d in meta["dependencies"]}
    assert {d[0] for d in deps} == set(CHARTS) - {UMBRELLA}
    for name, version, repo in deps:
        assert repo == f"file://../{name}", f"{name}: {repo} is not a local file:// dependency"
        sub = yaml.safe_load((HELM_SRC / name / "Chart.yaml").read_text())
        assert sub["version"] == version, (
            f"{name}: Chart.yaml says {version}, chart is {sub['version']}"
        )
    assert {(d["name"], d["version"], d["repository"]) for d in lock["dependencies"]} == deps
    aliases = {d["name"]: d.get("alias", d["name"]) for d in meta["dependencies"]}
    assert aliases == SUBCHART_KEYS | {"redis": "redis"}
    assert not (HELM_SRC / UMBRELLA / "charts").exists() or (
        HELM_SRC / UMBRELLA / ".gitignore"
    ).read_text().strip().endswith("charts/"), "built dependencies must stay out of git"


def test_dependency_build_recreates_subcharts_offline(helm: Helm) -> None:
    built = sorted(p.name for p in (helm.charts / UMBRELLA / "charts").glob("*.tgz"))
    assert built == sorted(f"{c}-{_chart(c)['version']}.tgz" for c in CHARTS if c != UMBRELLA)


def _chart(chart: str) -> dict[str, Any]:
    return yaml.safe_load((HELM_SRC / chart / "Chart.yaml").read_text())


# --------------------------------------------------------------------------- lint + render


@pytest.mark.parametrize(("chart", "values"), CASES, ids=CASE_IDS)
def test_helm_lint_strict(helm: Helm, chart: str, values: str | None) -> None:
    # --with-subcharts lints the sub-charts with *their* defaults; with a values file it
    # would feed the umbrella's values to them, so those cases lint the umbrella only
    # (each sub-chart's own ci/*.yaml cases lint it with values).
    extra: list[str] = []
    proc = helm.run(
        "lint",
        "--strict",
        str(helm.charts / chart),
        "--namespace",
        v.NAMESPACE,
        *helm.values_args(chart, values),
        *extra,
    )
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout, proc.stdout


@pytest.mark.parametrize(("chart", "values"), CASES, ids=CASE_IDS)
def test_rendered_objects_match_kubernetes_and_kserve_schemas(
    helm: Helm, chart: str, values: str | None
) -> None:
    objs = helm.render(chart, values)
    assert objs, "nothing rendered"
    problems = [p for o in objs for p in v.schema_errors(o)]
    problems += v.check_no_namespace_scoped_surprises(objs, allow_namespace_object=False)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("chart", "values"), CASES, ids=CASE_IDS)
def test_rendered_objects_meet_stack_invariants(helm: Helm, chart: str, values: str | None) -> None:
    objs = helm.render(chart, values)
    if chart == UMBRELLA:
        external_redis = bool(values and "external-redis" in values)
        ext = ["PersistentVolumeClaim/click-model-models"] if values else []
        if external_redis:
            ext.append("Secret/" + _global(helm, values)["redis"]["existingSecret"])
        problems = v.check_stack(objs, external=ext, redis_bundled=not external_redis)
    else:  # a sub-chart alone: its own objects must be sound; cross-chart refs are external
        problems = v.check_containers(objs) + v.check_services(objs)
        if chart == "inference-service":
            vals = (
                yaml.safe_load((helm.charts / chart / "ci" / values).read_text()) if values else {}
            )
            problems += v.check_kserve(objs, metrics=vals.get("metrics", {}).get("enabled", True))
            problems += v.check_knative_compatible(objs)
            if vals.get("networkPolicy", {}).get("enabled", True):
                problems += v.check_network_policies(objs, redis_bundled=False)
                serverless = v.deployment_mode(objs) in v.SERVERLESS_MODES
                problems += v.check_egress_policies(objs, serverless=serverless)
            else:
                assert not [o for o in objs if o["kind"] == "NetworkPolicy"]
    assert not problems, "\n".join(problems)


def _global(helm: Helm, values: str | None) -> dict[str, Any]:
    data = yaml.safe_load((helm.charts / UMBRELLA / "ci" / values).read_text()) if values else {}
    return data.get("global", {})


def _isvc(objs: list[v.Obj]) -> v.Obj:
    """The InferenceService of the release (with the transformer, when predictor-only ones of
    an ensemble or a bandit are rendered too)."""
    return v._isvc(objs)


# --------------------------------------------------------------------------- variants


def test_default_install_is_serverless_with_knative_autoscaling(helm: Helm) -> None:
    objs = helm.render(UMBRELLA, MINIMAL)
    isvc = _isvc(objs)
    assert v.deployment_mode(objs) == "Knative"
    for comp in ("predictor", "transformer"):
        ann = isvc["spec"][comp]["annotations"]
        assert ann["autoscaling.knative.dev/metric"] == "concurrency"
        assert int(ann["autoscaling.knative.dev/target"]) > 0
        assert isvc["spec"][comp]["minReplicas"] == 1
    assert isvc["metadata"]["annotations"]["serving.kserve.io/enable-prometheus-scraping"] == "true"
    assert not [
        o
        for o in objs
        if o["kind"] == "PodDisruptionBudget" and "click-model" in o["metadata"]["name"]
    ]
    assert isvc["metadata"]["name"] == f"{RELEASE}-click-model", "derived from the release"


def test_standard_variant_uses_hpa_pdbs_and_direct_metrics(helm: Helm) -> None:
    objs = helm.render(UMBRELLA, "standard-values.yaml")
    isvc = _isvc(objs)
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] in v.STANDARD_MODES
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "hpa"
    name = isvc["metadata"]["name"]
    pdbs = {o["metadata"]["name"] for o in objs if o["kind"] == "PodDisruptionBudget"}
    assert {f"{name}-predictor", f"{name}-transformer"} <= pdbs
    for comp in ("predictor", "transformer"):
        spec = isvc["spec"][comp]
        assert (spec["scaleMetric"], spec["scaleTarget"], spec["minReplicas"]) == ("cpu", 70, 2)
        assert spec["deploymentStrategy"]["rollingUpdate"]["maxUnavailable"] == 0
    sa = next(
        o
        for o in objs
        if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == f"{name}-predictor"
    )
    assert "eks.amazonaws.com/role-arn" in sa["metadata"]["annotations"]
    assert isvc["spec"]["predictor"]["model"]["storageUri"].startswith("s3://")


def test_canary_variant_sends_a_share_to_the_second_model_version(helm: Helm) -> None:
    stable = _isvc(helm.render(UMBRELLA, "serverless-values.yaml"))
    objs = helm.render(UMBRELLA, "canary-values.yaml")
    canary = _isvc(objs)
    assert v.deployment_mode(objs) in v.SERVERLESS_MODES
    pred = canary["spec"]["predictor"]
    assert pred["canaryTrafficPercent"] == 10
    assert pred["model"]["storageUri"] == "pvc://click-model-models/xgboost"
    assert stable["spec"]["predictor"]["model"]["storageUri"] == "pvc://click-model-models/sklearn"
    assert pred["model"]["runtime"] == stable["spec"]["predictor"]["model"]["runtime"]
    assert canary["metadata"]["annotations"]["serving.kserve.io/enable-tag-routing"] == "true"
    assert "canaryTrafficPercent" not in canary["spec"]["transformer"], (
        "only the predictor is canaried"
    )


def test_external_redis_variant_has_no_bundled_redis(helm: Helm) -> None:
    objs = helm.render(UMBRELLA, "external-redis-values.yaml")
    g = _global(helm, "external-redis-values.yaml")["redis"]
    assert not [
        o
        for o in objs
        if "redis" in o["metadata"]["name"]
        and o["kind"] in ("StatefulSet", "Secret", "Service", "ConfigMap")
    ], "bundled Redis still rendered"
    conns = set()
    for src in v.pod_sources(objs):
        for c in src.spec.get("containers") or []:
            for e in c.get("env") or []:
                if e["name"] == "REDIS_CONNECTION_STRING":
                    conns.add(e["value"])
                if e["name"] == "REDIS_PASSWORD":
                    assert e["valueFrom"]["secretKeyRef"]["name"] == g["existingSecret"], src.where
    assert conns == {f"{g['host']}:{g['port']},password=$(REDIS_PASSWORD),ssl=true"}


def test_kind_values_match_the_kind_e2e_workflow(helm: Helm) -> None:
    """scripts/kind/deploy.sh + tests/e2e rely on these (docs/kind-e2e.md)."""
    objs = helm.render(UMBRELLA, "serverless-values.yaml")
    isvc = _isvc(objs)
    assert isvc["metadata"]["name"] == v.ISVC_NAME
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "pvc://click-model-models/sklearn"
    for comp in ("predictor", "transformer"):
        assert isvc["spec"][comp]["minReplicas"] == 0, f"{comp}: the scale-from-zero test needs 0"
    images = {
        c["image"]
        for s in v.pod_sources(objs)
        for c in s.spec.get("containers") or []
        if c.get("image")
    }
    ours = {i for i in images if "feast-kserve-" in i}
    assert ours == {
        "kind.local/feast-kserve-transformer:dev",
        "kind.local/feast-kserve-predictor:dev",
    }
    # Knative must not try to resolve the kind-loaded images' tags in a registry.
    skipped = v.kind_registries_skipping_tag_resolving()
    assert {v.knative_registry(i) for i in images if "feast-kserve-" in i} <= skipped
    assert not [
        o
        for o in objs
        if o["kind"] in ("Namespace", "PersistentVolumeClaim")
        and o["metadata"]["name"] in (v.NAMESPACE, "click-model-models")
    ]


# --------------------------------------------------------------------------- schema constraints


BAD_VALUES = [
    (["--set", "inferenceService.deploymentMode=Serverfull"], "deploymentMode"),
    (["--set", "inferenceService.predictor.image.tag=latest"], "/predictor/image/tag"),
    (["--set", "inferenceService.predictor.storageUri=/mnt/models"], "/predictor/storageUri"),
    (["--set", "inferenceService.canary.enabled=true"], "/canary/storageUri"),
    (
        [
            "--set",
            "inferenceService.canary.enabled=true",
            "--set",
            "inferenceService.canary.storageUri=pvc://click-model-models/xgboost",
            "--set",
            "inferenceService.deploymentMode=Standard",
        ],
        "/deploymentMode",
    ),
    (["--set", "inferenceService.canary.trafficPercent=101"], "/canary/trafficPercent"),
    (
        [
            "--set",
            "inferenceService.deploymentMode=Standard",
            "--set",
            "inferenceService.transformer.minReplicas=0",
        ],
        "/transformer/minReplicas",
    ),
    (["--set", "inferenceService.predictor.knative.metric=cpu"], "/predictor/knative/metric"),
    (["--set", "inferenceService.predictor.hpa.metric=gpu"], "/predictor/hpa/metric"),
    (["--set", "inferenceService.predictor.minReplicas=-1"], "/predictor/minReplicas"),
    (["--set", "inferenceService.name=Click_Model"], "/name"),
    (["--set", "inferenceService.containerSecurityContext.runAsNonRoot=false"], "runAsNonRoot"),
    (["--set", "inferenceService.storageUri=pvc://typo"], "additional properties"),
    (["--set", "inferenceService.transformer.resources.requests=null"], "requests"),
    (["--set", "redis.enabled=false"], "/global/redis"),
    (["--set", "redis.auth.password=short"], "/auth/password"),
    (["--set", "redis.config.appendfsync=sometimes"], "/config/appendfsync"),
    (["--set", "redis.persistence.size=lots"], "/persistence/size"),
    (["--set", "feast.featureServer.replicas=0"], "/featureServer/replicas"),
    (["--set", "feast.materialize.schedule=hourly"], "/materialize/schedule"),
    # Cross-chart addresses have one source, the globals: sub-chart copies are refused.
    (["--set", "feast.registryServer.port=7000"], "additional properties 'port' not allowed"),
    (["--set", "feast.fullnameOverride=ff"], "additional properties 'fullnameOverride'"),
    (["--set", "redis.fullnameOverride=rr"], "additional properties 'fullnameOverride'"),
    (["--set", "redis.service.port=6380"], "additional properties 'service' not allowed"),
    (["--set", "redis.auth.existingSecret=s"], "additional properties 'existingSecret'"),
    (["--set", "global.redis.host=redis.example.com"], "/global/redis/host"),
    (["--set", "global.feast.registryPort=70000"], "/global/feast/registryPort"),
    # global.* is closed in every chart: a typo is an error, not a silently ignored key.
    (["--set", "global.imageRegistyr=x"], "additional properties 'imageRegistyr'"),
    (["--set", "global.feast.port=7000"], "additional properties 'port'"),
    # Anchored: a name with a valid suffix is not a valid name.
    (["--set", "global.redis.existingSecret=Bad_Secret-x"], "/global/redis/existingSecret"),
    # KServe <= 0.15's mode names: KServe >= 0.17 rejects updates of ISVCs annotated with them.
    (["--set", "inferenceService.deploymentMode=Serverless"], "/deploymentMode"),
    (["--set", "inferenceService.deploymentMode=RawDeployment"], "/deploymentMode"),
    (
        [
            "--set",
            "inferenceService.collocated.enabled=true",
            "--set",
            "inferenceService.canary.enabled=true",
            "--set",
            "inferenceService.canary.storageUri=pvc://click-model-models/xgboost",
        ],
        "/canary/enabled",
    ),
    (
        ["--set", "inferenceService.transformer.predictorWaitSeconds=400"],
        "/transformer/predictorWaitSeconds",
    ),
    (["--set", "global.imageTag=latest"], "imageTag"),
    # Rules the schema cannot express are enforced by the template.
    (["--set", "inferenceService.predictor.minReplicas=5"], "maxReplicas (4) must be >="),
    (
        [
            "--set",
            "inferenceService.canary.enabled=true",
            "--set",
            "inferenceService.canary.storageUri=s3://ml-models/click-model/sklearn",
        ],
        "must differ",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES])
def test_invalid_values_are_rejected(helm: Helm, args: list[str], message: str) -> None:
    stderr = helm.refused(UMBRELLA, MINIMAL, *args)
    assert message in stderr, stderr


# ----------------------------------------------------------------- notes, test hook, secrets


def _notes(helm: Helm, chart: str, values: str | None, *extra: str) -> str:
    """NOTES.txt as `helm install` prints it (Helm 4 renders NOTES on install/upgrade only,
    not in `helm template`; --dry-run=client needs no cluster)."""
    proc = helm.run(
        "install",
        RELEASE,
        str(helm.charts / chart),
        "--namespace",
        v.NAMESPACE,
        "--dry-run=client",
        *helm.values_args(chart, values),
        *extra,
    )
    assert "NOTES:" in proc.stdout, proc.stdout[-2000:]
    return proc.stdout.split("NOTES:", 1)[1]


def _umbrella_values(values: str) -> dict[str, Any]:
    return yaml.safe_load((HELM_SRC / UMBRELLA / "ci" / values).read_text()) or {}


NOTES_CASES = [(f, ()) for f in _values_files(UMBRELLA) if f] + [
    (MINIMAL, ("--set", "global.feast.fullnameOverride=features")),
    (MINIMAL, ("--set", "feast.featureServer.enabled=false")),
    (MINIMAL, ("--set", "inferenceService.clusterLocal=true")),
    (
        MINIMAL,
        ("--set", "feast.bootstrap.enabled=false", "--set", "global.feast.registryPort=7000"),
    ),
]


@pytest.mark.parametrize(
    ("values", "extra"), NOTES_CASES, ids=[f"{f}{' '.join(e)}" for f, e in NOTES_CASES]
)
def test_notes_match_the_mode_and_switches(helm: Helm, values: str, extra: tuple[str, ...]) -> None:
    """Every address NOTES prints is an object the same render creates; the text follows the
    mode (gateway), the switches (feature server, bootstrap, canary, collocated)."""
    notes = _notes(helm, UMBRELLA, values, *extra)
    objs = helm.render(UMBRELLA, values, *extra)
    isvc = _isvc(objs)
    name, ns = isvc["metadata"]["name"], v.NAMESPACE
    services = {o["metadata"]["name"] for o in objs if o["kind"] == "Service"}
    collocated = "transformer" not in isvc["spec"]
    entry = f"{name}-predictor" if collocated else f"{name}-transformer"
    for needle in (
        f"inferenceservice/{name} --timeout=10m",
        f"URL=http://{entry}.{ns}.svc.cluster.local",
        f'curl -s "$URL/v2/models/{name}/infer"',
        '"name": "user_id", "datatype": "INT64"',
        f"helm test {RELEASE} -n {ns}",
    ):
        assert needle in notes, f"NOTES lack {needle!r}:\n{notes}"
    # Feast addresses: exactly the rendered Services.
    (cm,) = [
        o
        for o in objs
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == f"{name}-feature-store"
    ]
    registry = yaml.safe_load(cm["data"]["feature_store.yaml"])["registry"]["path"]
    assert f"Feast registry: {registry} " in notes
    assert registry.split(":")[0] in services
    fs = [s for s in services if s.endswith("-feature-server")]
    if fs:
        assert f"Feature server: http://{fs[0]}.{ns}.svc/" in notes
    else:
        assert "Feature server" not in notes, "feature server disabled but NOTES print its URL"
    jobs = [o["metadata"]["name"] for o in objs if o["kind"] == "Job"]
    if jobs:
        assert f"logs job/{jobs[0]}" in notes and "--timeout 15m" in notes
    else:
        assert "bootstrap Job is disabled" in notes
    # How to get in from outside: the gateway of the mode, or nothing when cluster-local.
    mode = v.deployment_mode(objs)
    if (isvc["metadata"].get("labels") or {}).get("networking.kserve.io/visibility"):
        assert "External access: none" in notes
        assert "Through the ingress gateway" not in notes
    elif mode == "Knative":
        assert "kubectl -n kourier-system get svc kourier" in notes
        assert '${HOST:+-H "Host: $HOST"}' in notes
    else:
        assert "Through the ingress gateway (Standard mode)" in notes
    pred = isvc["spec"]["predictor"]
    if "canaryTrafficPercent" in pred:
        assert f"Canary: {pred['canaryTrafficPercent']}% of the predictor traffic" in notes
        assert (
            f"--set inferenceService.predictor.storageUri={pred['model']['storageUri']} "
            "--set inferenceService.canary.enabled=false" in notes
        )
    else:
        assert "Canary" not in notes
    assert ("collocated" in notes) == collocated


@pytest.mark.parametrize("values", [MINIMAL, "standard-values.yaml", "collocated-values.yaml"])
def test_helm_test_hook_posts_one_v2_inference(helm: Helm, values: str) -> None:
    objs = helm.render(UMBRELLA, values)
    (pod,) = [o for o in objs if o["kind"] == "Pod"]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    name = _isvc(objs)["metadata"]["name"]
    entry = "predictor" if "collocated" in values else "transformer"
    c = pod["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["INFER_URL"] == (
        f"http://{name}-{entry}.feast-inference.svc.cluster.local/v2/models/{name}/infer"
    )
    script = c["args"][0]
    compile(script, "helm-test", "exec")  # valid Python
    for name in ("user_id", "session_duration_s", "hour_of_day", *sorted(v.CONTRACT_OUTPUTS)):
        assert f'"{name}"' in script, name
    # The transformer's NetworkPolicy admits the test pod in every mode.
    assert not v.check_network_policies(objs)


def test_generated_redis_password_is_random_and_alphanumeric(helm: Helm) -> None:
    def password() -> str:
        objs = helm.render(UMBRELLA, MINIMAL, "--set", "global.redis.existingSecret=")
        (secret,) = [o for o in objs if o["kind"] == "Secret" and "redis" in o["metadata"]["name"]]
        return base64.b64decode(secret["data"]["redis-password"]).decode()

    first, second = password(), password()
    assert re.fullmatch(r"[A-Za-z0-9]{32}", first), first
    assert first != second, "the generated password must not be a constant"
    values = (HELM_SRC / "redis" / "values.yaml").read_text()
    assert 'password: ""' in values, "no password may be committed in values.yaml"


def test_redis_conf_is_the_same_in_helm_and_kustomize(helm: Helm) -> None:
    def directives(text: str) -> list[str]:
        return [
            ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")
        ]

    (cm,) = [o for o in helm.render("redis") if o["kind"] == "ConfigMap"]
    kustomize_conf = (v.REPO / "manifests" / "base" / "redis" / "redis.conf").read_text()
    assert directives(cm["data"]["redis.conf"]) == directives(kustomize_conf)


def test_bootstrap_script_is_the_same_in_helm_and_kustomize() -> None:
    helm_copy = HELM_SRC / "feast-feature-server" / "files" / "feast-bootstrap.sh"
    kustomize_copy = v.REPO / "manifests" / "base" / "feast" / "feast-bootstrap.sh"
    assert helm_copy.read_bytes() == kustomize_copy.read_bytes(), (
        "feast-bootstrap.sh differs between helm/ and manifests/: edit one, copy it to the other"
    )
    v.run(["sh", "-n", str(helm_copy)])


# ------------------------------------------------------- required values, wiring, names


def test_required_values_are_refused_with_their_names(helm: Helm) -> None:
    """No default image can be pulled anywhere and there is no default model store: an
    install without them fails before anything is applied, naming each missing value."""
    proc = helm.run(
        "template", RELEASE, str(helm.charts / UMBRELLA), "-n", v.NAMESPACE, expect_ok=False
    )
    assert proc.returncode != 0
    for path in ("/global/imageRegistry", "/global/imageTag", "/predictor/storageUri"):
        assert f"at '{path}'" in proc.stderr, proc.stderr
    lint = helm.run("lint", "--strict", str(helm.charts / UMBRELLA), expect_ok=False)
    assert lint.returncode != 0 and "/global/imageRegistry" in lint.stdout + lint.stderr
    # One missing value is named alone: the others being set does not hide it.
    only_tag = helm.run(
        "template",
        RELEASE,
        str(helm.charts / UMBRELLA),
        *helm.values_args(UMBRELLA, MINIMAL),
        "--set",
        "global.imageTag=",
        expect_ok=False,
    )
    assert "/global/imageTag" in only_tag.stderr
    assert "/global/imageRegistry" not in only_tag.stderr
    # The sub-charts alone refuse the same (their templates also `required` them).
    for chart in ("feast-feature-server", "inference-service"):
        alone = helm.run("template", RELEASE, str(helm.charts / chart), expect_ok=False)
        assert "/global/imageRegistry" in alone.stderr, alone.stderr


def _env(src: v.PodSource, name: str) -> str | None:
    for c in src.spec.get("containers") or []:
        for e in c.get("env") or []:
            if e["name"] == name:
                return e.get("value")
    return None


@pytest.mark.parametrize("collocated", [False, True])
def test_cross_chart_addresses_follow_the_values_that_set_them(
    helm: Helm, collocated: bool
) -> None:
    """Renaming the Feast objects, moving the registry and Redis ports: every client follows."""
    overrides = [
        "--set",
        "global.feast.fullnameOverride=features",
        "--set",
        "global.feast.registryPort=7070",
        "--set",
        "global.redis.port=6390",
        "--set",
        f"inferenceService.collocated.enabled={str(collocated).lower()}",
    ]
    objs = helm.render(UMBRELLA, MINIMAL, *overrides)
    svc = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Service"}
    assert svc["features-registry"]["spec"]["ports"][0]["port"] == 7070
    assert svc[f"{RELEASE}-redis"]["spec"]["ports"][0]["port"] == 6390
    assert "features-feature-server" in svc
    configs = v.feature_store_configs(objs)
    name = _isvc(objs)["metadata"]["name"]
    # The transformer's feature_store.yaml and the Feast chart's: the same, rendered, registry.
    assert configs[f"{name}-feature-store"]["registry"]["path"] == "features-registry:7070"
    assert configs["features-feature-store"]["registry"]["path"] == "features-registry:7070"
    clients = [s for s in v.pod_sources(objs) if _env(s, "REDIS_CONNECTION_STRING")]
    assert len(clients) >= 4, [c.where for c in clients]  # transformer, feature server, jobs
    for src in clients:
        assert _env(src, "REDIS_CONNECTION_STRING") == (
            f"{RELEASE}-redis:6390,password=$(REDIS_PASSWORD)"
        ), src.where
    jobs = [s for s in v.pod_sources(objs) if _env(s, "FEAST_WAIT_FOR")]
    assert jobs and all(
        _env(j, "FEAST_WAIT_FOR") == f"features-registry:7070 {RELEASE}-redis:6390" for j in jobs
    )
    # The registry's NetworkPolicy opens the new port to the transformer; the whole stack holds.
    assert not v.check_stack(objs), v.check_stack(objs)
    # A render with the defaults differs exactly there: the test can fail.
    default = v.feature_store_configs(helm.render(UMBRELLA, MINIMAL))
    assert default[f"{name}-feature-store"]["registry"]["path"] == f"{RELEASE}-feast-registry:6570"


def test_an_explicit_registry_address_wins(helm: Helm) -> None:
    objs = helm.render(
        UMBRELLA, MINIMAL, "--set", "inferenceService.feast.registry=feast.shared:6570"
    )
    name = _isvc(objs)["metadata"]["name"]
    assert v.feature_store_configs(objs)[f"{name}-feature-store"]["registry"]["path"] == (
        "feast.shared:6570"
    )


def _render_release(helm: Helm, release: str, *extra: str) -> list[v.Obj]:
    out = helm.run(
        "template",
        release,
        str(helm.charts / UMBRELLA),
        "--namespace",
        v.NAMESPACE,
        *helm.values_args(UMBRELLA, MINIMAL),
        *extra,
    ).stdout
    return v.load_docs(out)


def test_two_releases_in_one_namespace_do_not_collide(helm: Helm) -> None:
    first = _render_release(helm, "alpha")
    second = _render_release(helm, "beta")

    def names(objs: list[v.Obj]) -> set[tuple[str, str]]:
        return {(o["kind"], o["metadata"]["name"]) for o in objs}

    assert not names(first) & names(second), sorted(names(first) & names(second))
    for objs, release in ((first, "alpha"), (second, "beta")):
        isvc = _isvc(objs)
        assert isvc["metadata"]["name"] == f"{release}-click-model"
        runtime = isvc["spec"]["predictor"]["model"]["runtime"]
        assert runtime == f"{release}-click-model-runtime"
        assert ("ServingRuntime", runtime) in names(objs)
        # Selectors of one release never pick the other release's pods.
        other = second if objs is first else first
        for pol in (o for o in objs if o["kind"] in ("NetworkPolicy", "PodDisruptionBudget")):
            sel = pol["spec"].get("podSelector") or pol["spec"].get("selector") or {}
            for src in v.pod_sources(other):
                assert not (sel.get("matchLabels") and v._matches(sel, src.labels)), (
                    f"{v.ident(pol)} of {release} selects {src.where}"
                )
    # A release whose name already says click-model is not repeated.
    (isvc,) = [o for o in _render_release(helm, "click-model") if o["kind"] == "InferenceService"]
    assert isvc["metadata"]["name"] == "click-model"


@pytest.mark.parametrize(("chart", "values"), CASES, ids=CASE_IDS)
def test_every_object_names_its_namespace(helm: Helm, chart: str, values: str | None) -> None:
    """`kubectl apply -f` of the rendered output lands in the release namespace, whatever the
    current context's namespace is."""
    missing = [
        v.ident(o)
        for o in helm.render(chart, values)
        if o["metadata"].get("namespace") != v.NAMESPACE
    ]
    assert not missing, missing


def test_collocated_mode_has_one_component_and_the_model_from_the_same_store(helm: Helm) -> None:
    objs = helm.render(UMBRELLA, "collocated-values.yaml")
    isvc = _isvc(objs)
    assert "transformer" not in isvc["spec"]
    assert not [o for o in objs if o["kind"] == "ServingRuntime"], "no predictor runtime"
    (c,) = isvc["spec"]["predictor"]["containers"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert (
        env["STORAGE_URI"]
        == _umbrella_values("collocated-values.yaml")["inferenceService"]["predictor"]["storageUri"]
    )
    assert c["image"] == "registry.example.com/ml/feast-kserve-collocated:0.2.0"
    assert "TRANSFORMER_PREDICTOR_TIMEOUT_S" not in env
    assert not v.check_stack(objs)
    # The check sees a broken collocated spec (it can fail).
    broken = json.loads(json.dumps(objs))
    (bad,) = [o for o in broken if o["kind"] == "InferenceService"]
    bad["spec"]["predictor"]["containers"][0]["env"] = []
    assert any("STORAGE_URI" in p for p in v.check_kserve(broken))
    # The same values without the switch: predictor + transformer, the model on the predictor.
    split = _isvc(
        helm.render(
            UMBRELLA, "collocated-values.yaml", "--set", "inferenceService.collocated.enabled=false"
        )
    )
    assert split["spec"]["predictor"]["model"]["storageUri"] == env["STORAGE_URI"]
    assert "transformer" in split["spec"]


# ----------------------------------------------------------- canary through helm upgrade


def _readme_upgrade_calls() -> list[list[str]]:
    """The `helm upgrade` calls of the umbrella README's canary section, as argument lists."""
    text = (HELM_SRC / UMBRELLA / "README.md").read_text()
    section = text.split("## Canary rollouts with `helm upgrade`", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```sh\n(.*?)```", section, re.S)
    commands = [
        shlex.split(c)
        for c in block.replace("\\\n", " ").splitlines()
        if c.strip() and not c.lstrip().startswith("#")
    ]
    assert commands and all(c[:2] == ["helm", "upgrade"] for c in commands), commands
    return commands


def test_readme_canary_promote_rollback_are_helm_upgrades_that_render(helm: Helm) -> None:
    """Replays the README's calls on top of the kind release (serverless-values.yaml) as Helm
    would with --reset-then-reuse-values (the release's values + the new --set's) and checks
    the InferenceService each step renders."""
    calls = _readme_upgrade_calls()
    for call in calls:
        assert "--reset-then-reuse-values" in call and "-n" in call, call
        assert call[2:4] == [RELEASE, "helm/feast-kserve"], call
    sets: list[str] = []
    steps = []
    for call in calls:
        sets += [a for i, a in enumerate(call) if i and call[i - 1] == "--set"]
        args = [x for s in sets for x in ("--set", s)]
        steps.append(_isvc(helm.render(UMBRELLA, "serverless-values.yaml", *args))["spec"])
    canary, promote, rollback, drop = steps
    assert canary["predictor"]["canaryTrafficPercent"] == 20
    assert canary["predictor"]["model"]["storageUri"] == "pvc://click-model-models/xgboost"
    assert "canaryTrafficPercent" not in promote["predictor"]
    assert promote["predictor"]["model"]["storageUri"] == "pvc://click-model-models/xgboost"
    # The README's rollback starts from the canary, not from the promotion: replay it so.
    sets = [a for c in (calls[0], calls[2]) for i, a in enumerate(c) if i and c[i - 1] == "--set"]
    back = _isvc(
        helm.render(UMBRELLA, "serverless-values.yaml", *[x for s in sets for x in ("--set", s)])
    )["spec"]["predictor"]
    assert back["canaryTrafficPercent"] == 0
    sets += [a for i, a in enumerate(calls[3]) if i and calls[3][i - 1] == "--set"]
    done = _isvc(
        helm.render(UMBRELLA, "serverless-values.yaml", *[x for s in sets for x in ("--set", s)])
    )["spec"]["predictor"]
    assert "canaryTrafficPercent" not in done
    assert done["model"]["storageUri"] == "pvc://click-model-models/sklearn"
    assert rollback and drop  # rendered in sequence too


# ------------------------------------------------------------ docs, versions, changelog


def test_chart_readmes_are_generated_and_current(tmp_path: Path) -> None:
    from devtools import helm_docs

    assert helm_docs.main(["--check"]) == 0, "run `make helm-docs`"
    for chart in CHARTS:
        assert helm_docs.BEGIN in (HELM_SRC / chart / "README.md").read_text()
    # The check fails on an undocumented value and on a stale table.
    copy = tmp_path / "helm"
    shutil.copytree(HELM_SRC, copy, ignore=shutil.ignore_patterns("charts", "*.tgz"))
    values = copy / "redis" / "values.yaml"
    values.write_text(values.read_text() + "\nundocumentedKnob: 1\n")
    assert helm_docs.main(["--check", "--root", str(tmp_path)]) == 1
    values.write_text(values.read_text().replace("undocumentedKnob", "# -- Documented.\nknob"))
    assert helm_docs.main(["--check", "--root", str(tmp_path)]) == 1  # README lacks the row
    assert helm_docs.main(["--root", str(tmp_path)]) == 0
    assert "| `knob` | int | `1` | Documented. |" in (copy / "redis" / "README.md").read_text()
    assert helm_docs.main(["--check", "--root", str(tmp_path)]) == 0


def test_show_readme_is_the_chart_readme(helm: Helm) -> None:
    out = helm.run("show", "readme", str(helm.charts / UMBRELLA)).stdout
    assert "## Canary rollouts with `helm upgrade`" in out and "--create-namespace" in out


def test_versions_follow_semver_and_the_changelog_names_them() -> None:
    changelog = (HELM_SRC / "CHANGELOG.md").read_text()
    for chart in CHARTS:
        version = _chart(chart)["version"]
        assert re.fullmatch(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)", version), version
        assert re.search(rf"^## {re.escape(version)}\b", changelog, re.M), (
            f"helm/CHANGELOG.md has no section for {chart} {version}"
        )
    # The umbrella pins exactly the sub-chart versions it ships (Chart.yaml and Chart.lock).
    deps = {d["name"]: d["version"] for d in _chart(UMBRELLA)["dependencies"]}
    assert deps == {c: _chart(c)["version"] for c in CHARTS if c != UMBRELLA}


def test_kserve_range_annotation_matches_the_modes_and_crds_used() -> None:
    for chart in ("inference-service", UMBRELLA):
        rng = _chart(chart)["annotations"]["feast-kserve.io/kserve-versions"]
        assert rng == ">=0.17.0", rng
    schema = json.loads((HELM_SRC / "inference-service" / "values.schema.json").read_text())
    assert schema["properties"]["deploymentMode"]["enum"] == ["Knative", "Standard"]


def test_make_helm_package_bundles_the_subcharts_and_checks_the_tag(tmp_path: Path) -> None:
    """What the release workflow publishes: every chart packaged, the umbrella with its
    sub-charts inside (an OCI install needs no `make helm-deps`)."""
    make = ["make", "-s", "-C", str(v.REPO), f"HELM={v.tool('helm')}", f"CHART_DIR={tmp_path}"]
    version = _chart(UMBRELLA)["version"]
    v.run([*make, "helm-package", f"CHART_VERSION={version}"])
    packaged = sorted(p.name for p in tmp_path.glob("*.tgz"))
    assert packaged == sorted(f"{c}-{_chart(c)['version']}.tgz" for c in CHARTS)
    with tarfile.open(tmp_path / f"{UMBRELLA}-{version}.tgz") as tar:
        names = set(tar.getnames())
    for c in CHARTS:
        if c != UMBRELLA:
            assert f"{UMBRELLA}/charts/{c}/Chart.yaml" in names, sorted(names)
    assert f"{UMBRELLA}/README.md" in names
    wrong = v.run([*make, "helm-package", "CHART_VERSION=99.0.0"], expect_ok=False)
    assert wrong.returncode != 0 and "the tag says 99.0.0" in wrong.stderr


def test_chart_readme_install_block_renders_as_written(helm: Helm) -> None:
    """The README's install commands, run offline: `make helm-deps` is the dependency build
    the fixture did (from Chart.lock); `helm upgrade --install` becomes `helm template` with
    exactly the documented flags (cluster-only ones dropped); the result validates."""
    text = (HELM_SRC / UMBRELLA / "README.md").read_text()
    section = text.split("## Install", 1)[1].split("\n## ", 1)[0]
    block = re.findall(r"```sh\n(.*?)```", section, re.S)[0]
    commands = [shlex.split(c, comments=True) for c in block.replace("\\\n", " ").splitlines()]
    commands = [c for c in commands if c]
    assert [c[:2] for c in commands] == [
        ["make", "helm-deps"],
        ["helm", "upgrade"],
        ["helm", "test"],
    ], commands
    mk = (v.REPO / "mk" / "deploy.mk").read_text()
    assert "$(HELM) dependency build $(HELM_UMBRELLA)" in mk, "make helm-deps builds the deps"
    install = commands[1]
    for flag in ("--install", "--create-namespace", "--timeout"):
        assert flag in install, f"the documented install lacks {flag}"
    args, skip = [], False
    for a in install[2:]:
        if skip:
            skip = False
        elif a in ("--install", "--create-namespace"):
            continue
        elif a == "--timeout":
            skip = True
        else:
            args.append(a)
    release, chart, *flags = args
    assert chart == "helm/feast-kserve"
    out = helm.run(
        "template", release, str(helm.charts / UMBRELLA), *flags, "--kube-version", "1.29.0"
    ).stdout
    objs = v.load_docs(out)
    assert not [p for o in objs for p in v.schema_errors(o)]
    assert not v.check_stack(objs)
    assert {o["metadata"]["namespace"] for o in objs} == {"feast-inference"}


def test_global_values_have_one_schema_in_every_chart() -> None:
    """The umbrella passes `global` to every sub-chart: each chart must accept exactly the
    same keys (closed), only requiring what it renders (the project images)."""

    def shape(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: shape(x)
                for k, x in node.items()
                if k not in ("required", "minLength", "description")
            }
        return node

    schemas = {
        c: json.loads((HELM_SRC / c / "values.schema.json").read_text())["properties"]["global"]
        for c in CHARTS
    }
    assert all(s["additionalProperties"] is False for s in schemas.values())
    first = shape(schemas[UMBRELLA])
    for chart, s in schemas.items():
        assert shape(s) == first, f"{chart}: global schema differs from the umbrella's"
    globals_yaml = {
        c: yaml.safe_load((HELM_SRC / c / "values.yaml").read_text())["global"] for c in CHARTS
    }
    assert all(g == globals_yaml[UMBRELLA] for g in globals_yaml.values()), globals_yaml


SUBCHART_NOTES = [(c, f) for c, f in CASES if c != UMBRELLA]


@pytest.mark.parametrize(
    ("chart", "values"), SUBCHART_NOTES, ids=[f"{c}:{f or 'default'}" for c, f in SUBCHART_NOTES]
)
def test_subchart_notes_name_only_rendered_objects(
    helm: Helm, chart: str, values: str | None
) -> None:
    """A sub-chart installed alone prints NOTES too: every Service / Job / InferenceService
    it names is in the same render, and a disabled feature server is not advertised."""
    notes = _notes(helm, chart, values)
    objs = helm.render(chart, values)
    names = {o["metadata"]["name"] for o in objs}
    for svc in re.findall(r"http://([a-z0-9-]+)\.feast-inference\.svc", notes):
        assert svc in names or svc.endswith(("-transformer", "-predictor")), svc
    for job in re.findall(r"logs job/([a-z0-9-]+)", notes):
        assert job in names, job
    if chart == "feast-feature-server":
        enabled = any(n.endswith("-feature-server") for n in names)
        assert ("Feature server:" in notes) == enabled
    if chart == "inference-service":
        isvc = v._isvc(objs)  # the entry (an ensemble adds a predictor-only member)
        assert f"inferenceservice/{isvc['metadata']['name']} --timeout=10m" in notes
        assert f'"$URL/v2/models/{isvc["metadata"]["name"]}/infer"' in notes
    if chart == "redis":
        (svc,) = [
            o for o in objs if o["kind"] == "Service" and "headless" not in o["metadata"]["name"]
        ]
        assert (
            f"{svc['metadata']['name']}.feast-inference.svc:{svc['spec']['ports'][0]['port']}"
            in notes
        )


# --------------------------------------------------------------------------- security


def _auth_secret_name(objs: list[v.Obj]) -> str:
    return f"{_isvc(objs)['metadata']['name']}-transformer-auth"


def _feature_component(objs: list[v.Obj]) -> v.Obj:
    """The component that serves requests: the transformer, or collocated the predictor."""
    spec = _isvc(objs)["spec"]
    return spec.get("transformer") or spec["predictor"]


@pytest.mark.parametrize("collocated", [False, True])
def test_auth_is_on_with_a_generated_secret_mounted_as_a_file(helm: Helm, collocated: bool) -> None:
    mode = ["--set", f"inferenceService.collocated.enabled={str(collocated).lower()}"]
    objs = helm.render(UMBRELLA, MINIMAL, *mode)
    name = _auth_secret_name(objs)
    assert name == f"{RELEASE}-click-model-transformer-auth"  # derived from the release
    (secret,) = [o for o in objs if o["metadata"]["name"] == name]
    assert secret["metadata"]["namespace"] == v.NAMESPACE
    data = {k: base64.b64decode(val).decode() for k, val in secret.get("data", {}).items()}
    data.update(secret.get("stringData", {}))
    infer, write = data["infer-token"], data["write-token"]
    assert re.fullmatch(r"[A-Za-z0-9]{40}", infer) and infer != write
    assert data["tokens"].split() == [f"infer:{infer}", f"write:{write}"]
    again = helm.render(UMBRELLA, MINIMAL, *mode, "--set", "inferenceService.auth.reloadSeconds=3")
    (other,) = [o for o in again if o["metadata"]["name"] == name]
    assert other["stringData"]["infer-token"] != infer, "tokens must be random per install"
    component = _feature_component(objs)
    c = component["containers"][0]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert ("STORAGE_URI" in env) == collocated  # the collocated component is the one checked
    path = env["TRANSFORMER_AUTH_TOKENS_FILE"]
    (mount,) = [m for m in c["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
    assert "subPath" not in mount, "a subPath mount is never updated: rotation would need a restart"
    (vol,) = [x for x in component["volumes"] if x["name"] == mount["name"]]
    assert vol["secret"]["secretName"] == name
    # helm test sends the infer token
    (pod,) = [o for o in objs if o["kind"] == "Pod"]
    (tok,) = [e for e in pod["spec"]["containers"][0]["env"] if e["name"] == "INFER_TOKEN"]
    assert tok["valueFrom"]["secretKeyRef"] == {"name": name, "key": "infer-token"}
    assert '"Authorization"' in pod["spec"]["containers"][0]["args"][0]


@pytest.mark.parametrize("collocated", [False, True])
def test_auth_can_use_an_existing_secret_or_be_off(helm: Helm, collocated: bool) -> None:
    mode = ["--set", f"inferenceService.collocated.enabled={str(collocated).lower()}"]
    objs = helm.render(
        UMBRELLA, MINIMAL, *mode, "--set", "inferenceService.auth.existingSecret=my-tokens"
    )
    assert not [o for o in objs if o["metadata"]["name"] == _auth_secret_name(objs)]
    (vol,) = [x for x in _feature_component(objs)["volumes"] if x["name"] == "transformer-auth"]
    assert vol["secret"]["secretName"] == "my-tokens"
    objs = helm.render(UMBRELLA, MINIMAL, *mode, "--set", "inferenceService.auth.enabled=false")
    c = _feature_component(objs)["containers"][0]
    assert not [e for e in c["env"] if e["name"].startswith("TRANSFORMER_AUTH")]
    assert not [m for m in c["volumeMounts"] if m["name"] == "transformer-auth"]
    assert not [o for o in objs if o["metadata"]["name"] == _auth_secret_name(objs)]
    (pod,) = [o for o in objs if o["kind"] == "Pod"]
    assert not [e for e in pod["spec"]["containers"][0]["env"] if e["name"] == "INFER_TOKEN"]


def test_notes_say_how_to_get_and_send_a_token(helm: Helm) -> None:
    for chart, prefix in ((UMBRELLA, "inferenceService."), ("inference-service", "")):
        notes = _notes(helm, chart, MINIMAL)
        name = _auth_secret_name(helm.render(chart, MINIMAL))
        assert f"get secret {name} -o jsonpath='{{.data.infer-token}}'" in notes, notes
        assert '-H "Authorization: Bearer $TOKEN"' in notes
        off = _notes(helm, chart, MINIMAL, "--set", f"{prefix}auth.enabled=false")
        assert "Bearer" not in off and "get secret" not in off


@pytest.mark.parametrize("values", [MINIMAL, "standard-values.yaml"])
def test_egress_check_catches_an_open_rule(helm: Helm, values: str) -> None:
    objs = helm.render(UMBRELLA, values)
    name = _isvc(objs)["metadata"]["name"]
    serverless = v.deployment_mode(objs) in v.SERVERLESS_MODES
    assert not v.check_egress_policies(objs, serverless=serverless)
    bad_rules: list[dict[str, Any]] = [
        {},  # no 'to': everything
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]},
        {"to": [{"namespaceSelector": {}}]},
        {"to": [{"podSelector": {"matchLabels": {"app": "anything-else"}}}]},
    ]
    for bad_rule in bad_rules:
        mutated = json.loads(json.dumps(objs))
        pol = next(o for o in mutated if o["metadata"]["name"] == f"{name}-transformer-egress")
        pol["spec"]["egress"].append(bad_rule)
        assert v.check_egress_policies(mutated, serverless=serverless), bad_rule
    for dropped in (f"{name}-predictor-egress", f"{RELEASE}-redis-egress"):
        without = [o for o in objs if o["metadata"]["name"] != dropped]
        assert len(without) == len(objs) - 1, dropped
        problems = v.check_egress_policies(without, serverless=serverless)
        assert any("no egress NetworkPolicy selects" in p for p in problems), dropped
    clients = next(o for o in objs if o["metadata"]["name"] == "feast-kserve-feast-clients-egress")
    mutated = json.loads(json.dumps(objs))
    pol = next(o for o in mutated if o["metadata"]["name"] == clients["metadata"]["name"])
    pol["spec"]["egress"] = pol["spec"]["egress"][:1]  # DNS only: Feast cannot reach Redis
    assert any(
        "does not reach" in p for p in v.check_egress_policies(mutated, serverless=serverless)
    )


def test_an_external_redis_must_be_named_in_the_egress_policies(helm: Helm) -> None:
    """No Redis pod to select: the policies name its address, on the port the clients use;
    without it the render fails (the default selector would silently block Redis)."""
    ext = "external-redis-values.yaml"
    objs = helm.render(UMBRELLA, ext)
    port = _global(helm, ext)["redis"]["port"]
    rules = [
        r
        for o in objs
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith("-egress")
        for r in o["spec"].get("egress") or []
        if any("ipBlock" in peer for peer in r.get("to", []))
    ]
    assert len(rules) == 2, rules  # the transformer's and the Feast clients'
    assert all(r["ports"] == [{"port": port, "protocol": "TCP"}] for r in rules), rules
    for chart_key in ("inferenceService", "feast"):
        proc = helm.run(
            "template",
            RELEASE,
            str(helm.charts / UMBRELLA),
            *helm.values_args(UMBRELLA, ext),
            "--set-json",
            f"{chart_key}.egress.redisTo=[]",
            expect_ok=False,
        )
        assert proc.returncode != 0 and "egress.redisTo is required" in proc.stderr, chart_key
    # The check allows one host for an external Redis only: a range, or a bundled Redis, fails.
    wide = json.loads(json.dumps(objs))
    for r in wide:
        for rule in r.get("spec", {}).get("egress") or [] if r["kind"] == "NetworkPolicy" else []:
            for peer in rule.get("to", []):
                if "ipBlock" in peer:
                    peer["ipBlock"]["cidr"] = "10.20.0.0/16"
    assert any("ipBlock" in p for p in v.check_egress_policies(wide))
    bundled = helm.render(
        UMBRELLA,
        MINIMAL,
        "--set-json",
        'inferenceService.egress.redisTo=[{"ipBlock": {"cidr": "10.20.30.40/32"}}]',
    )
    assert any("ipBlock" in p for p in v.check_egress_policies(bundled))
