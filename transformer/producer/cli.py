"""``python -m transformer.producer --url http://127.0.0.1:8080 rows.csv``: send feature rows
from files to a running transformer's ``POST /producer/v1/write``, in chunks."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)


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
