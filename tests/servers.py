"""Real parts for the tests, started on demand: feature repo copies materialized into a Redis,
and a predictor + transformer pair with the flags a test needs. The session fixtures in
tests/conftest.py are built from these; tests that need their own instance call them."""

from __future__ import annotations

import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

from devtools import stack

N_USERS = 2000  # enough for realistic batches; keeps materialization to a few seconds


def copy_repo(dst: Path) -> Path:
    dst.mkdir(parents=True)
    for f in (stack.ROOT / "feature_repo").iterdir():
        if f.is_file():
            shutil.copy(f, dst / f.name)
    return dst


def features_on(tmp_path_factory, r: stack.Redis) -> stack.FeatureEnv:
    """A throwaway copy of the feature repo, applied and materialized into ``r``."""
    fenv = stack.FeatureEnv(
        copy_repo(tmp_path_factory.mktemp("fs") / "feature_repo"), r.connection_string
    )
    stack.prepare_features(fenv, n_users=N_USERS, force=True)
    return fenv


@contextmanager
def serving(fenv, model_dir, log_dir: Path, *transformer_args: str):
    """A predictor and one transformer (REST to the predictor) with extra transformer flags."""
    ports = stack.Ports.free()
    pred = stack.start_predictor(model_dir, ports, log_dir)
    servers = [pred]
    try:
        stack.wait_ready(pred)
        tr = stack.start_transformer(fenv, ports, "v2", log_dir, list(transformer_args))
        servers.append(tr)
        stack.wait_ready(tr)
        yield tr, pred, ports
    finally:
        stack.stop(*servers)


def batch_job(fenv: stack.FeatureEnv, model_dir: Path, users: list[int], *extra: str) -> dict:
    """``predictor.jobs.batch`` for ``users`` on ``fenv``'s feature repo, one Ray worker:
    the command and the keyword arguments for ``subprocess.run`` / ``Popen``."""
    cmd = [sys.executable, "-m", "predictor.jobs.batch", "--repo", str(fenv.repo)]
    cmd += ["--model-dir", str(model_dir), "--users", ",".join(map(str, users))]
    cmd += ["--workers", "1", *extra]
    return {"args": cmd, "cwd": stack.ROOT, "env": {**os.environ, **fenv.env}}
