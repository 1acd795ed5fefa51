"""Helm and kustomize deploy the same objects: a field-by-field parity test.

The kustomize base stays hand-written (readable, commented, patchable by users' overlays); this
test is what keeps it from drifting from the charts. Each kustomize overlay is paired with the
Helm values that select the same variant, both are rendered, and every object is compared
field by field after normalising only what legitimately differs between the two tools:

- names: Helm prefixes them with the release (`feast-kserve-redis`), kustomize suffixes
  generated ConfigMaps/Secrets with a content hash (`redis-auth-h8tb858h85`); both are
  mapped to one canonical name, in the objects' names and in every string that refers to one
  (Secret refs, Service addresses, `FEAST_WAIT_FOR`, ...). A few objects are named differently
  on purpose (ALIASES);
- the tools' own labels (`helm.sh/chart`, `app.kubernetes.io/{instance,version,managed-by,
  part-of}`) and `metadata.namespace`;
- Helm's hook annotations on the bootstrap Job, and the test Pod (`helm test`);
- `checksum/*` pod annotations: Helm rolls pods when a ConfigMap changes through a checksum
  annotation, kustomize through the hash in a generated ConfigMap's name. The test checks the
  equivalence: every ConfigMap a checksum covers is a hashed (generated) one in kustomize;
- generated Secrets (the Redis password, the bearer tokens): Helm creates them with random
  values, the kustomize base commits none (the user creates them). Comments in redis.conf.

Everything else must be equal: replicas, autoscaling bounds and annotations, env (order
included, `TRANSFORMER_PREDICTOR_*` too), securityContexts (the Feast pods' `fsGroup`),
probes, resources, volumes, NetworkPolicies, ConfigMap data, the bootstrap script.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy import validation as v
from tests.deploy.parity import MANIFESTS, Helm, _rename, compare, kustomize

pytestmark = pytest.mark.unit

IMAGES = ["--set", "global.imageRegistry=kind.local", "--set-string", "global.imageTag=0.1.0"]
V1_MODEL = ["--set", "inferenceService.predictor.storageUri=pvc://click-model-models/sklearn"]

# overlay -> the helm arguments that select the same variant.
PAIRS: dict[str, list[str]] = {
    "serverless": [*IMAGES, *V1_MODEL],
    "standard": [
        *IMAGES,
        *V1_MODEL,
        "--set",
        "inferenceService.deploymentMode=Standard",
        *[
            f"--set=inferenceService.{c}.{k}"
            for c in ("predictor", "transformer")
            for k in ("minReplicas=2", "maxReplicas=6")
        ],
    ],
    "canary": [
        *IMAGES,
        *V1_MODEL,
        "--set",
        "inferenceService.canary.enabled=true",
        "--set",
        "inferenceService.canary.storageUri=pvc://click-model-models/xgboost",
        "--set",
        "inferenceService.canary.trafficPercent=10",
    ],
    # serverless + components/stream-worker{,-knative,-keda}
    "stream": [
        *IMAGES,
        *V1_MODEL,
        "--set",
        "inferenceService.streamWorker.enabled=true",
        "--set",
        "inferenceService.streamWorker.keda.enabled=true",
    ],
    # KServe's payload logger on the transformer (components/kserve-logger)
    "payload-logger": [
        *IMAGES,
        *V1_MODEL,
        "--set=inferenceService.monitoring.kserveLogger.enabled=true",
        "--set=inferenceService.monitoring.kserveLogger.url="
        "http://payload-sink.feast-inference.svc.cluster.local/",
        "--set=inferenceService.monitoring.kserveLogger.sinkTo[0].podSelector.matchLabels"
        ".app\\.kubernetes\\.io/name=payload-sink",
    ],
}

# the name as the overlay's: the members' hosts and the graph's URLs spell it out
PAIRS["ensemble"] = [
    *IMAGES,
    *V1_MODEL,
    "--set",
    "inferenceService.name=click-model",
    "--set",
    "inferenceService.ensemble.enabled=true",
    "--set",
    "inferenceService.ensemble.second.storageUri=pvc://click-model-models/xgboost",
]

# the bandit's default arms (the predictor and xgboost) and policy; the name as the overlay's
PAIRS["bandit"] = [
    *IMAGES,
    *V1_MODEL,
    "--set",
    "inferenceService.name=click-model",
    "--set",
    "inferenceService.bandit.enabled=true",
    "--set-json",
    'inferenceService.bandit.arms=[{"name": "sklearn"}, '
    '{"name": "xgboost", "storageUri": "pvc://click-model-models/xgboost"}]',
]

# The scheduled batch without KubeRay (batch.mode cronjob) and the transformer serving it.
PAIRS["batch"] = [
    *IMAGES,
    *V1_MODEL,
    "--set",
    "inferenceService.transformer.mode=precomputed",
    "--set",
    "inferenceService.batch.enabled=true",
    "--set",
    "inferenceService.batch.mode=cronjob",
]

# The chart's collocated switch (inferenceService.collocated.enabled) pairs with
# overlays/collocated once the chart has it; until then test_kustomize.py checks the overlay
# against the serverless one.
if "collocated:" in (v.REPO / "helm" / "inference-service" / "values.yaml").read_text():
    PAIRS["collocated"] = [*IMAGES, *V1_MODEL, "--set", "inferenceService.collocated.enabled=true"]


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(tmp_path_factory.mktemp("parity"))


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("overlay", sorted(PAIRS))
def test_kustomize_overlay_renders_what_the_chart_renders(helm: Helm, overlay: str) -> None:
    problems = compare(helm.template(*PAIRS[overlay]), kustomize(overlay))
    assert not problems, f"overlays/{overlay} vs helm {' '.join(PAIRS[overlay])}:\n" + "\n".join(
        problems
    )


def test_every_overlay_is_paired_or_explained() -> None:
    overlays = {p.parent.name for p in (MANIFESTS / "overlays").glob("*/kustomization.yaml")}
    # kind: serverless + the kind cluster's sizing (tests/deploy/test_kustomize.py checks it
    # against the e2e workflow).
    assert overlays - set(PAIRS) <= {"kind", "collocated"}, sorted(overlays)
    assert "ensemble" in PAIRS
    assert "bandit" in PAIRS


@pytest.mark.parametrize(
    ("what", "mutate"),
    [
        ("maxReplicas", lambda isvc, _: isvc["spec"]["transformer"].update(maxReplicas=99)),
        ("env", lambda isvc, _: isvc["spec"]["transformer"]["containers"][0]["env"].pop(0)),
        (
            "fsGroup",
            lambda _, objs: next(
                o for o in objs if o["kind"] == "Deployment" and "registry" in o["metadata"]["name"]
            )["spec"]["template"]["spec"]["securityContext"].pop("fsGroup"),
        ),
        ("annotation", lambda isvc, _: isvc["spec"]["predictor"]["annotations"].update(x="y")),
    ],
)
def test_the_comparison_detects_drift(helm: Helm, what: str, mutate: Any) -> None:
    kust = kustomize("serverless")
    assert not compare(helm.template(*PAIRS["serverless"]), kust)
    mutate(next(o for o in kust if o["kind"] == "InferenceService"), kust)
    problems = compare(helm.template(*PAIRS["serverless"]), kust)
    assert problems and all(what in p or "only in" in p or "!=" in p for p in problems), problems


def test_a_hand_written_configmap_where_helm_has_a_checksum_is_flagged(helm: Helm) -> None:
    kust = kustomize("serverless")
    cm = next(
        o
        for o in kust
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("feast-feature-store")
    )
    hashed = cm["metadata"]["name"]
    for o in kust:  # the same ConfigMap, as if it were a plain resource
        o.update(_rename(o, {hashed: "feast-feature-store"}))
    problems = compare(helm.template(*PAIRS["serverless"]), kust)
    assert any("configMapGenerator" in p for p in problems), problems
