"""KServe's payload logger in the chart (monitoring.kserveLogger) and in the kustomize tree
(components/kserve-logger, overlays/payload-logger): off by default, valid against the
InferenceService CRDs of both supported KServe releases, with its sink reachable through
the egress policies; each check shown to flag a bad case."""

from __future__ import annotations

import copy

import pytest

from tests.deploy import kserve_logger as kl
from tests.deploy import validation as v

pytestmark = pytest.mark.unit

CHART = v.REPO / "helm" / "inference-service"
URL = "http://payload-sink.feast-inference.svc.cluster.local/"
SINK = "monitoring.kserveLogger.sinkTo[0].podSelector.matchLabels.app\\.kubernetes\\.io/name"
ON = [
    "--set", "monitoring.kserveLogger.enabled=true",
    "--set", f"monitoring.kserveLogger.url={URL}",
    "--set", f"{SINK}=payload-sink",
]  # fmt: skip


def render(*extra: str, ok: bool = True) -> list[v.Obj]:
    cmd = [
        v.tool("helm"), "template", "r", str(CHART), "--namespace", v.NAMESPACE,
        "-f", str(CHART / "ci" / "minimal-values.yaml"), *extra,
    ]  # fmt: skip
    return v.load_docs(v.run(cmd).stdout)


def helm_error(*extra: str) -> str:
    cmd = [
        v.tool("helm"), "template", "r", str(CHART),
        "-f", str(CHART / "ci" / "minimal-values.yaml"), *extra,
    ]  # fmt: skip
    r = v.run(cmd, expect_ok=False)
    assert r.returncode != 0, r.stdout[:500]
    return r.stderr


def isvc(objs: list[v.Obj]) -> v.Obj:
    return next(o for o in objs if o["kind"] == "InferenceService")


def kustomize(overlay: str) -> list[v.Obj]:
    out = v.run([v.tool("kubectl"), "kustomize", str(v.REPO / "manifests" / "overlays" / overlay)])
    return v.load_docs(out.stdout)


@pytest.mark.parametrize("values", sorted(p.name for p in (CHART / "ci").glob("*.yaml")))
def test_off_by_default(values: str) -> None:
    cmd = [v.tool("helm"), "template", "r", str(CHART), "-f", str(CHART / "ci" / values)]
    assert kl.loggers(v.load_docs(v.run(cmd).stdout)) == {}


def test_transformer_logged_by_default_valid_for_both_kserve_releases() -> None:
    objs = render(*ON, "--set", "monitoring.kserveLogger.metadataHeaders[0]=x-request-id")
    assert kl.loggers(objs) == {
        "InferenceService/r-click-model.transformer": {
            "mode": "all",
            "url": URL,
            "metadataHeaders": ["x-request-id"],
        }
    }
    assert v.KSERVE_VERSIONS == ("v0.17.0", "v0.20.0")
    assert [p for o in objs for p in v.schema_errors(o)] == []
    assert kl.check_kserve_logger(objs) == []


def test_predictor_too_with_its_own_mode_and_egress() -> None:
    objs = render(*ON, "--set", "monitoring.kserveLogger.predictor.enabled=true",
                  "--set", "monitoring.kserveLogger.transformer.mode=response")  # fmt: skip
    logs = kl.loggers(objs)
    assert logs["InferenceService/r-click-model.predictor"]["mode"] == "request"
    assert logs["InferenceService/r-click-model.transformer"]["mode"] == "response"
    assert [p for o in objs for p in v.schema_errors(o)] == []
    assert kl.check_kserve_logger(objs) == []
    assert v.check_egress_policies(objs, serverless=True) == []  # still no open rule


def test_collocated_logs_the_one_component() -> None:
    objs = render(*ON, "--set", "collocated.enabled=true")
    assert list(kl.loggers(objs)) == ["InferenceService/r-click-model.predictor"]
    assert [p for o in objs for p in v.schema_errors(o)] == []
    assert kl.check_kserve_logger(objs) == []
    err = helm_error(*ON, "--set", "collocated.enabled=true",
                     "--set", "monitoring.kserveLogger.transformer.enabled=false",
                     "--set", "monitoring.kserveLogger.predictor.enabled=true")  # fmt: skip
    assert "collocated mode has one component" in err


def test_egress_port_follows_the_url() -> None:
    objs = render(*ON[:2], "--set", "monitoring.kserveLogger.url=https://sink.example:8443/x",
                  *ON[4:])  # fmt: skip
    assert kl.check_kserve_logger(objs) == []
    pol = next(o for o in objs if o["metadata"]["name"].endswith("transformer-egress"))
    assert any(p["port"] == 8443 for r in pol["spec"]["egress"] for p in r.get("ports", []))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "monitoring.kserveLogger.enabled=true"], "url"),  # no sink
        ([*ON, "--set", "monitoring.kserveLogger.url=payload-sink:80"], "url"),  # no scheme
        ([*ON, "--set", "monitoring.kserveLogger.transformer.mode=both"], "mode"),
        (
            [*ON, "--set", "monitoring.kserveLogger.transformer.enabled=false"],
            "kserveLogger",
        ),  # on, but logs nothing
        (ON[:4], "sinkTo is required"),  # egress on, no peer for the sink
    ],
)
def test_the_chart_rejects_bad_logger_values(values: list[str], message: str) -> None:
    assert message in helm_error(*values)


def test_without_egress_policies_no_peer_is_needed() -> None:
    objs = render(*ON[:4], "--set", "egress.enabled=false")
    assert kl.check_kserve_logger(objs) == []


# ----------------------------------------------------------- each check flags its bad case


def test_crd_check_flags_an_unknown_mode_in_both_releases() -> None:
    obj = copy.deepcopy(isvc(render(*ON)))
    obj["spec"]["transformer"]["logger"]["mode"] = "both"
    problems = v.schema_errors(obj, versions=(v.K8S_VERSIONS[-1],))
    assert {r for r in v.KSERVE_VERSIONS if any(f"KServe {r}" in p for p in problems)} == set(
        v.KSERVE_VERSIONS
    ), problems


@pytest.mark.parametrize("url", ["payload-sink:80", "/log", "ftp://sink/", ""])
def test_url_check_flags_what_the_crd_lets_through(url: str) -> None:
    objs = render(*ON)
    isvc(objs)["spec"]["transformer"]["logger"]["url"] = url
    assert [p for o in objs for p in v.schema_errors(o)] == []  # the CRD takes any string
    (problem,) = kl.check_logger_urls(objs)
    assert "r-click-model.transformer" in problem and "absolute http(s)" in problem


def test_egress_check_flags_a_sink_the_network_blocks() -> None:
    objs = render(*ON)
    isvc(objs)["spec"]["transformer"]["logger"]["url"] = "http://payload-sink:9000/"
    (problem,) = kl.check_logger_egress(objs)
    assert "port 9000" in problem and "transformer-egress" in problem


# ----------------------------------------------------------------------------- kustomize


def test_kustomize_overlay_logs_the_transformer_valid_for_both_releases() -> None:
    objs = kustomize("payload-logger")
    assert kl.loggers(objs) == {
        "InferenceService/click-model.transformer": {"mode": "all", "url": URL}
    }
    assert [p for o in objs for p in v.schema_errors(o)] == []
    assert kl.check_kserve_logger(objs) == []
    assert kl.loggers(kustomize("serverless")) == {}


def test_egress_check_flags_an_open_sink_rule() -> None:
    objs = render(*ON)
    pol = next(o for o in objs if o["metadata"]["name"].endswith("transformer-egress"))
    http = [{"port": 80, "protocol": "TCP"}]
    (rule,) = [r for r in pol["spec"]["egress"] if r.get("ports") == http]
    rule["to"] = [{"podSelector": {}}]
    (problem,) = kl.check_logger_egress(objs)
    assert "opens {'podSelector': {}}" in problem
    rule["to"] = [{"ipBlock": {"cidr": "0.0.0.0/0"}}]
    assert kl.check_logger_egress(objs)
