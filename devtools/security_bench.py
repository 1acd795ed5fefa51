"""What the security layers cost: full path and cache hit through three transformers that
share one predictor and one Redis, measured in alternation in one sitting.

- ``before``: the code of a git ref without the limits and auth layers (default ``main``,
  exported with ``git archive`` and run from a temporary directory),
- ``auth-off``: this tree, limits on (the defaults), no tokens,
- ``auth-on``: this tree, limits on, a bearer token on every request.

``python -m devtools.security_bench [--seconds 5] [--rounds 3] [--connections 8]`` prints the
in-process cost of the layers, one JSON line per run and a summary per scenario and server:
requests/s (median and best of the rounds, and the median relative to ``before``) and the
transformer's CPU time per request (its user + system time over the run / requests), which
other load on a shared machine disturbs much less than throughput. Short on purpose.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from devtools import stack

INFER = "/v2/models/click-model/infer"
CACHED_USERS = 1000


def export_ref(ref: str, dest: Path) -> Path:
    archive = dest / "src.tar"
    subprocess.run(["git", "archive", "-o", str(archive), ref], cwd=stack.ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest / "src", filter="data")
    return dest / "src"


def start_old_transformer(src: Path, fenv: stack.FeatureEnv, ports: stack.Ports, logs: Path):
    args = [
        stack.PY,
        *("-m", "transformer", "--predictor_host", f"127.0.0.1:{ports.predictor_http}"),
        *("--feast_repo_path", str(fenv.repo), "--mode", "cached"),
        *("--http_port", str(ports.transformer_http), "--grpc_port", str(ports.transformer_grpc)),
    ]
    env = {**stack.child_environ(), **fenv.env, "PYTHONOPTIMIZE": "1", "PYTHONPATH": str(src)}
    with open(logs / "before.log", "wb") as out:
        proc = subprocess.Popen(args, cwd=src, env=env, stdout=out, stderr=subprocess.STDOUT)
    return stack.Server("before", proc, f"http://127.0.0.1:{ports.transformer_http}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, token: str | None, cache: bool, seconds: int, connections: int) -> dict:
    env = {**os.environ, "USERS": str(CACHED_USERS), "CACHE": "true" if cache else "false"}
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s"]
    cmd += [str(stack.ROOT / "bench" / "infer.lua")]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(
        [*cmd, url + INFER], env=env, capture_output=True, text=True, check=True
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("JSON "))
    raw = json.loads(line[5:])
    errors = sum(raw["errors"].values())
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50"] / 1000,
        "p99_ms": raw["p99"] / 1000,
        "errors": errors,
    }


def warm_cache(url: str, token: str | None) -> None:
    """Every cached user once, then wait until all answers come from the cache."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
        for user in range(1, CACHED_USERS + 1):
            c.post(INFER, json=_body(user)).raise_for_status()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            sources = [c.post(INFER, json=_body(u)).json()["outputs"] for u in range(1, 50)]
            if all(
                next(o for o in outs if o["name"] == "prediction_source")["data"] == ["cache"]
                for outs in sources
            ):
                return
            time.sleep(0.5)


def _body(user: int) -> dict:
    return {
        "inputs": [
            {"name": "user_id", "datatype": "INT64", "shape": [1], "data": [user]},
            {"name": "session_duration_s", "datatype": "FP64", "shape": [1], "data": [35.0]},
            {"name": "hour_of_day", "datatype": "INT64", "shape": [1], "data": [20]},
        ]
    }


@contextlib.contextmanager
def servers(
    ref: str, tmp: Path, tree_args: Sequence[str] = ()
) -> Iterator[dict[str, tuple[stack.Server, str | None]]]:
    logs = tmp / "logs"
    logs.mkdir()
    with stack.redis_server() as redis:
        fenv = stack.FeatureEnv(_copy_repo(tmp / "feature_repo"), redis.connection_string)
        stack.prepare_features(fenv, n_users=CACHED_USERS, force=True)
        model_dir = tmp / "model"
        stack.ensure_model(fenv.repo, model_dir, "sklearn")
        ports = stack.Ports.free()
        running = [stack.start_predictor(model_dir, ports, logs)]
        try:
            stack.wait_ready(running[0])
            token = secrets.token_urlsafe(24)
            tokens = tmp / "tokens"
            tokens.write_text(f"infer:{token}\nwrite:{secrets.token_urlsafe(24)}\n")
            out: dict[str, tuple[stack.Server, str | None]] = {}
            src = export_ref(ref, tmp)
            for name, extra in (("before", None), ("auth-off", []), ("auth-on", [tokens])):
                p = stack.Ports(
                    ports.predictor_http, ports.predictor_grpc, stack.free_port(), stack.free_port()
                )
                if extra is None:
                    server = start_old_transformer(src, fenv, p, logs)
                else:
                    args = ["--mode", "cached", *tree_args]
                    if extra:
                        args += ["--auth_tokens_file", str(extra[0])]
                    server = stack.start_transformer(fenv, p, "v2", logs, args)
                running.append(server)
                out[name] = (server, token if name == "auth-on" else None)
            for server in running[1:]:
                stack.wait_ready(server)
            yield out
        finally:
            stack.stop(*running)


def _copy_repo(dst: Path) -> Path:
    dst.mkdir(parents=True)
    for f in (stack.ROOT / "feature_repo").iterdir():
        if f.is_file():
            (dst / f.name).write_bytes(f.read_bytes())
    return dst


def layer_cost(n: int = 20_000) -> dict[str, float]:
    """µs per request of the ASGI layers alone (an app that answers at once), best of 5:
    the CPU the layers add, free of the network and of other load on the machine."""
    import asyncio

    from predictor.protocol.limits import Limits
    from transformer.auth import BearerAuth, Tokens

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def receive():
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message):
        pass

    with tempfile.TemporaryDirectory() as tmp:
        token = secrets.token_urlsafe(24)
        f = Path(tmp) / "tokens"
        f.write_text(f"infer:{token}\nwrite:{secrets.token_urlsafe(24)}\n")
        tokens = Tokens(f)
    headers = [
        (b"host", b"127.0.0.1:8080"),
        (b"content-type", b"application/json"),
        (b"content-length", b"300"),
        (b"authorization", f"Bearer {token}".encode()),
    ]
    scope = {"type": "http", "method": "POST", "path": INFER, "headers": headers}
    stacks = {
        "none": app,
        "limits": Limits(app, 4 << 20, 256),
        "limits+auth": BearerAuth(Limits(app, 4 << 20, 256), tokens),
    }

    async def run(layer) -> float:
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(n):
                await layer(scope, receive, send)
            best = min(best, (time.perf_counter() - t0) / n)
        return best

    base = asyncio.run(run(app))
    return {k: round((asyncio.run(run(v)) - base) * 1e6, 2) for k, v in stacks.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m devtools.security_bench", description=__doc__)
    p.add_argument("--ref", default="main", help="git ref of the 'before' code")
    p.add_argument("--seconds", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3, help="a multiple of 3: each order once")
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--layers-only", action="store_true", help="only the in-process layer cost")
    p.add_argument(
        "--tree-args",
        default="",
        help="more transformer flags for this tree's two servers, e.g. "
        "'--monitoring_enabled false' (the layers of issue 11 alone)",
    )
    a = p.parse_args(argv)
    print(json.dumps({"layer_cost_us": layer_cost()}))
    if a.layers_only:
        return 0
    results: dict[tuple[str, str], list[dict]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="security-bench-") as tmp,
        servers(a.ref, Path(tmp), a.tree_args.split()) as targets,
    ):
        for server, token in targets.values():
            warm_cache(server.url, token)
            wrk(server.url, token, False, 2, a.connections)  # warm-up
        order = list(targets.items())
        for rnd in range(a.rounds):
            # the servers' order turns each round: the third run of a round is not always
            # the same server (position alone moved CPU/request by ~4% on a loaded machine)
            turned = order[rnd % len(order) :] + order[: rnd % len(order)]
            for scenario, cache in (("full", False), ("cache_hit", True)):
                for name, (server, token) in turned:
                    cpu0 = cpu_seconds(server.proc.pid)
                    r = wrk(server.url, token, cache, a.seconds, a.connections)
                    requests = r["rps"] * a.seconds
                    # CPU per request: what the layers cost, less sensitive to other load
                    r["cpu_us"] = (cpu_seconds(server.proc.pid) - cpu0) / requests * 1e6
                    results.setdefault((scenario, name), []).append(r)
                    print(json.dumps({"round": rnd, "scenario": scenario, "server": name, **r}))
    summary = {}
    for scenario in ("full", "cache_hit"):
        base = statistics.median(r["rps"] for r in results[(scenario, "before")])
        for name in ("before", "auth-off", "auth-on"):
            runs = results[(scenario, name)]
            rps = statistics.median(r["rps"] for r in runs)
            summary[f"{scenario}/{name}"] = {
                "rps": round(rps, 1),
                "vs_before": round(rps / base, 3),
                "best_rps": round(max(r["rps"] for r in runs), 1),
                "cpu_us_per_request": round(statistics.median(r["cpu_us"] for r in runs), 1),
                "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 2),
                "p99_ms": round(statistics.median(r["p99_ms"] for r in runs), 2),
                "errors": sum(r["errors"] for r in runs),
            }
        # paired by round: each run against the run of "before" right next to it
        for name in ("auth-off", "auth-on"):
            pairs = zip(results[(scenario, name)], results[(scenario, "before")], strict=True)
            cpu = [r["cpu_us"] / b["cpu_us"] for r, b in pairs]
            summary[f"{scenario}/{name}"]["cpu_vs_before_paired"] = round(statistics.median(cpu), 3)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
