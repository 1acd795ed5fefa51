"""Helm charts: lint, render, validate every chart x values file; schema and contract checks.

Runs offline: the charts are copied to a temporary directory, the umbrella's `file://`
dependencies are rebuilt there from Chart.lock with `helm dependency build`, and Helm's
config/cache/data dirs point at empty temporary directories (no repositories, no network).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy import validation as v

pytestmark = pytest.mark.unit

HELM_SRC = v.REPO / "helm"
CHARTS = ("redis", "feast-feature-server", "inference-service", "feast-kserve")
UMBRELLA = "feast-kserve"
RELEASE = "feast-kserve"
SUBCHART_KEYS = {
    "redis": "redis",
    "feast-feature-server": "feast",
    "inference-service": "inferenceService",
}


def _values_files(chart: str) -> list[str | None]:
    return [None, *sorted(p.name for p in (HELM_SRC / chart / "ci").glob("*.yaml"))]


CASES = [(c, f) for c in CHARTS for f in _values_files(c)]
CASE_IDS = [f"{c}:{f or 'default'}" for c, f in CASES]


class Helm:
    """helm with an isolated home, operating on a private copy of helm/."""

    def __init__(self, root: Path) -> None:
        self.bin = v.tool("helm")
        self.charts = root / "helm"
        home = root / "helm-home"
        self.env = {
            **os.environ,
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
            "HELM_NO_PLUGINS": "1",
            "KUBECONFIG": str(home / "no-kubeconfig"),
        }
        self._renders: dict[tuple[str, str | None], list[v.Obj]] = {}

    def run(self, *args: str, expect_ok: bool = True):
        return v.run([self.bin, *args], env=self.env, expect_ok=expect_ok)

    def values_args(self, chart: str, values: str | None) -> list[str]:
        return ["-f", str(self.charts / chart / "ci" / values)] if values else []

    def render(self, chart: str, values: str | None = None, *extra: str) -> list[v.Obj]:
        key = (chart, values) if not extra else None
        if key and key in self._renders:
            return self._renders[key]
        out = self.run(
            "template",
            RELEASE,
            str(self.charts / chart),
            "--namespace",
            v.NAMESPACE,
            "--kube-version",
            f"{v.K8S_VERSIONS[0]}.0",
            *self.values_args(chart, values),
            *extra,
        ).stdout
        objs = v.load_docs(out)
        if key:
            self._renders[key] = objs
        return objs


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
    # The defaults satisfy the schema (Helm checks this too; here with a second validator).
    defaults = yaml.safe_load((d / "values.yaml").read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(defaults), key=str)
    assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]


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
    assert built == sorted(f"{c}-0.1.0.tgz" for c in CHARTS if c != UMBRELLA)


# --------------------------------------------------------------------------- lint + render


@pytest.mark.parametrize(("chart", "values"), CASES, ids=CASE_IDS)
def test_helm_lint_strict(helm: Helm, chart: str, values: str | None) -> None:
    # --with-subcharts lints the sub-charts with *their* defaults; with a values file it
    # would feed the umbrella's values to them, so those cases lint the umbrella only
    # (each sub-chart's own ci/*.yaml cases lint it with values).
    extra = ["--with-subcharts"] if chart == UMBRELLA and values is None else []
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
        ext = ["PersistentVolumeClaim/click-model-models"]
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
    return next(o for o in objs if o["kind"] == "InferenceService")


# --------------------------------------------------------------------------- variants


def test_default_install_is_serverless_with_knative_autoscaling(helm: Helm) -> None:
    objs = helm.render(UMBRELLA)
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


def test_standard_variant_uses_hpa_pdbs_and_direct_metrics(helm: Helm) -> None:
    objs = helm.render(UMBRELLA, "standard-values.yaml")
    isvc = _isvc(objs)
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] in v.STANDARD_MODES
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "hpa"
    pdbs = {o["metadata"]["name"] for o in objs if o["kind"] == "PodDisruptionBudget"}
    assert {"click-model-predictor", "click-model-transformer"} <= pdbs
    for comp in ("predictor", "transformer"):
        spec = isvc["spec"][comp]
        assert (spec["scaleMetric"], spec["scaleTarget"], spec["minReplicas"]) == ("cpu", 70, 2)
        assert spec["deploymentStrategy"]["rollingUpdate"]["maxUnavailable"] == 0
    sa = next(
        o
        for o in objs
        if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == "click-model-predictor"
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
            "inferenceService.deploymentMode=RawDeployment",
        ],
        "/deploymentMode",
    ),
    (["--set", "inferenceService.canary.trafficPercent=101"], "/canary/trafficPercent"),
    (
        [
            "--set",
            "inferenceService.deploymentMode=RawDeployment",
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
    (["--set", "feast.registryServer.port=70000"], "/registryServer/port"),
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
            "inferenceService.canary.storageUri=pvc://click-model-models/sklearn",
        ],
        "must differ",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD_VALUES, ids=[m for _, m in BAD_VALUES])
def test_invalid_values_are_rejected(helm: Helm, args: list[str], message: str) -> None:
    proc = helm.run(
        "template",
        RELEASE,
        str(helm.charts / UMBRELLA),
        "--namespace",
        v.NAMESPACE,
        *args,
        expect_ok=False,
    )
    assert proc.returncode != 0, f"accepted: {args}"
    assert message in proc.stderr, proc.stderr


# ----------------------------------------------------------------- notes, test hook, secrets


def test_notes_print_endpoint_and_example_v2_call(helm: Helm) -> None:
    proc = helm.run(
        "install",
        RELEASE,
        str(helm.charts / UMBRELLA),
        "--namespace",
        v.NAMESPACE,
        "--dry-run=client",
    )
    notes = proc.stdout.split("NOTES:", 1)[-1]
    assert "NOTES:" in proc.stdout
    for needle in (
        "get inferenceservice click-model -o jsonpath='{.status.url}'",
        "http://click-model-transformer.feast-inference.svc.cluster.local",
        "/v2/models/click-model/infer",
        '"name": "user_id", "datatype": "INT64"',
        "helm test feast-kserve",
    ):
        assert needle in notes, f"NOTES lack {needle!r}:\n{notes}"


@pytest.mark.parametrize("values", [None, "standard-values.yaml"])
def test_helm_test_hook_posts_one_v2_inference(helm: Helm, values: str | None) -> None:
    objs = helm.render(UMBRELLA, values)
    (pod,) = [o for o in objs if o["kind"] == "Pod"]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    c = pod["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["INFER_URL"] == (
        "http://click-model-transformer.feast-inference.svc.cluster.local/v2/models/click-model/infer"
    )
    script = c["args"][0]
    compile(script, "helm-test", "exec")  # valid Python
    for name in ("user_id", "session_duration_s", "hour_of_day", *sorted(v.CONTRACT_OUTPUTS)):
        assert f'"{name}"' in script, name
    # The transformer's NetworkPolicy admits the test pod in every mode.
    assert not v.check_network_policies(objs)


def test_generated_redis_password_is_random_and_alphanumeric(helm: Helm) -> None:
    def password() -> str:
        objs = helm.render(UMBRELLA, None, "--set", "redis.auth.existingSecret=")
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


# --------------------------------------------------------------------------- security


def test_auth_is_on_with_a_generated_secret_mounted_as_a_file(helm: Helm) -> None:
    objs = helm.render(UMBRELLA)
    (secret,) = [o for o in objs if o["metadata"]["name"] == "click-model-transformer-auth"]
    data = {k: base64.b64decode(val).decode() for k, val in secret.get("data", {}).items()}
    data.update(secret.get("stringData", {}))
    infer, write = data["infer-token"], data["write-token"]
    assert re.fullmatch(r"[A-Za-z0-9]{40}", infer) and infer != write
    assert data["tokens"].split() == [f"infer:{infer}", f"write:{write}"]
    again = helm.render(UMBRELLA, None, "--set", "inferenceService.auth.reloadSeconds=3")
    (other,) = [o for o in again if o["metadata"]["name"] == "click-model-transformer-auth"]
    assert other["stringData"]["infer-token"] != infer, "tokens must be random per install"
    c = _isvc(objs)["spec"]["transformer"]["containers"][0]
    env = {e["name"]: e.get("value") for e in c["env"]}
    path = env["TRANSFORMER_AUTH_TOKENS_FILE"]
    (mount,) = [m for m in c["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
    assert "subPath" not in mount, "a subPath mount is never updated: rotation would need a restart"
    (vol,) = [
        x for x in _isvc(objs)["spec"]["transformer"]["volumes"] if x["name"] == mount["name"]
    ]
    assert vol["secret"]["secretName"] == "click-model-transformer-auth"
    # helm test sends the infer token
    (pod,) = [o for o in objs if o["kind"] == "Pod"]
    (tok,) = [e for e in pod["spec"]["containers"][0]["env"] if e["name"] == "INFER_TOKEN"]
    assert tok["valueFrom"]["secretKeyRef"] == {
        "name": "click-model-transformer-auth",
        "key": "infer-token",
    }
    assert '"Authorization"' in pod["spec"]["containers"][0]["args"][0]


def test_auth_can_use_an_existing_secret_or_be_off(helm: Helm) -> None:
    objs = helm.render(UMBRELLA, None, "--set", "inferenceService.auth.existingSecret=my-tokens")
    assert not [o for o in objs if o["metadata"]["name"] == "click-model-transformer-auth"]
    (vol,) = [
        x for x in _isvc(objs)["spec"]["transformer"]["volumes"] if x["name"] == "transformer-auth"
    ]
    assert vol["secret"]["secretName"] == "my-tokens"
    objs = helm.render(UMBRELLA, None, "--set", "inferenceService.auth.enabled=false")
    c = _isvc(objs)["spec"]["transformer"]["containers"][0]
    assert not [e for e in c["env"] if e["name"].startswith("TRANSFORMER_AUTH")]
    (pod,) = [o for o in objs if o["kind"] == "Pod"]
    assert not [e for e in pod["spec"]["containers"][0]["env"] if e["name"] == "INFER_TOKEN"]


@pytest.mark.parametrize("values", [None, "standard-values.yaml"])
def test_egress_check_catches_an_open_rule(helm: Helm, values: str | None) -> None:
    objs = helm.render(UMBRELLA, values)
    serverless = v.deployment_mode(objs) in v.SERVERLESS_MODES
    assert not v.check_egress_policies(objs, serverless=serverless)
    for bad_rule in (
        {},  # no 'to': everything
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]},
        {"to": [{"namespaceSelector": {}}]},
        {"to": [{"podSelector": {"matchLabels": {"app": "anything-else"}}}]},
    ):
        mutated = json.loads(json.dumps(objs))
        pol = next(o for o in mutated if o["metadata"]["name"] == "click-model-transformer-egress")
        pol["spec"]["egress"].append(bad_rule)
        assert v.check_egress_policies(mutated, serverless=serverless), bad_rule
    for dropped in ("click-model-predictor-egress", "feast-kserve-redis-egress"):
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
