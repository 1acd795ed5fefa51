"""Each manifest check flags what it exists to flag: a failing fixture per ``check_*``.

The deploy tests assert that every check returns no problem for every render; a check that
always returned ``[]`` would pass them. Here each check first passes a valid overlay render
(``overlay`` fixture, tests/deploy/conftest.py), then gets the same render with one thing
broken and must name exactly that problem.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.deploy.checks.feast import check_feast
from tests.deploy.checks.kserve import check_knative_compatible, check_kserve
from tests.deploy.checks.network import check_egress_policies, check_network_policies
from tests.deploy.checks.objects import Obj, ident
from tests.deploy.checks.references import check_references, check_services
from tests.deploy.checks.stack import check_no_namespace_scoped_surprises, check_stack
from tests.deploy.checks.workloads import check_containers

pytestmark = pytest.mark.unit

Render = Callable[[str], list[Obj]]
#: what tests/deploy/test_kustomize.py declares provided outside the overlays
EXTERNAL = (
    "PersistentVolumeClaim/click-model-models",
    "Secret/redis-auth",
    "Secret/click-model-transformer-auth",
)


def get(objs: list[Obj], name: str) -> Obj:
    (found,) = [o for o in objs if ident(o) == name]
    return found


def registry_container(objs: list[Obj]) -> dict[str, Any]:
    return get(objs, "Deployment/feast-registry")["spec"]["template"]["spec"]["containers"][0]


def transformer(objs: list[Obj]) -> dict[str, Any]:
    return get(objs, "InferenceService/click-model")["spec"]["transformer"]


def transformer_container(objs: list[Obj]) -> dict[str, Any]:
    return transformer(objs)["containers"][0]


def env(container: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [e for e in container["env"] if e["name"] == name]
    return found


def ingress_policy(objs: list[Obj], name: str) -> dict[str, Any]:
    return get(objs, f"NetworkPolicy/{name}")["spec"]


@pytest.mark.parametrize("name", ["standard", "serverless"])
def test_the_fixture_renders_pass_every_check(overlay: Render, name: str) -> None:
    """The baseline the failing fixtures below break: without it, a flagged problem could be
    one the render always had."""
    objs = overlay(name)
    assert check_stack(objs, external=EXTERNAL) == []
    assert check_no_namespace_scoped_surprises(objs, allow_namespace_object=True) == []


# --------------------------------------------------------------------------- workloads

REG = "Deployment/feast-registry[registry]"


def _unpinned(objs: list[Obj]) -> None:
    registry_container(objs)["image"] = "kind.local/feast-kserve-transformer:latest"


def _root(objs: list[Obj]) -> None:
    registry_container(objs)["securityContext"]["runAsNonRoot"] = False


def _escalation(objs: list[Obj]) -> None:
    del registry_container(objs)["securityContext"]["allowPrivilegeEscalation"]


def _writable_root(objs: list[Obj]) -> None:
    registry_container(objs)["securityContext"]["readOnlyRootFilesystem"] = False


def _capabilities(objs: list[Obj]) -> None:
    registry_container(objs)["securityContext"]["capabilities"]["drop"] = ["NET_RAW"]


def _seccomp(objs: list[Obj]) -> None:
    registry_container(objs)["securityContext"]["seccompProfile"] = {"type": "Unconfined"}


def _uid(objs: list[Obj]) -> None:
    registry_container(objs)["securityContext"]["runAsUser"] = 1000


def _no_memory_limit(objs: list[Obj]) -> None:
    del registry_container(objs)["resources"]["limits"]["memory"]


def _no_readiness(objs: list[Obj]) -> None:
    del registry_container(objs)["readinessProbe"]


def _no_tmp(objs: list[Obj]) -> None:
    c = registry_container(objs)
    c["volumeMounts"] = [m for m in c["volumeMounts"] if m["mountPath"] != "/tmp"]


def _mount_without_volume(objs: list[Obj]) -> None:
    registry_container(objs)["volumeMounts"].append({"name": "ghost", "mountPath": "/ghost"})


def _v1_probe(objs: list[Obj]) -> None:
    transformer_container(objs)["readinessProbe"]["httpGet"]["path"] = "/v1/models/m"


@pytest.mark.parametrize(
    ("break_it", "problem"),
    [
        (
            _unpinned,
            f"{REG}: image 'kind.local/feast-kserve-transformer:latest' is not pinned to a tag "
            "or digest",
        ),
        (_root, f"{REG}: runAsNonRoot is not true"),
        (_escalation, f"{REG}: allowPrivilegeEscalation is not false"),
        (_writable_root, f"{REG}: readOnlyRootFilesystem is not true"),
        (_capabilities, f"{REG}: capabilities.drop lacks ALL"),
        (_seccomp, f"{REG}: seccompProfile is 'Unconfined', not RuntimeDefault"),
        (_uid, f"{REG}: runs as uid 1000, the images' user is 10001"),
        (_no_memory_limit, f"{REG}: resources.limits.memory missing"),
        (_no_readiness, f"{REG}: no readinessProbe"),
        (_no_tmp, f"{REG}: read-only root filesystem but no volume on /tmp"),
        (_mount_without_volume, f"{REG}: volumeMount 'ghost' has no volume"),
        (
            _v1_probe,
            "InferenceService/click-model.transformer[kserve-container]: readinessProbe is not "
            "GET /v2/health/ready ({'path': '/v1/models/m', 'port': 8080})",
        ),
    ],
)
def test_check_containers_flags_each_broken_container_field(
    overlay: Render, break_it: Callable[[list[Obj]], None], problem: str
) -> None:
    objs = overlay("standard")
    break_it(objs)
    assert check_containers(objs) == [problem]


# --------------------------------------------------------------------------- references


def test_check_references_flags_objects_the_render_does_not_have(overlay: Render) -> None:
    objs = overlay("standard")
    assert check_references(objs, EXTERNAL) == []
    # the user-provided objects are flagged when not declared external
    problems = check_references(objs)
    assert {p.split(": ", 1)[1] for p in problems} == {
        "PersistentVolumeClaim 'click-model-models' is not in the rendered manifests",
        "Secret 'redis-auth' is not in the rendered manifests",
        "Secret 'click-model-transformer-auth' is not in the rendered manifests",
    }
    spec = get(objs, "Deployment/feast-registry")["spec"]["template"]["spec"]
    spec["volumes"][0]["configMap"]["name"] = "feast-registry-typo"
    spec["serviceAccountName"] = "nobody"
    assert check_references(objs, EXTERNAL) == [
        "Deployment/feast-registry: ConfigMap 'feast-registry-typo' is not in the rendered "
        "manifests",
        "Deployment/feast-registry: ServiceAccount 'nobody' is not in the rendered manifests",
    ]


def test_check_services_flags_selectors_and_ports_that_match_nothing(overlay: Render) -> None:
    objs = overlay("standard")
    assert check_services(objs) == []
    get(objs, "Service/redis")["spec"]["ports"][0]["targetPort"] = "redis-tls"
    get(objs, "Service/feast-registry")["spec"]["selector"] = {"app.kubernetes.io/name": "x"}
    pdb = get(objs, "PodDisruptionBudget/feast-feature-server")
    pdb["spec"]["selector"] = {"matchLabels": {"app.kubernetes.io/name": "x"}}
    assert check_services(objs) == [
        "Service/feast-registry: selector {'app.kubernetes.io/name': 'x'} matches no pod template",
        "Service/redis: targetPort 'redis-tls' not declared by StatefulSet/redis",
        "PodDisruptionBudget/feast-feature-server: selector matches no pod template",
    ]


# --------------------------------------------------------------------------- network


def test_check_network_policies_flags_a_predictor_without_a_policy(overlay: Render) -> None:
    objs = overlay("standard")
    assert check_network_policies(objs) == []
    objs.remove(get(objs, "NetworkPolicy/click-model-predictor"))
    assert check_network_policies(objs) == [
        "no NetworkPolicy selects the predictor pods",
        "the predictor's NetworkPolicies do not admit the transformer on 8080",
    ]


def test_check_network_policies_flags_a_predictor_open_to_other_pods(overlay: Render) -> None:
    objs = overlay("standard")
    ingress_policy(objs, "click-model-predictor")["ingress"][0]["from"] = [
        {"podSelector": {"matchLabels": {"feast-kserve.io/redis-client": "true"}}}
    ]
    peer = "{'matchLabels': {'feast-kserve.io/redis-client': 'true'}}"
    assert check_network_policies(objs) == [
        f"the predictor admits {where} (peer {peer}), not only the transformer"
        for where in (
            "Deployment/feast-feature-server",
            "CronJob/feast-materialize",
            "Job/feast-bootstrap",
        )
    ]


def test_check_network_policies_flags_a_redis_client_redis_refuses(overlay: Render) -> None:
    objs = overlay("standard")
    labels = get(objs, "CronJob/feast-materialize")["spec"]["jobTemplate"]["spec"]["template"]
    del labels["metadata"]["labels"]["feast-kserve.io/redis-client"]
    assert check_network_policies(objs) == [
        "CronJob/feast-materialize uses Redis but the Redis NetworkPolicy does not admit it"
    ]


def test_check_network_policies_flags_redis_open_to_a_non_client(overlay: Render) -> None:
    objs = overlay("standard")
    ingress_policy(objs, "redis")["ingress"][0]["from"].append(
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "feast-registry"}}}
    )
    assert check_network_policies(objs) == [
        "Redis admits Deployment/feast-registry, which does not use Redis"
    ]


def test_check_egress_policies_flags_a_pod_without_dns_or_policy(overlay: Render) -> None:
    objs = overlay("standard")
    assert check_egress_policies(objs, serverless=False) == []
    objs.remove(get(objs, "NetworkPolicy/redis-egress"))
    get(objs, "NetworkPolicy/click-model-predictor-egress")["spec"]["egress"] = [
        {"to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "redis"}}}]}
    ]
    assert check_egress_policies(objs, serverless=False) == [
        "the predictor's egress does not reach DNS (kube-system, 53/UDP)",
        "NetworkPolicy/click-model-predictor-egress: predictor egress to "
        '{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "redis"}}}, '
        "which is none of its dependencies",
        "no egress NetworkPolicy selects redis (StatefulSet/redis)",
    ]


def test_check_egress_policies_flags_open_peers(overlay: Render) -> None:
    objs = overlay("standard")
    egress = get(objs, "NetworkPolicy/click-model-transformer-egress")["spec"]["egress"]
    egress.append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]})
    egress.append({"to": [{"namespaceSelector": {}}]})
    egress.append({"ports": [{"port": 443}]})
    np = "NetworkPolicy/click-model-transformer-egress"
    assert check_egress_policies(objs, serverless=False) == [
        f'{np}: transformer egress to an ipBlock {{"ipBlock": {{"cidr": "0.0.0.0/0"}}}}',
        f'{np}: transformer egress to every namespace {{"namespaceSelector": {{}}}}',
        f"{np}: an egress rule without 'to' opens everything",
    ]


def test_check_egress_policies_flags_an_unreachable_dependency(overlay: Render) -> None:
    objs = overlay("standard")
    egress = get(objs, "NetworkPolicy/click-model-transformer-egress")["spec"]["egress"]
    egress[:] = [r for r in egress if "8080" not in str(r.get("ports"))]
    assert check_egress_policies(objs, serverless=False) == [
        "the transformer's egress does not reach InferenceService/click-model.predictor on 8080"
    ]


# --------------------------------------------------------------------------- Feast


def _feature_store_yaml(objs: list[Obj]) -> dict[str, Any]:
    return next(o for o in objs if "feature_store.yaml" in (o.get("data") or {}))


def test_check_feast_flags_a_wrong_project_and_registry(overlay: Render) -> None:
    objs = overlay("standard")
    assert check_feast(objs) == []
    cm = _feature_store_yaml(objs)
    name = cm["metadata"]["name"]
    text = cm["data"]["feature_store.yaml"]
    assert "project: click_inference" in text and "feast-registry:6570" in text, text
    cm["data"]["feature_store.yaml"] = text.replace(
        "project: click_inference", "project: other"
    ).replace("feast-registry:6570", "feast-registry:6571")
    assert check_feast(objs) == [
        f"ConfigMap/{name}: project 'other' is not click_inference",
        f"ConfigMap/{name}: registry port 6571 not on Service/feast-registry",
    ]


def test_check_feast_flags_redis_wiring(overlay: Render) -> None:
    objs = overlay("standard")
    c = transformer_container(objs)
    env(c, "REDIS_CONNECTION_STRING")["value"] = "redis:6380,password=$(REDIS_PASSWORD)"
    env(c, "FEAST_FS_YAML_FILE_PATH")["value"] = "/feature_store.yaml"
    where = "InferenceService/click-model.transformer"
    assert check_feast(objs) == [
        f"{where}: Redis redis:6380 is not a rendered Service port",
        f"{where}: FEAST_FS_YAML_FILE_PATH is '/feature_store.yaml'",
    ]
    c["env"] = [e for e in c["env"] if e["name"] != "REDIS_PASSWORD"]
    assert (
        f"{where}: REDIS_PASSWORD must be defined before REDIS_CONNECTION_STRING for "
        "$(REDIS_PASSWORD) to expand"
    ) in check_feast(objs)


# --------------------------------------------------------------------------- KServe


def test_check_kserve_flags_injected_transformer_flags(overlay: Render) -> None:
    objs = overlay("standard")
    assert check_kserve(objs) == []
    transformer_container(objs)["args"] += ["--model_name", "click-model"]
    assert check_kserve(objs) == ["transformer sets --model_name, which KServe injects"]


def test_check_kserve_flags_replicas_without_a_disruption_budget(overlay: Render) -> None:
    objs = overlay("standard")
    objs.remove(get(objs, "PodDisruptionBudget/click-model-predictor"))
    assert check_kserve(objs) == ["predictor: 2 replicas but no PodDisruptionBudget"]


def test_check_kserve_flags_a_model_without_resources(overlay: Render) -> None:
    objs = overlay("standard")
    del get(objs, "InferenceService/click-model")["spec"]["predictor"]["model"]["resources"]
    assert check_kserve(objs) == [
        "predictor.model has no resource requests: KServe's defaulting webhook would replace "
        "the ServingRuntime's with its cluster-wide defaults"
    ]


def test_check_kserve_flags_an_hpa_metric_knative_has_no_use_for(overlay: Render) -> None:
    objs = overlay("serverless")
    assert check_kserve(objs) == []
    transformer(objs)["scaleMetric"] = "cpu"
    assert check_kserve(objs) == ["transformer: scaleMetric cpu needs HPA (RawDeployment)"]


def test_check_knative_compatible_flags_fields_knative_rejects(overlay: Render) -> None:
    objs = overlay("serverless")
    assert check_knative_compatible(objs) == []
    transformer(objs)["nodeSelector"] = {"disk": "ssd"}
    transformer_container(objs)["securityContext"]["privileged"] = False
    assert check_knative_compatible(objs) == [
        "transformer: `nodeSelector` needs a Knative feature flag (config-features)",
        "transformer[kserve-container]: Knative rejects securityContext fields ['privileged']",
    ]
    # the same objects are fine where no Knative is involved
    standard = overlay("standard")
    transformer(standard)["nodeSelector"] = {"disk": "ssd"}
    transformer_container(standard)["securityContext"]["privileged"] = False
    assert check_knative_compatible(standard) == []


# --------------------------------------------------------------------------- stack


def test_check_no_namespace_scoped_surprises_flags_cluster_objects(overlay: Render) -> None:
    objs = overlay("standard")
    assert check_no_namespace_scoped_surprises(objs, allow_namespace_object=True) == []
    objs.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                 "metadata": {"name": "admin-ish"}})  # fmt: skip
    assert check_no_namespace_scoped_surprises(objs, allow_namespace_object=False) == [
        "Namespace/feast-inference: the Helm chart must not create its namespace",
        "ClusterRole/admin-ish: cluster-scoped object in an application install",
    ]


def test_check_stack_runs_every_check_and_reports_a_crash_as_a_problem(overlay: Render) -> None:
    objs = overlay("standard")
    _unpinned(objs)
    assert check_stack(objs, external=EXTERNAL) == [
        f"{REG}: image 'kind.local/feast-kserve-transformer:latest' is not pinned to a tag "
        "or digest"
    ]
    del get(objs, "Service/redis")["spec"]
    problems = check_stack(objs, external=EXTERNAL)
    assert "check_services could not check the manifests: KeyError: 'spec'" in problems
