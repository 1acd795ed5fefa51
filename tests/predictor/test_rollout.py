"""predictor.rollout: exact merge-patch bodies, status parsing, and the CLI against a fake
CustomObjectsApi (plus one run of the real kubernetes client against a loopback fake API
server, to pin the Content-Type and the JSON null that removes canaryTrafficPercent)."""

from __future__ import annotations

import ast
import copy
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from predictor import rollout

pytestmark = pytest.mark.unit

NS = "feast-inference"
NAME = "click-model"
V1_URI = "pvc://click-model-models/sklearn"
V2_URI = "pvc://click-model-models/xgboost"
P1, P2 = "click-model-predictor-00001", "click-model-predictor-00002"


# --------------------------------------------------------------------------- fixtures


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


class FakeCustomObjectsApi:
    """The two CustomObjectsApi methods rollout uses. PATCH applies a real merge patch; after a
    patch, each GET takes the next status from ``after_patch`` (the last one sticks), which is
    how KServe's status catches up over a few polls."""

    def __init__(
        self,
        isvc: dict[str, Any] | None,
        after_patch: list[dict[str, Any]] | None = None,
        *,
        get_error: Exception | None = None,
        patch_error: Exception | None = None,
    ):
        self.isvc = copy.deepcopy(isvc)
        self.after_patch = list(after_patch or [])
        self.get_error, self.patch_error = get_error, patch_error
        self.calls: list[tuple[Any, ...]] = []
        self.patched = False

    def get_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str
    ) -> dict[str, Any]:
        self.calls.append(("get", group, version, namespace, plural, name))
        if self.get_error is not None:
            raise self.get_error
        if self.isvc is None or (namespace, name) != (NS, NAME):
            raise ApiException(status=404, reason="Not Found")
        if self.patched and self.after_patch:
            status = self.after_patch.pop(0) if len(self.after_patch) > 1 else self.after_patch[0]
            self.isvc["status"] = copy.deepcopy(status)
        return copy.deepcopy(self.isvc)

    def patch_namespaced_custom_object(
        self,
        group: str,
        version: str,
        namespace: str,
        plural: str,
        name: str,
        body: Any,
        **kwargs: Any,
    ) -> dict[str, Any]:
        self.calls.append(("patch", group, version, namespace, plural, name, body, kwargs))
        if self.patch_error is not None:
            raise self.patch_error
        if self.isvc is None or (namespace, name) != (NS, NAME):
            raise ApiException(status=404, reason="Not Found")
        self.isvc = merge_patch(self.isvc, body)
        self.patched = True
        return copy.deepcopy(self.isvc)

    def patches(self) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == "patch"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def row(out: str, revision: str) -> list[str]:
    """The traffic-table row of ``revision`` in the predictor's table, split into columns."""
    rows = [line.split() for line in out.splitlines() if line.split()[:1] == [revision]]
    assert rows, f"{revision} not in the table:\n{out}"
    return rows[0]


def run(argv: list[str], api: Any, clock: Clock | None = None) -> tuple[int, str, str]:
    clock = clock or Clock()
    out, err = io.StringIO(), io.StringIO()
    code = rollout.main(argv, api=api, stdout=out, stderr=err, sleep=clock.sleep, clock=clock)
    return code, out.getvalue(), err.getvalue()


# --------------------------------------------------------------------------- patch bodies


def test_canary_patch_with_new_model_is_exact() -> None:
    assert rollout.canary_patch(20, V2_URI) == {
        "spec": {"predictor": {"canaryTrafficPercent": 20, "model": {"storageUri": V2_URI}}}
    }


def test_canary_patch_without_model_only_moves_traffic() -> None:
    assert rollout.canary_patch(50) == {"spec": {"predictor": {"canaryTrafficPercent": 50}}}


def test_promote_patch_removes_canary_percent_with_json_null() -> None:
    body = rollout.promote_patch()
    assert body == {"spec": {"predictor": {"canaryTrafficPercent": None}}}
    assert json.dumps(body) == '{"spec": {"predictor": {"canaryTrafficPercent": null}}}'


def test_promote_patch_can_roll_forward_to_a_model() -> None:
    assert rollout.promote_patch(V1_URI) == {
        "spec": {"predictor": {"canaryTrafficPercent": None, "model": {"storageUri": V1_URI}}}
    }


def test_rollback_patch_is_exact() -> None:
    assert rollout.rollback_patch() == {"spec": {"predictor": {"canaryTrafficPercent": 0}}}


def test_merge_semantics_keep_the_rest_of_the_predictor() -> None:
    isvc = make_isvc(STABLE_V1)
    patched = merge_patch(isvc, rollout.canary_patch(20, V2_URI))
    model = patched["spec"]["predictor"]["model"]
    assert model == {
        "modelFormat": {"name": "click-model"},
        "runtime": "click-model",
        "storageUri": V2_URI,
    }
    assert patched["spec"]["predictor"]["minReplicas"] == 0
    assert patched["spec"]["transformer"] == isvc["spec"]["transformer"]
    promoted = merge_patch(patched, rollout.promote_patch())
    assert "canaryTrafficPercent" not in promoted["spec"]["predictor"]


@pytest.mark.parametrize("value, expected", [(0, 0), (100, 100), (20, 20), ("35", 35), (" 7 ", 7)])
def test_validate_percent_accepts(value: object, expected: int) -> None:
    assert rollout.validate_percent(value) == expected


@pytest.mark.parametrize("value", [-1, 101, 20.5, True, False, None, "abc", "", "1e2", [20]])
def test_validate_percent_rejects(value: object) -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        rollout.validate_percent(value)


def test_patch_builders_validate_their_inputs() -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        rollout.canary_patch(150, V2_URI)
    for bad in ("", "   ", "models/xgboost"):
        with pytest.raises(ValueError, match="scheme://"):
            rollout.canary_patch(20, bad)
        with pytest.raises(ValueError, match="scheme://"):
            rollout.promote_patch(bad)


def test_split_tolerance_is_four_sigma_binomial() -> None:
    # N=400, p=0.2: mean 80, sd 8 -> [48, 112]
    assert rollout.split_tolerance(400, 20) == (48, 112)
    assert rollout.split_tolerance(400, 20, sigmas=2) == (64, 96)
    assert rollout.split_tolerance(100, 0) == (0, 0)
    assert rollout.split_tolerance(100, 100) == (100, 100)
    assert rollout.split_tolerance(10, 50) == (0, 10)  # clamped
    with pytest.raises(ValueError):
        rollout.split_tolerance(0, 20)
    with pytest.raises(ValueError):
        rollout.split_tolerance(10, 120)


# --------------------------------------------------------------------------- status


def test_summarize_reads_revisions_and_traffic() -> None:
    st = rollout.summarize(make_isvc(CANARY_20, canary=20, uri=V2_URI))
    assert (st.name, st.namespace, st.ready, st.canary_percent) == (NAME, NS, "True", 20)
    assert st.storage_uri == V2_URI
    pred = st.component("predictor")
    assert pred is not None
    assert pred.latest_rolled_out == "click-model-predictor-00001"
    assert pred.latest_percent() == 20
    assert [(t.revision, t.percent, t.latest, t.tag) for t in pred.traffic] == [
        ("click-model-predictor-00002", 20, True, ""),
        ("click-model-predictor-00001", 80, False, "prev"),
    ]
    assert [c.name for c in st.components] == ["predictor", "transformer"]


def test_summarize_tolerates_an_isvc_without_status() -> None:
    st = rollout.summarize({"metadata": {"name": NAME, "namespace": NS}, "spec": {}})
    assert st.ready == "Unknown" and st.components == () and st.canary_percent is None
    assert "no traffic" not in rollout.format_status(st)  # no component, no table
    assert rollout.rollout_progress(st, 100) == (False, "no predictor status yet")


def test_format_status_prints_the_split_table() -> None:
    text = rollout.format_status(rollout.summarize(make_isvc(CANARY_20, canary=20, uri=V2_URI)))
    lines = text.splitlines()
    assert lines[0] == f"InferenceService {NS}/{NAME}  Ready=True"
    assert f"predictor storageUri: {V2_URI}  canaryTrafficPercent: 20" in lines
    header = next(
        i
        for i, line in enumerate(lines)
        if line.split() == ["REVISION", "TAG", "LATEST", "PERCENT"]
    )
    assert lines[header + 1].split() == ["click-model-predictor-00002", "-", "yes", "20%"]
    assert lines[header + 2].split() == ["click-model-predictor-00001", "prev", "no", "80%"]
    assert "latestRolledout=click-model-predictor-00001" in text


Goal = rollout.Goal


@pytest.mark.parametrize(
    "status, goal, done, reason",
    [
        (CANARY_20, Goal("canary", 20), True, "rolled out"),
        (CANARY_20, Goal("promote", 100), False, "has 20% of traffic, waiting for 100%"),
        (STABLE_V1, Goal("canary", 20, P1), False, "waiting for a new predictor revision"),
        (CANARY_PENDING, Goal("canary", 20, P1), False, "not ready"),
        (PROMOTED_V2, Goal("promote", 100), True, "rolled out"),
        (CANARY_0, Goal("canary", 0), True, "rolled out"),
        # the status KServe writes before it has seen the patch never counts
        (STABLE_V1, Goal("rollback", 0), False, "the latest revision still has 100%"),
        (PROMOTED_V2, Goal("rollback", 0), False, "the latest revision still has 100%"),
        (CANARY_20, Goal("rollback", 0), False, "the latest revision still has 20%"),
        (CANARY_0, Goal("rollback", 0), True, "rolled back"),
        # rolling back a broken canary: done once the old revision has everything again
        (CANARY_FAILED, Goal("rollback", 0), False, "the latest revision still has 20%"),
        (CANARY_FAILED_ROLLED_BACK, Goal("rollback", 0), True, "rolled back"),
        # rollback after a promotion: not done until "prev" really points at 00001
        (UNPROMOTING_STEP1, Goal("rollback", 0), False, f"100% on the rolled-out revision {P1}"),
        (UNPROMOTED, Goal("rollback", 0), True, "rolled back"),
        # promoting a broken canary never completes (the timeout reports it)
        (CANARY_FAILED, Goal("promote", 100), False, f"revision {P2} not ready"),
    ],
)
def test_rollout_progress(
    status: dict[str, Any], goal: rollout.Goal, done: bool, reason: str
) -> None:
    got_done, got_reason = rollout.rollout_progress(rollout.summarize(make_isvc(status)), goal)
    assert got_done is done, got_reason
    assert reason in got_reason


def test_canary_after_a_promotion_waits_for_the_split_against_the_previous_model() -> None:
    step1 = predictor_status(
        created=P2, ready=P2, rolled_out=P1, previous=P1,
        traffic=[(P2, 30, True, ""), (P2, 70, False, "prev")],
    )  # fmt: skip
    step2 = predictor_status(
        created=P2, ready=P2, rolled_out=P1, previous=P1,
        traffic=[(P2, 30, True, ""), (P1, 70, False, "prev")],
    )  # fmt: skip
    goal = Goal("canary", 30)
    first = rollout.rollout_progress(rollout.summarize(make_isvc(isvc_status(step1))), goal)
    assert first == (False, f"waiting for 70% on the rolled-out revision {P1} ({P2} 100%)")
    assert rollout.rollout_progress(rollout.summarize(make_isvc(isvc_status(step2))), goal) == (
        True,
        "rolled out",
    )


def test_canary_without_a_previous_revision_is_done_at_once() -> None:
    never_canaried = predictor_status(
        created=P1, ready=P1, rolled_out=P1,
        traffic=[(P1, 30, True, ""), (P1, 70, False, "prev")],
    )  # fmt: skip
    st = rollout.summarize(make_isvc(isvc_status(never_canaried)))
    assert rollout.rollout_progress(st, Goal("canary", 30)) == (True, "rolled out")


def test_rollout_progress_requires_ready_isvc() -> None:
    not_ready = copy.deepcopy(CANARY_20)
    not_ready["conditions"] = [{"type": "Ready", "status": "False", "message": "ingress not ready"}]
    done, reason = rollout.rollout_progress(
        rollout.summarize(make_isvc(not_ready)), Goal("canary", 20)
    )
    assert not done and "Ready=False ingress not ready" in reason


def test_rollback_needs_the_predictor_route_ready() -> None:
    route_pending = copy.deepcopy(CANARY_0)
    route_pending["conditions"][1]["status"] = "Unknown"
    done, reason = rollout.rollout_progress(
        rollout.summarize(make_isvc(route_pending)), Goal("rollback", 0)
    )
    assert not done and "route is not ready" in reason


# --------------------------------------------------------------------------- CLI


def test_cli_canary_sends_merge_patch_and_waits_for_the_split() -> None:
    api = FakeCustomObjectsApi(
        make_isvc(STABLE_V1), after_patch=[STABLE_V1, CANARY_PENDING, CANARY_20]
    )
    clock = Clock()
    code, out, err = run(["canary", "--model-uri", V2_URI, "--percent", "20"], api, clock)
    assert code == 0, err
    (patch,) = api.patches()
    assert patch == (
        "patch",
        "serving.kserve.io",
        "v1beta1",
        NS,
        "inferenceservices",
        NAME,
        {"spec": {"predictor": {"canaryTrafficPercent": 20, "model": {"storageUri": V2_URI}}}},
        {"field_manager": "feast-kserve-rollout"},
    )
    # one GET before the patch, then polls: stale, pending, done
    assert [c[0] for c in api.calls] == ["get", "patch", "get", "get", "get"]
    assert clock.sleeps == [5.0, 5.0]
    assert "waiting for a new predictor revision" in err
    assert "not ready" in err
    assert row(out, P2) == [P2, "-", "yes", "20%"]
    assert api.isvc is not None
    assert api.isvc["spec"]["predictor"]["model"]["storageUri"] == V2_URI


def test_cli_promote_removes_canary_percent() -> None:
    api = FakeCustomObjectsApi(
        make_isvc(CANARY_20, canary=20, uri=V2_URI), after_patch=[CANARY_20, PROMOTED_V2]
    )
    code, out, err = run(["promote"], api)
    assert code == 0, err
    (patch,) = api.patches()
    assert patch[6] == {"spec": {"predictor": {"canaryTrafficPercent": None}}}
    assert api.isvc is not None
    assert "canaryTrafficPercent" not in api.isvc["spec"]["predictor"]
    assert "previousRolledout=click-model-predictor-00001" in out


def test_cli_rollback_sets_zero_percent() -> None:
    api = FakeCustomObjectsApi(
        make_isvc(CANARY_20, canary=20, uri=V2_URI), after_patch=[CANARY_20, CANARY_0]
    )
    code, out, err = run(["rollback", "--name", NAME, "--namespace", NS], api)
    assert code == 0, err
    (patch,) = api.patches()
    assert patch[6] == {"spec": {"predictor": {"canaryTrafficPercent": 0}}}
    assert "warning" not in err
    assert row(out, P1) == [P1, "prev", "no", "100%"]


def test_cli_rollback_after_promotion_pins_the_previous_model_and_waits_for_it() -> None:
    api = FakeCustomObjectsApi(
        make_isvc(PROMOTED_V2, uri=V2_URI),
        after_patch=[PROMOTED_V2, UNPROMOTING_STEP1, UNPROMOTED],
    )
    code, out, err = run(["rollback"], api)
    assert code == 0, err
    assert f"note: the latest predictor revision {P2} is fully rolled out" in err
    assert f"pins 100% to the previous rolled-out revision {P1}" in err
    # stale status, then step 1 (prev still on 00002), then done
    assert [c[0] for c in api.calls] == ["get", "patch", "get", "get", "get"]
    assert row(out, P1) == [P1, "prev", "no", "100%"]


def test_cli_rollback_of_a_never_canaried_service_warns_it_changes_nothing() -> None:
    api = FakeCustomObjectsApi(make_isvc(STABLE_V1))
    code, _out, err = run(["rollback", "--no-wait"], api)
    assert code == 0
    assert "warning: " in err and "nothing to roll back to" in err


def test_cli_rollback_of_a_failed_canary_succeeds_though_the_canary_never_got_ready() -> None:
    api = FakeCustomObjectsApi(
        make_isvc(CANARY_FAILED, canary=20, uri=V2_URI),
        after_patch=[CANARY_FAILED, CANARY_FAILED_ROLLED_BACK],
    )
    code, out, err = run(["rollback"], api)
    assert code == 0, err
    p1_rows = [line.split() for line in out.splitlines() if line.split()[:1] == [P1]]
    assert p1_rows == [[P1, "-", "yes", "0%"], [P1, "prev", "no", "100%"]]


def test_cli_canary_after_promotion_notes_the_split_against_the_previous_model() -> None:
    api = FakeCustomObjectsApi(make_isvc(PROMOTED_V2, uri=V2_URI))
    code, _out, err = run(["canary", "--percent", "30", "--no-wait"], api)
    assert code == 0
    assert f"note: the latest predictor revision {P2} is fully rolled out" in err
    assert f"splits 30% to it and the rest to the previous rolled-out revision {P1}" in err


def test_cli_wait_survives_a_dropped_connection() -> None:
    class Flaky(FakeCustomObjectsApi):
        fail_next = 0

        def get_namespaced_custom_object(self, *a: Any) -> dict[str, Any]:
            if self.patched and self.fail_next:
                self.fail_next -= 1
                raise ConnectionResetError("connection reset by peer")
            return super().get_namespaced_custom_object(*a)

    api = Flaky(make_isvc(CANARY_20, canary=20, uri=V2_URI), after_patch=[CANARY_0])
    api.fail_next = 2
    code, _out, err = run(["rollback"], api)
    assert code == 0, err
    assert "cannot reach the Kubernetes API server (ConnectionResetError" in err


def test_cli_unreachable_api_server_is_an_error_not_a_traceback() -> None:
    api = FakeCustomObjectsApi(make_isvc(STABLE_V1), get_error=OSError("connection refused"))
    code, _out, err = run(["status"], api)
    assert code == 1
    assert "cannot reach the Kubernetes API server (OSError: connection refused)" in err


def test_cli_canary_without_model_on_a_rolled_out_revision_warns() -> None:
    api = FakeCustomObjectsApi(make_isvc(STABLE_V1))
    code, _out, err = run(["canary", "--percent", "30", "--no-wait"], api)
    assert code == 0
    assert "without --model-uri there is no canary" in err


def test_cli_promote_to_a_new_model_waits_for_the_new_revision() -> None:
    # status already shows 100% on the latest revision; only a *new* revision means done
    rolled_forward = isvc_status(
        predictor_status(
            created="click-model-predictor-00003",
            ready="click-model-predictor-00003",
            rolled_out="click-model-predictor-00003",
            previous="click-model-predictor-00002",
            traffic=[("click-model-predictor-00003", 100, True, "")],
        )
    )
    api = FakeCustomObjectsApi(
        make_isvc(PROMOTED_V2, uri=V2_URI), after_patch=[PROMOTED_V2, PROMOTED_V2, rolled_forward]
    )
    code, out, err = run(["promote", "--model-uri", V1_URI], api)
    assert code == 0, err
    assert [c[0] for c in api.calls] == ["get", "patch", "get", "get", "get"]
    assert "click-model-predictor-00003" in out


def test_cli_no_wait_returns_after_the_patch() -> None:
    api = FakeCustomObjectsApi(make_isvc(STABLE_V1), after_patch=[STABLE_V1])
    code, out, _err = run(["canary", "--model-uri", V2_URI, "--percent", "20", "--no-wait"], api)
    assert code == 0
    assert [c[0] for c in api.calls] == ["get", "patch"]
    assert out == ""


def test_cli_times_out_with_the_last_status() -> None:
    api = FakeCustomObjectsApi(make_isvc(STABLE_V1), after_patch=[CANARY_PENDING])
    clock = Clock()
    code, _out, err = run(
        ["canary", "--model-uri", V2_URI, "--percent", "20", "--timeout", "30"], api, clock
    )
    assert code == 1
    assert "error: timed out after 30s waiting for feast-inference/click-model" in err
    assert "not ready" in err
    assert "REVISION" in err  # the status table is part of the message
    assert clock.now >= 30


def test_cli_isvc_not_found_names_it_and_exits_1() -> None:
    api = FakeCustomObjectsApi(None)
    code, out, err = run(["canary", "--model-uri", V2_URI, "--percent", "20"], api)
    assert code == 1
    assert out == ""
    assert err.strip() == (
        "error: InferenceService 'click-model' not found in namespace 'feast-inference'"
    )
    assert api.patches() == []


def test_cli_not_found_in_another_namespace() -> None:
    api = FakeCustomObjectsApi(make_isvc(STABLE_V1))
    code, _out, err = run(["status", "--namespace", "other", "--name", "m2"], api)
    assert code == 1
    assert "InferenceService 'm2' not found in namespace 'other'" in err


def test_cli_api_error_on_patch_is_reported() -> None:
    forbidden = ApiException(status=403, reason="Forbidden")
    forbidden.body = json.dumps(
        {"kind": "Status", "message": 'inferenceservices "click-model" is forbidden: no RBAC'}
    )
    api = FakeCustomObjectsApi(make_isvc(STABLE_V1), patch_error=forbidden)
    code, _out, err = run(["rollback"], api)
    assert code == 1
    assert (
        "error: patching InferenceService feast-inference/click-model failed: "
        'HTTP 403 Forbidden: inferenceservices "click-model" is forbidden: no RBAC'
    ) in err


def test_cli_api_error_on_get_is_reported() -> None:
    api = FakeCustomObjectsApi(
        make_isvc(STABLE_V1), get_error=ApiException(status=500, reason="boom")
    )
    code, _out, err = run(["status"], api)
    assert code == 1
    assert "reading InferenceService feast-inference/click-model failed: HTTP 500 boom" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["canary", "--percent", "101", "--model-uri", V2_URI],
        ["canary", "--percent", "-5"],
        ["canary", "--percent", "twenty"],
        ["canary", "--model-uri", V2_URI],  # --percent is required
        ["promote", "--percent", "20"],
        ["deploy"],
        [],
    ],
)
def test_cli_usage_errors_exit_2_without_api_calls(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    api = FakeCustomObjectsApi(make_isvc(STABLE_V1))
    with pytest.raises(SystemExit) as exc:
        run(argv, api)
    assert exc.value.code == 2
    assert api.calls == []
    assert "usage:" in capsys.readouterr().err


def test_cli_bad_model_uri_exits_2_without_api_calls(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeCustomObjectsApi(make_isvc(STABLE_V1))
    with pytest.raises(SystemExit) as exc:
        run(["canary", "--percent", "20", "--model-uri", "models/xgboost"], api)
    assert exc.value.code == 2
    assert "scheme://path" in capsys.readouterr().err
    assert api.calls == []


def test_cli_status_prints_table_and_json() -> None:
    api = FakeCustomObjectsApi(make_isvc(CANARY_20, canary=20, uri=V2_URI))
    code, out, _err = run(["status"], api)
    assert code == 0
    assert row(out, P1) == [P1, "prev", "no", "80%"]
    assert api.patches() == []
    code, out, _err = run(["status", "--json"], api)
    assert code == 0
    data = json.loads(out)
    assert data["canaryTrafficPercent"] == 20
    assert data["components"]["predictor"]["traffic"][0] == {
        "revisionName": "click-model-predictor-00002",
        "tag": "",
        "latestRevision": True,
        "percent": 20,
    }


def test_module_import_is_cheap_and_side_effect_free() -> None:
    """No kubernetes import and no work at module level: only imports, constants, defs and
    the ``if __name__ == "__main__"`` guard."""
    tree = ast.parse(Path(rollout.__file__).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            assert not any(n.split(".")[0] == "kubernetes" for n in names), ast.dump(node)
        elif isinstance(node, ast.If):
            assert ast.unparse(node.test) == "__name__ == '__main__'"
        elif isinstance(node, ast.Expr):
            assert isinstance(node.value, ast.Constant)  # the docstring
        else:
            assert isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)), (
                ast.dump(node)
            )
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                assert node.value is not None
                assert not any(isinstance(n, ast.Call) for n in ast.walk(node.value))


# --------------------------------------------------------------------------- Helm ownership


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


def test_field_owners_reads_managed_fields() -> None:
    owners = rollout.field_owners(helm_managed(make_isvc(STABLE_V1)))
    assert owners == {
        "spec.predictor.canaryTrafficPercent": [],
        "spec.predictor.model.storageUri": ["helm (Apply)"],
    }
    owners = rollout.field_owners(helm_managed(make_isvc(STABLE_V1), cli_owns_uri=True))
    assert owners["spec.predictor.model.storageUri"] == ["feast-kserve-rollout (Update)"]
    assert rollout.field_owners(make_isvc(STABLE_V1)) == {key: [] for key in rollout.ROLLOUT_FIELDS}


@pytest.mark.parametrize(
    ("argv", "helm_sets"),
    [
        (
            ["canary", "--model-uri", V2_URI, "--percent", "20"],
            "--set inferenceService.canary.enabled=true "
            f"--set inferenceService.canary.storageUri={V2_URI} "
            "--set inferenceService.canary.trafficPercent=20",
        ),
        (
            ["promote", "--model-uri", V2_URI],
            f"--set inferenceService.predictor.storageUri={V2_URI} "
            "--set inferenceService.canary.enabled=false",
        ),
        (["rollback"], "--set inferenceService.canary.trafficPercent=0"),
    ],
)
def test_cli_on_a_helm_release_names_the_conflict_and_the_helm_upgrade_to_run(
    argv: list[str], helm_sets: str
) -> None:
    api = FakeCustomObjectsApi(helm_managed(make_isvc(CANARY_20, canary=20)))
    code, _out, err = run([*argv, "--no-wait"], api)
    assert code == 0, err
    assert "belongs to Helm release 'feast-kserve'" in err
    assert "field manager 'feast-kserve-rollout' owns" in err
    assert "conflict" in err and "--force-conflicts" in err
    expected = (
        f"helm upgrade feast-kserve helm/feast-kserve -n {NS} --reset-then-reuse-values {helm_sets}"
    )
    (note,) = [line for line in err.splitlines() if "belongs to Helm release" in line]
    assert note.endswith(expected), note
    if argv[0] != "rollback":  # storageUri is patched: Helm is its current owner
        assert "spec.predictor.model.storageUri: helm (Apply)" in err
    (patch,) = api.patches()
    assert patch[-1] == {"field_manager": "feast-kserve-rollout"}


def test_cli_promote_without_uri_on_a_helm_release_carries_the_current_model() -> None:
    api = FakeCustomObjectsApi(helm_managed(make_isvc(CANARY_20, canary=20, uri=V2_URI)))
    code, _out, err = run(["promote", "--no-wait"], api)
    assert code == 0, err
    assert f"--set inferenceService.predictor.storageUri={V2_URI} " in err


def test_cli_without_helm_says_nothing_about_helm() -> None:
    api = FakeCustomObjectsApi(make_isvc(CANARY_20, canary=20))
    code, _out, err = run(["rollback", "--no-wait"], api)
    assert code == 0, err
    assert "helm" not in err.lower()


def test_cli_field_manager_can_be_named() -> None:
    api = FakeCustomObjectsApi(make_isvc(CANARY_20, canary=20))
    code, _out, err = run(["rollback", "--no-wait", "--field-manager", "ops-oncall"], api)
    assert code == 0, err
    (patch,) = api.patches()
    assert patch[-1] == {"field_manager": "ops-oncall"}


# --------------------------------------------------------------------------- real client


class _FakeApiServer(BaseHTTPRequestHandler):
    isvc: dict[str, Any] | None = None
    requests: list[tuple[str, str, str, bytes]] = []

    def _send(self, code: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        type(self).requests.append(
            (self.command, self.path, self.headers.get("Content-Type", ""), body)
        )
        expected = f"/apis/serving.kserve.io/v1beta1/namespaces/{NS}/inferenceservices/{NAME}"
        if self.path.partition("?")[0] != expected or type(self).isvc is None:
            self._send(
                404,
                {
                    "kind": "Status",
                    "status": "Failure",
                    "reason": "NotFound",
                    "message": "not found",
                    "code": 404,
                },
            )
            return
        if self.command == "PATCH":
            type(self).isvc = merge_patch(type(self).isvc, json.loads(body))
        self._send(200, type(self).isvc or {})

    do_GET = _handle
    do_PATCH = _handle

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def api_server() -> Iterator[tuple[str, type[_FakeApiServer]]]:
    handler = type("Handler", (_FakeApiServer,), {"isvc": None, "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _real_api(host: str) -> Any:
    from kubernetes import client

    cfg = client.Configuration(host=host)
    return client.CustomObjectsApi(client.ApiClient(cfg))


def test_real_client_sends_merge_patch_with_json_null(
    api_server: tuple[str, type[_FakeApiServer]],
) -> None:
    host, handler = api_server
    handler.isvc = make_isvc(CANARY_20, canary=20, uri=V2_URI)
    code, _out, err = run(["promote", "--no-wait"], _real_api(host))
    assert code == 0, err
    method, path, content_type, body = handler.requests[-1]
    assert method == "PATCH"
    path, _, query = path.partition("?")
    assert path.endswith(f"/namespaces/{NS}/inferenceservices/{NAME}")
    # the API server records the CLI as the owner of the fields it set (managedFields)
    assert query == "fieldManager=feast-kserve-rollout"
    assert content_type == "application/merge-patch+json"
    assert json.loads(body) == {"spec": {"predictor": {"canaryTrafficPercent": None}}}
    assert b"null" in body
    assert "canaryTrafficPercent" not in handler.isvc["spec"]["predictor"]


def test_real_client_404_becomes_not_found(
    api_server: tuple[str, type[_FakeApiServer]],
) -> None:
    host, handler = api_server
    code, _out, err = run(["status", "--name", "nope"], _real_api(host))
    assert code == 1
    assert "InferenceService 'nope' not found in namespace 'feast-inference'" in err
    assert [r[0] for r in handler.requests] == ["GET"]
