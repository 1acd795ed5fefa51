"""The command line (``python -m devtools.bench``, ``make bench``): options to a Config, the run,
and the files it writes."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from devtools.bench.common import ROOT, BenchError
from devtools.bench.mlserver import MLSERVER_VENV
from devtools.bench.plot import plot
from devtools.bench.report import render_doc, summary_text
from devtools.bench.run import Bench, Config
from devtools.bench.scenarios import DEFAULT_STEPS, MLSERVER_SCENARIOS, SCENARIOS
from devtools.bench.targets import evaluate_targets

log = logging.getLogger("bench")

DESCRIPTION = """\
Online serving benchmark: ``python -m devtools.bench`` (``make bench``, issue #6).

Starts the local stack on loopback (redis-server, Feast on Redis with a throwaway copy of
``feature_repo``, the predictor on ``models/sklearn`` and the transformer in ``--mode cached``)
with the ``devtools.stack`` functions, then for every scenario and concurrency 1, 8 and 32 runs
a warm-up and a measured run of ``wrk -t1 --latency`` (Lua scripts in ``bench/``):

- full:       transformer, one user per request, ``"cache": false`` (features + on-demand
              features + predictor + rules), user ids rotating over every user;
- cache_hit:  transformer, the cache warmed first for 1,000 users, then those users;
- batch10 / batch100: transformer, 10 / 100 users per request, cache bypassed;
- ensemble:   as full, against a second transformer whose rules file makes it an ensemble
              (mean) of the stack's predictor and a second predictor serving the XGBoost
              model (``models/xgboost`` beside ``--model-dir``, trained if missing);
- predictor:  the predictor alone, the nine feature tensors of one user;
- features:   the Feast lookup alone (``FeatureReader.read``), in-process, N concurrent
              coroutines on one event loop (there is no HTTP endpoint for it);
- empty:      an empty ``kserve.Model`` behind ``kserve.ModelServer`` (devtools.empty_model);
- mlserver:   with ``--mlserver``, MLServer's sklearn runtime on the same model file.

Floors measured in the same run: a raw Redis round trip (redis-py HGETALL of one feature row,
in-process) and ``predict_proba`` on one row (and 100 rows) in-process. Per run it records
requests/s, user-predictions/s, p50/p90/p99/p99.9 latency, CPU (cores) of each server process
and of wrk, and their peak RSS; then the cold start of each server (spawn → first 200 on
``/v2/health/ready``, median of three fresh starts).

Speed targets are ratios to KServe's empty model measured in the same run
(devtools/bench/targets.py), so a subset run also runs ``empty`` when its targets need it.

Writes ``bench/results/<timestamp>.json`` and ``bench/results/latest.json``; a complete run
(or ``--docs``) also writes ``docs/img/bench.png`` and ``docs/benchmarks.md``, keeping the
hand-written block between ``<!-- analysis -->`` and ``<!-- /analysis -->``.
"""


def write_outputs(results: dict[str, Any], cfg: Config) -> list[Path]:
    cfg.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2) + "\n"
    written = [cfg.out / f"{results['id']}.json", cfg.out / "latest.json"]
    for p in written:
        p.write_text(text)
    complete = all(s in cfg.steps for s in DEFAULT_STEPS)
    if cfg.docs or complete:
        written += write_docs(results, cfg)
    else:
        log.info("a subset of the scenarios ran: docs and plot left as they are (--docs forces)")
    return written


def write_docs(results: dict[str, Any], cfg: Config) -> list[Path]:
    plot(results, cfg.plot)
    previous = cfg.doc.read_text() if cfg.doc.is_file() else None
    cfg.doc.parent.mkdir(parents=True, exist_ok=True)
    cfg.doc.write_text(render_doc(results, results["targets"], previous))
    return [cfg.plot, cfg.doc]


def rerender(cfg: Config) -> int:
    """``--render``: the doc and plot from a saved results file, its targets evaluated again
    (the current definitions), nothing measured."""
    assert cfg.render is not None
    try:
        results = json.loads(cfg.render.read_text())
    except (OSError, ValueError) as e:
        print(f"python -m devtools.bench: --render {cfg.render}: {e}", file=sys.stderr)
        return 1
    results["targets"] = evaluate_targets(results)
    for p in write_docs(results, cfg):
        log.info("wrote %s", p)
    print(summary_text(results))
    return 0


def parse_args(argv: list[str] | None) -> Config:
    p = argparse.ArgumentParser(
        prog="python -m devtools.bench",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    choices = [*SCENARIOS, "floors", "cold_start"]  # mlserver*: both MLServer configurations
    p.add_argument(
        "--scenarios",
        default=",".join(DEFAULT_STEPS),
        help=f"comma-separated subset of {','.join(choices)} (mlserver: see --mlserver)",
    )
    p.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    p.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each run")
    p.add_argument("--quick", action="store_true", help="3 s runs after 1 s warm-ups")
    p.add_argument("--users", type=int, default=10_000, help="users generated and rotated over")
    p.add_argument(
        "--mlserver",
        action="store_true",
        help=f"also benchmark MLServer (creates {MLSERVER_VENV.relative_to(ROOT)} on first use)",
    )
    p.add_argument(
        "--registry-refresh-s",
        type=float,
        default=5.0,
        help="transformer registry refresh period (short, so refreshes land in the runs)",
    )
    p.add_argument("--cold-repeats", type=int, default=3)
    p.add_argument("--model-dir", type=Path, default=ROOT / "models" / "sklearn")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="results dir")
    p.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md")
    p.add_argument("--plot", type=Path, default=ROOT / "docs" / "img" / "bench.png")
    p.add_argument(
        "--docs", action="store_true", help="write the doc and plot even for a subset run"
    )
    p.add_argument(
        "--transformer-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment variable for every transformer the run starts (repeatable), "
        "e.g. to measure a feature switched on or off",
    )
    p.add_argument(
        "--transformer-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra command-line argument for every transformer (repeatable); write "
        "flags with '=': --transformer-arg=--some_flag=value",
    )
    p.add_argument(
        "--render",
        type=Path,
        metavar="RESULTS_JSON",
        help="measure nothing: write the doc and plot from a saved results file, with the "
        "targets evaluated again (e.g. docs/results/serving-20261128.json)",
    )
    a = p.parse_args(argv)
    env = {}
    for item in a.transformer_env:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            p.error(f"--transformer-env {item!r}: expected KEY=VALUE")
        env[key.strip()] = value
    steps = [s.strip() for s in a.scenarios.split(",") if s.strip()]
    unknown = [s for s in steps if s not in choices]
    if unknown:
        p.error(f"unknown scenarios {unknown}; choose from {choices}")
    mlserver = a.mlserver or any(s in MLSERVER_SCENARIOS for s in steps)
    steps = [s for s in steps if s not in MLSERVER_SCENARIOS]
    if mlserver:
        steps.append("mlserver")
    duration, warmup = (3, 1) if a.quick else (a.duration, a.warmup)
    if duration < 1 or warmup < 1:
        p.error("--duration and --warmup are whole seconds ≥ 1 (wrk's resolution)")
    return Config(
        steps=steps,
        duration_s=duration,
        warmup_s=warmup,
        users=a.users,
        quick=a.quick,
        mlserver=mlserver,
        registry_refresh_s=a.registry_refresh_s,
        cold_repeats=max(1, a.cold_repeats),
        out=a.out,
        doc=a.doc,
        plot=a.plot,
        docs=a.docs,
        model_dir=a.model_dir.resolve(),
        transformer_env=env,
        transformer_extra=list(a.transformer_arg),
        render=a.render,
    )


def check_tools() -> None:
    for tool, package in (("wrk", "wrk"), ("redis-server", "redis-server")):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} not found on PATH: sudo apt-get install -y {package}")


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if cfg.render is not None:
        return rerender(cfg)
    try:
        check_tools()
        work = Path(tempfile.mkdtemp(prefix="bench-"))
        try:
            bench = Bench(cfg, work)
            try:
                results = bench.run()
            finally:
                bench.http.close()
        finally:
            shutil.rmtree(work, ignore_errors=True)
    except BenchError as e:
        print(f"python -m devtools.bench: {e}", file=sys.stderr)
        return 1
    for p in write_outputs(results, cfg):
        log.info("wrote %s", p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)
    print(summary_text(results))
    print(f"\nelapsed {results['elapsed_s']:.0f} s (setup {results.get('setup_s', 0):.0f} s)")
    return 0
