"""What the results were measured on (cores, CPU, memory, versions, load average): numbers
from this VM only compare with numbers from the same run."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

PACKAGES = ("kserve", "feast", "fastapi", "uvicorn", "scikit-learn", "numpy", "redis", "orjson")


def cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Processor", "cpu model"):
            return value.strip()
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = "not installed"
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    mem = 0.0
    try:
        meminfo = Path("/proc/meminfo").read_text()
        mem = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1)) / 2**20  # type: ignore[union-attr]
    except (OSError, AttributeError):
        pass

    def first_line(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
            return (out.stdout or out.stderr).splitlines()[0].strip()
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return f"{cmd[0]} ?"

    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(cpuinfo),
        "memory_gb": round(mem, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": packages,
        "wrk": re.sub(r"\s+Copyright.*", "", first_line(["wrk", "--version"])),
        "redis": first_line(["redis-server", "--version"]).split(" sha=")[0],
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
