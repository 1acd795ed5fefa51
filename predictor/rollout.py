"""Canary rollouts of the ``click-model`` InferenceService predictor.

``python -m predictor.rollout canary --model-uri pvc://click-model-models/xgboost --percent 20``
``python -m predictor.rollout rollback``   (canary gets 0 %, the rolled-out revision 100 %)
``python -m predictor.rollout promote``    (canary gets 100 % and becomes the rolled-out one)
``python -m predictor.rollout status``     (traffic split per revision)

Common flags: ``--name click-model --namespace feast-inference [--context CTX]``;
``canary``/``promote``/``rollback`` wait (``--timeout`` seconds, default 600) until KServe
reports the new split; ``--no-wait`` returns right after the patch.

KServe semantics (serverless / Knative mode only):

* ``spec.predictor.canaryTrafficPercent: N`` with a changed ``spec.predictor.model.storageUri``
  creates a new revision that gets N % of the traffic; the rest stays on
  ``status.components.predictor.latestRolledoutRevision`` (the last revision that had 100 %).
* rollback = ``canaryTrafficPercent: 0``: everything goes back to the rolled-out revision,
  the canary revision stays around with 0 %.
* promote = remove ``canaryTrafficPercent`` (JSON merge patch ``null``): the latest revision
  gets 100 % and becomes ``latestRolledoutRevision``; the old one becomes
  ``previousRolledoutRevision``.
* After a promotion the latest revision *is* the rolled-out one, and KServe reads a
  ``canaryTrafficPercent`` below 100 as a split against the revision before it: it moves
  ``latestRolledoutRevision`` back to ``previousRolledoutRevision`` and routes the rest there
  (two reconciles). So ``rollback`` undoes the promotion (100 % to the previous model), and
  ``canary --percent N`` without a new model re-opens the split against the previous model.
  Only a service that was never canaried has nothing to roll back to.

Completion is judged by revision names, per command: the new revision exists and is ready,
``latest`` resolves to it with the requested share, and the rest sits on
``latestRolledoutRevision``; a rollback is done when the rolled-out revision has 100 % and the
route is ready, even if the canary revision never became ready (that is why one rolls back).

Field ownership: every patch is sent with the field manager ``feast-kserve-rollout``
(``--field-manager``), so ``metadata.managedFields`` names the CLI as the owner of the two fields
it sets (``spec.predictor.canaryTrafficPercent``, ``spec.predictor.model.storageUri``). On an
InferenceService that a Helm release manages, the CLI says so before patching and prints the
``helm upgrade`` that carries the same rollout into the release: Helm 4 applies server-side, and
a later upgrade that renders other values for those fields conflicts with this manager
(``--force-conflicts`` would put the chart's values back, undoing the rollout).

Every change is a JSON merge patch (``application/merge-patch+json``, the content type
``CustomObjectsApi.patch_namespaced_custom_object`` sends for an object body in kubernetes
client 29 and later; a test pins it). The builders of the patch bodies are pure
functions; the ``kubernetes`` package is imported only when a client is built, so importing
this module costs nothing.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

GROUP = "serving.kserve.io"
VERSION = "v1beta1"
PLURAL = "inferenceservices"
DEFAULT_NAME = "click-model"
DEFAULT_NAMESPACE = "feast-inference"
FIELD_MANAGER = "feast-kserve-rollout"
# The fields the CLI patches, as managedFields spells them.
ROLLOUT_FIELDS = {
    "spec.predictor.canaryTrafficPercent": ("f:spec", "f:predictor", "f:canaryTrafficPercent"),
    "spec.predictor.model.storageUri": ("f:spec", "f:predictor", "f:model", "f:storageUri"),
}
HELM_CHART_HINT = "helm/feast-kserve"
COMPONENTS = ("predictor", "transformer", "explainer")

EXIT_OK = 0
EXIT_ERROR = 1


class RolloutError(Exception):
    """A rollout step failed; the message is meant for the user."""


class IsvcNotFoundError(RolloutError):
    def __init__(self, name: str, namespace: str):
        super().__init__(f"InferenceService {name!r} not found in namespace {namespace!r}")
        self.name, self.namespace = name, namespace


# --------------------------------------------------------------------------- patch bodies


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


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class TrafficTarget:
    revision: str
    percent: int
    latest: bool
    tag: str


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    latest_created: str
    latest_ready: str
    latest_rolled_out: str
    previous_rolled_out: str
    traffic: tuple[TrafficTarget, ...]

    def latest_percent(self) -> int:
        """Traffic share of the targets that follow the latest revision."""
        return sum(t.percent for t in self.traffic if t.latest)

    def percent_of(self, revision: str) -> int:
        """Traffic share of one revision, over all the targets that resolve to it."""
        return sum(t.percent for t in self.traffic if t.revision == revision)

    def split(self) -> str:
        """``rev-a 80%, rev-b 20%`` for messages."""
        shares: dict[str, int] = {}
        for t in self.traffic:
            shares[t.revision or "-"] = shares.get(t.revision or "-", 0) + t.percent
        return ", ".join(f"{r} {p}%" for r, p in shares.items()) or "no traffic reported"


@dataclass(frozen=True)
class IsvcStatus:
    name: str
    namespace: str
    url: str
    ready_message: str
    storage_uri: str
    canary_percent: int | None
    components: tuple[ComponentStatus, ...] = field(default_factory=tuple)
    # condition type -> status ("True" / "False" / "Unknown"), e.g. PredictorRouteReady
    conditions: Mapping[str, str] = field(default_factory=dict)

    def component(self, name: str) -> ComponentStatus | None:
        return next((c for c in self.components if c.name == name), None)

    @property
    def ready(self) -> str:
        """The InferenceService's Ready condition: "True" / "False" / "Unknown"."""
        return self.conditions.get("Ready", "Unknown")

    @property
    def predictor_route_ready(self) -> bool:
        """The predictor's route serves its traffic spec (KServe's PredictorRouteReady, from
        Knative's RoutesReady); the overall Ready where a KServe version lacks it."""
        return self.conditions.get("PredictorRouteReady", self.ready) == "True"


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def summarize(isvc: Mapping[str, Any]) -> IsvcStatus:
    """The rollout-relevant parts of an InferenceService object."""
    meta = isvc.get("metadata") or {}
    spec_predictor = (isvc.get("spec") or {}).get("predictor") or {}
    status = isvc.get("status") or {}
    ready: Mapping[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {}
    )
    components = []
    for name in COMPONENTS:
        comp = (status.get("components") or {}).get(name)
        if comp is None:
            continue
        traffic = tuple(
            TrafficTarget(
                revision=str(t.get("revisionName") or ""),
                percent=_as_int(t.get("percent")),
                latest=bool(t.get("latestRevision")),
                tag=str(t.get("tag") or ""),
            )
            for t in comp.get("traffic") or []
        )
        components.append(
            ComponentStatus(
                name=name,
                latest_created=str(comp.get("latestCreatedRevision") or ""),
                latest_ready=str(comp.get("latestReadyRevision") or ""),
                latest_rolled_out=str(comp.get("latestRolledoutRevision") or ""),
                previous_rolled_out=str(comp.get("previousRolledoutRevision") or ""),
                traffic=traffic,
            )
        )
    canary = spec_predictor.get("canaryTrafficPercent")
    return IsvcStatus(
        name=str(meta.get("name") or ""),
        namespace=str(meta.get("namespace") or ""),
        url=str(status.get("url") or ""),
        ready_message=str(ready.get("message") or ready.get("reason") or ""),
        storage_uri=str((spec_predictor.get("model") or {}).get("storageUri") or ""),
        canary_percent=None if canary is None else _as_int(canary),
        components=tuple(components),
        conditions={
            str(c.get("type")): str(c.get("status") or "Unknown")
            for c in status.get("conditions") or []
            if c.get("type")
        },
    )


def format_status(st: IsvcStatus) -> str:
    """Human-readable status: header, then one traffic table per component."""
    canary = "unset" if st.canary_percent is None else f"{st.canary_percent}"
    lines = [
        f"InferenceService {st.namespace}/{st.name}  Ready={st.ready}"
        + (f" ({st.ready_message})" if st.ready != "True" and st.ready_message else ""),
        f"URL: {st.url or '-'}",
        f"predictor storageUri: {st.storage_uri or '-'}  canaryTrafficPercent: {canary}",
    ]
    for comp in st.components:
        lines.append("")
        lines.append(
            f"{comp.name}: latestCreated={comp.latest_created or '-'} "
            f"latestReady={comp.latest_ready or '-'} "
            f"latestRolledout={comp.latest_rolled_out or '-'} "
            f"previousRolledout={comp.previous_rolled_out or '-'}"
        )
        rows = [("REVISION", "TAG", "LATEST", "PERCENT")] + [
            (t.revision or "-", t.tag or "-", "yes" if t.latest else "no", f"{t.percent}%")
            for t in comp.traffic
        ]
        if len(rows) == 1:
            rows.append(("-", "-", "-", "no traffic reported"))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        for r in rows:
            lines.append(f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}")
    return "\n".join(lines)


def status_json(st: IsvcStatus) -> dict[str, Any]:
    return {
        "name": st.name,
        "namespace": st.namespace,
        "url": st.url,
        "ready": st.ready,
        "storageUri": st.storage_uri,
        "canaryTrafficPercent": st.canary_percent,
        "components": {
            c.name: {
                "latestCreatedRevision": c.latest_created,
                "latestReadyRevision": c.latest_ready,
                "latestRolledoutRevision": c.latest_rolled_out,
                "previousRolledoutRevision": c.previous_rolled_out,
                "traffic": [
                    {
                        "revisionName": t.revision,
                        "tag": t.tag,
                        "latestRevision": t.latest,
                        "percent": t.percent,
                    }
                    for t in c.traffic
                ],
            }
            for c in st.components
        },
    }


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


# --------------------------------------------------------------------------- client layer


def load_custom_objects_api(context: str | None = None) -> Any:
    """A ``kubernetes.client.CustomObjectsApi`` from kubeconfig, else the in-cluster config."""
    try:
        k8s_config = importlib.import_module("kubernetes.config")
        k8s_client = importlib.import_module("kubernetes.client")
    except ImportError as e:
        raise RolloutError(
            f"the 'kubernetes' Python package is required ({e}); pip install kubernetes"
        ) from None
    try:
        k8s_config.load_kube_config(context=context)
    except Exception as kube_err:  # ConfigException, missing file, bad context...
        if context is not None:
            raise RolloutError(f"cannot load kubeconfig context {context!r}: {kube_err}") from None
        try:
            k8s_config.load_incluster_config()
        except Exception as incluster_err:
            raise RolloutError(
                "cannot load a Kubernetes configuration: "
                f"kubeconfig: {kube_err}; in-cluster: {incluster_err}"
            ) from None
    return k8s_client.CustomObjectsApi()


def _api_exception_type() -> type[BaseException]:
    try:
        module = importlib.import_module("kubernetes.client.exceptions")
        exc: type[BaseException] = module.ApiException
        return exc
    except ImportError:  # no kubernetes package: only fakes can be in use
        return _NoApiException


def _transport_exception_types() -> tuple[type[BaseException], ...]:
    """What the kubernetes client raises when it cannot talk to the API server at all."""
    try:
        urllib3_exceptions = importlib.import_module("urllib3.exceptions")
    except ImportError:
        return (OSError,)
    return (OSError, urllib3_exceptions.HTTPError)


class _NoApiException(Exception):
    status: int | None = None


class IsvcClient:
    """get/patch one InferenceService; Kubernetes API errors become :class:`RolloutError`."""

    def __init__(self, api: Any, name: str, namespace: str, field_manager: str = FIELD_MANAGER):
        self.api, self.name, self.namespace = api, name, namespace
        self.field_manager = field_manager

    def _call(self, what: str, fn: Callable[[], Any]) -> dict[str, Any]:
        api_exception = _api_exception_type()
        try:
            result = fn()
        except api_exception as e:
            status = getattr(e, "status", None)
            if status == 404:
                raise IsvcNotFoundError(self.name, self.namespace) from None
            reason = getattr(e, "reason", None) or ""
            body = _error_message(getattr(e, "body", None))
            raise RolloutError(
                f"{what} InferenceService {self.namespace}/{self.name} failed: "
                f"HTTP {status} {reason}{': ' + body if body else ''}"
            ) from None
        except _transport_exception_types() as e:  # API server unreachable, connection reset
            raise RolloutError(
                f"{what} InferenceService {self.namespace}/{self.name} failed: "
                f"cannot reach the Kubernetes API server ({type(e).__name__}: {e})"
            ) from None
        if not isinstance(result, dict):
            raise RolloutError(f"{what} returned {type(result).__name__}, expected an object")
        return result

    def get(self) -> dict[str, Any]:
        return self._call(
            "reading",
            lambda: self.api.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, self.name
            ),
        )

    def patch(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call(
            "patching",
            lambda: self.api.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                self.name,
                dict(body),
                field_manager=self.field_manager,
            ),
        )


def _error_message(body: Any) -> str:
    """The ``message`` of a Kubernetes Status body, else the raw body (shortened)."""
    if not body:
        return ""
    try:
        parsed = json.loads(body)
    except (TypeError, ValueError):
        return str(body)[:300]
    if isinstance(parsed, dict) and parsed.get("message"):
        return str(parsed["message"])
    return str(body)[:300]


def wait_for_rollout(
    client: IsvcClient,
    goal: Goal,
    *,
    timeout: float = 600.0,
    interval: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    log: Callable[[str], None] = lambda _msg: None,
) -> IsvcStatus:
    """Poll until :func:`rollout_progress` says done; :class:`RolloutError` on timeout.

    A failed read (the API server restarting, a dropped connection) is logged and retried
    until the timeout: the patch was applied, only watching it failed."""
    deadline = clock() + timeout
    last_reason = ""
    st: IsvcStatus | None = None
    while True:
        try:
            st = summarize(client.get())
        except IsvcNotFoundError:
            raise
        except RolloutError as e:
            reason = f"cannot read the status ({e})"
        else:
            done, reason = rollout_progress(st, goal)
            if done:
                return st
        if reason != last_reason:
            log(f"waiting: {reason}")
            last_reason = reason
        if clock() >= deadline:
            table = f"\n{format_status(st)}" if st is not None else ""
            raise RolloutError(
                f"timed out after {timeout:.0f}s waiting for {client.namespace}/{client.name}: "
                f"{reason}{table}"
            )
        sleep(interval)


# --------------------------------------------------------------------------- CLI


def _uri_arg(value: str) -> str:
    try:
        return _validate_uri(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _percent_arg(value: str) -> int:
    try:
        return validate_percent(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--name", default=DEFAULT_NAME, help="InferenceService name [%(default)s]")
    common.add_argument(
        "--namespace", "-n", default=DEFAULT_NAMESPACE, help="namespace [%(default)s]"
    )
    common.add_argument("--context", default=None, help="kubeconfig context [current]")
    common.add_argument(
        "--field-manager",
        default=FIELD_MANAGER,
        help="server-side field manager recorded for the patched fields [%(default)s]",
    )

    waiting = argparse.ArgumentParser(add_help=False)
    waiting.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="wait until KServe reports the new traffic split [on]",
    )
    waiting.add_argument("--timeout", type=float, default=600.0, help="seconds [%(default)s]")
    waiting.add_argument("--interval", type=float, default=5.0, help=argparse.SUPPRESS)

    p = argparse.ArgumentParser(
        prog="python -m predictor.rollout",
        description="Canary rollout of a KServe InferenceService predictor.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    c = sub.add_parser(
        "canary",
        parents=[common, waiting],
        help="send PERCENT %% of traffic to the latest (or a new) predictor revision",
    )
    c.add_argument("--percent", type=_percent_arg, required=True, help="0..100")
    c.add_argument(
        "--model-uri",
        type=_uri_arg,
        default=None,
        help="new storageUri: creates the canary revision",
    )
    pr = sub.add_parser(
        "promote",
        parents=[common, waiting],
        help="give the latest revision 100%% (removes canaryTrafficPercent)",
    )
    pr.add_argument(
        "--model-uri", type=_uri_arg, default=None, help="also set storageUri (roll forward)"
    )
    sub.add_parser(
        "rollback",
        parents=[common, waiting],
        help="send all traffic back to the last rolled-out revision (canaryTrafficPercent=0); "
        "after a promotion, to the revision before it",
    )
    s = sub.add_parser("status", parents=[common], help="print the traffic split")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def _plan(args: argparse.Namespace) -> tuple[dict[str, Any], int] | None:
    """(merge-patch body, expected traffic % of the latest revision); None for ``status``."""
    if args.command == "canary":
        return canary_patch(args.percent, args.model_uri), args.percent
    if args.command == "promote":
        return promote_patch(args.model_uri), 100
    if args.command == "rollback":
        return rollback_patch(), 0
    return None


def main(
    argv: Sequence[str] | None = None,
    *,
    api: Any = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    args = build_parser().parse_args(argv)

    def say(msg: str) -> None:
        print(msg, file=err, flush=True)

    try:
        # Build (and so validate) the patch before touching the cluster.
        plan = _plan(args)
        client = IsvcClient(
            api if api is not None else load_custom_objects_api(args.context),
            args.name,
            args.namespace,
            args.field_manager,
        )
        current = client.get()
        before = summarize(current)
        if plan is None:
            if args.json:
                print(json.dumps(status_json(before), indent=2), file=out)
            else:
                print(format_status(before), file=out)
            return EXIT_OK

        body, expected = plan
        model_uri = getattr(args, "model_uri", None)
        notice = rollout_notice(before, args.command, model_uri, expected)
        if notice:
            say(f"{notice[0]}: {notice[1]}")
        helm = helm_notice(current, args.command, body, model_uri, expected)
        if helm:
            say(f"note: {helm}")
        new_revision = model_uri is not None and model_uri != before.storage_uri
        pred = before.component("predictor")
        previous_created = (pred.latest_created if pred else "") if new_revision else None
        goal = Goal(args.command, expected, previous_created)

        say(f"patching {args.namespace}/{args.name}: {json.dumps(body, sort_keys=True)}")
        client.patch(body)
        if not args.wait:
            return EXIT_OK
        st = wait_for_rollout(
            client,
            goal,
            timeout=args.timeout,
            interval=args.interval,
            sleep=sleep,
            clock=clock,
            log=say,
        )
        print(format_status(st), file=out)
        return EXIT_OK
    except (RolloutError, ValueError) as e:
        say(f"error: {e}")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
