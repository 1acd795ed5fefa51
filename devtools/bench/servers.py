"""Starting and timing the servers the stack does not own (the empty model), cold starts, and
reading a server's Prometheus page."""

from __future__ import annotations

import logging
import re
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from devtools import stack
from devtools.bench.common import BenchError

log = logging.getLogger("bench")

READY_POLL_S = 0.02


def prom_value(text: str, name: str) -> float:
    """Sum of the samples of one Prometheus metric (any labels) in a /metrics page."""
    total, found = 0.0, False
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})?\s+(\S+)")
    for line in text.splitlines():
        m = pattern.match(line)
        if m:
            total += float(m.group(1))
            found = True
    if not found:
        raise KeyError(name)
    return total


def wait_ready_fast(server: stack.Server, timeout_s: float = 60.0) -> float:
    """Poll ``/v2/health/ready`` every 20 ms; returns the monotonic time of the first 200."""
    deadline = time.monotonic() + timeout_s
    url = f"{server.url}/v2/health/ready"
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise BenchError(
                    f"{server.name} exited with {server.proc.returncode}:\n{server.log_tail()}"
                )
            try:
                if client.get(url).status_code == 200:
                    return time.monotonic()
            except httpx.TransportError:
                pass
            time.sleep(READY_POLL_S)
    raise BenchError(f"{server.name} not ready after {timeout_s}s:\n{server.log_tail()}")


def cold_start(start: Callable[[int], stack.Server], repeats: int) -> dict[str, Any]:
    runs = []
    for i in range(repeats):
        t0 = time.monotonic()
        server = start(i)
        try:
            runs.append(round(wait_ready_fast(server) - t0, 3))
        finally:
            stack.stop(server)
    return {"runs": runs, "median": round(statistics.median(runs), 3)}


def start_empty(log_dir: Path, name: str = "empty") -> stack.Server:
    port = stack.free_port()
    args = [stack.PY, "-m", "devtools.empty_model", "--http_port", str(port)]
    return stack._spawn(name, args, {}, log_dir, port)


@contextmanager
def running(server: stack.Server) -> Iterator[stack.Server]:
    try:
        wait_ready_fast(server)
        yield server
    except BaseException:
        log.error("last lines of %s's log:\n%s", server.name, server.log_tail(30))
        raise
    finally:
        stack.stop(server)
