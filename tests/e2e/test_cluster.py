"""Cluster-only e2e tests: they need the kind deployment (scripts/kind, `make e2e-kind`) and
run in the e2e-kind workflow as part of ``pytest -m "e2e or cluster"``.

* Knative autoscaling annotations derived from the InferenceService are on the live revisions;
* a component scaled to zero answers the first request (through Knative's activator);
* canary rollout: ``predictor.rollout canary`` to a second model version at 20 %, the share of
  N requests answered by it (``model_version``) is within a 4-sigma binomial band, rollback
  sends everything back, promote sends everything to the new version, and a rollback after
  the promotion pins the first version again; the original model is restored afterwards (by
  rolling forward to its storageUri).

Environment: E2E_BASE_URL (Kourier, e.g. http://127.0.0.1:31080), E2E_HOST_HEADER (the
InferenceService host Kourier routes on), E2E_MODEL_NAME (click-model), E2E_NAMESPACE
(feast-inference), E2E_CANARY_MODEL_URI (pvc://click-model-models/xgboost), optional
E2E_KUBE_CONTEXT, E2E_CANARY_REQUESTS (400), E2E_SCALE_TO_ZERO_TIMEOUT (420 s).
Without E2E_BASE_URL the tests skip, unless E2E_REQUIRE_CLUSTER=1 (set by `make e2e-kind`),
which turns every missing precondition into a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

import httpx
import pytest

from predictor import rollout

pytestmark = pytest.mark.cluster

AUTOSCALING = "autoscaling.knative.dev/"
KPA = "kpa.autoscaling.knative.dev"
ISVC_LABEL = "serving.kserve.io/inferenceservice"


def _unmet(reason: str) -> NoReturn:
    if os.environ.get("E2E_REQUIRE_CLUSTER") == "1":
        pytest.fail(f"E2E_REQUIRE_CLUSTER=1 but {reason}")
    pytest.skip(reason)


@dataclass(frozen=True)
class Cluster:
    base_url: str
    host_header: str | None
    model: str
    namespace: str
    canary_model_uri: str | None
    context: str | None


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    base_url = os.environ.get("E2E_BASE_URL", "").rstrip("/")
    if not base_url:
        _unmet("E2E_BASE_URL is not set (the cluster tests need the kind deployment)")
    return Cluster(
        base_url=base_url,
        host_header=os.environ.get("E2E_HOST_HEADER") or None,
        model=os.environ.get("E2E_MODEL_NAME", rollout.DEFAULT_NAME),
        namespace=os.environ.get("E2E_NAMESPACE", rollout.DEFAULT_NAMESPACE),
        canary_model_uri=os.environ.get("E2E_CANARY_MODEL_URI") or None,
        context=os.environ.get("E2E_KUBE_CONTEXT") or None,
    )


@pytest.fixture(scope="module")
def custom_api(cluster: Cluster) -> Any:
    try:
        return rollout.load_custom_objects_api(cluster.context)
    except rollout.RolloutError as e:
        _unmet(str(e))


@pytest.fixture(scope="module")
def core_api(custom_api: Any) -> Any:
    from kubernetes import client  # configured by load_custom_objects_api

    return client.CoreV1Api()


@pytest.fixture(scope="module")
def isvc_client(cluster: Cluster, custom_api: Any) -> rollout.IsvcClient:
    return rollout.IsvcClient(custom_api, cluster.model, cluster.namespace)


@pytest.fixture(scope="module")
def http(cluster: Cluster) -> Iterator[httpx.Client]:
    headers = {"Host": cluster.host_header} if cluster.host_header else {}
    # 300 s: any request may meet a revision that scaled to zero while a rollout command
    # waited (two cold starts through the activator, transformer and predictor).
    with httpx.Client(base_url=cluster.base_url, headers=headers, timeout=300.0) as c:
        yield c


# --------------------------------------------------------------------------- helpers


def infer_body(user_id: int = 42) -> dict[str, Any]:
    """The contract's v2 request; ``cache: false`` so every answer comes from the predictor."""
    return {
        "inputs": [
            {"name": "user_id", "datatype": "INT64", "shape": [1], "data": [user_id]},
            {"name": "session_duration_s", "datatype": "FP64", "shape": [1], "data": [35.0]},
            {"name": "hour_of_day", "datatype": "INT64", "shape": [1], "data": [20]},
        ],
        "parameters": {"return_features": False, "cache": False},
    }


def outputs(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, f"{response.status_code}: {response.text[:500]}"
    return {o["name"]: o["data"][0] for o in response.json()["outputs"]}


def model_versions(http: httpx.Client, model: str, n: int) -> list[str]:
    """``model_version`` of n sequential requests that were answered by the model."""
    versions = []
    for _ in range(n):
        out = outputs(http.post(f"/v2/models/{model}/infer", json=infer_body()))
        assert out["prediction_source"] == "model", (
            f"answered from {out['prediction_source']!r}, not the model: the split cannot be "
            f"measured (are user 42's features in the online store?) {out}"
        )
        versions.append(str(out["model_version"]))
    return versions


def warm_up(http: httpx.Client, model: str) -> None:
    """One uncounted request that absorbs the cold starts: while the CLI waited for a new
    revision, the transformer and the revision now taking traffic may have scaled to zero."""
    outputs(http.post(f"/v2/models/{model}/infer", json=infer_body(), timeout=300.0))


def run_rollout(cluster: Cluster, *args: str, timeout: float = 900) -> str:
    """Run the real CLI (``python -m predictor.rollout``), as `make canary` does."""
    cmd = [sys.executable, "-m", "predictor.rollout", *args,
           "--name", cluster.model, "--namespace", cluster.namespace]  # fmt: skip
    if cluster.context:
        cmd += ["--context", cluster.context]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} -> {proc.returncode}\n{proc.stderr}{proc.stdout}"
    return proc.stdout


def component_specs(isvc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    spec = isvc.get("spec") or {}
    return {c: spec[c] for c in ("predictor", "transformer") if spec.get(c) is not None}


# --------------------------------------------------------------------------- tests


@pytest.mark.timeout(300)
def test_knative_autoscaling_annotations_on_revisions(
    isvc_client: rollout.IsvcClient, custom_api: Any, cluster: Cluster
) -> None:
    """What the InferenceService asks for (minReplicas, maxReplicas, scaleTarget, scaleMetric,
    autoscaling.knative.dev/* annotations) is on the Knative revision that serves it."""
    isvc = isvc_client.get()
    components = component_specs(isvc)
    assert "predictor" in components
    isvc_annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    for name, spec in components.items():
        status = isvc["status"]["components"][name]
        revision_name = status["latestReadyRevision"]
        revision = custom_api.get_namespaced_custom_object(
            "serving.knative.dev", "v1", cluster.namespace, "revisions", revision_name
        )
        got = revision["metadata"].get("annotations") or {}
        expected = {
            f"{AUTOSCALING}min-scale": str(spec.get("minReplicas", 1)),
            f"{AUTOSCALING}class": KPA,
        }
        if spec.get("maxReplicas"):
            expected[f"{AUTOSCALING}max-scale"] = str(spec["maxReplicas"])
        if spec.get("scaleTarget") is not None:
            expected[f"{AUTOSCALING}target"] = str(spec["scaleTarget"])
        if spec.get("scaleMetric") is not None:
            expected[f"{AUTOSCALING}metric"] = str(spec["scaleMetric"])
        # Annotations set by hand (window, initial-scale, class...) pass through verbatim,
        # except the ones KServe derives from the fields above.
        derived = {f"{AUTOSCALING}{k}" for k in ("min-scale", "max-scale", "target", "metric")}
        for source in (isvc_annotations, spec.get("annotations") or {}):
            for key, value in source.items():
                if key.startswith(AUTOSCALING) and key not in derived:
                    expected[key] = str(value)
        actual = {k: got.get(k) for k in expected}
        assert actual == expected, f"{name} revision {revision_name}: {got}"


def _running_pods(core_api: Any, cluster: Cluster) -> list[str]:
    pods = core_api.list_namespaced_pod(
        cluster.namespace, label_selector=f"{ISVC_LABEL}={cluster.model}"
    ).items
    return [p.metadata.name for p in pods if p.metadata.deletion_timestamp is None]


@pytest.mark.timeout(900)
def test_scale_from_zero_answers_the_first_request(
    isvc_client: rollout.IsvcClient, core_api: Any, http: httpx.Client, cluster: Cluster
) -> None:
    components = component_specs(isvc_client.get())
    not_zero = {
        n: s.get("minReplicas", 1) for n, s in components.items() if s.get("minReplicas", 1)
    }
    assert not not_zero, (
        f"scale to zero needs minReplicas: 0 on every component, got {not_zero} "
        "(set it in the values/overlay the kind workflow deploys)"
    )
    timeout = float(os.environ.get("E2E_SCALE_TO_ZERO_TIMEOUT", "420"))
    deadline = time.monotonic() + timeout
    while pods := _running_pods(core_api, cluster):
        assert time.monotonic() < deadline, f"still running after {timeout:.0f}s idle: {pods}"
        time.sleep(5)

    started = time.monotonic()
    response = http.post(f"/v2/models/{cluster.model}/infer", json=infer_body(), timeout=300.0)
    cold = time.monotonic() - started
    out = outputs(response)
    assert out["prediction_source"] == "model", out
    assert 0.0 <= float(out["score"]) <= 1.0
    assert out["model_version"]
    assert _running_pods(core_api, cluster), "answered, yet no pod is running?"
    print(f"first request after scale to zero answered in {cold:.1f}s")


@pytest.mark.timeout(3600)
def test_canary_split_rollback_and_promote(
    isvc_client: rollout.IsvcClient, http: httpx.Client, cluster: Cluster
) -> None:
    if not cluster.canary_model_uri:
        _unmet("E2E_CANARY_MODEL_URI is not set (the second model version)")
    before = rollout.summarize(isvc_client.get())
    original_uri = before.storage_uri
    assert original_uri and original_uri != cluster.canary_model_uri, before
    assert before.canary_percent is None, "start from a fully rolled-out InferenceService"

    (v1,) = set(model_versions(http, cluster.model, 20))
    n = int(os.environ.get("E2E_CANARY_REQUESTS", "400"))
    percent = 20
    low, high = rollout.split_tolerance(n, percent, sigmas=4)
    try:
        run_rollout(cluster, "canary", "--model-uri", cluster.canary_model_uri,
                    "--percent", str(percent))  # fmt: skip
        warm_up(http, cluster.model)
        counts = Counter(model_versions(http, cluster.model, n))
        canary_versions = set(counts) - {v1}
        assert len(canary_versions) == 1, f"expected {v1} and one canary version, got {counts}"
        (v2,) = canary_versions
        assert low <= counts[v2] <= high, (
            f"{counts[v2]}/{n} answered by the canary {v2} at {percent}%: outside the 4-sigma "
            f"binomial band [{low}, {high}] ({counts})"
        )

        run_rollout(cluster, "rollback")
        warm_up(http, cluster.model)
        assert set(model_versions(http, cluster.model, 50)) == {v1}, "rollback left canary traffic"

        run_rollout(cluster, "promote")
        warm_up(http, cluster.model)
        assert set(model_versions(http, cluster.model, 50)) == {v2}, "promote left old traffic"
        promoted = rollout.summarize(isvc_client.get()).component("predictor")
        assert promoted is not None
        assert promoted.latest_rolled_out == promoted.latest_ready

        # After a promotion KServe's rollback pins the revision before it (v1) again.
        run_rollout(cluster, "rollback")
        warm_up(http, cluster.model)
        assert set(model_versions(http, cluster.model, 50)) == {v1}, "rollback kept v2 traffic"
        unpromoted = rollout.summarize(isvc_client.get()).component("predictor")
        assert unpromoted is not None and unpromoted.percent_of(unpromoted.latest_rolled_out) == 100
    finally:
        # Leave the cluster as found: roll forward to the original model at 100 %.
        run_rollout(cluster, "promote", "--model-uri", original_uri)
    warm_up(http, cluster.model)
    assert set(model_versions(http, cluster.model, 20)) == {v1}
