"""Load generation: one ``wrk`` run with the Lua scripts in ``bench/`` and its summary line
turned into a record (req/s, latency percentiles, errors, CPU of the watched processes)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.bench.common import ROOT, BenchError
from devtools.bench.procwatch import ProcWatch, Window

WRK_TIMEOUT = "5s"


def parse_wrk(stdout: str) -> dict[str, Any]:
    """The ``JSON {...}`` line our Lua scripts print in ``done()`` (latencies in µs)."""
    for line in stdout.splitlines():
        if line.startswith("JSON "):
            data = json.loads(line[5:])
            if not isinstance(data, dict) or "requests" not in data:
                raise ValueError(f"wrk summary without request count: {line!r}")
            return data
    raise ValueError("no 'JSON {...}' line in wrk's output (was the script bench/*.lua used?)")


def wrk_record(raw: dict[str, Any], batch: int) -> dict[str, Any]:
    """requests/s, user-predictions/s, latency in ms and error counts from ``parse_wrk``."""
    seconds = raw["duration_us"] / 1e6
    errors = raw.get("errors", {})
    if isinstance(errors, dict):
        n_errors = sum(int(v) for v in errors.values())
    else:
        n_errors = int(errors)
    rps = raw["requests"] / seconds if seconds > 0 else 0.0
    return {
        "requests": int(raw["requests"]),
        "seconds": round(seconds, 3),
        "rps": round(rps, 1),
        "users_per_s": round(rps * batch, 1),
        "errors": n_errors,
        "error_kinds": errors if isinstance(errors, dict) else {},
        "latency_ms": {
            k: round(raw[k] / 1000.0, 3) for k in ("p50", "p90", "p99", "p999", "mean", "max")
        },
    }


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


@dataclass
class Load:
    url: str
    script: Path
    env: dict[str, str]
    batch: int = 1


def wrk_cmd(load: Load, concurrency: int, seconds: int) -> list[str]:
    return [
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        WRK_TIMEOUT,
        "-s",
        str(load.script),
        load.url,
    ]


def run_wrk(
    load: Load, concurrency: int, seconds: int, watch: ProcWatch | None = None
) -> dict[str, Any]:
    """One wrk run; with ``watch``, also CPU and RSS of the watched processes and of wrk."""
    env = {**os.environ, **load.env}
    window = Window(watch) if watch else None
    wrk_cpu0 = _children_cpu()
    proc = subprocess.Popen(
        wrk_cmd(load, concurrency, seconds),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        cwd=ROOT,
    )
    deadline = time.monotonic() + seconds + 30
    try:
        while True:  # wakes as soon as wrk exits, so the window ends with the load
            try:
                proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    raise BenchError(f"wrk did not finish within {seconds + 30}s") from None
                if window:
                    window.sample()
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    wrk_cpu = _children_cpu() - wrk_cpu0
    if proc.returncode != 0:
        raise BenchError(f"wrk failed ({proc.returncode}): {err.strip() or out.strip()}")
    try:
        rec = wrk_record(parse_wrk(out), load.batch)
    except ValueError as e:
        raise BenchError(f"{e}\nwrk stdout:\n{out}\nstderr:\n{err}") from e
    if window:
        stats = window.close()
        stats["cpu_cores"]["wrk"] = round(wrk_cpu / stats["wall_s"], 3)
        rec.update(stats)
    return rec
