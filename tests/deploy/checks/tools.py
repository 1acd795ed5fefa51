"""Where the deploy tests find helm and kubectl, and how they run them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
TOOLS_BIN = REPO / ".tools" / "bin"


def tool(name: str) -> str:
    """Path of helm/kubectl: .tools/bin first (scripts/install-k8s-tools.sh), then PATH."""
    local = TOOLS_BIN / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(
        f"`{name}` not found in {TOOLS_BIN} or on PATH. Install the pinned helm and kubectl "
        "with `make k8s-tools` (scripts/install-k8s-tools.sh); the deploy tests cannot run "
        "without them.",
        pytrace=False,
    )


def run(
    cmd: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    expect_ok: bool = True,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    if expect_ok and proc.returncode != 0:
        pytest.fail(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}",
            pytrace=False,
        )
    return proc
