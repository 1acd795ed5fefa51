"""InferenceService objects and statuses as KServe writes them during a rollout (helpers of
the rollout tests, not fixtures)."""

from __future__ import annotations

import copy
from typing import Any

NS = "feast-inference"
NAME = "click-model"
V1_URI = "pvc://click-model-models/sklearn"
V2_URI = "pvc://click-model-models/xgboost"
P1, P2 = "click-model-predictor-00001", "click-model-predictor-00002"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies application/merge-patch+json."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def predictor_status(
    *,
    created: str,
    ready: str,
    rolled_out: str,
    previous: str = "",
    traffic: list[tuple[str, int, bool, str]],
) -> dict[str, Any]:
    return {
        "latestCreatedRevision": created,
        "latestReadyRevision": ready,
        "latestRolledoutRevision": rolled_out,
        "previousRolledoutRevision": previous,
        "traffic": [
            {"revisionName": r, "percent": p, "latestRevision": latest, **({"tag": t} if t else {})}
            for r, p, latest, t in traffic
        ],
    }


def isvc_status(
    predictor: dict[str, Any], ready: str = "True", route_ready: str | None = None
) -> dict[str, Any]:
    return {
        "url": f"http://{NAME}.{NS}.example.com",
        "conditions": [
            {"type": "Ready", "status": ready},
            {"type": "PredictorRouteReady", "status": route_ready or ready},
        ],
        "components": {
            "predictor": predictor,
            "transformer": predictor_status(
                created="click-model-transformer-00001",
                ready="click-model-transformer-00001",
                rolled_out="click-model-transformer-00001",
                traffic=[("click-model-transformer-00001", 100, True, "")],
            ),
        },
    }


def state(
    created: str,
    latest_ready: str,
    rolled_out: str,
    traffic: list[tuple[str, int, bool, str]],
    previous: str = "",
    **conditions: Any,
) -> dict[str, Any]:
    """An InferenceService status: predictor revisions, its traffic (revision, percent,
    latestRevision, tag) and the Ready / PredictorRouteReady conditions."""
    pred = predictor_status(
        created=created,
        ready=latest_ready,
        rolled_out=rolled_out,
        previous=previous,
        traffic=traffic,
    )
    return isvc_status(pred, **conditions)


STABLE_V1 = state(P1, P1, P1, [(P1, 100, True, "")])
CANARY_20 = state(P2, P2, P1, [(P2, 20, True, ""), (P1, 80, False, "prev")])
CANARY_0 = state(P2, P2, P1, [(P2, 0, True, ""), (P1, 100, False, "prev")])
PROMOTED_V2 = state(P2, P2, P2, [(P2, 100, True, "")], previous=P1)
# The canary revision exists but is not ready yet (still loading the model): Knative resolves
# the "latest" target to the latest *ready* revision, so both targets name 00001.
CANARY_PENDING = state(P2, P1, P1, [(P1, 20, True, ""), (P1, 80, False, "prev")], ready="Unknown")
# A canary that failed (bad model): never ready, the ISVC not Ready, the route still fine...
CANARY_FAILED = state(
    P2, P1, P1, [(P1, 20, True, ""), (P1, 80, False, "prev")], ready="False", route_ready="True"
)
# ...and after `rollback` on it.
CANARY_FAILED_ROLLED_BACK = state(
    P2, P1, P1, [(P1, 0, True, ""), (P1, 100, False, "prev")], ready="False", route_ready="True"
)
# `rollback` after a promotion, as KServe 0.17 does it. Reconcile 1 builds
# [latest 0, prev=latestRolledout(00002) 100]; PropagateStatus sees the split over one revision
# and moves latestRolledout back to previousRolledout (00001) in the same status write...
UNPROMOTING_STEP1 = state(P2, P2, P1, [(P2, 0, True, ""), (P2, 100, False, "prev")], previous=P1)
# ...and reconcile 2 routes "prev" to 00001.
UNPROMOTED = state(P2, P2, P1, [(P2, 0, True, ""), (P1, 100, False, "prev")], previous=P1)


def make_isvc(
    status: dict[str, Any], *, canary: int | None = None, uri: str = V1_URI
) -> dict[str, Any]:
    predictor: dict[str, Any] = {
        "minReplicas": 0,
        "model": {
            "modelFormat": {"name": "click-model"},
            "runtime": "click-model",
            "storageUri": uri,
        },
    }
    if canary is not None:
        predictor["canaryTrafficPercent"] = canary
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": NAME, "namespace": NS, "generation": 1},
        "spec": {"predictor": predictor, "transformer": {"containers": [{"name": "t"}]}},
        "status": copy.deepcopy(status),
    }


def helm_managed(isvc: dict[str, Any], *, cli_owns_uri: bool = False) -> dict[str, Any]:
    """``isvc`` as a Helm 4 release leaves it: release annotations and managedFields where
    Helm's server-side apply owns storageUri (or the CLI does, after an earlier patch)."""
    isvc = copy.deepcopy(isvc)
    isvc["metadata"]["annotations"] = {
        "meta.helm.sh/release-name": "feast-kserve",
        "meta.helm.sh/release-namespace": NS,
    }
    uri = {"f:spec": {"f:predictor": {"f:model": {"f:storageUri": {}}}}}
    isvc["metadata"]["managedFields"] = [
        {
            "manager": "helm",
            "operation": "Apply",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:predictor": {"f:minReplicas": {}}}} if cli_owns_uri else uri,
        },
        *(
            [{"manager": "feast-kserve-rollout", "operation": "Update", "fieldsV1": uri}]
            if cli_owns_uri
            else []
        ),
    ]
    return isvc
