"""CPU microseconds per request through the transformer's real ASGI stack, in process.

``python -m devtools.asgi_bench [--ref 27d1378] [--start REF] [--rounds 2]`` starts one
redis-server with Feast's features (1,000 users), one predictor on loopback, and then, round
after round, one transformer process per variant. A variant is ``SOURCE:CONFIG``:

- SOURCE ``before`` is the code of ``--ref`` (without monitoring, limits and auth; CONFIG is
  ignored), ``start`` the code of ``--start`` (to compare a change against), ``tree`` this
  working tree; the first two are exported with ``git archive`` and put first on
  ``PYTHONPATH``;
- CONFIG ``mon-off`` (``--monitoring_enabled false``) / ``mon-on`` (request metrics, and
  drift + quality against the model's ``baseline.json``, as the chart deploys it), ``+auth``
  a bearer token on every request (``--auth_tokens_file``).

Each process (``devtools/asgi_bench_child.py``) assembles the app exactly as ``python -m
transformer`` does (limits, auth, request ids and metrics, ``FastInfer``) and drives it with
an in-process ASGI client: full path (cache bypassed: Redis read + predictor call) and cache
hit (Redis read only), at each concurrency, measuring its own CPU time per request: the least
of ``--repeats`` runs of ``--requests`` requests (load from other processes only ever adds to
it). Uvicorn's HTTP parsing, the same for every variant, is left out, so the numbers are the
part of a request the code under test controls. On a shared machine read the ratios, paired
by round against the first variant (variants alternate, so a round shares the same load).
``--layer-costs`` adds, per variant, a cache hit driven from each ASGI layer down (the
difference between two rows is what a layer costs); ``--profile cache_hit|full`` prints the
top functions of each variant (cProfile, first round, at the highest concurrency).
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from devtools import stack
from devtools.security_bench import _copy_repo, export_ref

CHILD = Path(__file__).with_name("asgi_bench_child.py")
VARIANTS = ("before", "tree:mon-off", "tree:mon-on", "tree:mon-off+auth", "tree:mon-on+auth")


def run_child(
    src: Path,
    fenv: stack.FeatureEnv,
    predictor_port: int,
    extra: list[str],
    token: str | None,
    a: argparse.Namespace,
    child_opts: list[str],
) -> dict:
    args = [
        "--predictor_host",
        f"127.0.0.1:{predictor_port}",
        *("--feast_repo_path", str(fenv.repo), "--mode", "cached"),
        *("--http_port", str(stack.free_port()), "--grpc_port", str(stack.free_port())),
        *("--enable_grpc", "false"),
        *extra,
    ]
    opts = [
        *("--requests", str(a.requests), "--concurrency", a.concurrency),
        *("--users", str(a.users), "--repeats", str(a.repeats)),
        *(("--token", token) if token else ()),
        *child_opts,
    ]
    env = {
        **stack.child_environ(),
        "PYTHONOPTIMIZE": "1",  # as in the images and devtools.stack
        **fenv.env,
        "PYTHONPATH": str(src),
    }
    proc = subprocess.run(
        [stack.PY, "-P", str(CHILD), *opts, "--", *args],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(line[7:])
    if "error" in result:
        raise RuntimeError(f"child: {result['error']}\n{proc.stderr[-3000:]}")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m devtools.asgi_bench", description=__doc__)
    p.add_argument("--ref", default="27d1378", help="git ref of the 'before' code")
    p.add_argument("--start", default="HEAD", help="git ref of the 'start' source")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--requests", type=int, default=300, help="per run")
    p.add_argument("--repeats", type=int, default=7, help="runs per scenario and concurrency")
    p.add_argument("--concurrency", default="1,32")
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--layer-costs", action="store_true")
    p.add_argument("--profile", choices=["full", "cache_hit"])
    a = p.parse_args(argv)
    variants = a.variants.split(",")
    results: dict[str, list[dict]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="asgi-bench-") as tmp_name, stack.redis_server() as r:
        tmp = Path(tmp_name)
        fenv = stack.FeatureEnv(_copy_repo(tmp / "feature_repo"), r.connection_string)
        stack.prepare_features(fenv, n_users=a.users, force=True)
        model_dir = tmp / "model"
        stack.ensure_model(fenv.repo, model_dir, "sklearn")
        ports = stack.Ports.free()
        predictor = stack.start_predictor(model_dir, ports, tmp)
        try:
            stack.wait_ready(predictor)
            token = secrets.token_urlsafe(24)
            tokens = tmp / "tokens"
            tokens.write_text(f"infer:{token}\nwrite:{secrets.token_urlsafe(24)}\n")
            sources = {"tree": snapshot_tree(tmp / "tree")}  # edits during a run stay out
            for name, ref in (("before", a.ref), ("start", a.start)):
                if any(v.split(":")[0] == name for v in variants):
                    (tmp / name).mkdir()
                    sources[name] = export_ref(ref, tmp / name)
            for rnd in range(a.rounds):
                # the order turns each round: two processes of the same code measured 3-8%
                # apart when one always ran first
                k = rnd % len(variants)
                for v in variants[k:] + variants[:k]:
                    src, extra, tok = setup(v, sources, tokens, token, model_dir / "baseline.json")
                    child_opts = ["--layer-costs"] if a.layer_costs else []
                    if a.profile and rnd == 0:
                        child_opts += ["--profile", a.profile]
                    res = run_child(src, fenv, ports.predictor_http, extra, tok, a, child_opts)
                    if "profile" in res:
                        print(res.pop("profile"))
                    results[v].append(res)
                    print(json.dumps({"round": rnd, "variant": v, **res}), flush=True)
        finally:
            stack.stop(predictor)
    print(json.dumps(summarize(results, variants), indent=1))
    return 0


def snapshot_tree(dest: Path) -> Path:
    for package in ("predictor", "transformer"):
        shutil.copytree(
            stack.ROOT / package, dest / package, ignore=shutil.ignore_patterns("*.pyc")
        )
    return dest


def setup(
    variant: str, sources: dict[str, Path], tokens: Path, token: str, baseline: Path
) -> tuple[Path, list[str], str | None]:
    """``SOURCE:CONFIG`` → (code, transformer flags, bearer token or None). Monitoring on
    is what the chart deploys: request metrics, and drift + quality against the model's
    baseline."""
    source, _, config = variant.partition(":")
    if source == "before":
        return sources["before"], [], None
    # a loaded machine must not turn a slow Redis reply into a 503 (the bound costs the same)
    extra = ["--store_timeout_s", "5", "--store_connect_timeout_s", "5"]
    if config.startswith("mon-off"):
        extra += ["--monitoring_enabled", "false"]
    else:
        extra += ["--monitoring_baseline", str(baseline)]
    if config.endswith("+auth"):
        return sources[source], [*extra, "--auth_tokens_file", str(tokens)], token
    return sources[source], extra, None


def summarize(results: dict[str, list[dict]], variants: list[str]) -> dict:
    """Median CPU µs per request per variant and key; ratios paired by round vs the first."""
    keys = [k for k in results[variants[0]][0] if "/c" in k]
    base = variants[0]
    out: dict[str, dict] = {}
    for k in keys:
        row: dict[str, float] = {}
        for v in variants:
            row[v] = round(statistics.median(r[k]["cpu_us"] for r in results[v]), 1)
            if v != base:
                pairs = zip(results[v], results[base], strict=True)
                ratio = statistics.median(r[k]["cpu_us"] / b[k]["cpu_us"] for r, b in pairs)
                row[f"{v}/{base}"] = round(ratio, 3)
        row["errors"] = sum(r[k]["errors"] for v in variants for r in results[v])
        out[k] = row
    return out


if __name__ == "__main__":
    raise SystemExit(main())
