"""Every check a complete stack (umbrella chart, kustomize overlay) must pass, in one call."""

from __future__ import annotations

from collections.abc import Iterable

from tests.deploy.checks.feast import check_feast
from tests.deploy.checks.kserve import (
    SERVERLESS_MODES,
    check_knative_compatible,
    check_kserve,
    deployment_mode,
)
from tests.deploy.checks.network import check_egress_policies, check_network_policies
from tests.deploy.checks.objects import Obj, ident
from tests.deploy.checks.references import check_references, check_services
from tests.deploy.checks.workloads import check_containers


def check_no_namespace_scoped_surprises(
    objs: list[Obj], *, allow_namespace_object: bool
) -> list[str]:
    """Only namespaced objects (no ClusterRoles, CRDs...) and, for Helm, no Namespace."""
    problems = []
    for o in objs:
        if o["kind"] in (
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "ClusterServingRuntime",
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
            "PersistentVolume",
        ):
            problems.append(f"{ident(o)}: cluster-scoped object in an application install")
        if o["kind"] == "Namespace" and not allow_namespace_object:
            problems.append(f"{ident(o)}: the Helm chart must not create its namespace")
    return problems


def _guarded(check, *args, **kwargs) -> list[str]:
    """Run one check; a crash on malformed input is reported as a problem, not a traceback."""
    try:
        return check(*args, **kwargs)
    except (KeyError, TypeError, ValueError, AttributeError, AssertionError) as exc:
        return [f"{check.__name__} could not check the manifests: {type(exc).__name__}: {exc}"]


def check_stack(
    objs: list[Obj], *, external: Iterable[str] = (), redis_bundled: bool = True
) -> list[str]:
    """Every check that needs the complete stack (umbrella chart, kustomize overlays)."""
    return (
        _guarded(check_containers, objs)
        + _guarded(check_references, objs, external)
        + _guarded(check_services, objs)
        + _guarded(check_network_policies, objs, redis_bundled=redis_bundled)
        + _guarded(
            check_egress_policies, objs, serverless=deployment_mode(objs) in SERVERLESS_MODES
        )
        + _guarded(check_feast, objs, redis_bundled=redis_bundled)
        + _guarded(check_kserve, objs)
        + _guarded(check_knative_compatible, objs)
    )
