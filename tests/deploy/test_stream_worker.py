"""The stream inference worker in the Helm chart and the kustomize component: off by default,
rendered with its PDB, NetworkPolicies and (optionally) KEDA objects when switched on, valid
against KEDA's CRD, and each check of ``stream_checks`` shown to flag what it exists for."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.deploy import stream_checks as sc
from tests.deploy import validation as v
from tests.deploy.parity import Helm, kustomize

pytestmark = pytest.mark.unit

UMBRELLA_CI = v.REPO / "helm" / "feast-kserve" / "ci"
ISVC = v.REPO / "helm" / "inference-service"
WORKER = "feast-kserve-click-model-stream-worker"


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(tmp_path_factory.mktemp("stream"))


@pytest.fixture(scope="module")
def keda_render(helm: Helm) -> list[v.Obj]:
    """ci/stream-values.yaml: Standard mode, the worker scaled by KEDA."""
    return helm.template("-f", str(UMBRELLA_CI / "stream-values.yaml"))


def _values(name: str) -> list[str]:
    return ["-f", str(UMBRELLA_CI / name)]


def isvc_template(*args: str, expect_ok: bool = True):
    cmd = [v.tool("helm"), "template", "r", str(ISVC), "-n", v.NAMESPACE]
    return v.run([*cmd, "-f", str(ISVC / "ci" / "minimal-values.yaml"), *args], expect_ok=expect_ok)


# --------------------------------------------------------------------------- renders


@pytest.mark.parametrize("values", ["minimal-values.yaml", "standard-values.yaml"])
def test_the_worker_is_off_by_default(helm: Helm, values: str) -> None:
    objs = helm.template(*_values(values))
    assert not sc.check_stream_worker(objs, expect=False)
    assert not [o for o in objs if "stream-worker" in o["metadata"]["name"]]
    assert not [o for o in objs if o["apiVersion"].startswith("keda.sh/")]


@pytest.mark.parametrize("overlay", ["serverless", "standard", "canary", "collocated"])
def test_no_kustomize_overlay_but_stream_has_the_worker(overlay: str) -> None:
    assert not sc.check_stream_worker(kustomize(overlay), expect=False)


def test_keda_render_is_valid_and_complete(keda_render: list[v.Obj]) -> None:
    kinds = {(o["kind"], o["metadata"]["name"]) for o in keda_render}
    for kind in (
        "ServiceAccount",
        "Deployment",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ScaledObject",
    ):
        assert (kind, WORKER) in kinds, kind
    assert ("TriggerAuthentication", f"{WORKER}-redis") in kinds
    assert ("NetworkPolicy", f"{WORKER}-egress") in kinds
    problems = sc.check_stream_worker(keda_render)
    problems += [p for o in keda_render for p in v.schema_errors(o)]
    problems += v.check_stack(keda_render)
    assert not problems, "\n".join(problems)
    (so,) = [o for o in keda_render if o["kind"] == "ScaledObject"]
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (2, 6)
    assert so["spec"]["triggers"][0]["metadata"]["pendingEntriesCount"] == "500"
    (dep,) = [
        o for o in keda_render if o["kind"] == "Deployment" and o["metadata"]["name"] == WORKER
    ]
    env = {
        e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["STREAM_BATCH_SIZE"] == "250"
    assert env["STREAM_PREDICTOR_HOST"] == f"feast-kserve-click-model-predictor.{v.NAMESPACE}"


def test_serverless_render_without_keda(helm: Helm) -> None:
    """The kind values (Knative, predictor scaling to zero): a fixed replica count, the
    predictor reached through Knative's namespaces, its cold start covered by the timeouts."""
    objs = helm.template(*_values("serverless-values.yaml"))
    problems = sc.check_stream_worker(objs) + v.check_stack(
        objs, external=["PersistentVolumeClaim/click-model-models"]
    )
    assert not problems, "\n".join(problems)
    assert not [o for o in objs if o["apiVersion"].startswith("keda.sh/")]
    (dep,) = [
        o for o in objs if o["kind"] == "Deployment" and "stream-worker" in o["metadata"]["name"]
    ]
    assert dep["spec"]["replicas"] == 1
    env = {
        e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    # a cold predictor: 120 s calls; its metadata retried for ever (the worker is ready
    # without it, so the rollout never waits for the predictor)
    assert (env["STREAM_PREDICTOR_TIMEOUT_S"], env["STREAM_PREDICTOR_WAIT_S"]) == ("120", "0")


def e2e_contract(objs: list[v.Obj], isvc: str, redis_secret: str) -> list[str]:
    """What tests/e2e/test_stream.py's cluster fixture assumes of a kind deployment (its
    defaults), and what keeps the worker's rollout independent of the predictor."""
    from tests.e2e import test_stream as e2e

    problems: list[str] = []
    workers = [
        o for o in objs if o["kind"] == "Deployment" and "stream-worker" in o["metadata"]["name"]
    ]
    if len(workers) != 1:
        return [f"expected one stream worker Deployment, got {len(workers)}"]
    pod = workers[0]["spec"]["template"]
    key, value = e2e.WORKER_SELECTOR.split("=")
    if pod["metadata"]["labels"].get(key) != value:
        problems.append(f"worker pods lack the label {e2e.WORKER_SELECTOR}")
    (c,) = pod["spec"]["containers"]
    if e2e.WORKER_PORT not in [p["containerPort"] for p in c.get("ports") or []]:
        problems.append(f"worker container does not declare port {e2e.WORKER_PORT}")
    probe = (c.get("readinessProbe") or {}).get("httpGet") or {}
    if (probe.get("path"), probe.get("port")) != ("/readyz", e2e.WORKER_PORT):
        problems.append(f"worker readinessProbe is {probe}, not /readyz on {e2e.WORKER_PORT}")
    env = {e["name"]: e for e in c["env"]}
    want = {
        "STREAM_STREAM": e2e.EVENTS,
        "STREAM_OUTPUT_STREAM": e2e.DECISIONS,
        "STREAM_MODEL_NAME": isvc,
        "STREAM_PREDICTOR_HOST": f"{isvc}-predictor.{v.NAMESPACE}",
        # never gives up on the predictor: no crash loop while it is created or cold
        "STREAM_PREDICTOR_WAIT_S": "0",
    }
    for name, value in want.items():
        if env.get(name, {}).get("value") != value:
            problems.append(f"worker {name} is {env.get(name, {}).get('value')!r}, not {value!r}")
    ref = env.get("REDIS_PASSWORD", {}).get("valueFrom", {}).get("secretKeyRef", {})
    if (ref.get("name"), ref.get("key")) != (redis_secret, e2e.REDIS_PASSWORD_KEY):
        problems.append(f"worker's Redis password from {ref}, not {redis_secret}")
    rkey, rvalue = e2e.REDIS_SELECTOR.split("=")
    if not [
        s
        for s in v.pod_sources(objs)
        if s.kind in ("Deployment", "StatefulSet") and s.labels.get(rkey) == rvalue
    ]:
        problems.append(f"no Redis pods labelled {e2e.REDIS_SELECTOR}")
    return problems


def test_both_kind_deployments_give_the_e2e_stream_test_what_it_assumes(helm: Helm) -> None:
    """Helm (deploy.sh writes E2E_REDIS_SECRET=<release>-redis-auth) and overlays/kind
    (redis-auth, created by deploy.sh)."""
    assert not e2e_contract(
        helm.template(*_values("serverless-values.yaml")), "click-model", "feast-kserve-redis-auth"
    )
    assert not e2e_contract(kustomize("kind"), "click-model", "redis-auth")


def test_the_e2e_contract_check_flags_a_mismatch(helm: Helm) -> None:
    objs = copy.deepcopy(kustomize("kind"))
    (dep,) = [
        o
        for o in objs
        if o["metadata"]["name"] == "click-model-stream-worker" and o["kind"] == "Deployment"
    ]
    pod = dep["spec"]["template"]
    del pod["metadata"]["labels"]["feast-kserve.io/component"]
    c = pod["spec"]["containers"][0]
    c["readinessProbe"]["httpGet"]["path"] = "/healthz"
    for e in c["env"]:
        if e["name"] == "STREAM_PREDICTOR_WAIT_S":
            e["value"] = "300"
    problems = "\n".join(e2e_contract(objs, "click-model", "feast-kserve-redis-auth"))
    for what in ("label", "readinessProbe", "STREAM_PREDICTOR_WAIT_S", "Redis password"):
        assert what in problems, problems


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "streamWorker.enabled=true", "--set", "streamWorker.batchSize=0"], "batchSize"),
        (["--set", "streamWorker.enabled=true", "--set", "streamWorker.blockMs=120000"], "blockMs"),
        (["--set", "streamWorker.enabled=true", "--set", "streamWorker.startId=latest"], "startId"),
        (["--set", "streamWorker.enabled=true", "--set", "streamWorker.stream=a b"], "stream"),
        (["--set", "streamWorker.enabled=true", "--set", "streamWorker.replicas=0"], "replicas"),
        (["--set", "streamWorker.keda.pendingEntriesCount=0"], "pendingEntriesCount"),
        (["--set", "streamWorker.keda.maxReplicaCount=0"], "maxReplicaCount"),
        (["--set", "streamWorker.keda.minReplicaCount=0"], "minReplicaCount"),
        (["--set", "streamWorker.kedda.enabled=true"], "kedda"),
        (["--set", "streamWorker.image.tag=latest"], "tag"),
        (["--set", "streamWorker.predictorWaitSeconds=-1"], "predictorWaitSeconds"),
        (
            [
                "--set",
                "streamWorker.keda.minReplicaCount=5",
                "--set",
                "streamWorker.keda.maxReplicaCount=2",
            ],
            "maxReplicaCount (2) must be >= streamWorker.keda.minReplicaCount (5)",
        ),
        (
            ["--set", "streamWorker.enabled=true", "--set", "collocated.enabled=true"],
            "streamWorker",
        ),
    ],
)
def test_invalid_worker_values_are_refused(args: list[str], message: str) -> None:
    proc = isvc_template(*args, expect_ok=False)
    assert proc.returncode != 0, f"accepted: {args}"
    assert message in proc.stderr, proc.stderr


def test_notes_say_how_to_publish_only_when_the_worker_is_on(helm: Helm) -> None:
    def notes(*args: str) -> str:
        out = v.run(
            [
                v.tool("helm"),
                "install",
                "--dry-run=client",
                "feast-kserve",
                str(helm.chart),
                "-n",
                v.NAMESPACE,
                *args,
            ],
            env=helm.env,
        ).stdout
        return out.split("NOTES:", 1)[1]

    on = notes(*_values("stream-values.yaml"))
    assert f"Deployment {WORKER}, 2-6 pods scaled by KEDA" in on
    assert "XADD events '*' event" in on and "feast-kserve-redis-auth" in on
    assert 'prediction_source": "cache"' in on
    assert "Stream worker" not in notes(*_values("minimal-values.yaml"))


# --------------------------------------------------------------------------- KEDA schema


def _so(objs: list[v.Obj]) -> v.Obj:
    return next(o for o in objs if o["kind"] == "ScaledObject")


def _auth(objs: list[v.Obj]) -> v.Obj:
    return next(o for o in objs if o["kind"] == "TriggerAuthentication")


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda o: _so(o)["spec"].update(maxReplicaCount=0), "maxReplicaCount"),
        (lambda o: _so(o)["spec"].update(minReplicaCount=7), "minReplicaCount must be <="),
        (lambda o: _so(o)["spec"].update(pendingEntries=5), "pendingEntries"),
        (lambda o: _so(o)["spec"].pop("scaleTargetRef"), "scaleTargetRef"),
        (
            lambda o: _so(o)["spec"]["triggers"][0]["metadata"].update(pendingEntriesCount=500),
            "500",
        ),
        (lambda o: _so(o)["spec"].update(triggers=[]), "triggers"),
        (lambda o: _auth(o)["spec"]["secretTargetRef"][0].pop("key"), "key"),
        (lambda o: _auth(o)["spec"].update(secretTargetRefs=[]), "secretTargetRefs"),
        (lambda o: _auth(o).update(apiVersion="keda.sh/v1"), "no schema"),
    ],
)
def test_keda_schema_flags_invalid_objects(
    keda_render: list[v.Obj], mutate: Callable, needle: str
) -> None:
    objs = copy.deepcopy(keda_render)
    keda = [o for o in objs if o["apiVersion"].startswith("keda.sh/")]
    assert not [p for o in keda for p in v.schema_errors(o)]
    mutate(objs)
    problems = [
        p for o in objs if o["apiVersion"].startswith("keda.sh/") for p in v.schema_errors(o)
    ]
    assert any(needle in p for p in problems), problems


# --------------------------------------------------------------------------- failing fixtures


def _worker(objs: list[v.Obj]) -> dict[str, Any]:
    return next(
        o for o in objs if o["kind"] == "Deployment" and "stream-worker" in o["metadata"]["name"]
    )


def _container(objs: list[v.Obj]) -> dict[str, Any]:
    return _worker(objs)["spec"]["template"]["spec"]["containers"][0]


def _env(objs: list[v.Obj], name: str) -> dict[str, Any]:
    return next(e for e in _container(objs)["env"] if e["name"] == name)


def _policy(objs: list[v.Obj], suffix: str) -> v.Obj:
    return next(
        o for o in objs if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith(suffix)
    )


def _drop(objs: list[v.Obj], kind: str, suffix: str) -> None:
    objs[:] = [
        o for o in objs if not (o["kind"] == kind and o["metadata"]["name"].endswith(suffix))
    ]


MUTATIONS: dict[str, tuple[Callable[[list[v.Obj]], Any], str]] = {
    "command": (lambda o: _container(o).update(command=["python", "-m", "transformer"]), "runs"),
    "image": (lambda o: _container(o).update(image="registry.example.com/ml/other:1"), "image"),
    "consumer name": (
        lambda o: _env(o, "STREAM_CONSUMER").update(
            valueFrom={"fieldRef": {"fieldPath": "spec.nodeName"}}
        ),
        "pod name",
    ),
    "per-pod group": (
        lambda o: (
            _env(o, "STREAM_GROUP").update(
                value=None, valueFrom={"fieldRef": {"fieldPath": "metadata.name"}}
            )
            or _env(o, "STREAM_GROUP").pop("value")
        ),
        "one literal group",
    ),
    "redis secret": (
        lambda o: _env(o, "REDIS_PASSWORD")["valueFrom"]["secretKeyRef"].update(name="other"),
        "REDIS_PASSWORD",
    ),
    "security context": (
        lambda o: _container(o)["securityContext"].update(readOnlyRootFilesystem=False),
        "securityContext",
    ),
    "liveness": (
        lambda o: _container(o)["livenessProbe"]["httpGet"].update(path="/metrics"),
        "livenessProbe",
    ),
    "readiness port": (
        lambda o: _container(o)["readinessProbe"]["httpGet"].update(port=8080),
        "readinessProbe",
    ),
    "no pdb": (lambda o: _drop(o, "PodDisruptionBudget", "stream-worker"), "PodDisruptionBudget"),
    "blocking pdb": (
        lambda o: next(
            x for x in o if x["kind"] == "PodDisruptionBudget" and "stream" in x["metadata"]["name"]
        )["spec"].update(minAvailable=2),
        "maxUnavailable",
    ),
    "ingress from pods": (
        lambda o: _policy(o, "stream-worker")["spec"]["ingress"][0]["from"].append(
            {"podSelector": {}}
        ),
        "metrics scrape only",
    ),
    "ingress port": (
        lambda o: _policy(o, "stream-worker")["spec"]["ingress"][0]["ports"].append({"port": 8080}),
        "ports",
    ),
    "no ingress policy": (
        lambda o: _drop(o, "NetworkPolicy", "stream-worker"),
        "no ingress NetworkPolicy",
    ),
    "egress to another pod": (
        lambda o: _policy(o, "stream-worker-egress")["spec"]["egress"].append(
            {"to": [{"podSelector": {"matchLabels": {"app": "elsewhere"}}}]}
        ),
        "none of its dependencies",
    ),
    "egress anywhere": (
        lambda o: _policy(o, "stream-worker-egress")["spec"]["egress"].append(
            {"ports": [{"port": 443}]}
        ),
        "opens everything",
    ),
    "egress to every namespace": (
        lambda o: _policy(o, "stream-worker-egress")["spec"]["egress"].append(
            {"to": [{"namespaceSelector": {}}]}
        ),
        "every namespace",
    ),
    "egress without redis": (
        lambda o: _policy(o, "stream-worker-egress")["spec"]["egress"].pop(1),
        "does not reach",
    ),
    "predictor closed to it": (
        lambda o: _policy(o, "click-model-predictor")["spec"]["ingress"][0]["from"].pop(),
        "do not admit the stream worker",
    ),
    "replicas under KEDA": (lambda o: _worker(o)["spec"].update(replicas=3), "sets replicas"),
    "scaled group": (
        lambda o: _so(o)["spec"]["triggers"][0]["metadata"].update(consumerGroup="other"),
        "consumerGroup",
    ),
    "scaled stream": (
        lambda o: _so(o)["spec"]["triggers"][0]["metadata"].update(stream="x"),
        "stream",
    ),
    "trigger type": (lambda o: _so(o)["spec"]["triggers"][0].update(type="redis"), "redis-streams"),
    "no pending target": (
        lambda o: _so(o)["spec"]["triggers"][0]["metadata"].pop("pendingEntriesCount"),
        "pendingEntriesCount",
    ),
    "scaled redis": (
        lambda o: _so(o)["spec"]["triggers"][0]["metadata"].update(address="other-redis:6379"),
        "address",
    ),
    "scales something else": (
        lambda o: _so(o)["spec"]["scaleTargetRef"].update(name="other"),
        "none scales the stream worker",
    ),
    "auth missing": (lambda o: _drop(o, "TriggerAuthentication", "-redis"), "not in the render"),
    "auth secret": (
        lambda o: _auth(o)["spec"]["secretTargetRef"][0].update(name="other"),
        "password from",
    ),
}


@pytest.mark.parametrize("case", sorted(MUTATIONS))
def test_each_worker_check_flags_what_it_exists_for(keda_render: list[v.Obj], case: str) -> None:
    objs = copy.deepcopy(keda_render)
    assert not sc.check_stream_worker(objs)
    mutate, needle = MUTATIONS[case]
    mutate(objs)
    problems = sc.check_stream_worker(objs)
    assert any(needle in p for p in problems), problems


def test_off_by_default_check_flags_a_worker(keda_render: list[v.Obj]) -> None:
    assert sc.check_stream_worker(keda_render, expect=False)
    assert sc.check_stream_worker([], expect=True)  # on, but nothing rendered


def test_ci_values_file_enables_everything() -> None:
    """helm lint/template CI renders ci/stream-values.yaml (test_helm.py's CASES): it must
    keep the worker and KEDA on."""
    vals = yaml.safe_load((UMBRELLA_CI / "stream-values.yaml").read_text())["inferenceService"]
    assert vals["streamWorker"]["enabled"] and vals["streamWorker"]["keda"]["enabled"]


def test_kind_overlay_worker_is_the_kind_values_worker(helm: Helm) -> None:
    """The kind e2e deploys the worker with helm (ci/serverless-values.yaml) or kustomize
    (overlays/kind): the same worker objects either way."""
    from tests.deploy.parity import compare

    problems = compare(helm.template(*_values("serverless-values.yaml")), kustomize("kind"))
    assert not [p for p in problems if "stream-worker" in p], problems
    # and the comparison sees a difference in the worker
    kust = kustomize("kind")
    _env(kust, "STREAM_BLOCK_MS")["value"] = "1000"
    problems = compare(helm.template(*_values("serverless-values.yaml")), kust)
    assert [p for p in problems if "stream-worker" in p and "STREAM_BLOCK_MS" in p], problems
