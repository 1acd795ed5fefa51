"""The monitoring objects of the inference-service chart and the alert rules they carry:
PrometheusRule against the Prometheus Operator CRD (vendored in schemas/, strict like the
KServe CRDs in tests/deploy/checks/schemas.py), promtool check + unit tests, the Grafana
dashboard, and every metric they query exported by the code."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import referencing
import yaml

from tests.deploy import validation as v

pytestmark = pytest.mark.unit

CHART = v.REPO / "helm" / "inference-service"
RULES = CHART / "files" / "prometheus-rules.yaml"
DASHBOARD = CHART / "files" / "grafana-dashboard.json"
RULES_TEST = Path(__file__).parent / "promtool" / "rules_test.yaml"
# exported by another part (the online-store health gauge of the fault-tolerance work)
EXTERNAL = {"transformer_online_store_up"}
KSERVE = {"request_preprocess_seconds", "request_predict_seconds", "request_postprocess_seconds"}


@functools.cache
def _rule_validator(k8s: str) -> jsonschema.protocols.Validator:
    """The PrometheusRule CRD (prometheus-operator at 6adcebc, operator 0.93.0), strict."""
    crd = yaml.safe_load((v.SCHEMAS / "monitoring.coreos.com_prometheusrules.yaml").read_text())
    (served,) = [x for x in crd["spec"]["versions"] if x["name"] == "v1"]
    schema = v._strict_crd_schema(served["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {
        "$ref": f"{v.K8S_DEFS}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    }
    schema["properties"]["apiVersion"] = {"const": "monitoring.coreos.com/v1"}
    schema["properties"]["kind"] = {"const": "PrometheusRule"}
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
    registry = referencing.Registry().with_resource(v.K8S_DEFS, v._k8s_definitions(k8s))
    return jsonschema.Draft202012Validator(schema, registry=registry)


def rule_errors(obj: v.Obj) -> list[str]:
    return [
        f"k8s {k8s}: {'.'.join(str(p) for p in e.path)}: {e.message[:300]}"
        for k8s in v.K8S_VERSIONS
        for e in _rule_validator(k8s).iter_errors(obj)
    ]


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool not found: apt-get install prometheus (.ci/run does)"
    return path


def render(*extra: str) -> list[v.Obj]:
    out = v.run(
        [
            v.tool("helm"),
            "template",
            "r",
            str(CHART),
            "--namespace",
            v.NAMESPACE,
            "-f",
            str(CHART / "ci" / "minimal-values.yaml"),
            *extra,
        ]
    ).stdout
    return v.load_docs(out)


def test_promtool_checks_the_rules():
    r = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert r.returncode == 0 and "SUCCESS: 8 rules found" in r.stdout, r.stdout + r.stderr


def test_promtool_unit_tests_fire_and_hold_every_alert():
    r = subprocess.run(
        [promtool(), "test", "rules", str(RULES_TEST)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout + r.stderr
    alerts = {
        rule["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for rule in g["rules"]
    }
    tests = yaml.safe_load(RULES_TEST.read_text())["tests"]
    fired = {t["alertname"] for case in tests for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert fired == alerts  # every alert has a case where it fires...
    for case in tests:  # ...and series in the same case that must not fire it
        firing = [t for t in case["alert_rule_test"] if t["exp_alerts"]]
        assert all(len(t["exp_alerts"]) < len(case["input_series"]) for t in firing), case["name"]


def test_promtool_tests_can_fail(tmp_path):
    """A wrong threshold in the rules breaks the unit tests (the tests detect it)."""
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "prometheus-rules.yaml").write_text(
        RULES.read_text().replace(
            'transformer_drift_psi{feature!="score"} > 0.2',
            'transformer_drift_psi{feature!="score"} > 0.6',
        )
    )
    test = yaml.safe_load(RULES_TEST.read_text())
    test["rule_files"] = [str(tmp_path / "files" / "prometheus-rules.yaml")]
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(test))
    r = subprocess.run(
        [promtool(), "test", "rules", str(tmp_path / "t.yaml")], capture_output=True, text=True
    )
    assert r.returncode != 0 and "FeatureDrift" in r.stdout + r.stderr


def test_off_by_default():
    kinds = {(o["kind"], o["metadata"]["name"]) for o in render()}
    assert not any(k == "PrometheusRule" for k, _ in kinds)
    assert not any(n.endswith("-dashboard") for _, n in kinds)


def test_prometheusrule_is_the_rules_file_and_valid_against_the_crd():
    objs = render(
        "--set",
        "monitoring.prometheusRule.enabled=true",
        "--set",
        "monitoring.prometheusRule.labels.release=kps",
    )
    (rule,) = [o for o in objs if o["kind"] == "PrometheusRule"]
    assert rule["spec"] == yaml.safe_load(RULES.read_text())
    assert rule["metadata"]["labels"]["release"] == "kps"
    assert rule_errors(rule) == []
    cm_and_rest = [o for o in objs if o["kind"] != "PrometheusRule"]
    assert not [p for o in cm_and_rest for p in v.schema_errors(o)]
    broken = json.loads(json.dumps(rule))
    broken["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    broken["spec"]["groups"][0]["rules"][0]["severity"] = "x"
    problems = rule_errors(broken)
    assert any("for" in p for p in problems) and any("severity" in p for p in problems), problems


def test_dashboard_configmap_for_grafanas_sidecar():
    objs = render("--set", "monitoring.dashboard.enabled=true")
    assert not [p for o in objs for p in v.schema_errors(o)]  # the ConfigMap too
    (cm,) = [
        o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard")
    ]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dash = json.loads(cm["data"]["feast-kserve-serving.json"])
    assert dash == json.loads(DASHBOARD.read_text())
    titles = " | ".join(p["title"] for p in dash["panels"]).lower()
    for topic in (
        "traffic",
        "errors",
        "latency per stage",
        "cache hit",
        "store and predictor",
        "psi per input",
        "live auc",
    ):
        assert topic in titles, topic


def test_bad_monitoring_values_are_rejected():
    r = v.run(
        [
            v.tool("helm"),
            "template",
            "r",
            str(CHART),
            "-f",
            str(CHART / "ci" / "minimal-values.yaml"),
            "--set",
            "monitoring.dashboard.enabled=yes",
        ],
        expect_ok=False,
    )
    assert r.returncode != 0 and "monitoring" in r.stderr


def _metric_names(text: str) -> set[str]:
    names = set(re.findall(r"\b((?:transformer|request|stream)_[a-z0-9_]+)", text))
    return {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in names}


def test_every_queried_metric_is_exported():
    queried = _metric_names(RULES.read_text()) | _metric_names(DASHBOARD.read_text())
    source = "\n".join(p.read_text() for p in (v.REPO / "transformer").rglob("*.py"))
    exported = set(re.findall(r'"((?:transformer|stream)_[a-z0-9_]+)"', source))
    exported |= {f"transformer_quality_{n}" for n in ("auc", "log_loss", "labels")}
    exported |= {f"transformer_quality_calibration_{k}" for k in ("predicted", "observed")}
    missing = queried - exported - EXTERNAL - KSERVE
    assert not missing, missing


def test_helm_lint_strict_with_monitoring_on():
    r = v.run(
        [
            v.tool("helm"), "lint", "--strict", str(CHART),
            "-f", str(CHART / "ci" / "minimal-values.yaml"),
            "--set", "monitoring.prometheusRule.enabled=true",
            "--set", "monitoring.dashboard.enabled=true",
        ]
    )  # fmt: skip
    assert "[WARNING]" not in r.stdout and "[ERROR]" not in r.stdout, r.stdout
