"""kustomize: render the base and every overlay with `kubectl kustomize`, validate everything.

Same checks as the Helm renders (tests/deploy/checks/): Kubernetes and KServe schemas
for every object, then the stack invariants (security, probes, references, NetworkPolicies,
Feast wiring, KServe semantics), then what distinguishes each overlay.
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path

import pytest
import yaml

from tests.deploy import validation as v

pytestmark = pytest.mark.unit

MANIFESTS = v.REPO / "manifests"
OVERLAYS = sorted(p.parent.name for p in (MANIFESTS / "overlays").glob("*/kustomization.yaml"))
EXPECTED_MODE = {
    "serverless": "Knative",
    "standard": "Standard",
    "canary": "Knative",
    "kind": "Knative",
    "collocated": "Knative",
    "stream": "Knative",
    "ensemble": "Knative",
    "bandit": "Knative",
    "payload-logger": "Knative",
    "batch": "Knative",
}
# Provisioned outside the overlays on purpose (manifests/tools/model-store-pvc.yaml).
# the user creates these: the model volume, and the transformer's tokens (no token committed)
EXTERNAL = [
    "PersistentVolumeClaim/click-model-models",
    "Secret/redis-auth",
    "Secret/click-model-transformer-auth",
]


@functools.cache
def render(path: str) -> tuple[v.Obj, ...]:
    out = v.run([v.tool("kubectl"), "kustomize", str(MANIFESTS / path)]).stdout
    return tuple(v.load_docs(out))


def objects(path: str) -> list[v.Obj]:
    return copy.deepcopy(list(render(path)))


def isvc_of(path: str) -> v.Obj:
    return next(o for o in objects(path) if o["kind"] == "InferenceService")


def test_the_overlays_exist() -> None:
    assert set(EXPECTED_MODE) <= set(OVERLAYS), OVERLAYS
    assert set(OVERLAYS) <= set(EXPECTED_MODE), f"untested overlay in {OVERLAYS}"


@pytest.mark.parametrize("path", ["base", *[f"overlays/{o}" for o in OVERLAYS]])
def test_render_matches_kubernetes_and_kserve_schemas(path: str) -> None:
    objs = objects(path)
    problems = [p for o in objs for p in v.schema_errors(o)]
    problems += v.check_no_namespace_scoped_surprises(objs, allow_namespace_object=True)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_meets_stack_invariants(overlay: str) -> None:
    problems = v.check_stack(objects(f"overlays/{overlay}"), external=EXTERNAL)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("mode", "legacy"), [("Knative", "Serverless"), ("Standard", "RawDeployment")]
)
def test_legacy_deployment_mode_names_are_flagged(mode: str, legacy: str) -> None:
    """KServe 0.16+ rejects every update of an InferenceService annotated with the old name."""
    objs = objects("overlays/serverless" if mode == "Knative" else "overlays/standard")
    isvc = next(o for o in objs if o["kind"] == "InferenceService")
    assert not [p for p in v.check_kserve(objs) if "deploymentMode" in p]
    isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = legacy
    assert [p for p in v.check_kserve(objs) if "kserve/kserve#4798" in p]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_mode_namespace_and_names(overlay: str) -> None:
    objs = objects(f"overlays/{overlay}")
    assert v.deployment_mode(objs) == EXPECTED_MODE[overlay]
    (ns,) = [o for o in objs if o["kind"] == "Namespace"]
    assert ns["metadata"]["name"] == v.NAMESPACE
    labels = ns["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] in ("baseline", "restricted")
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    for o in objs:
        if o["kind"] != "Namespace":
            assert o["metadata"].get("namespace") == v.NAMESPACE, v.ident(o)
    names = [v.ident(o) for o in objs]
    assert len(names) == len(set(names)), "duplicate objects"
    # Generated ConfigMaps/Secrets carry a content hash, and every reference follows it.
    generated = {
        o["metadata"]["name"]
        for o in objs
        if o["kind"] in ("ConfigMap", "Secret")
        and re.search(r"-[a-z0-9]{10}$", o["metadata"]["name"])
    }
    assert {re.sub(r"-[a-z0-9]{10}$", "", n) for n in generated} == {
        "redis-config",
        "feast-bootstrap",
        "feast-feature-store",
        "feast-registry",
        *(["click-model-ensemble-rules"] if overlay == "ensemble" else []),
        *(["click-model-bandit"] if overlay == "bandit" else []),
    } | ({"click-model-batch"} if overlay == "batch" else set())


def test_serverless_overlay_autoscales_with_knative() -> None:
    isvc = isvc_of("overlays/serverless")
    ann = isvc["metadata"]["annotations"]
    assert ann["serving.kserve.io/enable-prometheus-scraping"] == "true"
    assert ann["serving.kserve.io/enable-metric-aggregation"] == "true"
    for comp in ("predictor", "transformer"):
        spec = isvc["spec"][comp]
        cann = spec["annotations"]
        assert cann["autoscaling.knative.dev/class"] == "kpa.autoscaling.knative.dev"
        assert cann["autoscaling.knative.dev/metric"] == "concurrency"
        assert int(cann["autoscaling.knative.dev/target"]) >= 1
        assert spec["minReplicas"] >= 0 and spec["maxReplicas"] >= 2
        assert "scaleMetric" not in spec, "HPA fields do not belong to Knative mode"
    # Knative's activator/gateway are admitted to both components (in their own policies,
    # as the chart renders them); Standard mode admits the ingress controller instead.
    for comp in ("predictor", "transformer"):
        assert "knative-serving" in knative_admitted(objects("overlays/serverless"), comp)
        assert "knative-serving" not in knative_admitted(objects("overlays/standard"), comp)


def knative_admitted(objs: list[v.Obj], comp: str) -> set[str]:
    (policy,) = [o for o in objs if v.ident(o) == f"NetworkPolicy/click-model-{comp}"]
    return {
        name
        for rule in policy["spec"]["ingress"]
        for peer in rule["from"]
        for expr in peer.get("namespaceSelector", {}).get("matchExpressions", [])
        for name in expr["values"]
    }


def test_standard_overlay_uses_hpa_with_pdbs() -> None:
    objs = objects("overlays/standard")
    isvc = next(o for o in objs if o["kind"] == "InferenceService")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "hpa"
    for comp in ("predictor", "transformer"):
        spec = isvc["spec"][comp]
        assert spec["minReplicas"] >= 2 and spec["scaleMetric"] == "cpu"
        assert not [
            k for k in spec.get("annotations", {}) if k.startswith("autoscaling.knative.dev/")
        ]
    assert {o["metadata"]["name"] for o in objs if o["kind"] == "PodDisruptionBudget"} >= {
        "click-model-predictor",
        "click-model-transformer",
        "feast-feature-server",
    }


def test_canary_overlay_is_serverless_plus_a_second_model_version() -> None:
    stable, canary = isvc_of("overlays/serverless"), isvc_of("overlays/canary")
    pred = canary["spec"]["predictor"]
    assert 0 < pred["canaryTrafficPercent"] < 100
    assert pred["model"]["storageUri"] != stable["spec"]["predictor"]["model"]["storageUri"]
    assert pred["model"]["storageUri"].startswith("pvc://click-model-models/")
    # Nothing else changes: same runtime, format, transformer.
    for obj in (stable, canary):
        obj["spec"]["predictor"].pop("canaryTrafficPercent", None)
        obj["spec"]["predictor"]["model"].pop("storageUri")
        obj["metadata"]["annotations"].pop("serving.kserve.io/enable-tag-routing", None)
    assert canary == stable


def test_base_images_are_pinned_and_rewritten_everywhere() -> None:
    kust = yaml.safe_load((MANIFESTS / "base" / "kustomization.yaml").read_text())
    pins = {i["name"]: f"{i['newName']}:{i['newTag']}" for i in kust["images"]}
    assert set(pins) == set(v.PROJECT_IMAGES)
    for ref in pins.values():
        assert not ref.endswith(":latest") and re.search(r":\d+\.\d+\.\d+$", ref), ref
    images = {
        c["image"]
        for s in v.pod_sources(objects("overlays/serverless"))
        for c in s.spec.get("containers") or []
        if c.get("image")
    }
    assert set(pins.values()) <= images
    assert not [i for i in images if i in v.PROJECT_IMAGES], f"un-rewritten image names: {images}"


def test_tools_manifests_validate_and_match_the_model_store() -> None:
    pvc = v.load_file(MANIFESTS / "tools" / "model-store-pvc.yaml")
    pod = v.load_file(MANIFESTS / "tools" / "model-uploader.yaml")
    objs = pvc + pod
    problems = [p for o in objs for p in v.schema_errors(o)] + v.check_containers(objs)
    problems += v.check_references(objs)
    assert not problems, "\n".join(problems)
    claim = pvc[0]["metadata"]["name"]
    uri = isvc_of("overlays/serverless")["spec"]["predictor"]["model"]["storageUri"]
    assert uri.startswith(f"pvc://{claim}/"), (uri, claim)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_is_committed(overlay: str) -> None:
    """The Redis password and the tokens are the user's (README, docs/deploy.md)."""
    objs = objects(f"overlays/{overlay}")
    assert not [v.ident(o) for o in objs if o["kind"] == "Secret"]
    refs = {
        ref["name"]
        for s in v.pod_sources(objs)
        for c in s.spec.get("containers") or []
        for e in c.get("env") or []
        if (ref := (e.get("valueFrom") or {}).get("secretKeyRef"))
    }
    assert refs == {"redis-auth"}, refs  # the plain name the user creates, no hash suffix
    base = (MANIFESTS / "base" / "kustomization.yaml").read_text()
    assert "secretGenerator" not in base
    assert "create secret generic redis-auth" in base
    assert not list(MANIFESTS.rglob("*.env")), "an env file with a secret is committed"


def _kind_secret_calls(tmp_path: Path, existing: str = "") -> list[str]:
    """scripts/kind/deploy.sh's ensure_kustomize_secrets with kubectl stubbed: the k calls."""
    script = (v.REPO / "scripts" / "kind" / "deploy.sh").read_text()
    funcs = re.search(
        r"^random_hex\(\).*?^ensure_kustomize_secrets\(\) \{.*?^\}\n", script, re.S | re.M
    )
    assert funcs, "deploy.sh has no ensure_kustomize_secrets"
    log = tmp_path / "calls"
    stub = f"""
ISVC_NAMESPACE=feast-inference
log() {{ :; }}
k() {{
  printf '%s\\n' "$*" >>{log}
  if [[ "$1 $2" == "get secret" ]]; then [[ " {existing} " == *" $3 "* ]]; fi
}}
"""
    v.run(["bash", "-euo", "pipefail", "-c", stub + funcs.group(0) + "ensure_kustomize_secrets"])
    return log.read_text().splitlines()


def test_kind_deploy_creates_random_secrets_once(tmp_path: Path) -> None:
    script = (v.REPO / "scripts" / "kind" / "deploy.sh").read_text()
    deploy = script.split("deploy_kustomize() {", 1)[1]
    assert deploy.index("ensure_kustomize_secrets") < deploy.index("k apply -k")
    (tmp_path / "a").mkdir()
    first = _kind_secret_calls(tmp_path / "a")
    (redis,) = [c for c in first if c.startswith("create secret generic redis-auth ")]
    password = re.search(r"--from-literal=redis-password=(\S+)", redis)
    assert password and re.fullmatch(r"[a-f0-9]{48}", password.group(1)), redis
    assert any(c.startswith("create secret generic click-model-transformer-auth ") for c in first)
    (tmp_path / "b").mkdir()
    second = _kind_secret_calls(tmp_path / "b")
    assert [c for c in second if "redis-password=" in c] != [redis], "a fixed password"
    # existing Secrets are kept (a redeploy rotates nothing)
    (tmp_path / "c").mkdir()
    kept = _kind_secret_calls(tmp_path / "c", "redis-auth click-model-transformer-auth")
    assert not [c for c in kept if c.startswith("create")], kept


def test_kind_overlay_matches_the_kind_e2e_workflow() -> None:
    """scripts/kind/deploy.sh --kustomize kind + tests/e2e (docs/kind-e2e.md)."""
    objs = objects("overlays/kind")
    isvc = next(o for o in objs if o["kind"] == "InferenceService")
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "pvc://click-model-models/sklearn"
    for comp in ("predictor", "transformer"):
        assert isvc["spec"][comp]["minReplicas"] == 0
    images = {
        c["image"]
        for s in v.pod_sources(objs)
        for c in s.spec.get("containers") or []
        if c.get("image")
    }
    assert {i for i in images if "feast-kserve-" in i} == {
        "kind.local/feast-kserve-transformer:dev",
        "kind.local/feast-kserve-predictor:dev",
    }
    # Knative must not try to resolve the kind-loaded images' tags in a registry.
    skipped = v.kind_registries_skipping_tag_resolving()
    assert {v.knative_registry(i) for i in images if "feast-kserve-" in i} <= skipped
    # one node: no budget that could block a drain (the stream worker's maxUnavailable 1 cannot)
    assert not [
        o for o in objs if o["kind"] == "PodDisruptionBudget" and "minAvailable" in o["spec"]
    ]
    assert not [
        o
        for o in objs
        if o["kind"] == "PersistentVolumeClaim" and o["metadata"]["name"] == "click-model-models"
    ]


def test_collocated_overlay_is_the_transformer_scoring_the_model() -> None:
    """overlays/collocated: one component (the transformer, as spec.predictor) with the
    model frameworks' image and the model mounted from the same store; no predictor."""
    serverless, collocated = objects("overlays/serverless"), objects("overlays/collocated")
    gone = {v.ident(o) for o in serverless} - {v.ident(o) for o in collocated}
    assert gone == {
        "ServingRuntime/feast-click-predictor",
        "ServiceAccount/click-model-predictor",
        "NetworkPolicy/click-model-predictor",
        "NetworkPolicy/click-model-predictor-egress",
    }, gone
    before = next(o for o in serverless if o["kind"] == "InferenceService")["spec"]
    spec = next(o for o in collocated if o["kind"] == "InferenceService")["spec"]
    assert set(spec) == {"predictor"}
    (c,) = spec["predictor"]["containers"]
    assert c["image"] == "kind.local/feast-kserve-collocated:0.1.0"
    assert " ".join(c["args"]).count("--collocated_model_dir /mnt/models") == 1
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["STORAGE_URI"] == before["predictor"]["model"]["storageUri"]
    assert not [k for k in env if k.startswith("TRANSFORMER_PREDICTOR_")]
    # Everything else is the transformer as the serverless overlay deploys it.
    trans = before["transformer"]
    (tc,) = trans.pop("containers")
    pred = dict(spec["predictor"])
    pred.pop("containers")
    assert pred == trans
    for key in ("image", "args", "env"):
        tc.pop(key), c.pop(key)
    assert c == tc


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_transformer_auth_tokens_come_from_a_user_secret_mounted_as_a_file(overlay: str) -> None:
    objs = objects(f"overlays/{overlay}")
    assert not [o for o in objs if o["metadata"]["name"].startswith("click-model-transformer-auth")]
    spec = isvc_of(f"overlays/{overlay}")["spec"]
    t = spec.get("transformer") or spec["predictor"]  # collocated: the one component
    env = {e["name"]: e.get("value") for e in t["containers"][0]["env"]}
    path = env["TRANSFORMER_AUTH_TOKENS_FILE"]
    (mount,) = [m for m in t["containers"][0]["volumeMounts"] if path.startswith(m["mountPath"])]
    assert "subPath" not in mount  # a subPath mount never sees a rotation
    (vol,) = [x for x in t["volumes"] if x["name"] == mount["name"]]
    assert vol["secret"]["secretName"] == "click-model-transformer-auth"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_egress_check_flags_an_open_rule(overlay: str) -> None:
    objs = objects(f"overlays/{overlay}")
    serverless = v.deployment_mode(objs) in v.SERVERLESS_MODES
    assert not v.check_egress_policies(objs, serverless=serverless)
    pol = next(o for o in objs if o["metadata"]["name"] == "click-model-transformer-egress")
    pol["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]})
    assert v.check_egress_policies(objs, serverless=serverless)
