"""The rollout state machine, without a cluster: patch bodies, goals, progress, ownership."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from predictor.rollout.plan import (
    ROLLOUT_FIELDS,
    Goal,
    canary_patch,
    command_plan,
    field_owners,
    goal_for,
    promote_patch,
    rollback_patch,
    rollout_progress,
    split_tolerance,
    validate_percent,
)
from predictor.rollout.status import summarize
from tests.predictor.rollout.isvcs import (
    CANARY_0,
    CANARY_20,
    CANARY_FAILED,
    CANARY_FAILED_ROLLED_BACK,
    CANARY_PENDING,
    NAME,
    NS,
    P1,
    P2,
    PROMOTED_V2,
    STABLE_V1,
    UNPROMOTED,
    UNPROMOTING_STEP1,
    V1_URI,
    V2_URI,
    helm_managed,
    isvc_status,
    make_isvc,
    merge_patch,
    predictor_status,
)

pytestmark = pytest.mark.unit


# --------------------------------------------------------------------------- patch bodies


def test_canary_patch_with_new_model_is_exact() -> None:
    assert canary_patch(20, V2_URI) == {
        "spec": {"predictor": {"canaryTrafficPercent": 20, "model": {"storageUri": V2_URI}}}
    }


def test_canary_patch_without_model_only_moves_traffic() -> None:
    assert canary_patch(50) == {"spec": {"predictor": {"canaryTrafficPercent": 50}}}


def test_promote_patch_removes_canary_percent_with_json_null() -> None:
    body = promote_patch()
    assert body == {"spec": {"predictor": {"canaryTrafficPercent": None}}}
    assert json.dumps(body) == '{"spec": {"predictor": {"canaryTrafficPercent": null}}}'


def test_promote_patch_can_roll_forward_to_a_model() -> None:
    assert promote_patch(V1_URI) == {
        "spec": {"predictor": {"canaryTrafficPercent": None, "model": {"storageUri": V1_URI}}}
    }


def test_rollback_patch_is_exact() -> None:
    assert rollback_patch() == {"spec": {"predictor": {"canaryTrafficPercent": 0}}}


def test_merge_semantics_keep_the_rest_of_the_predictor() -> None:
    isvc = make_isvc(STABLE_V1)
    patched = merge_patch(isvc, canary_patch(20, V2_URI))
    model = patched["spec"]["predictor"]["model"]
    assert model == {
        "modelFormat": {"name": "click-model"},
        "runtime": "click-model",
        "storageUri": V2_URI,
    }
    assert patched["spec"]["predictor"]["minReplicas"] == 0
    assert patched["spec"]["transformer"] == isvc["spec"]["transformer"]
    promoted = merge_patch(patched, promote_patch())
    assert "canaryTrafficPercent" not in promoted["spec"]["predictor"]


@pytest.mark.parametrize("value, expected", [(0, 0), (100, 100), (20, 20), ("35", 35), (" 7 ", 7)])
def test_validate_percent_accepts(value: object, expected: int) -> None:
    assert validate_percent(value) == expected


@pytest.mark.parametrize("value", [-1, 101, 20.5, True, False, None, "abc", "", "1e2", [20]])
def test_validate_percent_rejects(value: object) -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        validate_percent(value)


def test_patch_builders_validate_their_inputs() -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        canary_patch(150, V2_URI)
    for bad in ("", "   ", "models/xgboost"):
        with pytest.raises(ValueError, match="scheme://"):
            canary_patch(20, bad)
        with pytest.raises(ValueError, match="scheme://"):
            promote_patch(bad)


def test_each_command_plans_its_patch_and_the_share_it_waits_for() -> None:
    assert command_plan("canary", 20, V2_URI) == (canary_patch(20, V2_URI), 20)
    assert command_plan("promote", None, V1_URI) == (promote_patch(V1_URI), 100)
    assert command_plan("promote") == (promote_patch(), 100)
    assert command_plan("rollback") == (rollback_patch(), 0)
    assert command_plan("status") is None
    with pytest.raises(ValueError, match=r"0\.\.100"):
        command_plan("canary", None)


def test_a_new_model_makes_the_goal_wait_for_a_new_revision() -> None:
    before = summarize(make_isvc(STABLE_V1, uri=V1_URI))
    assert goal_for(before, "canary", 20, V2_URI) == Goal("canary", 20, P1)
    # the same model (or none): no new revision to wait for
    assert goal_for(before, "canary", 20, V1_URI) == Goal("canary", 20, None)
    assert goal_for(before, "rollback", 0, None) == Goal("rollback", 0, None)
    # no predictor status yet: any revision that appears is the new one
    empty = summarize({"metadata": {"name": NAME, "namespace": NS}, "spec": {}})
    assert goal_for(empty, "promote", 100, V2_URI) == Goal("promote", 100, "")


def test_split_tolerance_is_four_sigma_binomial() -> None:
    # N=400, p=0.2: mean 80, sd 8 -> [48, 112]
    assert split_tolerance(400, 20) == (48, 112)
    assert split_tolerance(400, 20, sigmas=2) == (64, 96)
    assert split_tolerance(100, 0) == (0, 0)
    assert split_tolerance(100, 100) == (100, 100)
    assert split_tolerance(10, 50) == (0, 10)  # clamped
    with pytest.raises(ValueError):
        split_tolerance(0, 20)
    with pytest.raises(ValueError):
        split_tolerance(10, 120)


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
def test_rollout_progress(status: dict[str, Any], goal: Goal, done: bool, reason: str) -> None:
    got_done, got_reason = rollout_progress(summarize(make_isvc(status)), goal)
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
    first = rollout_progress(summarize(make_isvc(isvc_status(step1))), goal)
    assert first == (False, f"waiting for 70% on the rolled-out revision {P1} ({P2} 100%)")
    assert rollout_progress(summarize(make_isvc(isvc_status(step2))), goal) == (
        True,
        "rolled out",
    )


def test_canary_without_a_previous_revision_is_done_at_once() -> None:
    never_canaried = predictor_status(
        created=P1, ready=P1, rolled_out=P1,
        traffic=[(P1, 30, True, ""), (P1, 70, False, "prev")],
    )  # fmt: skip
    st = summarize(make_isvc(isvc_status(never_canaried)))
    assert rollout_progress(st, Goal("canary", 30)) == (True, "rolled out")


def test_rollout_progress_requires_ready_isvc() -> None:
    not_ready = copy.deepcopy(CANARY_20)
    not_ready["conditions"] = [{"type": "Ready", "status": "False", "message": "ingress not ready"}]
    done, reason = rollout_progress(summarize(make_isvc(not_ready)), Goal("canary", 20))
    assert not done and "Ready=False ingress not ready" in reason


def test_rollback_needs_the_predictor_route_ready() -> None:
    route_pending = copy.deepcopy(CANARY_0)
    route_pending["conditions"][1]["status"] = "Unknown"
    done, reason = rollout_progress(summarize(make_isvc(route_pending)), Goal("rollback", 0))
    assert not done and "route is not ready" in reason


# --------------------------------------------------------------------------- Helm ownership


def test_field_owners_reads_managed_fields() -> None:
    owners = field_owners(helm_managed(make_isvc(STABLE_V1)))
    assert owners == {
        "spec.predictor.canaryTrafficPercent": [],
        "spec.predictor.model.storageUri": ["helm (Apply)"],
    }
    owners = field_owners(helm_managed(make_isvc(STABLE_V1), cli_owns_uri=True))
    assert owners["spec.predictor.model.storageUri"] == ["feast-kserve-rollout (Update)"]
    assert field_owners(make_isvc(STABLE_V1)) == {key: [] for key in ROLLOUT_FIELDS}
