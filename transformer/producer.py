"""Data-producer writes: new feature rows in, fresh predictions out.

``Producer.write(rows)`` (the Python API; ``POST /producer/v1/write`` on the transformer's
HTTP port calls it) validates the rows, writes them to the online store with the current time
as their event time, and, in ``cached`` mode, recomputes the cached predictions of those users
through the predictor and writes them before acknowledging, so the next read is a fresh hit.

Failures: the store down or timing out is ``FeatureStoreUnavailable`` (503), the predictor
``PredictorUnavailable``/``PredictorTimeout`` (503/504): the route answers them as JSON and
the connection stays usable. A 503 means the write may or may not have been applied (the
store may have applied it before the timeout): writes are idempotent, so the client retries.
An acknowledgement (200) means the rows reached Redis; whether they are on disk depends on
Redis' ``appendfsync`` (docs/reliability.md, "Durability").

Invariant: once a write is acknowledged, no request that starts afterwards gets a prediction
computed from older features. It holds whatever else is in flight, because a cached prediction
is served only when its ``features_timestamp`` is at least the user's current feature time,
and the features are written before the acknowledgement.

``python -m transformer.producer --url http://127.0.0.1:8080 rows.csv`` sends files.
"""

from __future__ import annotations

import argparse
import ast
import logging
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from kserve.errors import InvalidInput

log = logging.getLogger(__name__)

MAX_ROWS = 10_000
_INT_TYPES = {"INT64", "INT32"}


class Producer:
    """Writes feature rows for one feature view and refreshes the affected predictions."""

    def __init__(self, transformer: Any, view: str, sink: Any):
        self.t = transformer
        self.reader = transformer.reader
        self.view = view
        self.sink = sink
        fv = self.reader.store.get_feature_view(view)
        from transformer.features import v2_type

        self.fields = {f.name: v2_type(f.dtype) for f in fv.features}
        self.join_key = self.reader.join_key

    def _frame(self, rows: Any) -> tuple[pd.DataFrame, dict[str, np.ndarray] | None]:
        if not isinstance(rows, list) or not rows:
            raise InvalidInput('"rows" must be a non-empty list of objects')
        if len(rows) > MAX_ROWS:
            raise InvalidInput(f"{len(rows)} rows exceed the limit of {MAX_ROWS} per write")
        want = {self.join_key, *self.fields}
        optional = set(self.reader.request_fields)
        ctx_rows = 0
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise InvalidInput(f"row {i}: must be an object")
            missing = sorted(want - set(row))
            unknown = sorted(set(row) - want - optional)
            if missing or unknown:
                raise InvalidInput(f"row {i}: missing {missing}, unknown {unknown}")
            ctx_rows += bool(optional & set(row))
            for name, dtype in [(self.join_key, "INT64"), *self.fields.items()]:
                v = row[name]
                ok = isinstance(v, int) if dtype in _INT_TYPES else isinstance(v, int | float)
                if not ok or isinstance(v, bool):
                    raise InvalidInput(f"row {i}: '{name}' must be a {dtype} number, got {v!r}")
        if ctx_rows not in (0, len(rows)):
            raise InvalidInput("give the request fields on every row or on none")
        df = pd.DataFrame([{k: r[k] for k in want} for r in rows])
        ctx = None
        if ctx_rows:
            ctx = {
                s.name: np.array([r[s.name] for r in rows])
                for s in self.reader.request_fields.values()
            }
        return df, ctx

    async def write(self, rows: Any) -> dict[str, Any]:
        df, ctx = self._frame(rows)
        now = datetime.now(UTC)
        df["event_timestamp"] = now
        df["created"] = now
        await self.sink(self.view, df)  # FeatureStoreUnavailable (503) if it fails
        self.t.metrics.producer_rows.inc(len(df))
        ids = df[self.join_key].to_numpy(np.int64)
        refreshed = await self.refresh(ids, ctx) if self.t.policy.refreshes_on_write else 0
        return {"written": len(df), "refreshed": refreshed, "features_timestamp": now.isoformat()}

    async def refresh(self, ids: np.ndarray, ctx: dict[str, np.ndarray] | None) -> int:
        """Recompute and write the predictions of ``ids`` (awaited, not queued)."""
        fields = list(self.reader.request_fields)
        if ctx is None:  # re-score each user's last cached request context
            dummy = {self.join_key: ids, **{f: np.zeros(len(ids)) for f in fields}}
            batch, _ = await self.reader.read(dummy, with_predictions=True)
            assert batch.cached is not None
            keep = batch.cached.present & np.array([bool(k) for k in batch.cached.request_key])
            if not keep.any():
                return 0
            ids = ids[keep]
            parsed = [
                _parse_key(k) for k, y in zip(batch.cached.request_key, keep, strict=True) if y
            ]
            ctx = {f: np.array([p[f] for p in parsed]) for f in fields}
        from transformer.cache import request_keys

        columns = {self.join_key: ids, **ctx}
        batch, _ = await self.reader.read(columns)
        ok = ~batch.missing
        if not ok.any():
            return 0
        pred = await self.t.client.infer(self.t.model_features, batch.matrix[ok])
        keys = request_keys(columns, fields, len(ids))
        kept = [k for k, y in zip(keys, ok, strict=True) if y]
        if not await self.t.policy.write_now(
            ids[ok], pred.scores, pred.model_version, batch.feature_ts[ok], kept
        ):
            from transformer.errors import FeatureStoreUnavailable

            raise FeatureStoreUnavailable(
                "features written, but refreshing their predictions failed"
            )
        return len(kept)


def _parse_key(key: str) -> dict[str, Any]:
    out = {}
    for part in key.split("|"):
        name, _, value = part.partition("=")
        out[name] = ast.literal_eval(value)
    return out


def install_route(app: Any, producer: Producer) -> None:
    """``POST /producer/v1/write`` with ``{"rows": [...]}`` on the transformer's HTTP port."""
    import orjson
    from starlette.requests import Request
    from starlette.responses import Response

    from predictor.protocol.rest import json_error
    from transformer.errors import UpstreamError

    async def write(request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as e:
            return json_error(400, f"body is not valid JSON: {e}")
        if not isinstance(body, dict) or set(body) - {"rows"}:
            return json_error(400, 'body must be {"rows": [...]}')
        try:
            result = await producer.write(body.get("rows"))
        except InvalidInput as e:
            return json_error(400, str(e))
        except UpstreamError as e:  # store or predictor down: 503/504 JSON, connection kept
            return json_error(e.status, e.reason)
        return Response(orjson.dumps(result), 200, media_type="application/json")

    app.router.add_route("/producer/v1/write", write, methods=["POST"])


def read_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
    elif path.suffix in (".jsonl", ".ndjson"):
        df = pd.read_json(path, lines=True)
    elif path.suffix == ".csv":
        df = pd.read_csv(path)
    else:
        raise SystemExit(f"{path}: use .csv, .parquet or .jsonl")
    drop = [c for c in ("event_timestamp", "created") if c in df.columns]
    return df.drop(columns=drop).to_dict(orient="records")


def post_rows(
    url: str, rows: Sequence[dict[str, Any]], chunk: int = 1000, timeout_s: float = 30.0
) -> dict[str, int]:
    """Send rows to a running transformer in chunks; returns totals."""
    import httpx

    totals = {"written": 0, "refreshed": 0}
    with httpx.Client(base_url=url, timeout=timeout_s) as c:
        for start in range(0, len(rows), chunk):
            r = c.post("/producer/v1/write", json={"rows": list(rows[start : start + chunk])})
            if r.status_code != 200:
                raise SystemExit(f"rows {start}..{start + chunk}: {r.status_code} {r.text}")
            body = r.json()
            totals["written"] += body["written"]
            totals["refreshed"] += body["refreshed"]
            log.info("%d/%d rows written", min(start + chunk, len(rows)), len(rows))
    return totals


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m transformer.producer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", type=Path, help=".csv, .parquet or .jsonl feature rows")
    p.add_argument("--url", default="http://127.0.0.1:8080", help="transformer base URL")
    p.add_argument("--chunk", type=int, default=1000)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    t0 = time.perf_counter()
    rows = [r for f in a.files for r in read_rows(f)]
    totals = post_rows(a.url, rows, a.chunk)
    print(
        f"wrote {totals['written']} rows, refreshed {totals['refreshed']} predictions "
        f"in {time.perf_counter() - t0:.1f}s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
