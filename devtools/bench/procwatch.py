"""Process watching: CPU seconds and RSS of the servers (and their children) over one measured
window, and their peak RSS from ``/proc``, so every run says what it cost, not only how fast."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def parse_proc_status(text: str) -> dict[str, int]:
    """Vm* lines of /proc/<pid>/status in bytes (VmHWM: peak RSS, VmRSS: current RSS)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key.startswith("Vm") and rest.strip().endswith("kB"):
            out[key] = int(rest.split()[0]) * 1024
    return out


@dataclass
class Watched:
    name: str
    pid: int
    tree: bool = True  # include descendants (MLServer's inference workers)


class ProcWatch:
    """CPU seconds and RSS of named processes over one measured window."""

    def __init__(self, procs: Sequence[Watched]):
        import psutil

        self._psutil = psutil
        self.procs = list(procs)

    def _tree(self, w: Watched) -> list[Any]:
        try:
            p = self._psutil.Process(w.pid)
            return [p, *p.children(recursive=True)] if w.tree else [p]
        except self._psutil.NoSuchProcess:
            return []

    def _per_tree(self, value: Callable[[Any], float]) -> dict[str, float]:
        """``value`` of every process of each watched tree, summed (gone processes: 0)."""
        out = {}
        for w in self.procs:
            total = 0.0
            for p in self._tree(w):
                try:
                    total += value(p)
                except self._psutil.NoSuchProcess:
                    pass
            out[w.name] = total
        return out

    def cpu(self) -> dict[str, float]:
        return self._per_tree(lambda p: sum(p.cpu_times()[:2]))  # user + system

    def rss(self) -> dict[str, int]:
        return {k: int(v) for k, v in self._per_tree(lambda p: p.memory_info().rss).items()}

    def hwm(self) -> dict[str, dict[str, float]]:
        """Peak (VmHWM) and current RSS in MB, summed over each tree."""
        out = {}
        for w in self.procs:
            peak = cur = 0
            for p in self._tree(w):
                try:
                    st = parse_proc_status(Path(f"/proc/{p.pid}/status").read_text())
                except OSError:
                    continue
                peak += st.get("VmHWM", 0)
                cur += st.get("VmRSS", 0)
            out[w.name] = {"peak": round(peak / 2**20, 1), "end": round(cur / 2**20, 1)}
        return out


class Window:
    """One measured window: CPU deltas per process, RSS peaks from samples."""

    def __init__(self, watch: ProcWatch):
        self.watch = watch
        self.peak: dict[str, int] = {}
        self.cpu0 = watch.cpu()
        self.t0 = time.monotonic()
        self.sample()

    def sample(self) -> None:
        for k, v in self.watch.rss().items():
            self.peak[k] = max(self.peak.get(k, 0), v)

    def close(self) -> dict[str, Any]:
        self.sample()
        wall = time.monotonic() - self.t0
        cpu1 = self.watch.cpu()
        return {
            "wall_s": round(wall, 3),
            "cpu_cores": {k: round((cpu1[k] - self.cpu0[k]) / wall, 3) for k in cpu1},
            "rss_peak_mb": {k: round(v / 2**20, 1) for k, v in self.peak.items()},
        }
