"""Measurements without HTTP, in the benchmark process: the feature lookup alone and the floors
(Redis round trip, ``predict_proba``, the machine's wake-up stalls), with their percentiles."""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import math
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from devtools import stack
from devtools.bench.common import BenchError, brief
from devtools.bench.procwatch import ProcWatch, Window
from devtools.bench.scenarios import HOUR, SESSION_S

log = logging.getLogger("bench")


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values (the value at or above p%)."""
    if not sorted_values:
        raise ValueError("percentile of no samples")
    if not 0 < p <= 100:
        raise ValueError(f"percentile {p} outside (0, 100]")
    rank = math.ceil(round(p * len(sorted_values) / 100.0, 9))  # 99.9% of 1000 is 999
    return float(sorted_values[min(max(rank, 1), len(sorted_values)) - 1])


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/p99.9/mean/max in ms of latencies given in seconds."""
    s = sorted(seconds)
    ms = {
        "p50": percentile(s, 50),
        "p90": percentile(s, 90),
        "p99": percentile(s, 99),
        "p999": percentile(s, 99.9),
        "mean": statistics.fmean(s),
        "max": s[-1],
    }
    return {k: round(v * 1000.0, 4) for k, v in ms.items()}


async def _drive(call: Callable[[int], Any], concurrency: int, seconds: float) -> list[float]:
    """``concurrency`` coroutines calling ``call(i)`` back to back for ``seconds``."""
    stop_at = time.perf_counter() + seconds
    counter = itertools.count()
    latencies: list[float] = []
    max_calls = 2_000_000

    async def worker() -> None:
        for _ in range(max_calls):
            if time.perf_counter() >= stop_at:
                return
            i = next(counter)
            t = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - t)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def features_scenario(
    fenv: stack.FeatureEnv,
    model_dir: Path,
    users: int,
    concurrency: Sequence[int],
    warmup_s: float,
    seconds: float,
    watch: ProcWatch,
) -> list[dict[str, Any]]:
    import numpy as np

    from predictor.protocol.artifact import read_metadata
    from transformer.features import FeatureReader, open_store

    os.environ.update(fenv.env)
    reader = FeatureReader(
        open_store(fenv.repo, None), "click_model_v1", read_metadata(model_dir).features, 86400e3
    )
    if getattr(reader, "direct", False):
        read_path = "redis direct"
    else:
        read_path = "Feast SDK, async" if reader.use_async else "Feast SDK, worker thread"

    async def one(i: int) -> None:
        await reader.read(
            {
                "user_id": np.array([i % users + 1], np.int64),
                "session_duration_s": np.array([SESSION_S]),
                "hour_of_day": np.array([HOUR], np.int64),
            }
        )

    async def all_levels() -> list[dict[str, Any]]:
        out = []
        for c in concurrency:
            await _drive(one, c, warmup_s)
            window = Window(watch)
            lat = await _drive(one, c, seconds)
            stats = window.close()
            n = len(lat)
            out.append(
                {
                    "requests": n,
                    "seconds": stats["wall_s"],
                    "rps": round(n / stats["wall_s"], 1),
                    "users_per_s": round(n / stats["wall_s"], 1),
                    "errors": 0,
                    "latency_ms": latency_summary(lat),
                    "read_path": read_path,
                    **stats,
                }
            )
            log.info("features c=%d: %s", c, brief(out[-1]))
        return out

    return asyncio.run(all_levels())


def _timed_calls(fn: Callable[[], Any], seconds: float, max_calls: int = 200_000) -> list[float]:
    for _ in range(min(200, max_calls)):
        fn()
    lat = []
    stop_at = time.perf_counter() + seconds
    for _ in range(max_calls):
        t = time.perf_counter()
        fn()
        lat.append(time.perf_counter() - t)
        if t >= stop_at:
            break
    return lat


def redis_floor(redis_port: int, seconds: float) -> dict[str, Any]:
    import redis

    r = redis.Redis(host="127.0.0.1", port=redis_port)
    try:
        key = None
        for k in r.scan_iter(count=1000):
            if r.type(k) == b"hash":
                key = k
                break
        if key is None:
            raise BenchError("no feature row (hash) found in Redis")
        lat = _timed_calls(lambda: r.hgetall(key), seconds)
    finally:
        r.close()
    return {
        "title": "Redis round trip",
        "how": "redis-py HGETALL of one feature row, in-process, sequential",
        "n": len(lat),
        "latency_ms": latency_summary(lat),
    }


_ECHO = (
    "import socket, sys\n"
    "s = socket.socket(fileno=int(sys.argv[1]))\n"
    "while (x := s.recv(1)) not in (b'', b'q'):\n"
    "    s.send(x)\n"
)


def stall_floor(seconds: float, threshold_s: float = 0.001) -> dict[str, Any]:
    """The machine's wake-up floor: one byte ping-ponged with a second process over a
    socketpair, sequentially, as a server at c=1 is woken for each request. The round trips
    slower than ``threshold_s`` (``per_s`` a second) are the machine taking the CPU away;
    a c=1 server at R requests/s has about per_s / R of its requests hit by one, and once
    that passes 0.1% its p99.9 is such a stall whatever its own code does."""
    a, b = socket.socketpair()
    child = subprocess.Popen([sys.executable, "-c", _ECHO, str(b.fileno())], pass_fds=[b.fileno()])
    b.close()
    try:
        lat = _timed_calls(lambda: (a.send(b"p"), a.recv(1)), seconds, max_calls=2_000_000)
        a.send(b"q")
    finally:
        a.close()
        child.wait(timeout=10)
    slow = sum(t > threshold_s for t in lat)
    return {
        "title": "wake-up round trip",
        "how": (
            "one byte to a second process and back (socketpair), sequential; "
            f"{slow / seconds:.1f} per second over {threshold_s * 1000:g} ms"
        ),
        "n": len(lat),
        "per_s": round(slow / seconds, 2),
        "latency_ms": latency_summary(lat),
    }


def predict_floors(model_dir: Path, row: list[float], seconds: float) -> dict[str, Any]:
    import numpy as np

    from predictor.protocol.artifact import load_model

    model = load_model(model_dir)
    one = np.array([row], dtype=np.float64)
    hundred = np.repeat(one, 100, axis=0)
    out = {}
    for key, x, title in (
        ("predict_proba_1", one, "predict_proba, 1 row"),
        ("predict_proba_100", hundred, "predict_proba, 100 rows"),
    ):
        lat = _timed_calls(functools.partial(model.score, x), seconds)
        out[key] = {
            "title": title,
            "how": "loaded model (predictor.protocol.artifact.load_model), in-process",
            "n": len(lat),
            "latency_ms": latency_summary(lat),
        }
    return out
