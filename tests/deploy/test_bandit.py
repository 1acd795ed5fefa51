"""The bandit deployment (kustomize overlay `bandit`, the Helm chart's `bandit` values): the
bandit file parses with the transformer's own BanditConfig, the chart's schema holds the same
limits as that model, the arms are predictors the transformer may reach, and the bandit's Redis
password comes from the online store's Secret; each check shown catching a break. Schemas and
the stack invariants of every render are also checked by test_kustomize.py / test_helm.py
(ci/bandit-values.yaml) and test_parity.py (overlay against chart)."""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy import bandit_checks as bc
from tests.deploy import charts as th
from tests.deploy import validation as v
from tests.deploy.parity import kustomize
from transformer.multimodel.bandit import ArmConfig, BanditConfig, load_config

pytestmark = pytest.mark.unit


@functools.cache
def _render() -> tuple[v.Obj, ...]:
    return tuple(kustomize("bandit"))


def overlay() -> list[v.Obj]:
    return copy.deepcopy(list(_render()))


def one(objs: list[v.Obj], kind: str, name: str) -> v.Obj:
    """The object of that kind and name (a generated ConfigMap's name with its hash)."""
    (o,) = [
        o
        for o in objs
        if o["kind"] == kind and re.fullmatch(rf"{name}(-[a-z0-9]{{10}})?", o["metadata"]["name"])
    ]
    return o


def transformer(objs: list[v.Obj]) -> dict[str, Any]:
    isvc = one(objs, "InferenceService", v._isvc(objs)["metadata"]["name"])
    return isvc["spec"]["transformer"]["containers"][0]


def env(objs: list[v.Obj]) -> dict[str, Any]:
    return {e["name"]: e for e in transformer(objs)["env"]}


# --------------------------------------------------------------------------- kustomize


def test_the_overlay_passes_every_bandit_check():
    objs = overlay()
    assert bc.check_bandit(objs) == []
    found, _ = bc.arms(objs)
    assert [(a.isvc or {})["spec"]["predictor"]["model"]["storageUri"] for a in found] == [
        "pvc://click-model-models/sklearn",
        "pvc://click-model-models/xgboost",
    ]
    assert env(objs)["TRANSFORMER_BANDIT_REDIS"]["value"] == (
        "redis://:$(REDIS_PASSWORD)@redis:6379/0"
    )


def test_the_overlay_bandit_file_loads_with_the_transformers_loader(tmp_path: Path):
    cm = one(overlay(), "ConfigMap", "click-model-bandit")
    path = tmp_path / "bandit.yaml"
    path.write_text(cm["data"]["bandit.yaml"])
    cfg = load_config(path)  # what the transformer runs at start-up
    assert cfg.policy == "thompson" and len(cfg.arms) == 2


def _set_file(objs: list[v.Obj], change) -> None:
    cm = one(objs, "ConfigMap", "click-model-bandit")
    raw = yaml.safe_load(cm["data"]["bandit.yaml"])
    change(raw)
    cm["data"]["bandit.yaml"] = yaml.safe_dump(raw)


def _break(how: str):
    def apply(objs: list[v.Obj]) -> None:
        c = transformer(objs)
        if how == "floor":  # 0.6 > 0.5: the model refuses it
            _set_file(objs, lambda r: r.update(floor=0.6))
        elif how == "one-arm":
            _set_file(objs, lambda r: r.update(arms=r["arms"][:1]))
        elif how == "extra-key":
            _set_file(objs, lambda r: r["arms"][0].update(port=80))
        elif how == "unknown-arm":
            _set_file(
                objs,
                lambda r: r["arms"][1].update(
                    host="click-model-lgbm-predictor.feast-inference.svc.cluster.local"
                ),
            )
        elif how == "wrong-model":
            _set_file(objs, lambda r: r["arms"][1].update(model_name="click-model"))
        elif how == "same-model":
            one(objs, "InferenceService", "click-model-xgboost")["spec"]["predictor"]["model"][
                "storageUri"
            ] = "pvc://click-model-models/sklearn"
        elif how == "ensemble-member-unknown":
            _set_file(objs, lambda r: r["arms"].append(_ensemble_arm("click-model-lgbm")))
        elif how == "no-arg":
            c["args"] = [a for a in c["args"] if "bandit" not in a]
        elif how == "no-mount":
            c["volumeMounts"] = [m for m in c["volumeMounts"] if m["name"] != "bandit"]
        elif how == "writable-mount":
            (m,) = [m for m in c["volumeMounts"] if m["name"] == "bandit"]
            m["readOnly"] = False
        elif how == "no-redis":
            c["env"] = [e for e in c["env"] if e["name"] != "TRANSFORMER_BANDIT_REDIS"]
        elif how == "literal-password":
            env(objs)["TRANSFORMER_BANDIT_REDIS"]["value"] = "redis://:hunter2@redis:6379/0"
        elif how == "password-after":
            e = c["env"]
            (i,) = [i for i, x in enumerate(e) if x["name"] == "TRANSFORMER_BANDIT_REDIS"]
            e.append(e.pop(i))
            (j,) = [j for j, x in enumerate(e) if x["name"] == "REDIS_PASSWORD"]
            e.append(e.pop(j))
        elif how == "other-redis":
            env(objs)["TRANSFORMER_BANDIT_REDIS"]["value"] = (
                "redis://:$(REDIS_PASSWORD)@other-redis:6379/0"
            )
        elif how == "tls-mismatch":
            env(objs)["TRANSFORMER_BANDIT_REDIS"]["value"] = (
                "rediss://:$(REDIS_PASSWORD)@redis:6379/0"
            )
        elif how == "redis-in-args":
            c["args"] += ["--bandit_redis", "redis://:$(REDIS_PASSWORD)@redis:6379/0"]
        elif how == "arm-outside-policies":
            labels = one(objs, "InferenceService", "click-model-xgboost")["spec"]["predictor"][
                "labels"
            ]
            labels["feast-kserve.io/inferenceservice"] = "click-model-xgboost"
        elif how == "egress-cut":
            pol = one(objs, "NetworkPolicy", "click-model-transformer-egress")
            pol["spec"]["egress"] = [
                r for r in pol["spec"]["egress"] if not re.search("knative|predictor", str(r))
            ]

    return apply


def _ensemble_arm(second: str) -> dict[str, Any]:
    """An arm that is the ensemble of click-model's predictor and ``second``."""
    host = "{}-predictor.feast-inference.svc.cluster.local"
    return {
        "ensemble": {
            "members": [
                {"name": "sklearn", "host": host.format("click-model")},
                {"name": "other", "host": host.format(second), "model_name": second},
            ]
        }
    }


def test_an_ensemble_arm_over_rendered_predictors_passes():
    objs = overlay()
    _set_file(objs, lambda r: r["arms"].append(_ensemble_arm("click-model-xgboost")))
    assert bc.check_bandit(objs) == []
    found, _ = bc.arms(objs)
    assert [(a.index, (a.isvc or {})["metadata"]["name"]) for a in found] == [
        (0, "click-model"),
        (1, "click-model-xgboost"),
        (2, "click-model"),
        (2, "click-model-xgboost"),
    ]


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("floor", "the transformer would refuse this bandit file"),
        ("one-arm", "arms\n  Tuple should have at least 2 items"),
        ("extra-key", "Extra inputs are not permitted"),
        ("unknown-arm", "arms.1: click-model-lgbm-predictor.feast-inference.svc.cluster.local is"),
        ("wrong-model", "serves model 'click-model-xgboost', not 'click-model'"),
        ("same-model", "two arms serve the same model"),
        (
            "ensemble-member-unknown",
            "arms.2: click-model-lgbm-predictor.feast-inference.svc.cluster.local is no rendered",
        ),
        ("no-arg", "the transformer has no --bandit_file"),
        ("no-mount", "no volume is mounted at /etc/transformer-bandit"),
        ("writable-mount", "writable, not readOnly"),
        ("no-redis", "the transformer has no TRANSFORMER_BANDIT_REDIS"),
        ("literal-password", "is not redis[s]://:$(REDIS_PASSWORD)@host:port/db"),
        ("password-after", "REDIS_PASSWORD is not defined before TRANSFORMER_BANDIT_REDIS"),
        ("other-redis", "the bandit's Redis other-redis:6379 is not the online store's"),
        ("tls-mismatch", "the bandit's Redis TLS differs from the online store's"),
        ("redis-in-args", "a Redis address (and its password) is in the transformer's args"),
        ("arm-outside-policies", "no NetworkPolicy selects bandit arm 1"),
        ("egress-cut", "the transformer's egress does not reach bandit arm 0"),
    ],
)
def test_bandit_checks_catch(how, message):
    objs = overlay()
    _break(how)(objs)
    problems = bc.check_bandit(objs)
    assert any(message in p for p in problems), problems


# --------------------------------------------------------------------------- Helm


@pytest.fixture(scope="module")
def charts(tmp_path_factory) -> th.Helm:
    root = tmp_path_factory.mktemp("helm")
    shutil.copytree(th.HELM_SRC, root / "helm", ignore=shutil.ignore_patterns("charts", "*.tgz"))
    h = th.Helm(root)
    h.run("dependency", "build", str(h.charts / th.UMBRELLA))
    return h


CHART = "inference-service"
CI = "bandit-values.yaml"
ARMS = [{"name": "sklearn"}, {"name": "xgboost", "storageUri": "s3://ml-models/click-model/xgb"}]
BANDIT_SET = (
    "--set",
    "inferenceService.bandit.enabled=true",
    "--set-json",
    f"inferenceService.bandit.arms={json.dumps(ARMS)}",
)


def test_the_chart_renders_no_bandit_by_default(charts):
    objs = charts.render(CHART, "minimal-values.yaml")
    assert "bandit" not in json.dumps(objs)
    assert len([o for o in objs if o["kind"] == "InferenceService"]) == 1


def test_the_chart_ci_values_render_the_configmap_mount_args_and_redis(charts, tmp_path: Path):
    objs = charts.render(CHART, CI)
    assert bc.check_bandit(objs) == []
    c = transformer(objs)
    i = c["args"].index("--bandit_file")
    assert c["args"][i + 1] == "/etc/transformer-bandit/bandit.yaml"
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/etc/transformer-bandit"]
    assert mount["readOnly"] is True
    isvc = v._isvc(objs)
    (vol,) = [x for x in isvc["spec"]["transformer"]["volumes"] if x["name"] == mount["name"]]
    assert vol["configMap"]["name"] == "feast-kserve-click-model-bandit"
    e = env(objs)
    assert e["TRANSFORMER_BANDIT_REDIS"]["value"] == (
        "redis://:$(REDIS_PASSWORD)@feast-kserve-redis:6379/0"
    )
    assert e["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "feast-kserve-redis-auth",
        "key": "redis-password",
    }
    assert "checksum/bandit" in isvc["spec"]["transformer"]["annotations"]
    # the rendered file, through the transformer's own loader
    path = tmp_path / "bandit.yaml"
    path.write_text(
        one(objs, "ConfigMap", "feast-kserve-click-model-bandit")["data"]["bandit.yaml"]
    )
    cfg = load_config(path)
    assert cfg.floor == 0.05 and cfg.prediction_ttl_s == 7200
    assert cfg.key_prefix == "bandit:feast-kserve-click-model"
    assert [(a.host, a.model_name, a.timeout_s) for a in cfg.arms] == [
        ("feast-kserve-click-model-predictor.feast-inference.svc.cluster.local",
         "feast-kserve-click-model", None),
        ("feast-kserve-click-model-xgboost-predictor.feast-inference.svc.cluster.local",
         "feast-kserve-click-model-xgboost", 1.5),
    ]  # fmt: skip
    arm = one(objs, "InferenceService", "feast-kserve-click-model-xgboost")
    assert arm["spec"]["predictor"]["labels"]["feast-kserve.io/bandit-arm"] == "xgboost"


@pytest.mark.parametrize("mode", ["Knative", "Standard"])
def test_the_umbrella_chart_with_the_bandit_meets_the_stack_invariants(charts, mode):
    objs = charts.render(
        th.UMBRELLA, th.MINIMAL, *BANDIT_SET, "--set", f"inferenceService.deploymentMode={mode}"
    )
    problems = [p for o in objs for p in v.schema_errors(o)]
    problems += v.check_stack(objs, external=["PersistentVolumeClaim/click-model-models"])
    problems += bc.check_bandit(objs)
    assert not problems, "\n".join(problems)
    assert len([o for o in objs if o["kind"] == "InferenceService"]) == 2


def test_an_arm_deployed_elsewhere_gets_its_egress_rule(charts):
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "models"}}}
    arms = [
        {"name": "sklearn"},
        {
            "name": "lgbm",
            "host": "lgbm-predictor.models.svc.cluster.local:8443",
            "modelName": "lgbm",
            "useSsl": True,
            "egressTo": [peer],
        },
    ]
    objs = charts.render(
        CHART,
        CI,
        "--set-json",
        f"bandit.arms={json.dumps(arms)}",
        "--set",
        "deploymentMode=Standard",
    )
    assert len([o for o in objs if o["kind"] == "InferenceService"]) == 1
    cfg, _ = bc.bandit_config(objs)
    assert cfg is not None
    assert cfg.arms[1] == ArmConfig(
        host="lgbm-predictor.models.svc.cluster.local:8443", model_name="lgbm", use_ssl=True
    )
    assert bc.check_bandit(objs) == []
    pol = one(objs, "NetworkPolicy", "feast-kserve-click-model-transformer-egress")
    rules = [r for r in pol["spec"]["egress"] if r.get("to") == [peer]]
    assert rules == [{"to": [peer], "ports": [{"port": 8443, "protocol": "TCP"}]}]
    # without the rule the check flags the arm
    pol["spec"]["egress"].remove(rules[0])
    assert bc.check_arm_network_policies(objs) == [
        "the transformer's egress has no rule to bandit arm 1 "
        "(lgbm-predictor.models.svc.cluster.local:8443) on 8443"
    ]


def test_a_tls_redis_gives_the_bandit_rediss(charts):
    objs = charts.render(CHART, CI, "--set", "redis.ssl=true")
    assert env(objs)["TRANSFORMER_BANDIT_REDIS"]["value"].startswith("rediss://")
    assert bc.check_bandit_redis(objs) == []


# The chart's schema holds the limits of BanditConfig / ArmConfig: chart key -> model field.
ARM_FIELDS = {
    "host": "host",
    "modelName": "model_name",
    "protocol": "protocol",
    "useSsl": "use_ssl",
    "timeoutSeconds": "timeout_s",
}
CONSTRAINTS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "enum",
    "pattern",
    "minLength",
)


def _limits(schema: dict[str, Any]) -> dict[str, Any]:
    """The constraints of a field (of its non-null / non-empty branch)."""
    for branch in schema.get("anyOf") or []:
        if branch.get("type") != "null" and branch.get("const") != "":
            schema = branch
    return {k: schema[k] for k in CONSTRAINTS if k in schema}


def _chart_schema() -> dict[str, Any]:
    return json.loads((th.HELM_SRC / CHART / "values.schema.json").read_text())


def test_the_chart_schema_holds_the_bandit_models_limits():
    bandit = _chart_schema()["properties"]["bandit"]
    model = BanditConfig.model_json_schema()
    fields = model["properties"]
    config = bandit["properties"]["config"]["properties"]
    assert set(config) == set(fields) - {"arms", "seed"}  # seed: tests only
    for key, schema in config.items():
        assert _limits(schema) == _limits(fields[key]), key
    arms = bandit["properties"]["arms"]
    assert arms["minItems"] == fields["arms"]["minItems"]
    arm_fields = model["$defs"]["ArmConfig"]["properties"]
    # an arm that is an ensemble is the bandit file's (docs/multi-model.md), not the chart's
    assert set(ARM_FIELDS.values()) == set(arm_fields) - {"ensemble"}
    for chart_key, field in ARM_FIELDS.items():
        chart_limits = _limits(arms["items"]["properties"][chart_key])
        chart_limits.pop("pattern", None) if field == "host" else None  # the chart is stricter
        assert chart_limits == _limits(arm_fields[field]), chart_key


def test_the_limits_comparison_notices_a_drift():
    drifted = {**_chart_schema()["properties"]["bandit"]["properties"]["config"]["properties"]}
    drifted["floor"] = {"type": "number", "minimum": 0, "maximum": 1}
    fields = BanditConfig.model_json_schema()["properties"]
    assert _limits(drifted["floor"]) != _limits(fields["floor"])


def _arms(*arms: dict[str, Any]) -> list[str]:
    return ["--set-json", f"inferenceService.bandit.arms={json.dumps(list(arms))}"]


def _config(**kv: Any) -> list[str]:
    return [
        a
        for k, x in kv.items()
        for a in ("--set-json", f"inferenceService.bandit.config.{k}={json.dumps(x)}")
    ]


SK = {"name": "sklearn"}
XG = ARMS[1]
EXT = {"name": "ext", "host": "m.models.svc.cluster.local", "egressTo": [{"podSelector": {}}]}
BAD_BANDIT_VALUES = [
    # schema: BanditConfig's limits
    (_arms(SK), "/bandit/arms"),
    (_arms(SK, {**XG, "name": "XGB"}), "/bandit/arms/1/name"),
    (_arms(SK, {**XG, "storageUri": "ftp://x"}), "/bandit/arms/1/storageUri"),
    (_arms(SK, {**XG, "storageUri": ""}), "/bandit/arms/1/storageUri"),  # enabled: required
    (_arms(SK, {**XG, "host": "x.y:80"}), "/bandit/arms/1': 'not' failed"),  # storageUri and host
    (_arms(SK, {**XG, "modelName": "m"}), "properties 'host' required"),  # modelName needs host
    (_arms(SK, {**EXT, "protocol": "v1"}), "/bandit/arms/1/protocol"),
    (_arms(SK, {**EXT, "host": "a b"}), "/bandit/arms/1/host"),
    (_arms(SK, {**XG, "timeoutSeconds": 0}), "/bandit/arms/1/timeoutSeconds"),
    (_arms(SK, {**XG, "port": 80}), "additional properties 'port'"),
    (_config(policy="ucb"), "/bandit/config/policy"),
    (_config(floor=0.6), "/bandit/config/floor"),
    (_config(floor=-0.1), "/bandit/config/floor"),
    (_config(indifference=1), "/bandit/config/indifference"),
    (_config(epsilon=1.5), "/bandit/config/epsilon"),
    (_config(refresh_ms=10), "/bandit/config/refresh_ms"),
    (_config(prediction_ttl_s=0), "/bandit/config/prediction_ttl_s"),
    (_config(prediction_ttl_s=3_000_000), "/bandit/config/prediction_ttl_s"),
    (_config(arm_cooldown_s=-1), "/bandit/config/arm_cooldown_s"),
    (_config(key_prefix="bandit key"), "/bandit/config/key_prefix"),
    (_config(record_linger_ms=2000), "/bandit/config/record_linger_ms"),
    (_config(record_queue_size=0), "/bandit/config/record_queue_size"),
    (_config(seed=1), "additional properties 'seed'"),
    # templates: what a schema cannot say
    (_arms(SK, {**XG, "name": "sklearn"}), "two arms with the same name"),
    (_arms(SK, {"name": "again"}), "only one can be the chart's predictor"),
    (
        _arms(SK, {**XG, "storageUri": "s3://ml-models/click-model/sklearn"}),
        "is served by another arm or the predictor",
    ),
    (_arms(SK, XG, {**XG, "name": "xgb2"}), "is served by another arm or the predictor"),
    (_arms(SK, {k: x for k, x in EXT.items() if k != "egressTo"}), "egressTo is required"),
    (_arms(SK, XG, {**XG, "name": "c", "storageUri": "s3://c"}) + _config(floor=0.4), "exceeds 1"),
    (["--set", "inferenceService.collocated.enabled=true"], "bandit.enabled and collocated"),
    (
        [
            "--set",
            "inferenceService.ensemble.enabled=true",
            "--set",
            "inferenceService.ensemble.second.storageUri=s3://ml-models/e",
        ],
        "bandit.enabled and ensemble.enabled exclude each other",
    ),
    (
        [
            "--set",
            "inferenceService.canary.enabled=true",
            "--set",
            "inferenceService.canary.storageUri=s3://ml-models/c",
        ],
        "make the new model an arm instead",
    ),
]


def test_the_values_the_bad_cases_change_render(charts):
    """Each bad case below changes one thing of this render, which is accepted."""
    assert bc.check_bandit(charts.render(th.UMBRELLA, th.MINIMAL, *BANDIT_SET)) == []


@pytest.mark.parametrize(
    ("args", "message"), BAD_BANDIT_VALUES, ids=[" ".join(a) for a, _ in BAD_BANDIT_VALUES]
)
def test_invalid_bandit_values_are_rejected(charts, args, message):
    stderr = charts.refused(th.UMBRELLA, th.MINIMAL, *BANDIT_SET, *args)
    assert message in stderr, stderr
