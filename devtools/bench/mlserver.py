"""The MLServer comparison (``--mlserver``): MLServer's sklearn runtime on the same model file,
in its own virtualenv because its fastapi pin conflicts with kserve's."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

from devtools import stack
from devtools.bench.common import MODEL_NAME, ROOT, BenchError

log = logging.getLogger("bench")

MLSERVER_VENV = ROOT / ".bench" / "mlserver-venv"
MLSERVER_PACKAGES = ("mlserver", "mlserver-sklearn")


def mlserver_requirements() -> list[str]:
    from importlib.metadata import version

    return [
        *MLSERVER_PACKAGES,
        f"scikit-learn=={version('scikit-learn')}",  # the pickle needs the version that wrote it
        # uvloop 0.22 breaks MLServer 1.7's inference workers ("There is no current event
        # loop"), https://github.com/SeldonIO/MLServer/issues/2286
        "uvloop<0.22",
    ]


def mlserver_setup() -> dict[str, Any]:
    """.bench/mlserver-venv with mlserver + mlserver-sklearn (their fastapi pin conflicts with
    kserve's, so not in the project venv); reinstalled when the requirements change."""
    bin_dir = MLSERVER_VENV / "bin"
    stamp = MLSERVER_VENV / ".bench-requirements"
    wanted = "\n".join(mlserver_requirements()) + "\n"
    if not (bin_dir / "mlserver").is_file() or not stamp.is_file() or stamp.read_text() != wanted:
        log.info("installing into %s: %s", MLSERVER_VENV, wanted.replace("\n", " "))
        MLSERVER_VENV.parent.mkdir(parents=True, exist_ok=True)
        (MLSERVER_VENV.parent / ".gitignore").write_text("*\n")
        base = getattr(sys, "_base_executable", None) or sys.executable
        try:
            if not (bin_dir / "python").is_file():
                subprocess.run([base, "-m", "venv", str(MLSERVER_VENV)], check=True, timeout=300)
            subprocess.run(
                [
                    str(bin_dir / "python"),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    *wanted.split(),
                ],
                check=True,
                timeout=1800,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
            raise BenchError(
                f"--mlserver: could not install {' '.join(MLSERVER_PACKAGES)} into "
                f"{MLSERVER_VENV} ({e}). Delete that folder to start over, or rerun without "
                "--mlserver to skip the comparison."
            ) from e
        stamp.write_text(wanted)
    out = subprocess.run(
        [str(bin_dir / "python"), "-c", "import mlserver; print(mlserver.__version__)"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if out.returncode != 0:
        raise BenchError(f"--mlserver: mlserver does not import in {MLSERVER_VENV}:\n{out.stderr}")
    return {"version": out.stdout.strip(), "venv": str(MLSERVER_VENV.relative_to(ROOT))}


def start_mlserver(
    model_dir: Path, work: Path, log_dir: Path, parallel_workers: int | None = None
) -> stack.Server:
    """MLServer on loopback serving model.joblib with its sklearn runtime.

    ``parallel_workers`` None keeps MLServer's default (inference in 1 worker process);
    0 runs inference in the server process."""
    from predictor.protocol.artifact import read_metadata

    meta = read_metadata(model_dir)
    repo = work / "mlserver"
    (repo / MODEL_NAME).mkdir(parents=True, exist_ok=True)
    http, grpc, metrics = stack.free_port(), stack.free_port(), stack.free_port()
    settings = {
        "host": "127.0.0.1",
        "http_port": http,
        "grpc_port": grpc,
        "metrics_port": metrics,
        "debug": False,
        "load_models_at_startup": True,
    }
    if parallel_workers is not None:
        settings["parallel_workers"] = parallel_workers
    (repo / "settings.json").write_text(json.dumps(settings, indent=2))
    model_settings = {
        "name": MODEL_NAME,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {
            "uri": str((model_dir / meta.model_file).resolve()),
            "version": meta.version,
        },
    }
    (repo / MODEL_NAME / "model-settings.json").write_text(json.dumps(model_settings, indent=2))
    args = [str(MLSERVER_VENV / "bin" / "mlserver"), "start", str(repo)]
    # the pipeline's FunctionTransformer pickles a reference to predictor.transforms
    return stack._spawn("mlserver", args, {"PYTHONPATH": str(ROOT)}, log_dir, http)
