"""Reading an InferenceService: its predictor's revisions and traffic split, as data and as
the table / JSON the CLI prints. Pure: a dict in, dataclasses and text out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

COMPONENTS = ("predictor", "transformer", "explainer")


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
