"""The ensemble deployment (kustomize overlay `ensemble`, the Helm chart's `ensemble` values): an
InferenceGraph Ensemble node and the transformer-driven ensemble over the same two
predictors, each check shown catching a break. Schemas and the stack invariants of every
render are also checked by test_kustomize.py / test_helm.py (ci/ensemble-values.yaml)."""

from __future__ import annotations

import copy
import functools
import shutil

import pytest
import yaml

from tests.deploy import charts as th
from tests.deploy import ensemble_checks as ec
from tests.deploy import validation as v
from tests.deploy.parity import kustomize

pytestmark = pytest.mark.unit

OVERLAY = "overlays/ensemble"


@functools.cache
def _render() -> tuple[v.Obj, ...]:
    return tuple(kustomize("ensemble"))


def overlay() -> list[v.Obj]:
    return copy.deepcopy(list(_render()))


def one(objs: list[v.Obj], kind: str, name: str | None = None) -> v.Obj:
    (o,) = [o for o in objs if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    return o


def rules_cm(objs: list[v.Obj]) -> v.Obj:
    """The generated rules ConfigMap (kustomize adds a content hash to its name)."""
    (cm,) = [
        o
        for o in objs
        if o["kind"] == "ConfigMap"
        and o["metadata"]["name"].startswith("click-model-ensemble-rules")
    ]
    return cm


def set_rules(objs: list[v.Obj], rules: dict) -> None:
    rules_cm(objs)["data"]["rules.yaml"] = yaml.safe_dump(rules)


def test_the_overlay_passes_every_ensemble_check():
    objs = overlay()
    assert ec.check_ensemble(objs) == []
    graph = one(objs, "InferenceGraph")
    members, _ = ec.graph_members(graph, objs)
    assert {k: o["spec"]["predictor"]["model"]["storageUri"] for k, o in members.items()} == {
        "sklearn": "pvc://click-model-models/sklearn",
        "xgboost": "pvc://click-model-models/xgboost",
    }
    tmembers, _ = ec.transformer_members(objs)
    assert {k: o["metadata"]["name"] for k, o in tmembers.items()} == {
        "sklearn": "click-model",
        "xgboost": "click-model-xgboost",
    }


def test_the_inference_graph_validates_against_both_kserve_crds():
    objs = overlay()
    graph = one(objs, "InferenceGraph")
    assert v.schema_errors(graph, versions=("1.34",)) == []
    bad = copy.deepcopy(graph)
    bad["spec"]["nodes"]["root"]["routerType"] = "Average"  # not in the CRD's enum
    problems = v.schema_errors(bad, versions=("1.34",))
    assert {"KServe v0.17.0", "KServe v0.20.0"} <= {
        p.split(", ")[1].split(")")[0] for p in problems
    }, problems
    bad = copy.deepcopy(graph)
    bad["spec"]["nodes"]["root"]["steps"][0]["weigth"] = 1  # a typo: strict, unknown field
    assert v.schema_errors(bad, versions=("1.34",))


def _break_graph(how: str):
    def apply(objs: list[v.Obj]) -> None:
        root = one(objs, "InferenceGraph")["spec"]["nodes"]["root"]
        if how == "splitter":
            root["routerType"] = "Splitter"
        elif how == "soft":
            root["steps"][1]["dependency"] = "Soft"
        elif how == "one-step":
            root["steps"] = root["steps"][:1]
        elif how == "unknown-service":
            root["steps"][1]["serviceUrl"] = root["steps"][1]["serviceUrl"].replace(
                "xgboost", "lightgbm"
            )
        elif how == "wrong-model":  # the runtime serves the InferenceService's name
            root["steps"][1]["serviceUrl"] = root["steps"][1]["serviceUrl"].replace(
                "models/click-model-xgboost", "models/click-model"
            )
        elif how == "same-model":
            one(objs, "InferenceService", "click-model-xgboost")["spec"]["predictor"]["model"][
                "storageUri"
            ] = "pvc://click-model-models/sklearn"
        elif how == "transformer-url":
            root["steps"][0]["serviceUrl"] = "http://click-model.feast-inference/v2/models/x/infer"

    return apply


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("splitter", "root routerType is 'Splitter', not 'Ensemble'"),
        ("soft", "step xgboost is not dependency Hard"),
        ("one-step", "at least two steps, got 1"),
        ("unknown-service", "is no rendered InferenceService predictor"),
        ("wrong-model", "serves model 'click-model-xgboost', not 'click-model'"),
        ("same-model", "two members serve the same model"),
        ("transformer-url", "is not a predictor's v2 infer URL"),
    ],
)
def test_inference_graph_check_catches(how, message):
    objs = overlay()
    _break_graph(how)(objs)
    problems = ec.check_inference_graph(objs)
    assert any(message in p for p in problems), problems


def test_no_inference_graph_is_caught():
    objs = [o for o in overlay() if o["kind"] != "InferenceGraph"]
    assert ec.check_inference_graph(objs) == ["no InferenceGraph rendered"]


GOOD_MEMBERS = [
    {"name": "sklearn", "weight": 1},
    {
        "name": "xgboost",
        "host": "click-model-xgboost-predictor.feast-inference.svc.cluster.local",
        "model_name": "click-model-xgboost",
        "weight": 1,
    },
]


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            {"ensemble": {"members": [GOOD_MEMBERS[0], {**GOOD_MEMBERS[1], "weight": 0}]}},
            "the transformer would refuse these rules",
        ),
        ({"stale_features": "default"}, "no ensemble"),
        (
            {"ensemble": {"members": [GOOD_MEMBERS[0], {**GOOD_MEMBERS[1], "host": "x:80"}]}},
            "member xgboost: x:80 is no rendered InferenceService predictor",
        ),
        (
            {"ensemble": {"members": [GOOD_MEMBERS[0], {**GOOD_MEMBERS[1], "model_name": None}]}},
            "member xgboost: click-model-xgboost-predictor.feast-inference.svc.cluster.local "
            "serves model 'click-model-xgboost', not 'click-model'",
        ),
        (
            {"ensemble": {"members": [GOOD_MEMBERS[0], {**GOOD_MEMBERS[0], "name": "again"}]}},
            "two members call the same InferenceService",
        ),
    ],
)
def test_transformer_ensemble_check_catches(rules, message):
    objs = overlay()
    set_rules(objs, rules)
    problems = ec.check_transformer_ensemble(objs)
    assert any(message in p for p in problems), problems


def test_transformer_and_graph_must_combine_the_same_models():
    objs = overlay()
    extra = copy.deepcopy(one(objs, "InferenceService", "click-model-xgboost"))
    extra["metadata"]["name"] = "click-model-lgbm"
    extra["spec"]["predictor"]["model"]["storageUri"] = "pvc://click-model-models/lgbm"
    objs.append(extra)
    members = [
        GOOD_MEMBERS[0],
        {
            **GOOD_MEMBERS[1],
            "host": "click-model-lgbm-predictor.feast-inference.svc.cluster.local",
            "model_name": "click-model-lgbm",
        },
    ]
    set_rules(objs, {"ensemble": {"members": members}})
    problems = ec.check_transformer_ensemble(objs)
    assert any("but the transformer's ensemble" in p for p in problems), problems


def test_transformer_rules_file_wiring_is_checked():
    objs = overlay()
    isvc = one(objs, "InferenceService", "click-model")
    c = isvc["spec"]["transformer"]["containers"][0]
    c["volumeMounts"] = [m for m in c["volumeMounts"] if m["name"] != "ensemble-rules"]
    assert any("no volume is mounted at" in p for p in ec.check_transformer_ensemble(objs))
    objs = overlay()
    rules_cm(objs)["data"] = {"other.yaml": ""}
    assert any("has no key rules.yaml" in p for p in ec.check_transformer_ensemble(objs))


def test_network_policy_check_catches_a_router_left_out():
    objs = overlay()
    pol = one(objs, "NetworkPolicy", "click-model-predictor")
    pol["spec"]["ingress"] = [
        r for r in pol["spec"]["ingress"] if "serving.kserve.io/inferencegraph" not in str(r)
    ]
    problems = ec.check_member_network_policies(objs)
    assert problems == [
        "member sklearn's predictor does not admit InferenceGraph/click-model-ensemble's router "
        "on 8080",
        "member xgboost's predictor does not admit InferenceGraph/click-model-ensemble's router "
        "on 8080",
    ]


def test_network_policy_check_catches_a_member_outside_the_policies():
    objs = overlay()
    labels = one(objs, "InferenceService", "click-model-xgboost")["spec"]["predictor"]["labels"]
    labels["feast-kserve.io/inferenceservice"] = "click-model-xgboost"
    problems = ec.check_member_network_policies(objs)
    assert "no NetworkPolicy selects member xgboost's predictor pods" in problems


# --------------------------------------------------------------------------- Helm


@pytest.fixture(scope="module")
def charts(tmp_path_factory) -> th.Helm:
    root = tmp_path_factory.mktemp("helm")
    shutil.copytree(th.HELM_SRC, root / "helm", ignore=shutil.ignore_patterns("charts", "*.tgz"))
    h = th.Helm(root)
    h.run("dependency", "build", str(h.charts / th.UMBRELLA))
    return h


ENSEMBLE_SET = (
    "--set",
    "inferenceService.ensemble.enabled=true",
    "--set",
    "inferenceService.ensemble.second.storageUri=s3://ml-models/click-model/xgboost",
)


def test_the_chart_renders_no_ensemble_by_default(charts):
    objs = charts.render("inference-service", "standard-values.yaml")
    assert not [o for o in objs if o["kind"] == "InferenceGraph"]
    assert len([o for o in objs if o["kind"] == "InferenceService"]) == 1
    assert "TRANSFORMER_RULES_FILE" not in str(objs)


def test_the_chart_ci_values_render_an_ensemble_that_passes_every_check(charts):
    objs = charts.render("inference-service", "ensemble-values.yaml")
    assert ec.check_ensemble(objs) == []
    members, _ = ec.transformer_members(objs)
    assert {k: o["spec"]["predictor"]["model"]["storageUri"] for k, o in members.items()} == {
        "sklearn": "pvc://click-model-models/sklearn",
        "xgboost": "pvc://click-model-models/xgboost",
    }
    rules = yaml.safe_load(
        one(objs, "ConfigMap", "feast-kserve-click-model-ensemble-rules")["data"]["rules.yaml"]
    )
    assert [m["weight"] for m in rules["ensemble"]["members"]] == [1, 3]


@pytest.mark.parametrize("mode", ["Knative", "Standard"])
def test_the_umbrella_chart_with_the_ensemble_meets_the_stack_invariants(charts, mode):
    objs = charts.render(
        th.UMBRELLA, th.MINIMAL, *ENSEMBLE_SET, "--set", f"inferenceService.deploymentMode={mode}"
    )
    problems = [p for o in objs for p in v.schema_errors(o)]
    problems += v.check_stack(objs, external=["PersistentVolumeClaim/click-model-models"])
    problems += ec.check_ensemble(objs)
    assert not problems, "\n".join(problems)
    graph = one(objs, "InferenceGraph")
    assert graph["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == mode


def test_the_chart_without_the_graph_keeps_the_transformer_form(charts):
    objs = charts.render(
        th.UMBRELLA,
        th.MINIMAL,
        *ENSEMBLE_SET,
        "--set",
        "inferenceService.ensemble.inferenceGraph.enabled=false",
    )
    assert not [o for o in objs if o["kind"] == "InferenceGraph"]
    assert ec.check_transformer_ensemble(objs) == []
    assert "serving.kserve.io/inferencegraph" not in str(
        one(objs, "NetworkPolicy", "feast-kserve-click-model-predictor")
    )


BAD_ENSEMBLE_VALUES = [
    (["--set", "inferenceService.ensemble.enabled=true"], "/ensemble/second/storageUri"),
    (["--set", "inferenceService.ensemble.second.weight=0"], "/ensemble/second/weight"),
    (["--set", "inferenceService.ensemble.combine=median"], "/ensemble/combine"),
    (["--set", "inferenceService.ensemble.second.name=XG"], "/ensemble/second/name"),
    (  # weights only count in weighted_mean: a weight with mean is a mistake
        [
            "--set",
            "inferenceService.ensemble.combine=mean",
            "--set",
            "inferenceService.ensemble.second.weight=3",
        ],
        "/ensemble/second/weight",
    ),
    (["--set", "inferenceService.ensemble.wieghts=1"], "additional properties 'wieghts'"),
    ([*ENSEMBLE_SET, "--set", "inferenceService.collocated.enabled=true"], "not with collocated"),
    ([*ENSEMBLE_SET, "--set", "inferenceService.ensemble.second.name=sklearn"], "must differ"),
    (
        [
            *ENSEMBLE_SET[:2],
            "--set",
            "inferenceService.ensemble.second.storageUri=s3://ml-models/click-model/sklearn",
        ],
        "must differ",
    ),
]


@pytest.mark.parametrize(
    ("args", "message"), BAD_ENSEMBLE_VALUES, ids=[" ".join(a) for a, _ in BAD_ENSEMBLE_VALUES]
)
def test_invalid_ensemble_values_are_rejected(charts, args, message):
    stderr = charts.refused(th.UMBRELLA, th.MINIMAL, *args)
    assert message in stderr, stderr
