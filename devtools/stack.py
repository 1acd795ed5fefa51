"""The local stack: data → feature repo → model → predictor + transformer on loopback.

``python -m devtools.stack`` (what ``make run`` calls) prepares what is missing, starts both
servers in the foreground, prints a request to paste, and stops both on Ctrl-C. The same
functions start the stacks of the integration and e2e tests.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

log = logging.getLogger("stack")
ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Ports:
    predictor_http: int = 8085
    predictor_grpc: int = 8086
    transformer_http: int = 8080
    transformer_grpc: int = 8081

    @classmethod
    def free(cls) -> Ports:
        return cls(free_port(), free_port(), free_port(), free_port())


@dataclass
class FeatureEnv:
    """How processes reach the feature repo: its folder and, for Redis, the yaml + URL."""

    repo: Path
    redis: str | None = None  # Feast connection string, e.g. "127.0.0.1:6379"

    @property
    def env(self) -> dict[str, str]:
        if self.redis is None:
            return {}
        return {
            "FEAST_FS_YAML_FILE_PATH": str(self.repo / "feature_store.redis.yaml"),
            "REDIS_CONNECTION_STRING": self.redis,
        }


MATERIALIZE_FROM = "2000-01-01T00:00:00"  # before any generated event


def prepare_features(fenv: FeatureEnv, *, n_users: int = 10_000, force: bool = False) -> None:
    """Generate data if missing, ``feast apply`` and materialize (idempotent)."""
    from predictor.jobs.datagen import DataSpec, ensure_predictions_table, generate

    data = fenv.repo / "data"
    if force or not (data / "user_data.parquet").is_file():
        generate(fenv.repo, DataSpec(n_users=n_users))
    ensure_predictions_table(fenv.repo)
    stamp = data / (".materialized-redis" if fenv.redis else ".materialized-sqlite")
    defs_mtime = max(p.stat().st_mtime for p in fenv.repo.glob("*.py"))
    if force or fenv.redis or not stamp.is_file() or stamp.stat().st_mtime < defs_mtime:
        feast = [str(Path(PY).parent / "feast"), "--chdir", str(fenv.repo)]
        env = {**os.environ, **fenv.env}
        log.info("feast apply (%s)", fenv.repo)
        subprocess.run([*feast, "apply"], env=env, check=True)
        log.info("materializing to the %s online store", "redis" if fenv.redis else "sqlite")
        end = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        # The whole history, not materialize-incremental: the registry remembers what was
        # materialized before, but a fresh redis-server (no persistence) or the other
        # online store has none of it.
        subprocess.run([*feast, "materialize", MATERIALIZE_FROM, end], env=env, check=True)
        stamp.touch()
    else:
        log.info("feature repo already applied and materialized (%s)", stamp)


def ensure_model(repo: Path, model_dir: Path, framework: str) -> None:
    if (model_dir / "metadata.json").is_file():
        log.info("using the model in %s", model_dir)
        return
    from predictor.jobs.train import train

    train(repo, model_dir, framework, "click_model_v1", "clicked", 0.2, 7)


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    url: str
    log_path: Path | None = None

    def log_tail(self, n: int = 40) -> str:
        if self.log_path and self.log_path.is_file():
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""


def wait_ready(server: Server, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.proc.returncode}:\n{server.log_tail()}"
            )
        try:
            if httpx.get(f"{server.url}/v2/health/ready", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} not ready after {timeout_s}s:\n{server.log_tail()}")


FEAST_METRICS_DIRS = ("PROMETHEUS_MULTIPROCESS_DIR", "PROMETHEUS_MULTIPROC_DIR")


def child_environ() -> dict[str, str]:
    """``os.environ`` for a server process, without what ``import feast`` put there.

    Feast's ``feast.metrics`` sets ``PROMETHEUS_MULTIPROC_DIR`` (to a temp dir of its own)
    when imported; a server started from a process that imported Feast would inherit it and
    run prometheus_client in multiprocess mode: every counter increment a locked write to an
    mmapped file (a few µs more per request, an open file per metric type), which a
    transformer started on its own (a container, ``make run``) never does.
    """
    env = dict(os.environ)
    for name in FEAST_METRICS_DIRS:
        if os.path.basename(env.get(name, "")).startswith("feast_metrics_"):
            del env[name]
    return env


def _spawn(
    name: str, args: list[str], env: dict[str, str], log_dir: Path | None, http_port: int
) -> Server:
    # -O as in the images: Feast's typeguard decorators become no-ops (see the Dockerfiles);
    # PYTHONOPTIMIZE=0 in the environment turns it off.
    full_env = {"PYTHONOPTIMIZE": "1", **child_environ(), **env, "PYTHONUNBUFFERED": "1"}
    log_path = None
    if log_dir is not None:
        log_path = log_dir / f"{name}.log"
        with open(log_path, "wb") as out:  # the child keeps its own descriptor
            proc = subprocess.Popen(
                args, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT
            )
    else:
        proc = subprocess.Popen(args, cwd=ROOT, env=full_env)
    return Server(name, proc, f"http://127.0.0.1:{http_port}", log_path)


# local servers (make run, tests) listen on loopback only; containers keep the default, all
# interfaces, as KServe expects
LOOPBACK = ("--host", "127.0.0.1")


def start_predictor(
    model_dir: Path, ports: Ports, log_dir: Path | None = None, extra: Sequence[str] = ()
) -> Server:
    args = [
        PY,
        "-m",
        "predictor",
        "--model_dir",
        str(model_dir),
        "--http_port",
        str(ports.predictor_http),
        "--grpc_port",
        str(ports.predictor_grpc),
        *LOOPBACK,
        *extra,
    ]
    return _spawn("predictor", args, {}, log_dir, ports.predictor_http)


def start_transformer(
    fenv: FeatureEnv,
    ports: Ports,
    protocol: str = "v2",
    log_dir: Path | None = None,
    extra: Sequence[str] = (),
) -> Server:
    host = f"127.0.0.1:{ports.predictor_grpc if protocol == 'grpc-v2' else ports.predictor_http}"
    args = [
        PY,
        "-m",
        "transformer",
        "--predictor_host",
        host,
        "--predictor_protocol",
        protocol,
        "--feast_repo_path",
        str(fenv.repo),
        "--http_port",
        str(ports.transformer_http),
        "--grpc_port",
        str(ports.transformer_grpc),
        *LOOPBACK,
        *extra,
    ]
    return _spawn(f"transformer-{protocol}", args, fenv.env, log_dir, ports.transformer_http)


def stop(*servers: Server, timeout_s: float = 15.0) -> None:
    for s in servers:
        if s.proc.poll() is None:
            s.proc.send_signal(signal.SIGTERM)
    for s in servers:
        try:
            s.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            s.proc.kill()
            s.proc.wait()


@dataclass
class Redis:
    port: int
    proc: subprocess.Popen
    dir: Path
    argv: list[str] = field(default_factory=list)

    @property
    def connection_string(self) -> str:
        return f"127.0.0.1:{self.port}"

    def restart(self, timeout_s: float = 10.0) -> None:
        """Start redis-server again on the same port and data dir (after a kill or crash):
        with ``appendonly`` it reloads what its AOF holds."""
        if self.proc.poll() is None:
            raise RuntimeError("redis-server is still running")
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_listening(self.port, self.proc, "redis-server", timeout_s)


def wait_listening(port: int, proc: subprocess.Popen, name: str, timeout_s: float) -> None:
    """Return once something accepts TCP on loopback ``port``; RuntimeError if ``proc`` exits
    or ``timeout_s`` passes first."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{name} did not start on {port}") from None
            time.sleep(0.05)


@contextmanager
def redis_server(port: int | None = None, appendfsync: str | None = None) -> Iterator[Redis]:
    """A throwaway redis-server on loopback: no persistence, or with ``appendfsync``
    (``everysec`` / ``always`` / ``no``) an append-only file in its data dir."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not found: apt-get install redis-server")
    port = port or free_port()
    tmp = Path(tempfile.mkdtemp(prefix="redis-"))
    aof = ["--appendonly", "yes", "--appendfsync", appendfsync] if appendfsync else []
    argv = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        *aof,
        "--dir",
        str(tmp),
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    r = Redis(port, proc, tmp, argv)
    try:
        wait_listening(port, r.proc, "redis-server", timeout_s=10)
        yield r
    finally:
        if r.proc.poll() is None:
            r.proc.send_signal(signal.SIGCONT)  # a test may leave it stopped
            r.proc.terminate()
        r.proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


def example_request() -> str:
    body = (ROOT / "examples" / "requests" / "v2_infer.json").read_text().strip()
    return (
        "curl -s -H 'content-type: application/json' "
        "http://127.0.0.1:8080/v2/models/click-model/infer \\\n  -d '"
        + json.dumps(json.loads(body), separators=(",", ":"))
        + "'"
    )


@dataclass
class RunArgs:
    repo: Path = ROOT / "feature_repo"
    model_dir: Path = ROOT / "models" / "sklearn"
    framework: str = "sklearn"
    online_store: str = "sqlite"
    protocol: str = "v2"
    mode: str = "online"
    collocated: bool = False  # the model inside the transformer; no predictor process


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(a: RunArgs) -> int:
    # SIGTERM (kill, CI timeouts) stops the servers the same way Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    fenv = FeatureEnv(a.repo)
    with _maybe_redis(a.online_store) as redis:
        if redis is not None:
            fenv = FeatureEnv(a.repo, redis)
        prepare_features(fenv)
        ensure_model(a.repo, a.model_dir, a.framework)
        ports = Ports()
        servers: list[Server] = []
        try:
            extra = ["--mode", a.mode]
            if a.collocated:
                extra += ["--collocated_model_dir", str(a.model_dir)]
            else:
                servers.append(start_predictor(a.model_dir, ports))
                wait_ready(servers[0])
            tr = start_transformer(fenv, ports, a.protocol, extra=extra)
            servers.append(tr)
            wait_ready(tr)
            predictor = (
                f"model {a.model_dir} in-process (collocated)"
                if a.collocated
                else "predictor http://127.0.0.1:8085 (gRPC 8086)"
            )
            print("\n" + "=" * 72, flush=True)
            print(f"Stack is up: transformer http://127.0.0.1:8080 (gRPC 8081), {predictor}")
            print(f"Online store: {a.online_store}, mode: {a.mode}. Try (user 42):\n")
            print(example_request())
            print("\nCtrl-C stops the stack.\n" + "=" * 72, flush=True)
            while all(s.proc.poll() is None for s in servers):
                time.sleep(0.5)
            dead = [s.name for s in servers if s.proc.poll() is not None]
            log.error("%s exited; stopping the stack", ", ".join(dead))
            return 1
        except KeyboardInterrupt:
            log.info("stopping the stack")
            return 0
        finally:
            stop(*servers)


@contextmanager
def _maybe_redis(kind: str) -> Iterator[str | None]:
    if kind != "redis":
        yield None
    elif os.environ.get("REDIS_CONNECTION_STRING"):
        yield os.environ["REDIS_CONNECTION_STRING"]
    else:
        with redis_server(6379 if _port_free(6379) else None) as r:
            log.info("started redis-server on %s", r.connection_string)
            yield r.connection_string


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m devtools.stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--online-store",
        choices=["sqlite", "redis"],
        default="sqlite",
        help="redis: uses REDIS_CONNECTION_STRING, or starts a local redis-server",
    )
    p.add_argument("--framework", choices=["sklearn", "xgboost"], default="sklearn")
    p.add_argument("--model-dir", type=Path, help="default models/<framework>")
    p.add_argument("--predictor-protocol", choices=["v2", "grpc-v2"], default="v2")
    p.add_argument("--mode", choices=["online", "cached", "precomputed"], default="online")
    p.add_argument(
        "--collocated",
        action="store_true",
        help="load the model inside the transformer (no predictor process)",
    )
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return run(
        RunArgs(
            model_dir=a.model_dir or ROOT / "models" / a.framework,
            framework=a.framework,
            online_store=a.online_store,
            protocol=a.predictor_protocol,
            mode=a.mode,
            collocated=a.collocated,
        )
    )


if __name__ == "__main__":
    raise SystemExit(main())
