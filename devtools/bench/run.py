"""One benchmark run: the stack up once, every selected scenario measured against it, the floors
and cold starts, and the results dict the report and the targets read."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from devtools import stack
from devtools.bench.common import CONCURRENCY, MODEL_NAME, ROOT, BenchError, brief
from devtools.bench.inprocess import features_scenario, predict_floors, redis_floor, stall_floor
from devtools.bench.load import Load, run_wrk
from devtools.bench.machine import machine_info
from devtools.bench.mlserver import mlserver_setup, start_mlserver
from devtools.bench.procwatch import ProcWatch, Watched
from devtools.bench.scenarios import (
    CACHED_USERS,
    HOUR,
    SCENARIOS,
    SESSION_S,
    Scenario,
    predictor_body,
    transformer_body,
)
from devtools.bench.servers import cold_start, prom_value, running, start_empty
from devtools.bench.targets import evaluate_targets, floors_needed

log = logging.getLogger("bench")


@dataclass
class Config:
    steps: list[str]
    duration_s: int
    warmup_s: int
    users: int
    quick: bool
    mlserver: bool
    registry_refresh_s: float
    cold_repeats: int
    out: Path
    doc: Path
    plot: Path
    docs: bool
    model_dir: Path
    transformer_env: dict[str, str] = field(default_factory=dict)  # --transformer-env K=V
    transformer_extra: list[str] = field(default_factory=list)  # --transformer-arg ARG
    render: Path | None = None  # --render: re-render the doc from this results file


@dataclass
class TransformerEnv(stack.FeatureEnv):
    """The feature repo's environment plus ``--transformer-env``: what every transformer the
    benchmark starts (stack, collocated, cold starts) gets."""

    extra: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, **self.extra}


class Bench:
    def __init__(self, cfg: Config, work: Path):
        self.cfg = cfg
        self.work = work
        self.logs = work / "logs"
        self.logs.mkdir(parents=True)
        self.runs: list[dict[str, Any]] = []
        self.http = httpx.Client(timeout=30.0)
        # the targets of the selected scenarios divide by floors: run those too
        self.added = floors_needed(cfg.steps)
        self.steps = [*cfg.steps, *self.added]
        if self.added:
            log.info("also running %s: the floors of the selected scenarios' targets", self.added)

    def transformer_args(self) -> list[str]:
        base = ["--mode", "cached", "--registry_refresh_s", str(self.cfg.registry_refresh_s)]
        return [*base, *self.cfg.transformer_extra]

    def measure(self, scenario: Scenario, load: Load, watch: ProcWatch, **extra: Any) -> None:
        for c in CONCURRENCY:
            run_wrk(load, c, self.cfg.warmup_s)
            before = extra.get("before", lambda: None)()
            rec = run_wrk(load, c, self.cfg.duration_s, watch)
            if "after" in extra:
                rec.update(extra["after"](before))
            self.runs.append(
                {
                    "scenario": scenario.name,
                    "title": scenario.title,
                    "server": scenario.server,
                    "concurrency": c,
                    "batch": scenario.batch,
                    "method": "wrk",
                    **rec,
                }
            )
            log.info("%s c=%d: %s", scenario.name, c, brief(rec))

    def post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.http.post(url, json=body)
        if r.status_code != 200:
            raise BenchError(f"POST {url}: {r.status_code} {r.text[:500]}")
        result: dict[str, Any] = r.json()
        return result

    def body_file(self, name: str, body: dict[str, Any]) -> Path:
        path = self.work / f"{name}.json"
        path.write_text(json.dumps(body, separators=(",", ":")))
        return path

    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        started = datetime.now(UTC)
        t_start = time.monotonic()
        results: dict[str, Any] = {
            "id": started.strftime("%Y%m%dT%H%M%SZ"),
            "started_at": started.isoformat(timespec="seconds"),
            "machine": machine_info(),
            "config": {
                "steps": cfg.steps,
                "floors_added": self.added,
                "duration_s": cfg.duration_s,
                "warmup_s": cfg.warmup_s,
                "concurrency": list(CONCURRENCY),
                "users": cfg.users,
                "cached_users": CACHED_USERS,
                "quick": cfg.quick,
                "registry_refresh_s": cfg.registry_refresh_s,
                "transformer_args": self.transformer_args(),
                "transformer_env": cfg.transformer_env,
                "model_dir": str(cfg.model_dir),
                "request_context": {"session_duration_s": SESSION_S, "hour_of_day": HOUR},
            },
            "runs": self.runs,
            "floors": {},
        }
        if cfg.mlserver:
            results["mlserver"] = mlserver_setup()  # fail early, before the stack
        with stack.redis_server() as redis:
            fenv = stack.FeatureEnv(self.copy_repo(), redis.connection_string)
            self.tenv = TransformerEnv(fenv.repo, fenv.redis, dict(cfg.transformer_env))
            t = time.monotonic()
            stack.prepare_features(fenv, n_users=cfg.users, force=True)
            stack.ensure_model(fenv.repo, cfg.model_dir, "sklearn")
            results["setup_s"] = round(time.monotonic() - t, 1)
            ports = stack.Ports.free()
            servers: list[stack.Server] = []
            try:
                pred = stack.start_predictor(cfg.model_dir, ports, self.logs)
                servers.append(pred)
                stack.wait_ready(pred)
                tr = stack.start_transformer(
                    self.tenv, ports, "v2", self.logs, self.transformer_args()
                )
                servers.append(tr)
                stack.wait_ready(tr)
                self.scenarios(results, fenv, redis, pred, tr, ports)
                watch = ProcWatch(
                    [
                        Watched("transformer", tr.proc.pid),
                        Watched("predictor", pred.proc.pid),
                        Watched("redis", redis.proc.pid),
                    ]
                )
                results["rss_mb"] = watch.hwm()
            except BaseException:
                for s in servers:
                    tail = s.log_tail(30)
                    if tail:
                        log.error("last lines of %s's log:\n%s", s.name, tail)
                raise
            finally:
                stack.stop(*servers)
        results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        results["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        results["elapsed_s"] = round(time.monotonic() - t_start, 1)
        results["targets"] = evaluate_targets(results)
        return results

    def copy_repo(self) -> Path:
        dst = self.work / "feature_repo"
        dst.mkdir()
        for f in (ROOT / "feature_repo").iterdir():
            if f.is_file():
                shutil.copy(f, dst / f.name)
        return dst

    def scenarios(
        self,
        results: dict[str, Any],
        fenv: stack.FeatureEnv,
        redis: stack.Redis,
        pred: stack.Server,
        tr: stack.Server,
        ports: stack.Ports,
    ) -> None:
        cfg = self.cfg
        steps = self.steps
        ours = [
            Watched("transformer", tr.proc.pid),
            Watched("predictor", pred.proc.pid),
            Watched("redis", redis.proc.pid),
        ]
        watch = ProcWatch(ours)
        infer_url = f"{tr.url}/v2/models/{MODEL_NAME}/infer"
        infer = ROOT / "bench" / "infer.lua"
        post = ROOT / "bench" / "post.lua"

        # one user's features, as the transformer reads them: the predictor's request body
        answer = self.post(
            infer_url,
            {
                **transformer_body([42], False),
                "parameters": {"cache": False, "return_features": True},
            },
        )
        outputs = {o["name"]: o["data"][0] for o in answer["outputs"]}
        if outputs.get("prediction_source") != "model":
            raise BenchError(f"unexpected transformer answer for user 42: {outputs}")
        meta = self.http.get(f"{pred.url}/v2/models/{MODEL_NAME}").json()
        pbody = predictor_body(meta["inputs"], outputs)
        row = [float(t["data"][0]) for t in pbody["inputs"]]

        for name in ("full", "batch10", "batch100"):
            if name not in steps:
                continue
            sc = SCENARIOS[name]
            self.post(infer_url, transformer_body(list(range(1, sc.batch + 1)), False))
            env = {"USERS": str(cfg.users), "BATCH": str(sc.batch), "CACHE": "false"}
            self.measure(sc, Load(infer_url, infer, env, sc.batch), watch)

        if "cache_hit" in steps:
            self.warm_cache(tr, infer_url)
            env = {"USERS": str(CACHED_USERS), "BATCH": "1", "CACHE": "true"}
            self.measure(
                SCENARIOS["cache_hit"],
                Load(infer_url, infer, env),
                watch,
                before=lambda: self.cache_counters(tr),
                after=lambda before: self.hit_ratio(tr, before),
            )

        if "collocated" in steps:  # a second transformer, scoring in-process
            sc = SCENARIOS["collocated"]
            log_dir = self.logs / "collocated"
            log_dir.mkdir()
            args = [*self.transformer_args(), "--collocated_model_dir", str(cfg.model_dir)]
            server = stack.start_transformer(self.tenv, stack.Ports.free(), "v2", log_dir, args)
            with running(server) as co:
                url = f"{co.url}/v2/models/{MODEL_NAME}/infer"
                self.post(url, transformer_body([1], False))
                env = {"USERS": str(cfg.users), "BATCH": "1", "CACHE": "false"}
                self.measure(
                    sc,
                    Load(url, infer, env),
                    ProcWatch([*ours, Watched("collocated", co.proc.pid)]),
                )

        if "ensemble" in steps:  # a second transformer over this predictor and an XGBoost one
            self.ensemble(fenv, pred, ours, infer)

        if "predictor" in steps:
            url = f"{pred.url}/v2/models/{MODEL_NAME}/infer"
            self.post(url, pbody)
            env = {"BODY_FILE": str(self.body_file("predictor", pbody))}
            self.measure(SCENARIOS["predictor"], Load(url, post, env), watch)

        if "features" in steps:
            for c, rec in zip(
                CONCURRENCY,
                features_scenario(
                    fenv,
                    cfg.model_dir,
                    cfg.users,
                    CONCURRENCY,
                    cfg.warmup_s,
                    cfg.duration_s,
                    ProcWatch([*ours, Watched("bench", os.getpid(), tree=False)]),
                ),
                strict=True,
            ):
                sc = SCENARIOS["features"]
                self.runs.append(
                    {
                        "scenario": sc.name,
                        "title": sc.title,
                        "server": sc.server,
                        "concurrency": c,
                        "batch": 1,
                        "method": "in-process",
                        **rec,
                    }
                )

        small = {"inputs": [{"name": "input-0", "datatype": "FP64", "shape": [1, 9], "data": row}]}
        if "empty" in steps:
            with running(start_empty(self.logs)) as empty:
                url = f"{empty.url}/v2/models/empty/infer"
                self.post(url, small)
                env = {"BODY_FILE": str(self.body_file("empty", small))}
                self.measure(
                    SCENARIOS["empty"],
                    Load(url, post, env),
                    ProcWatch([*ours, Watched("empty", empty.proc.pid)]),
                )

        if self.cfg.mlserver:
            body = {**small, "outputs": [{"name": "predict_proba"}]}
            env = {"BODY_FILE": str(self.body_file("mlserver", body))}
            for name, workers in (("mlserver", None), ("mlserver_inproc", 0)):
                ml_server = start_mlserver(cfg.model_dir, self.work / name, self.logs, workers)
                with running(ml_server) as ml:
                    url = f"{ml.url}/v2/models/{MODEL_NAME}/infer"
                    self.post(url, body)
                    self.measure(
                        SCENARIOS[name],
                        Load(url, post, env),
                        ProcWatch([*ours, Watched("mlserver", ml.proc.pid)]),
                    )

        if "floors" in steps:
            seconds = min(cfg.duration_s, 3)
            results["floors"]["redis_hgetall"] = redis_floor(redis.port, seconds)
            results["floors"].update(predict_floors(cfg.model_dir, row, seconds))
            results["floors"]["stalls"] = stall_floor(max(seconds, 5))
            for k, f in results["floors"].items():
                log.info("floor %s: %s", k, f["latency_ms"])

        if "cold_start" in steps:
            n = cfg.cold_repeats

            def fresh_predictor(i: int) -> stack.Server:
                d = self.logs / f"cold-predictor-{i}"
                d.mkdir()
                return stack.start_predictor(cfg.model_dir, stack.Ports.free(), d)

            def fresh_transformer(i: int) -> stack.Server:
                d = self.logs / f"cold-transformer-{i}"
                d.mkdir()
                p = stack.Ports(
                    ports.predictor_http, ports.predictor_grpc, stack.free_port(), stack.free_port()
                )
                return stack.start_transformer(self.tenv, p, "v2", d, self.transformer_args())

            def fresh_empty(i: int) -> stack.Server:
                d = self.logs / f"cold-empty-{i}"
                d.mkdir()
                return start_empty(d)

            results["cold_start_s"] = {
                "transformer": cold_start(fresh_transformer, n),
                "predictor": cold_start(fresh_predictor, n),
                "empty kserve.Model": cold_start(fresh_empty, n),
            }
            log.info("cold start: %s", results["cold_start_s"])

    def ensemble(
        self, fenv: stack.FeatureEnv, pred: stack.Server, ours: list[Watched], infer: Path
    ) -> None:
        """The ``full`` load against a transformer whose rules file makes it an ensemble of the
        stack's predictor and a second predictor serving the XGBoost model (trained into
        ``<model dir>/../xgboost`` if missing): the cost of the second, concurrent call."""
        sc = SCENARIOS["ensemble"]
        log_dir = self.logs / "ensemble"
        log_dir.mkdir()
        xgb_dir = self.cfg.model_dir.parent / "xgboost"
        stack.ensure_model(fenv.repo, xgb_dir, "xgboost")
        xgb_ports = stack.Ports.free()
        rules = self.work / "ensemble-rules.yaml"
        rules.write_text(
            "ensemble:\n  combine: mean\n  members:\n"
            f"    - {{name: sklearn, host: '{pred.url.removeprefix('http://')}'}}\n"
            f"    - {{name: xgboost, host: '127.0.0.1:{xgb_ports.predictor_http}'}}\n"
        )
        with running(stack.start_predictor(xgb_dir, xgb_ports, log_dir)) as xgb:
            args = [*self.transformer_args(), "--rules_file", str(rules)]
            server = stack.start_transformer(self.tenv, stack.Ports.free(), "v2", log_dir, args)
            with running(server) as ens:
                url = f"{ens.url}/v2/models/{MODEL_NAME}/infer"
                version = self.post(url, transformer_body([1], False))["model_version"]
                if not str(version).startswith("ensemble-"):
                    raise BenchError(f"the ensemble transformer answered version {version!r}")
                env = {"USERS": str(self.cfg.users), "BATCH": "1", "CACHE": "false"}
                watched = [Watched("ensemble", ens.proc.pid), Watched("xgboost", xgb.proc.pid)]
                self.measure(sc, Load(url, infer, env), ProcWatch([*ours, *watched]))

    def warm_cache(self, tr: stack.Server, url: str) -> None:
        """Send every cached user once with the cache on; wait for the write-backs."""
        written0 = self.metric(tr, "transformer_writeback_rows_total")
        for first in range(1, CACHED_USERS + 1, 100):
            ids = list(range(first, min(first + 100, CACHED_USERS + 1)))
            self.post(url, transformer_body(ids, True))
        deadline = time.monotonic() + 60
        while self.metric(tr, "transformer_writeback_rows_total") - written0 < CACHED_USERS:
            if time.monotonic() > deadline:
                raise BenchError("cache warm-up: the write-backs did not land within 60 s")
            time.sleep(0.2)
        for uid in (1, CACHED_USERS):
            got = self.post(url, transformer_body([uid], True))
            source = {o["name"]: o["data"][0] for o in got["outputs"]}["prediction_source"]
            if source != "cache":
                raise BenchError(f"cache warm-up: user {uid} answered from {source!r}, not cache")

    def metric(self, server: stack.Server, name: str) -> float:
        text = self.http.get(f"{server.url}/metrics").text
        try:
            return prom_value(text, name)
        except KeyError:
            return 0.0

    def cache_counters(self, tr: stack.Server) -> tuple[float, float]:
        return (
            self.metric(tr, "transformer_cache_hits_total"),
            self.metric(tr, "transformer_cache_misses_total"),
        )

    def hit_ratio(self, tr: stack.Server, before: tuple[float, float]) -> dict[str, Any]:
        hits, misses = self.cache_counters(tr)
        h, m = hits - before[0], misses - before[1]
        return {"cache_hit_ratio": round(h / (h + m), 4) if h + m else None}
