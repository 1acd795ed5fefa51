"""The Kubernetes side of a rollout: a CustomObjectsApi from kubeconfig (imported only when
one is built), get/patch of one InferenceService with API errors turned into
:class:`RolloutError`, and the poll loop that waits for :func:`rollout_progress`."""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from predictor.rollout.plan import FIELD_MANAGER, Goal, rollout_progress
from predictor.rollout.status import IsvcStatus, format_status, summarize

GROUP = "serving.kserve.io"
VERSION = "v1beta1"
PLURAL = "inferenceservices"


class RolloutError(Exception):
    """A rollout step failed; the message is meant for the user."""


class IsvcNotFoundError(RolloutError):
    def __init__(self, name: str, namespace: str):
        super().__init__(f"InferenceService {name!r} not found in namespace {namespace!r}")
        self.name, self.namespace = name, namespace


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
