"""The rollout state machine, pure (no cluster, no I/O): what each command patches
(canary / promote / rollback as JSON merge patches), what it then waits for (:class:`Goal`),
whether a status has reached it (:func:`rollout_progress`), and what a user should be told
before the patch (a no-op rollback, a split against the previous model, a Helm release that
owns the fields)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from predictor.rollout.status import IsvcStatus

FIELD_MANAGER = "feast-kserve-rollout"
# The fields the CLI patches, as managedFields spells them.
ROLLOUT_FIELDS = {
    "spec.predictor.canaryTrafficPercent": ("f:spec", "f:predictor", "f:canaryTrafficPercent"),
    "spec.predictor.model.storageUri": ("f:spec", "f:predictor", "f:model", "f:storageUri"),
}
HELM_CHART_HINT = "helm/feast-kserve"


def validate_percent(value: object) -> int:
    """An integer percentage in 0..100 (bools and fractions are refused)."""
    if isinstance(value, bool):
        raise ValueError(f"percent must be an integer in 0..100, got {value!r}")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(f"percent must be an integer in 0..100, got {value!r}") from None
    if not isinstance(value, int) or not 0 <= value <= 100:
        raise ValueError(f"percent must be an integer in 0..100, got {value!r}")
    return value


def _validate_uri(model_uri: str) -> str:
    uri = model_uri.strip()
    if not uri or "://" not in uri:
        raise ValueError(
            f"model URI must look like scheme://path (pvc://, s3://, gs://...), got {model_uri!r}"
        )
    return uri


def canary_patch(percent: int, model_uri: str | None = None) -> dict[str, Any]:
    """Send ``percent`` % to the latest revision; with ``model_uri``, create that revision."""
    predictor: dict[str, Any] = {"canaryTrafficPercent": validate_percent(percent)}
    if model_uri is not None:
        predictor["model"] = {"storageUri": _validate_uri(model_uri)}
    return {"spec": {"predictor": predictor}}


def promote_patch(model_uri: str | None = None) -> dict[str, Any]:
    """Remove ``canaryTrafficPercent`` (merge-patch null): the latest revision gets 100 %."""
    predictor: dict[str, Any] = {"canaryTrafficPercent": None}
    if model_uri is not None:
        predictor["model"] = {"storageUri": _validate_uri(model_uri)}
    return {"spec": {"predictor": predictor}}


def rollback_patch() -> dict[str, Any]:
    """All traffic back to the last rolled-out revision."""
    return {"spec": {"predictor": {"canaryTrafficPercent": 0}}}


def split_tolerance(n: int, percent: float, sigmas: float = 4.0) -> tuple[int, int]:
    """Inclusive bounds on how many of ``n`` independent requests a ``percent`` % split sends
    to the canary, ``sigmas`` binomial standard deviations around the mean."""
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if not 0 <= percent <= 100:
        raise ValueError(f"percent must be in 0..100, got {percent}")
    p = percent / 100.0
    mean = n * p
    sd = math.sqrt(n * p * (1.0 - p))
    return max(0, math.ceil(mean - sigmas * sd)), min(n, math.floor(mean + sigmas * sd))


@dataclass(frozen=True)
class Goal:
    """What a command waits for: ``percent`` is the latest revision's share (N for canary,
    100 for promote, 0 for rollback); ``previous_created`` is the predictor's
    ``latestCreatedRevision`` before a patch that changes the storageUri (a new revision must
    appear)."""

    command: str
    percent: int
    previous_created: str | None = None


def rollout_progress(st: IsvcStatus, goal: Goal) -> tuple[bool, str]:
    """Whether the predictor has settled on what ``goal`` asked for, and if not, why.

    Judged by revision names, so a status written before KServe saw the patch (it always
    writes the old state once) never counts as done.
    """
    pred = st.component("predictor")
    if pred is None:
        return False, "no predictor status yet"
    latest_share = pred.latest_percent()
    if goal.command == "rollback":
        rolled_out = pred.latest_rolled_out
        if latest_share != 0:
            return False, f"the latest revision still has {latest_share}% ({pred.split()})"
        if not rolled_out:
            return False, "KServe has not recorded a rolled-out revision yet"
        if pred.percent_of(rolled_out) != 100:
            return (
                False,
                f"waiting for 100% on the rolled-out revision {rolled_out} ({pred.split()})",
            )
        if not st.predictor_route_ready:
            return False, "the predictor route is not ready yet"
        return True, "rolled back"

    if goal.previous_created is not None and pred.latest_created in ("", goal.previous_created):
        return False, (
            f"waiting for a new predictor revision (latest is still {goal.previous_created or '-'})"
        )
    if not pred.latest_created or pred.latest_created != pred.latest_ready:
        return False, (
            f"predictor revision {pred.latest_created or '-'} not ready "
            f"(latest ready: {pred.latest_ready or '-'})"
        )
    behind = sorted(
        {t.revision for t in pred.traffic if t.latest and t.revision != pred.latest_ready}
    )
    if behind:
        return False, f"the route still resolves 'latest' to {', '.join(behind)}"
    if latest_share != goal.percent:
        return False, (
            f"latest predictor revision has {latest_share}% of traffic, waiting for {goal.percent}%"
        )
    if goal.percent == 100:
        if pred.latest_rolled_out != pred.latest_ready:
            return False, f"waiting for KServe to record {pred.latest_ready} as rolled out"
    elif pred.latest_rolled_out == pred.latest_ready:
        if pred.previous_rolled_out:
            return False, (
                f"waiting for KServe to split against the previous revision "
                f"{pred.previous_rolled_out} ({pred.split()})"
            )
        # never canaried: there is no other revision, all traffic stays where it is
    elif pred.percent_of(pred.latest_rolled_out) != 100 - goal.percent:
        return False, (
            f"waiting for {100 - goal.percent}% on the rolled-out revision "
            f"{pred.latest_rolled_out} ({pred.split()})"
        )
    if st.ready != "True":
        return False, f"InferenceService Ready={st.ready} {st.ready_message}".rstrip()
    return True, "rolled out"


def rollout_notice(
    st: IsvcStatus, action: str, model_uri: str | None, percent: int | None = None
) -> tuple[str, str] | None:
    """("warning" | "note", text) when an action on a fully rolled-out predictor does
    something other than a user might expect; None otherwise."""
    pred = st.component("predictor")
    if action not in ("rollback", "canary") or pred is None:
        return None
    if model_uri not in (None, st.storage_uri):
        return None  # a new model: a new canary revision, the usual case
    if not pred.latest_created or pred.latest_created != pred.latest_rolled_out:
        return None  # a canary is in progress: rollback / moving the split work as usual
    latest, previous = pred.latest_created, pred.previous_rolled_out
    if previous:
        if action == "rollback":
            return "note", (
                f"the latest predictor revision {latest} is fully rolled out: KServe rolls back "
                f"past that promotion and pins 100% to the previous rolled-out revision {previous}"
            )
        return "note", (
            f"the latest predictor revision {latest} is fully rolled out and no new model is "
            f"given: KServe splits {percent}% to it and the rest to the previous rolled-out "
            f"revision {previous}"
        )
    if action == "rollback":
        return "warning", (
            f"the latest predictor revision {latest} is the only one ever rolled out: there is "
            "nothing to roll back to, canaryTrafficPercent=0 changes nothing"
        )
    return "warning", (
        f"the latest predictor revision {latest} is the only one ever rolled out: without "
        "--model-uri there is no canary to send traffic to"
    )


def command_plan(
    command: str, percent: int | None = None, model_uri: str | None = None
) -> tuple[dict[str, Any], int] | None:
    """(merge-patch body, expected traffic % of the latest revision) of ``command``; None for
    ``status``, which changes nothing. Invalid inputs raise ValueError before any API call."""
    if command == "canary":
        share = validate_percent(percent)
        return canary_patch(share, model_uri), share
    if command == "promote":
        return promote_patch(model_uri), 100
    if command == "rollback":
        return rollback_patch(), 0
    return None


def goal_for(before: IsvcStatus, command: str, expected: int, model_uri: str | None) -> Goal:
    """What ``command`` waits for, given the status before its patch: a model URI other than
    the current one must produce a new predictor revision first."""
    new_revision = model_uri is not None and model_uri != before.storage_uri
    pred = before.component("predictor")
    previous_created = (pred.latest_created if pred else "") if new_revision else None
    return Goal(command, expected, previous_created)


def field_owners(isvc: Mapping[str, Any]) -> dict[str, list[str]]:
    """For each field the CLI patches: the field managers that own it ("name (Operation)")."""
    owners: dict[str, list[str]] = {name: [] for name in ROLLOUT_FIELDS}
    for entry in (isvc.get("metadata") or {}).get("managedFields") or []:
        fields = entry.get("fieldsV1") or {}
        for name, path in ROLLOUT_FIELDS.items():
            node: Any = fields
            for key in path:
                node = node.get(key) if isinstance(node, dict) else None
            if node is not None:
                owners[name].append(f"{entry.get('manager', '?')} ({entry.get('operation', '?')})")
    return owners


def helm_equivalent(
    release: str, namespace: str, action: str, model_uri: str | None, percent: int | None
) -> str:
    """The ``helm upgrade`` that makes the release render what the CLI patch sets."""
    sets = {
        "canary": (
            ["inferenceService.canary.enabled=true"]
            + ([f"inferenceService.canary.storageUri={model_uri}"] if model_uri else [])
            + [f"inferenceService.canary.trafficPercent={percent}"]
        ),
        "promote": (
            ([f"inferenceService.predictor.storageUri={model_uri}"] if model_uri else [])
            + ["inferenceService.canary.enabled=false"]
        ),
        "rollback": ["inferenceService.canary.trafficPercent=0"],
    }[action]
    flags = " ".join(f"--set {s}" for s in sets)
    return (
        f"helm upgrade {release} {HELM_CHART_HINT} -n {namespace} --reset-then-reuse-values {flags}"
    )


def helm_notice(
    isvc: Mapping[str, Any],
    action: str,
    body: Mapping[str, Any],
    model_uri: str | None,
    percent: int | None,
) -> str | None:
    """What a patch means for the Helm release that manages ``isvc``; None when none does."""
    meta = isvc.get("metadata") or {}
    ann = meta.get("annotations") or {}
    release = ann.get("meta.helm.sh/release-name")
    if not release:
        return None
    namespace = ann.get("meta.helm.sh/release-namespace") or meta.get("namespace", "")
    pred = (body.get("spec") or {}).get("predictor") or {}
    touched = [
        name
        for name in ROLLOUT_FIELDS
        if (name.endswith("canaryTrafficPercent") and "canaryTrafficPercent" in pred)
        or (name.endswith("storageUri") and "storageUri" in (pred.get("model") or {}))
    ]
    owners = field_owners(isvc)
    held = "; ".join(f"{n}: {', '.join(owners[n]) or 'no manager yet'}" for n in touched)
    if action == "promote" and not model_uri:
        model_uri = (
            ((isvc.get("spec") or {}).get("predictor") or {}).get("model", {}).get("storageUri")
        )
    return (
        f"InferenceService {namespace}/{meta.get('name')} belongs to Helm release {release!r}. "
        f"After this patch field manager {FIELD_MANAGER!r} owns {', '.join(touched)} "
        f"(now: {held}). A later `helm upgrade` rendering other values for them fails with a "
        "server-side apply conflict (Helm 4), and with --force-conflicts puts the chart's "
        "values back, undoing this rollout. Carry it into the release instead (same values: "
        f"no conflict, Helm co-owns them): "
        f"{helm_equivalent(release, namespace, action, model_uri, percent)}"
    )
