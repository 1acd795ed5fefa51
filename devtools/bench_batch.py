"""Benchmark of precomputed predictions: the Ray batch job against the plain approach of
Feast's model-inference guide (pandas scoring to a file, then ``feast materialize``).

``python -m devtools.bench_batch --users 1000000`` (``make bench-batch``) builds a throwaway
feature repo with that many users, starts a redis-server on loopback, reads the latest
features once (shared by both approaches), then times:

- ray:  Ray Data ``map_batches`` scoring + online writes, for each worker count;
- guide: pandas ``predict_proba`` → parquet → ``feast materialize`` of the predictions view.

Writes ``bench/results/batch.json`` and ``docs/img/batch.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from devtools import stack
from predictor.jobs import batch
from predictor.jobs.datagen import DataSpec, generate
from predictor.protocol.artifact import load_model

log = logging.getLogger("bench.batch")


def feast_cli(repo: Path, env: dict[str, str], *args: str) -> None:
    feast = str(Path(stack.PY).parent / "feast")
    subprocess.run(
        [feast, "--chdir", str(repo), *args],
        env={**os.environ, **env},
        check=True,
        stdout=subprocess.DEVNULL,
    )


def guide_approach(
    repo: Path, features: pd.DataFrame, model_dir: Path, env: dict[str, str]
) -> dict:
    """pandas scoring → parquet batch source → feast materialize (Feast's guide)."""
    t0 = time.perf_counter()
    model = load_model(model_dir)
    x = features[model.metadata.feature_names].to_numpy(np.float64)
    ok = ~np.isnan(x).any(axis=1)
    score = model.score(x[ok])
    t1 = time.perf_counter()
    now = datetime.now(UTC)
    out = pd.DataFrame(
        {
            "user_id": features["user_id"].to_numpy()[ok].astype(np.int64),
            "score": score,
            "model_version": model.metadata.version,
            "features_timestamp": np.int64(0),
            "request_key": "",
            "event_timestamp": pd.Timestamp(now),
        }
    )
    out.to_parquet(repo / "data" / "model_predictions.parquet", index=False)
    t2 = time.perf_counter()
    start = (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")
    end = (now + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    feast_cli(repo, env, "materialize", start, end, "--views", "model_predictions")
    t3 = time.perf_counter()
    return {
        "score": t1 - t0,
        "write_file": t2 - t1,
        "materialize": t3 - t2,
        "total": t3 - t0,
        "rows": int(ok.sum()),
    }


def ray_approach(repo: Path, features: pd.DataFrame, model_dir: Path, workers: int) -> dict:
    import ray

    t0 = time.perf_counter()
    ray.init(
        num_cpus=workers,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    t1 = time.perf_counter()
    written = batch.score_and_write_with_ray(features, repo, model_dir, workers, 50_000, None)
    t2 = time.perf_counter()
    ray.shutdown()
    return {
        "workers": workers,
        "ray_start": t1 - t0,
        "score_and_write": t2 - t1,
        "total": t2 - t0,
        "rows": written,
    }


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = results["guide"]
    labels = ["guide: pandas\n+ parquet + materialize"]
    score = [g["score"] + g["write_file"]]
    write = [g["materialize"]]
    for r in results["ray"]:
        labels.append(f"ray, {r['workers']} worker{'s' if r['workers'] > 1 else ''}")
        score.append(r["ray_start"])
        write.append(r["score_and_write"])
    fig, ax = plt.subplots(figsize=(7, 4.4), dpi=110)
    ax.barh(labels, score, label="guide: pandas scoring + parquet / ray: start-up")
    ax.barh(labels, write, left=score, label="guide: feast materialize / ray: score + write")
    ax.set_xlabel("seconds (lower is better)")
    ax.set_title(f"Precomputing {results['users']:,} predictions")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=1, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m devtools.bench_batch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--users", type=int, default=1_000_000)
    p.add_argument("--workers", default="1,2", help="Ray worker counts to try")
    p.add_argument("--model-dir", type=Path, default=stack.ROOT / "models" / "sklearn")
    p.add_argument("--out", type=Path, default=stack.ROOT / "bench" / "results" / "batch.json")
    p.add_argument("--plot", type=Path, default=stack.ROOT / "docs" / "img" / "batch.png")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not (a.model_dir / "metadata.json").is_file():
        raise SystemExit(f"{a.model_dir}: no model; run make train")
    tmp = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        repo = tmp / "feature_repo"
        repo.mkdir()
        for f in (stack.ROOT / "feature_repo").iterdir():
            if f.is_file():
                shutil.copy(f, repo / f.name)
        log.info("generating %d users", a.users)
        generate(repo, DataSpec(n_users=a.users, n_weeks=2, events_per_user=0.0))
        with stack.redis_server() as redis:
            env = {
                "FEAST_FS_YAML_FILE_PATH": str(repo / "feature_store.redis.yaml"),
                "REDIS_CONNECTION_STRING": redis.connection_string,
            }
            os.environ.update(env)
            feast_cli(repo, env, "apply")
            t = time.perf_counter()
            features = batch.latest_features(
                repo, "click_model_v1", None, {"session_duration_s": 30.0, "hour_of_day": 12}
            )
            read_s = time.perf_counter() - t
            log.info("read %d users' features in %.1fs", len(features), read_s)
            results: dict = {
                "users": a.users,
                "read_features": read_s,
                "machine": f"{os.cpu_count()} cores, {platform.machine()}",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            log.info("guide approach: pandas + parquet + feast materialize")
            results["guide"] = guide_approach(repo, features, a.model_dir, env)
            log.info("guide: %s", results["guide"])
            results["ray"] = []
            for w in [int(x) for x in a.workers.split(",")]:
                log.info("ray approach, %d workers", w)
                results["ray"].append(ray_approach(repo, features, a.model_dir, w))
                log.info("ray: %s", results["ray"][-1])
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(results, indent=2) + "\n")
        plot(results, a.plot)
        print(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
