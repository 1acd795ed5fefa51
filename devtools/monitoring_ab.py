"""Interleaved A/B of the monitoring cost on the full path (issue 15).

``python -m devtools.monitoring_ab --model-dir models/sklearn --rounds 8`` starts redis-server,
Feast on Redis (a throwaway copy of feature_repo), one predictor and two transformers, A with
``--monitoring_enabled false`` and B with the model's baseline.json, then alternates short wrk
runs of the full path (one user per request, cache bypassed: bench/infer.lua) against A and
B, in ABBA order, at each concurrency. Both see the same machine load, which a shared machine
makes necessary: it prints per-pair ratios B/A of throughput, p50 and the transformer
process's CPU time per request (the steadiest of the three under load).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from devtools import stack
from devtools.bench.load import Load, run_wrk


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m devtools.monitoring_ab", description=__doc__)
    p.add_argument("--model-dir", type=Path, default=stack.ROOT / "models" / "sklearn")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--seconds", type=int, default=3)
    p.add_argument("--concurrency", default="1,32")
    p.add_argument("--users", type=int, default=2000)
    a = p.parse_args(argv)
    tmp, repo = throwaway_repo("monitoring-ab-")
    with stack.redis_server() as redis:
        fenv = stack.FeatureEnv(repo, redis.connection_string)
        stack.prepare_features(fenv, n_users=a.users, force=True)
        stack.ensure_model(repo, a.model_dir, "sklearn")
        ports = stack.Ports.free()
        servers = [stack.start_predictor(a.model_dir, ports, tmp)]
        try:
            stack.wait_ready(servers[0])
            other = stack.Ports(
                ports.predictor_http, ports.predictor_grpc, stack.free_port(), stack.free_port()
            )
            arms = {
                "off": stack.start_transformer(
                    fenv, ports, "v2", tmp, ["--monitoring_enabled", "false"]
                ),
                "on": stack.start_transformer(
                    fenv,
                    other,
                    "v2",
                    None,
                    ["--monitoring_baseline", str(a.model_dir / "baseline.json")],
                ),
            }
            servers += arms.values()
            compare_arms(arms, a)
        finally:
            stack.stop(*servers)


def compare_arms(arms: dict, a: argparse.Namespace) -> None:
    """Wait for every arm, then drive them with the same wrk load in interleaved rounds."""
    for s in arms.values():
        stack.wait_ready(s)
    script = stack.ROOT / "bench" / "infer.lua"
    env = {"USERS": str(a.users), "CACHE": "false"}
    loads = {k: Load(f"{s.url}/v2/models/click-model/infer", script, env) for k, s in arms.items()}
    interleave(arms, loads, [int(x) for x in a.concurrency.split(",")], a.rounds, a.seconds)


def throwaway_repo(prefix: str) -> tuple[Path, Path]:
    """A temporary folder holding a copy of feature_repo (its files, not its data)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    repo = tmp / "feature_repo"
    repo.mkdir()
    for f in (stack.ROOT / "feature_repo").iterdir():
        if f.is_file():
            (repo / f.name).write_bytes(f.read_bytes())
    return tmp, repo


def interleave(
    servers: dict[str, stack.Server],
    loads: dict[str, Load],
    concurrency: list[int],
    rounds: int,
    seconds: int,
) -> None:
    """Short wrk runs against the two servers (baseline first in ``servers``) in ABBA order
    per concurrency; prints per-pair ratios B/A of throughput, p50 and the server process's
    CPU time per request."""
    a, b = list(servers)
    for c in concurrency:
        for load in loads.values():
            run_wrk(load, c, 2)  # warm-up
        res: dict[str, list[tuple[float, float, float]]] = {a: [], b: []}
        for r in range(rounds):
            for name in (a, b) if r % 2 == 0 else (b, a):
                pid = servers[name].proc.pid
                cpu0 = cpu_seconds(pid)
                rec = run_wrk(loads[name], c, seconds)
                us = (cpu_seconds(pid) - cpu0) / max(rec["requests"], 1) * 1e6
                res[name].append((rec["rps"], rec["latency_ms"]["p50"], us))
        for i, what in enumerate(("requests/s", "p50", "CPU us/request")):
            ratios = [y[i] / x[i] for x, y in zip(res[a], res[b], strict=True)]
            total = sum(x[i] for x in res[b]) / sum(x[i] for x in res[a])
            print(
                f"c={c} {what}: {b}/{a} per pair {[round(x, 3) for x in ratios]}, "
                f"median {statistics.median(ratios):.3f}, of totals {total:.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
