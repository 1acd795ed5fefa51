"""Offline drift report: a logged window of the payload stream against the model's baseline,
as an Evidently HTML report.

    python -m transformer.monitoring.report --redis 127.0.0.1:6379 \\
        --baseline models/sklearn/baseline.json --window 1h --out report.html

Reads the entries of the payload-log stream (``transformer.monitoring.payload``) in the
window with ``XRANGE``, keeps those of the baseline's model version, and compares every model
input and the score with the baseline.

The baseline keeps bins (quantile edges) and hold-out counts, not the hold-out rows, so the
reference sample is built from it exactly: each variable becomes a categorical column of bin
labels (``b3 [0.012, 0.034)``), with each bin repeated as many times as the hold-out had rows
in it (``missing_share`` of the rows empty). The logged values are binned with the same
edges. Evidently then compares the same distributions the live gauges compare: its PSI is the
transformer's ``transformer_drift_psi`` over the window. Methods on raw values
(Kolmogorov-Smirnov, Wasserstein) would need hold-out rows, which the baseline does not keep.

Evidently is an optional extra (``pip install 'feast-kserve-inference[report]'``), imported
only here, never by the servers.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from predictor.jobs import baseline as baseline_file
from predictor.jobs.baseline import SCORE, Baseline, Distribution

DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
PAGE = 1000


class ReportError(Exception):
    """A problem the user can fix (stream, window, baseline); printed without a traceback."""


@dataclass
class Window:
    """The logged rows of one model version in [since, until]."""

    since: float
    until: float
    entries: int = 0
    other_versions: dict[str, int] = field(default_factory=dict)
    scores: list[np.ndarray] = field(default_factory=list)
    features: dict[str, list[np.ndarray]] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return int(sum(len(s) for s in self.scores))


def parse_time(text: str) -> float:
    """Epoch seconds, or ISO 8601 with a zone."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        at = datetime.fromisoformat(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: not epoch seconds or ISO 8601") from e
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a zone (e.g. +00:00 or Z)")
    return at.timestamp()


def parse_duration(text: str) -> float:
    m = DURATION.match(text.strip())
    if not m or float(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a positive duration like 3600, 90m, 1h, 2d")
    return float(m.group(1)) * UNITS[m.group(2)]


def _floats(values: list[Any]) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64)


def entries(client: Any, stream: str, since: float, until: float) -> Iterator[dict[str, str]]:
    """The stream's entries whose id time is in [since, until], page by page."""
    low = f"{int(since * 1000)}"
    high = f"{int(until * 1000)}"
    while True:
        page = client.xrange(stream, min=low, max=high, count=PAGE)
        for _id, fields in page:
            yield {k.decode(): v.decode() for k, v in fields.items()}
        if len(page) < PAGE:
            return
        low = "(" + page[-1][0].decode()  # exclusive: after the last one read


def read_window(
    client: Any, stream: str, since: float, until: float, version: str, names: list[str]
) -> Window:
    w = Window(since, until, features={n: [] for n in names})
    for fields in entries(client, stream, since, until):
        ts = float(fields.get("ts", "nan"))
        if not since <= ts <= until:  # the id is the write time; ts the request's
            continue
        v = fields.get("model_version", "")
        if v != version:
            w.other_versions[v] = w.other_versions.get(v, 0) + 1
            continue
        scores = _floats(json.loads(fields["scores"]))
        w.entries += 1
        w.scores.append(scores)
        logged = json.loads(fields["features"]) if "features" in fields else {}
        absent = np.full(len(scores), np.nan)  # payload_log_features=false: inputs missing
        for n in names:
            w.features[n].append(_floats(logged[n]) if n in logged else absent)
    return w


def bin_labels(d: Distribution) -> list[str]:
    """``b0 < e0``, ``b1 [e0, e1)``, ..., ``bK >= e_last``: readable, in bin order."""
    e = [f"{x:.4g}" for x in d.edges]
    if not e:
        return ["b0 all"]
    inner = [f"b{k} [{e[k - 1]}, {e[k]})" for k in range(1, len(e))]
    return [f"b0 < {e[0]}", *inner, f"b{len(e)} >= {e[-1]}"]


def binned(d: Distribution, values: np.ndarray) -> np.ndarray:
    """Each value's bin label (the transformer's rule: searchsorted right), None if missing."""
    labels = np.array(bin_labels(d), dtype=object)
    out = np.full(values.shape, None, dtype=object)
    present = ~np.isnan(values)
    out[present] = labels[np.searchsorted(np.asarray(d.edges), values[present], side="right")]
    return out


def reference_column(d: Distribution, rows: int) -> np.ndarray:
    """The hold-out as bin labels: bin k repeated counts[k] times, plus the missing rows."""
    labels = np.repeat(np.array(bin_labels(d), dtype=object), d.counts)
    missing = round(d.missing_share * rows)  # rows counts the missing ones too
    return np.concatenate([labels, np.full(missing, None, dtype=object)])


def _distributions(b: Baseline) -> list[Distribution]:
    return [*b.features, b.score]


def frames(b: Baseline, w: Window) -> tuple[Any, Any]:
    """(reference, current) pandas frames of bin labels, one column per input + score."""
    import pandas as pd

    ref = {d.name: pd.Series(reference_column(d, b.rows)) for d in _distributions(b)}
    cur_values = {n: np.concatenate(w.features[n]) for n in b.feature_names}
    cur_values[SCORE] = np.concatenate(w.scores)
    cur = {d.name: binned(d, cur_values[d.name]) for d in _distributions(b)}
    return pd.DataFrame(ref), pd.DataFrame(cur)


def run_report(b: Baseline, w: Window, method: str, threshold: float) -> Any:
    """The Evidently snapshot (``save_html``, ``dict``)."""
    try:
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset
    except ImportError as e:
        raise ReportError(
            f"Evidently is not installed ({e}): pip install 'feast-kserve-inference[report]'"
        ) from e
    reference, current = frames(b, w)
    columns = list(reference.columns)
    definition = DataDefinition(categorical_columns=columns)
    report = Report([DataDriftPreset(columns=columns, method=method, threshold=threshold)])
    return report.run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )


def drift_values(snapshot: Any) -> dict[str, float]:
    """Column -> drift value, from the snapshot's ValueDrift metrics."""
    out = {}
    for m in snapshot.dict()["metrics"]:
        config = m.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            out[config["column"]] = float(m["value"])
    return out


def load_baseline(path: Path | None, url: str | None) -> Baseline:
    if path is not None:
        try:
            return baseline_file.read(path)
        except baseline_file.BaselineError as e:
            raise ReportError(str(e)) from e
    assert url is not None
    import httpx

    try:
        r = httpx.get(url, timeout=10.0)
    except httpx.HTTPError as e:
        raise ReportError(f"baseline {url}: {e}") from e
    if r.status_code != 200:
        raise ReportError(f"baseline {url}: HTTP {r.status_code} {r.text[:300]}")
    return Baseline.model_validate_json(r.content)


def redis_client(address: str) -> Any:
    import redis

    return redis.Redis.from_url(address if "://" in address else f"redis://{address}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m transformer.monitoring.report",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--redis", required=True, help="host:port or redis://[:password@]host:port/db")
    p.add_argument("--stream", default="click-model:payloads", help="payload_log_stream")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--baseline", type=Path, help="the model's baseline.json")
    src.add_argument("--baseline-url", help="the predictor's /v2/models/<name>/baseline")
    p.add_argument("--since", type=parse_time, help="window start: epoch s or ISO 8601 with zone")
    p.add_argument("--until", type=parse_time, help="window end (default: now)")
    p.add_argument(
        "--window",
        type=parse_duration,
        default=3600.0,
        help="without --since: the window's length before --until (3600, 90m, 1h, 2d; 1h)",
    )
    p.add_argument("--model-version", help="entries of this version (default: the baseline's)")
    p.add_argument(
        "--method",
        default="psi",
        choices=["psi", "jensenshannon", "chisquare", "kl_div", "hellinger"],
        help="Evidently's drift method per column (psi: the live gauges' statistic)",
    )
    p.add_argument("--threshold", type=float, default=0.2, help="drift above this (PSI: 0.2)")
    p.add_argument("--min-rows", type=int, default=100, help="fewer logged rows: an error")
    p.add_argument("--out", type=Path, required=True, help="the HTML report")
    p.add_argument("--summary", type=Path, help="also write the drift values as JSON here")
    return p


def report(a: argparse.Namespace) -> dict[str, Any]:
    b = load_baseline(a.baseline, a.baseline_url)
    until = a.until if a.until is not None else time.time()
    since = a.since if a.since is not None else until - a.window
    if since >= until:
        raise ReportError(f"empty window: since {since} is not before until {until}")
    version = a.model_version or b.model_version
    import redis

    try:
        w = read_window(redis_client(a.redis), a.stream, since, until, version, b.feature_names)
    except redis.RedisError as e:
        raise ReportError(f"redis {a.redis.split('@')[-1]}: {e}") from e
    if w.rows < a.min_rows:
        others = f"; other versions: {w.other_versions}" if w.other_versions else ""
        raise ReportError(
            f"{w.rows} rows of model {version} in stream {a.stream} between "
            f"{datetime.fromtimestamp(since).astimezone().isoformat()} and "
            f"{datetime.fromtimestamp(until).astimezone().isoformat()} (need {a.min_rows}: "
            f"--min-rows){others}"
        )
    snapshot = run_report(b, w, a.method, a.threshold)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(a.out))
    values = drift_values(snapshot)
    summary = {
        "model_version": version,
        "since": since,
        "until": until,
        "entries": w.entries,
        "rows": w.rows,
        "other_versions": w.other_versions,
        "method": a.method,
        "threshold": a.threshold,
        "drift": values,
        "drifted": sorted(n for n, v in values.items() if v > a.threshold),
    }
    if a.summary is not None:
        a.summary.write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    try:
        s = report(a)
    except ReportError as e:
        print(f"drift report: {e}", file=sys.stderr)
        return 1
    print(f"{s['rows']} rows ({s['entries']} requests) of model {s['model_version']} -> {a.out}")
    for name, value in s["drift"].items():
        flag = "  DRIFT" if value > a.threshold else ""
        print(f"  {name:48s} {a.method} {value:.3f}{flag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
