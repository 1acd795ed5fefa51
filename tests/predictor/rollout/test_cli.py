"""``python -m predictor.rollout``: the command line against a fake API (merge patches applied,
status catching up over a few polls)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.predictor.rollout.fakes import Clock, FakeCustomObjectsApi, row, run
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
    predictor_status,
)

pytestmark = pytest.mark.unit


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


# --------------------------------------------------------------------------- Helm ownership


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
