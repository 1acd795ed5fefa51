"""Precomputed batch predictions with Ray (serving approach 3).

``python -m predictor.jobs.batch --model-dir models/sklearn`` (``make batch``):

1. read the latest features of every user (or ``--users``) from the offline store with
   ``get_historical_features`` at the current time (on-demand features are computed for the
   fixed request context given by ``--context``: precomputed scores cannot see request-time
   data);
2. score them with Ray Data ``map_batches``, each worker loading the model once with the same
   loader as the predictor (``predictor.protocol.artifact.load_model``);
3. write the scores to the predictions view of the online store, each row marked with this
   run's generation (``request_key = "batch@<generation>"``: ``cached`` mode never mistakes
   it for a request-specific answer);
4. commit the generation: one commit row (``predictor.protocol.generation``) written after the last
   prediction row. The transformer's ``precomputed`` mode serves a row only when its
   generation is the committed one, so a run that dies half-way is never served as complete.

Logs progress and a final summary line (users, scored, written, failed, duration,
generation); with ``--pushgateway`` (or ``BATCH_PUSHGATEWAY_URL``) pushes the same numbers to
a Prometheus Pushgateway. Runs on an embedded local Ray by default, or on a cluster with
``--address ray://host:10001``.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from predictor.protocol import predictions
from predictor.protocol.artifact import load_model, read_metadata
from predictor.protocol.generation import COMMIT_ENTITY, commit_key, new_generation, row_key

log = logging.getLogger("predictor.jobs.batch")


@dataclass
class BatchResult:
    users: int
    scored: int
    written: int
    model_version: str
    seconds: dict[str, float]
    generation: str = ""

    @property
    def failed(self) -> int:
        """Users read but not written (no usable features: nothing to score)."""
        return self.users - self.written

    @property
    def duration_s(self) -> float:
        return sum(self.seconds.values())

    def summary(self) -> str:
        """The final log line: one line, ``key=value`` pairs, for log-based alerting."""
        return (
            f"batch summary: generation={self.generation} model_version={self.model_version} "
            f"users={self.users} scored={self.scored} written={self.written} "
            f"failed={self.failed} duration_s={self.duration_s:.1f} committed=true"
        )


def parse_context(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in filter(None, text.split(",")):
        name, _, value = part.partition("=")
        if not value:
            raise SystemExit(f"--context: '{part}' is not name=value")
        out[name.strip()] = float(value)
    return out


def store_for(repo: Path) -> Any:
    from feast import FeatureStore

    fs_yaml = os.environ.get("FEAST_FS_YAML_FILE_PATH")
    return FeatureStore(repo_path=str(repo), fs_yaml_file=Path(fs_yaml) if fs_yaml else None)


def latest_features(
    repo: Path, feature_service: str, users: np.ndarray | None, context: dict[str, float]
) -> pd.DataFrame:
    """One row per user with the model's features as of now (point in time)."""
    store = store_for(repo)
    if users is None:
        users = pd.read_parquet(repo / "data" / "user_data.parquet", columns=["user_id"])[
            "user_id"
        ].unique()
    entity_df = pd.DataFrame({"user_id": np.asarray(users, dtype=np.int64)})
    entity_df["event_timestamp"] = pd.Timestamp(datetime.now(UTC))
    for name, value in context.items():
        entity_df[name] = value
    svc = store.get_feature_service(feature_service)
    return store.get_historical_features(
        entity_df=entity_df, features=svc, full_feature_names=True
    ).to_df()


class ScoreBatch:
    """Ray Data callable class: loads the model once per worker, scores pandas batches."""

    def __init__(self, model_dir: str):
        self.model = load_model(model_dir)
        self.names = self.model.metadata.feature_names

    def __call__(self, df: pd.DataFrame) -> pd.DataFrame:
        x = df[self.names].to_numpy(np.float64)
        ok = ~np.isnan(x).any(axis=1)
        score = np.full(len(df), np.nan)
        if ok.any():
            score[ok] = self.model.score(x[ok])
        return pd.DataFrame({"user_id": df["user_id"].to_numpy(), "score": score})


class ScoreAndWriteRedis(ScoreBatch):
    """Ray worker for Redis online stores: scores its batches and writes them itself, in
    Feast's Redis format (predictor.protocol.feast_redis), so writing scales with the workers
    too."""

    def __init__(
        self,
        model_dir: str,
        repo: str,
        view: str,
        env: dict[str, str],
        at: datetime,
        request_key: str = "",
    ):
        super().__init__(model_dir)
        from predictor.protocol.feast_redis import FeastRedisLayout

        os.environ.update(env)
        store = store_for(Path(repo))
        cfg = store.config.online_store
        self.client = store._get_provider().online_store._get_client(cfg)
        self.ttl = cfg.key_ttl_seconds
        self.layout = FeastRedisLayout.of(store, "user_id")
        self.view, self.at = view, at
        self.version = self.model.metadata.version
        self.request_key = request_key

    def __call__(self, df: pd.DataFrame) -> pd.DataFrame:
        from predictor.protocol.feast_redis import write_rows

        scored = super().__call__(df)
        ok = scored["score"].notna().to_numpy()
        ids = scored["user_id"].to_numpy()[ok].tolist()
        scores = scored["score"].to_numpy()[ok].tolist()
        rows = [(s, self.version, 0, self.request_key) for s in scores]
        n = write_rows(
            self.client, self.layout, self.view, predictions.TYPES, ids, rows, self.at, self.ttl
        )
        return pd.DataFrame({"written": [n]})


def score_and_write_with_ray(
    features: pd.DataFrame,
    repo: Path,
    model_dir: Path,
    workers: int,
    batch_size: int,
    address: str | None,
    view: str = predictions.VIEW,
) -> int:
    """Redis online stores: score and write in the Ray workers; returns rows written."""
    ray_init(workers, address)
    import ray

    names = read_metadata(model_dir).feature_names
    env = {
        k: v
        for k, v in os.environ.items()
        if k in ("FEAST_FS_YAML_FILE_PATH", "REDIS_CONNECTION_STRING")
    }
    ds = ray.data.from_pandas(
        features[["user_id", *names]], override_num_blocks=max(workers * 4, 1)
    )
    done = ds.map_batches(
        ScoreAndWriteRedis,
        fn_constructor_args=(
            str(model_dir.resolve()),
            str(repo.resolve()),
            view,
            env,
            datetime.now(UTC),
        ),
        batch_size=batch_size,
        batch_format="pandas",
        concurrency=workers,
    )
    return int(done.to_pandas()["written"].sum())


def ray_init(workers: int, address: str | None) -> None:
    import ray

    if not ray.is_initialized():
        ray.init(
            address=address,
            num_cpus=None if address else workers,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )


def score_with_ray(
    features: pd.DataFrame, model_dir: Path, workers: int, batch_size: int, address: str | None
) -> pd.DataFrame:
    import ray

    ray_init(workers, address)
    names = read_metadata(model_dir).feature_names
    ds = ray.data.from_pandas(
        features[["user_id", *names]], override_num_blocks=max(workers * 4, 1)
    )
    scored = ds.map_batches(
        ScoreBatch,
        fn_constructor_args=(str(model_dir),),
        batch_size=batch_size,
        batch_format="pandas",
        concurrency=workers,
    )
    return scored.to_pandas()


def write_predictions(
    repo: Path,
    scores: pd.DataFrame,
    version: str,
    view: str,
    chunk: int = 50_000,
    generation: str = "",
) -> int:
    """Write the scored rows, each marked with ``generation``; logs progress per chunk."""
    store = store_for(repo)
    now = datetime.now(UTC)
    ok = scores.dropna(subset=["score"])
    written = 0
    t0 = time.perf_counter()
    for start in range(0, len(ok), chunk):
        part = ok.iloc[start : start + chunk]
        # batch scores: any request context, any feature time (0); the key names the run
        key = row_key(generation) if generation else ""
        values = (part["score"].to_numpy(np.float64), version, 0, key)
        df = pd.DataFrame(
            {
                predictions.ENTITY: part["user_id"].to_numpy(np.int64),
                **dict(zip(predictions.FIELDS, values, strict=True)),
                "event_timestamp": now,
            }
        )
        store.write_to_online_store(feature_view_name=view, df=df)
        written += len(df)
        rate = written / max(time.perf_counter() - t0, 1e-9)
        log.info(
            "written %d/%d predictions (%.0f%%, %.0f rows/s)",
            written,
            len(ok),
            100.0 * written / len(ok),
            rate,
        )
    return written


def commit_generation(repo: Path, generation: str, version: str, view: str) -> None:
    """Flip the committed-generation pointer: one row of ``COMMIT_ENTITY``, written last."""
    values = ([float("nan")], [version], [0], [commit_key(generation)])
    df = pd.DataFrame(
        {
            predictions.ENTITY: [COMMIT_ENTITY],
            **dict(zip(predictions.FIELDS, values, strict=True)),
            "event_timestamp": [datetime.now(UTC)],
        }
    )
    store_for(repo).write_to_online_store(feature_view_name=view, df=df)


def run(
    repo: Path,
    model_dir: Path,
    users: np.ndarray | None = None,
    context: dict[str, float] | None = None,
    workers: int = 2,
    batch_size: int = 20_000,
    address: str | None = None,
    feature_service: str = "click_model_v1",
    view: str = predictions.VIEW,
    write_chunk: int = 50_000,
) -> BatchResult:
    meta = read_metadata(model_dir)
    generation = new_generation()
    seconds: dict[str, float] = {}
    log.info("generation %s, model %s", generation, meta.version)
    t = time.perf_counter()
    log.info("[1/4] reading the latest features from the offline store")
    features = latest_features(repo, feature_service, users, context or {})
    seconds["read_features"] = time.perf_counter() - t
    log.info("[1/4] %d users in %.1fs", len(features), seconds["read_features"])
    t = time.perf_counter()
    log.info("[2/4] scoring with Ray Data on %d workers", workers)
    scores = score_with_ray(features, model_dir, workers, batch_size, address)
    seconds["score"] = time.perf_counter() - t
    scored = int(scores["score"].notna().sum())
    log.info("[2/4] scored %d/%d users in %.1fs", scored, len(features), seconds["score"])
    t = time.perf_counter()
    log.info("[3/4] writing generation %s to the online store view %s", generation, view)
    written = write_predictions(repo, scores, meta.version, view, write_chunk, generation)
    seconds["write"] = time.perf_counter() - t
    log.info("[3/4] wrote %d predictions in %.1fs", written, seconds["write"])
    t = time.perf_counter()
    commit_generation(repo, generation, meta.version, view)
    seconds["commit"] = time.perf_counter() - t
    log.info("[4/4] committed generation %s", generation)
    return BatchResult(len(features), scored, written, meta.version, seconds, generation)


def push_metrics(url: str, job: str, result: BatchResult | None, error: str = "") -> None:
    """The summary as Prometheus metrics on a Pushgateway.

    Success: ``push_to_gateway`` replaces the job's group with the full set. Failure:
    ``pushadd_to_gateway`` of the failure gauges only, so the last success's numbers (and
    ``batch_last_success_timestamp_seconds``) stay there for the staleness alert.
    """
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, pushadd_to_gateway

    reg = CollectorRegistry()
    ok = Gauge("batch_success", "1 when the last run committed its generation", registry=reg)
    now = time.time()
    if result is None:
        ok.set(0)
        Gauge(
            "batch_last_failure_timestamp_seconds", "End of the last failed run", registry=reg
        ).set(now)
        log.info("pushing the failure (%s) to %s", error, url)
        pushadd_to_gateway(url, job=job, registry=reg, timeout=10)
        return
    ok.set(1)
    for name, help_, value in (
        ("batch_users", "Users read from the offline store", result.users),
        ("batch_scored", "Users scored", result.scored),
        ("batch_written", "Predictions written", result.written),
        ("batch_failed", "Users read but not written", result.failed),
        ("batch_duration_seconds", "Duration of the run", result.duration_s),
        ("batch_last_success_timestamp_seconds", "End of the last committed run", now),
    ):
        Gauge(name, help_, registry=reg).set(value)
    Gauge(
        "batch_generation_info",
        "The committed generation",
        ["generation", "model_version"],
        registry=reg,
    ).labels(result.generation, result.model_version).set(1)
    push_to_gateway(url, job=job, registry=reg, timeout=10)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m predictor.jobs.batch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--repo", type=Path, default=Path("feature_repo"))
    p.add_argument("--model-dir", type=Path, default=Path("models/sklearn"))
    p.add_argument("--users", help="comma-separated user ids (default: every user)")
    p.add_argument(
        "--context",
        default="session_duration_s=30,hour_of_day=12",
        help="request-time fields used for on-demand features, name=value,...",
    )
    p.add_argument("--workers", type=int, default=2, help="Ray scoring workers")
    p.add_argument("--batch-size", type=int, default=20_000)
    p.add_argument(
        "--write-chunk", type=int, default=50_000, help="rows per online-store write (progress)"
    )
    p.add_argument("--address", help="Ray cluster address (default: embedded local Ray)")
    p.add_argument(
        "--pushgateway",
        default=os.environ.get("BATCH_PUSHGATEWAY_URL") or None,
        help="Prometheus Pushgateway (host:port or URL) for the summary metrics "
        "(env BATCH_PUSHGATEWAY_URL; default: none, the summary log line only)",
    )
    p.add_argument("--pushgateway-job", default="feast-kserve-batch", help="Pushgateway job label")
    a = p.parse_args(argv)
    if a.write_chunk < 1 or a.workers < 1 or a.batch_size < 1:
        p.error("--write-chunk, --workers and --batch-size must be >= 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    users = np.array([int(u) for u in a.users.split(",")]) if a.users else None
    try:
        r = run(
            a.repo,
            a.model_dir,
            users,
            parse_context(a.context),
            a.workers,
            a.batch_size,
            a.address,
            write_chunk=a.write_chunk,
        )
    except Exception as e:
        log.error("batch failed, nothing committed: %s: %s", type(e).__name__, e)
        if a.pushgateway:
            try:
                push_metrics(a.pushgateway, a.pushgateway_job, None, type(e).__name__)
            except OSError as push_error:
                log.warning("pushgateway %s: %s", a.pushgateway, push_error)
        raise
    log.info("%s", r.summary())
    if a.pushgateway:
        try:
            push_metrics(a.pushgateway, a.pushgateway_job, r)
        except OSError as push_error:  # the generation is committed: the run succeeded
            log.error(
                "pushgateway %s: %s (the summary line above has it)", a.pushgateway, push_error
            )
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in r.seconds.items())
    print(f"{r.written} predictions of {r.model_version} written ({timings})")
    print(r.summary())


if __name__ == "__main__":
    main()
