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
this package costs nothing.

Modules: :mod:`~predictor.rollout.status` reads an InferenceService's revisions and split;
:mod:`~predictor.rollout.plan` is the state machine (patch bodies, goals, progress, notices;
pure, unit-tested without a cluster); :mod:`~predictor.rollout.kube` is the Kubernetes client
and the wait loop; :mod:`~predictor.rollout.cli` the command line (``__main__`` runs it). The
names below are re-exported so ``from predictor import rollout; rollout.summarize(...)`` works.
"""

from __future__ import annotations

from predictor.rollout.cli import (
    DEFAULT_NAME,
    DEFAULT_NAMESPACE,
    EXIT_ERROR,
    EXIT_OK,
    build_parser,
    main,
)
from predictor.rollout.kube import (
    GROUP,
    PLURAL,
    VERSION,
    IsvcClient,
    IsvcNotFoundError,
    RolloutError,
    load_custom_objects_api,
    wait_for_rollout,
)
from predictor.rollout.plan import (
    FIELD_MANAGER,
    HELM_CHART_HINT,
    ROLLOUT_FIELDS,
    Goal,
    canary_patch,
    command_plan,
    field_owners,
    goal_for,
    helm_equivalent,
    helm_notice,
    promote_patch,
    rollback_patch,
    rollout_notice,
    rollout_progress,
    split_tolerance,
    validate_percent,
)
from predictor.rollout.status import (
    COMPONENTS,
    ComponentStatus,
    IsvcStatus,
    TrafficTarget,
    format_status,
    status_json,
    summarize,
)

__all__ = [
    "COMPONENTS",
    "DEFAULT_NAME",
    "DEFAULT_NAMESPACE",
    "EXIT_ERROR",
    "EXIT_OK",
    "FIELD_MANAGER",
    "GROUP",
    "HELM_CHART_HINT",
    "PLURAL",
    "ROLLOUT_FIELDS",
    "VERSION",
    "ComponentStatus",
    "Goal",
    "IsvcClient",
    "IsvcNotFoundError",
    "IsvcStatus",
    "RolloutError",
    "TrafficTarget",
    "build_parser",
    "canary_patch",
    "command_plan",
    "field_owners",
    "format_status",
    "goal_for",
    "helm_equivalent",
    "helm_notice",
    "load_custom_objects_api",
    "main",
    "promote_patch",
    "rollback_patch",
    "rollout_notice",
    "rollout_progress",
    "split_tolerance",
    "status_json",
    "summarize",
    "validate_percent",
    "wait_for_rollout",
]
