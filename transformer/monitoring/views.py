"""What the operators see: Prometheus gauges (computed on scrape), ``GET
/v2/models/{name}/monitoring`` (JSON) and ``POST /v2/models/{name}/labels`` (outcomes in)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from predictor.jobs import baseline as baseline_file
from transformer.monitoring.drift import DriftMonitor
from transformer.monitoring.quality import QualityMonitor
from transformer.settings import TransformerSettings

log = logging.getLogger(__name__)

MAX_LABELS = 10_000


class Monitoring:
    """Drift + quality of one served model; ``observe`` is the request path's one call."""

    def __init__(self, drift: DriftMonitor, quality: QualityMonitor, psi_threshold: float):
        self.drift = drift
        self.quality = quality
        self.psi_threshold = psi_threshold
        self.model_version = drift.baseline.model_version

    def observe(self, features: np.ndarray, scores: np.ndarray, users: np.ndarray) -> None:
        self.drift.observe(features, scores)
        self.quality.observe(users, scores)

    def view(self, model_name: str) -> dict[str, Any]:
        snap = self.drift.snapshot()
        w = self.drift.window
        return {
            "model_name": model_name,
            "model_version": self.model_version,
            "window": {"kind": w.kind, "size": w.size, "buckets": w.buckets},
            "psi_threshold": self.psi_threshold,
            "features": [v.as_dict(self.psi_threshold) for v in snap[:-1]],
            "score": snap[-1].as_dict(self.psi_threshold),
            "quality": self.quality.snapshot().as_dict()
            | {
                "joined_total": self.quality.joined,
                "unmatched_total": self.quality.unmatched,
                "holdout": self.drift.baseline.metrics,
            },
        }


class Fanout:
    """Several observers behind the one hook of the request path."""

    def __init__(self, *observers: Any):
        self.observers = observers

    def observe(self, features: np.ndarray, scores: np.ndarray, users: np.ndarray) -> None:
        for o in self.observers:
            o.observe(features, scores, users)


def combine(*observers: Any) -> Any:
    present = [o for o in observers if o is not None]
    return None if not present else present[0] if len(present) == 1 else Fanout(*present)


class MonitoringCollector:
    """Gauges computed from the windows when Prometheus scrapes (never per request)."""

    def __init__(self, monitoring: Monitoring):
        self.m = monitoring

    def describe(self) -> list[Metric]:
        return []  # collected lazily; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        v = self.m.model_version
        fam = {
            "psi": GaugeMetricFamily(
                "transformer_drift_psi",
                "PSI of the served values vs the training hold-out, per model input and score "
                "(NaN until the window has monitoring_min_rows values)",
                labels=["feature", "model_version"],
            ),
            "js": GaugeMetricFamily(
                "transformer_drift_js_distance",
                "Jensen-Shannon distance (base 2, 0..1) of the served values vs the hold-out",
                labels=["feature", "model_version"],
            ),
            "missing": GaugeMetricFamily(
                "transformer_drift_missing_share",
                "Share of served rows without a value in the window",
                labels=["feature", "model_version"],
            ),
        }
        rows = GaugeMetricFamily(
            "transformer_drift_window_rows",
            "Rows in the drift window",
            labels=["model_version"],
        )
        snap = self.m.drift.snapshot()
        for d in snap:
            fam["psi"].add_metric([d.name, v], d.psi)
            fam["js"].add_metric([d.name, v], d.js)
            fam["missing"].add_metric([d.name, v], d.missing_share)
        rows.add_metric([v], snap[-1].rows)
        yield from fam.values()
        yield rows
        q = self.m.quality.snapshot()
        for name, value, doc in [
            ("auc", q.auc, "Rolling ROC AUC of the joined (score, outcome) pairs"),
            ("log_loss", q.log_loss, "Rolling log loss of the joined pairs"),
            ("labels", float(q.labels), "Joined (score, outcome) pairs in the quality window"),
        ]:
            g = GaugeMetricFamily(f"transformer_quality_{name}", doc, labels=["model_version"])
            g.add_metric([v], value)
            yield g
        holdout = self.m.drift.baseline.metrics
        if "auc" in holdout:  # the bar live AUC is held to (alert: live < hold-out - 0.05)
            g = GaugeMetricFamily(
                "transformer_quality_holdout_auc",
                "ROC AUC of this model version on its training hold-out (from baseline.json)",
                labels=["model_version"],
            )
            g.add_metric([v], holdout["auc"])
            yield g
        for kind in ("predicted", "observed"):
            g = GaugeMetricFamily(
                f"transformer_quality_calibration_{kind}",
                f"Mean {kind} click rate per score band",
                labels=["band", "model_version"],
            )
            for b in q.bands:
                x = b[kind]
                g.add_metric([b["band"], v], math.nan if x is None else x)
            yield g
        c = CounterMetricFamily(
            "transformer_labels", "Outcomes received, by join result", labels=["result"]
        )
        c.add_metric(["joined"], self.m.quality.joined)
        c.add_metric(["unmatched"], self.m.quality.unmatched)
        yield c


def build(
    settings: TransformerSettings,
    feature_names: list[str],
    registry: CollectorRegistry | None = REGISTRY,
    fetched: baseline_file.Baseline | None = None,
) -> Monitoring | None:
    """The monitoring of the served model, or None (off, or no usable baseline: logged).
    ``fetched``: the baseline the predictor served (``reference.from_predictor``)."""
    if not settings.monitoring_enabled:
        log.info("monitoring: off (monitoring_enabled=false)")
        return None
    if fetched is not None:
        b = fetched
        if b.feature_names != feature_names:  # the predictor's own files disagree: not fatal
            log.warning(
                "monitoring: off, the predictor's baseline has inputs %s, its model %s",
                b.feature_names,
                feature_names,
            )
            return None
    else:
        path = settings.monitoring_baseline
        if path is None and settings.collocated_model_dir is not None:
            path = settings.collocated_model_dir / baseline_file.BASELINE_FILE
        if path is None or not path.is_file():
            log.warning(
                "drift and quality monitoring: off, no baseline file (%s) and none from the "
                "predictor; set monitoring_baseline to the model's %s",
                path or "monitoring_baseline unset",
                baseline_file.BASELINE_FILE,
            )
            return None
        b = baseline_file.read(path)  # a broken file is a start-up error naming it
        if b.feature_names != feature_names:
            raise baseline_file.BaselineError(
                f"{path}: features {b.feature_names} are not the model's inputs {feature_names}"
            )
    interval = settings.monitoring_compute_interval_ms / 1000
    drift = DriftMonitor(
        b,
        settings.monitoring_window,
        settings.monitoring_window_size,
        settings.monitoring_buckets,
        settings.monitoring_min_rows,
        interval,
    )
    quality = QualityMonitor(
        settings.monitoring_prediction_log_size,
        settings.monitoring_label_join_window_s,
        settings.monitoring_quality_window,
        settings.monitoring_min_labels,
        interval,
    )
    m = Monitoring(drift, quality, settings.monitoring_psi_threshold)
    if registry is not None:
        registry.register(MonitoringCollector(m))
    log.info(
        "monitoring: model %s, %d inputs + score, %s window of %g",
        b.model_version,
        len(b.features),
        settings.monitoring_window,
        settings.monitoring_window_size,
    )
    return m


class LabelError(ValueError):
    pass


def parse_labels(body: Any, now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``{"labels": [{"user_id": 42, "outcome": 1, "timestamp": "2026-..." | 1764000000.0}]}``
    (timestamp optional: now) → user ids, times (epoch s), outcomes."""
    if not isinstance(body, dict) or set(body) != {"labels"}:
        raise LabelError('body must be {"labels": [{"user_id", "outcome", "timestamp"?}, ...]}')
    rows = body["labels"]
    if not isinstance(rows, list) or not rows:
        raise LabelError('"labels" must be a non-empty list')
    if len(rows) > MAX_LABELS:
        raise LabelError(f"{len(rows)} labels exceed the limit of {MAX_LABELS} per call")
    users, times, outcomes = [], [], []
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise LabelError(f"labels[{i}]: must be an object")
        if "prediction_id" in r:
            raise LabelError(
                f"labels[{i}]: prediction_id is not supported here; give user_id and "
                "timestamp, or send it to POST /v2/models/<name>/feedback (bandit on)"
            )
        unknown = sorted(set(r) - {"user_id", "outcome", "timestamp"})
        if unknown:
            raise LabelError(f"labels[{i}]: unknown fields {unknown}")
        uid, y = r.get("user_id"), r.get("outcome")
        if not isinstance(uid, int) or isinstance(uid, bool):
            raise LabelError(f"labels[{i}]: 'user_id' must be an integer, got {uid!r}")
        if y not in (0, 1) or isinstance(y, float):
            raise LabelError(f"labels[{i}]: 'outcome' must be 0 or 1 (or a bool), got {y!r}")
        users.append(uid)
        outcomes.append(int(y))
        times.append(_when(r.get("timestamp", now), i))
    return np.array(users, np.int64), np.array(times), np.array(outcomes, np.int8)


def _when(ts: Any, i: int) -> float:
    if isinstance(ts, int | float) and not isinstance(ts, bool) and math.isfinite(ts):
        return float(ts)
    if isinstance(ts, str):
        try:
            dt = datetime.fromisoformat(ts)
        except ValueError:
            pass
        else:
            if dt.tzinfo is not None:
                return dt.timestamp()
    raise LabelError(
        f"labels[{i}]: 'timestamp' must be epoch seconds or an ISO 8601 time with a zone, "
        f"got {ts!r}"
    )


def install_routes(app: Any, model_name: str, monitoring: Monitoring | None) -> None:
    import orjson
    from starlette.requests import Request
    from starlette.responses import Response

    from predictor.protocol.rest import json_error

    def _check(request: Request) -> Response | None:
        name = request.path_params["name"]
        if name != model_name:
            return json_error(404, f"model {name!r} is not served here (only {model_name!r})")
        if monitoring is None:
            return json_error(
                404, "monitoring is off (monitoring_enabled=false or no baseline file)"
            )
        return None

    async def view(request: Request) -> Response:
        if (err := _check(request)) is not None:
            return err
        assert monitoring is not None
        body = orjson.dumps(monitoring.view(model_name), option=orjson.OPT_SERIALIZE_NUMPY)
        return Response(body, 200, media_type="application/json")

    async def labels(request: Request) -> Response:
        if (err := _check(request)) is not None:
            return err
        assert monitoring is not None
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as e:
            return json_error(400, f"body is not valid JSON: {e}")
        try:
            users, at, outcomes = parse_labels(body, time.time())
        except LabelError as e:
            return json_error(400, str(e))
        joined = monitoring.quality.add_labels(users, at, outcomes)
        result = {"received": len(users), "joined": joined, "unmatched": len(users) - joined}
        return Response(orjson.dumps(result), 200, media_type="application/json")

    app.router.add_route("/v2/models/{name}/monitoring", view, methods=["GET"])
    app.router.add_route("/v2/models/{name}/labels", labels, methods=["POST"])
