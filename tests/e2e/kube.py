"""kubectl for the e2e suite: the pinned binary, Ready pods, ``kubectl port-forward``."""

from __future__ import annotations

import queue
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from tests.deploy.checks.tools import tool

FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) ->")


def kubectl(context: str | None, *args: str) -> list[str]:
    """A kubectl command line: the pinned kubectl in .tools/bin first, then PATH."""
    return [tool("kubectl"), *(["--context", context] if context else []), *args]


def ready_pods(namespace: str, selector: str, context: str | None) -> list[str]:
    """Names of the Running pods matching ``selector`` whose Ready condition is True."""
    template = (
        "{range .items[?(@.status.phase=='Running')]}{.metadata.name} "
        "{.status.conditions[?(@.type=='Ready')].status}{\"\\n\"}{end}"
    )
    out = subprocess.run(
        kubectl(
            context, "get", "pods", "-n", namespace, "-l", selector, "-o", f"jsonpath={template}"
        ),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 0, f"kubectl get pods -l {selector}: {out.stderr}"
    return [line.split()[0] for line in out.stdout.splitlines() if line.endswith(" True")]


@contextmanager
def kubectl_port_forward(
    namespace: str, selector: str, port: int, context: str | None, timeout_s: float = 60.0
) -> Iterator[str]:
    """``kubectl port-forward`` a free loopback port to ``port`` of a Running, Ready pod that
    matches ``selector``; yields ``127.0.0.1:<local port>``."""
    deadline = time.monotonic() + timeout_s
    while not (pod := next(iter(ready_pods(namespace, selector, context)), None)):
        assert time.monotonic() < deadline, f"no Ready pod matches {selector} in {namespace}"
        time.sleep(2)
    proc = subprocess.Popen(
        kubectl(
            context,
            "port-forward",
            "-n",
            namespace,
            f"pod/{pod}",
            f":{port}",
            "--address",
            "127.0.0.1",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    # One thread reads kubectl's output for as long as it runs (it logs every connection, so
    # its pipe must never fill up); the lines reach us through a queue.
    lines: queue.Queue[str | None] = queue.Queue()

    def read(out: IO[str]) -> None:
        for line in out:
            lines.put(line)
        lines.put(None)  # kubectl exited

    reader = threading.Thread(target=read, args=(proc.stdout,), daemon=True)
    reader.start()
    try:
        seen: list[str] = []
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"kubectl port-forward said: {''.join(seen)}"
            try:
                line = lines.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            assert line is not None, f"kubectl port-forward exited: {''.join(seen)}"
            seen.append(line)
            if m := FORWARDING.search(line):
                break
        yield f"127.0.0.1:{m.group(1)}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
        proc.stdout.close()
