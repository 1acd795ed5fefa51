"""``python -m transformer.stream run|publish``.

- ``run [--flag value ...]``: the worker (flags and ``STREAM_*`` variables: ``run --help``).
- ``publish FILE``: append the events of FILE (JSON lines, or a parquet/CSV table with the
  event columns, e.g. ``predictor.jobs.datagen``'s ``activity.parquet``) to the stream, validated
  first; a bad line is refused with its line number and nothing is sent.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from predictor.protocol import logs
from predictor.protocol.cli import settings_from_cli
from transformer.stream.settings import StreamSettings, default_consumer

log = logging.getLogger("transformer.stream")


async def build(settings: StreamSettings, metrics: Any = None) -> Any:
    """Settings → a ``Worker`` (nothing read, nothing connected yet).

    Here only what needs no other server: the rules, ``feature_store.yaml``, the Redis client.
    What scoring needs (the registry's feature service, the model's inputs from the predictor
    or the model directory) is ``connect``, which the worker retries until it succeeds while
    it is live and ready (``Worker.run``)."""
    from predictor.jobs.batch import parse_context
    from transformer.features import FeatureConfigError, open_store
    from transformer.features.redis_direct import dedicated_client
    from transformer.rules import load_rules
    from transformer.stream.metrics import StreamMetrics
    from transformer.stream.source import RedisStreamSource
    from transformer.stream.worker import Worker

    rules = load_rules(settings.rules_file)
    store = await asyncio.to_thread(open_store, settings.feast_repo_path, settings.feast_fs_yaml)
    if store.config.online_store.type != "redis":
        raise FeatureConfigError(
            f"the stream worker needs a Redis online store (the bus), got "
            f"{store.config.online_store.type!r}"
        )
    try:
        context = parse_context(settings.default_context)
    except SystemExit as e:
        raise FeatureConfigError(f"default_context: {e}") from None
    # The worker blocks in XREADGROUP for block_ms: its client's read timeout must outlast that
    redis = await dedicated_client(store, read_timeout_s=settings.block_ms / 1000 + 10)
    source = RedisStreamSource(
        redis,
        settings.stream,
        settings.group,
        settings.consumer or default_consumer(),
        settings.dead_letter_stream,
        settings.batch_size,
        settings.block_ms,
        settings.claim_idle_ms,
        settings.claim_every_s,
        settings.start_id,
    )
    attempts = 0

    async def connect() -> Any:
        nonlocal attempts
        attempts += 1
        reader, chosen, types = await asyncio.to_thread(
            _scoring_inputs, settings, rules, store, attempts > 1
        )
        return _scoring(settings, rules, store, redis, reader, chosen, types, context)

    return Worker(
        source,
        connect,
        metrics or StreamMetrics(),
        settings.lateness_s,
        settings.commit_retries,
        settings.max_events,
        settings.until_idle,
        settings.progress_s,
        settings.predictor_wait_s,
        settings.retry_max_s,
    )


def _scoring_inputs(settings: StreamSettings, rules: Any, store: Any, again: bool) -> Any:
    """One attempt (blocking: run in a thread) at the feature service, the updated view's
    types and the scorer. ``NotYet`` when the registry or the predictor is not there yet
    (retried); other errors are configuration errors (fatal)."""
    from transformer import scorer
    from transformer.features import FeatureConfigError, FeatureReader, v2_type
    from transformer.features import wait_for_feature_service as feature_service
    from transformer.stream.fold import FEATURES
    from transformer.stream.worker import NotYet

    try:
        if again:
            store.refresh_registry()  # the registry is cached: see a later `feast apply`
        feature_service(store, settings.feature_service, 0.0)
    except Exception as e:
        raise NotYet(f"the Feast registry: {e}") from None
    # the transformer's own choice (embedded model, ensemble, predictor), so cache rows agree;
    # one metadata attempt each time (the worker's retry paces them)
    once = settings.model_copy(update={"predictor_wait_s": 0.0})
    try:
        chosen = scorer.choose(once, rules, settings.rules_file, settings.model_dir, "model_dir")
    except RuntimeError as e:  # no metadata (yet), or ensemble members that disagree
        raise NotYet(str(e)) from None
    reader = FeatureReader(store, settings.feature_service, chosen.features, rules.stale_after_s)
    if settings.features_view not in reader.batch_views:
        raise FeatureConfigError(
            f"features_view '{settings.features_view}' is not a batch view of feature service "
            f"'{settings.feature_service}' (it has {sorted(reader.batch_views)})"
        )
    view = store.get_feature_view(settings.features_view)
    types = {f.name: v2_type(f.dtype) for f in view.features}
    lacking = sorted(set(FEATURES) - set(types))
    if lacking:
        raise FeatureConfigError(f"feature view '{settings.features_view}' lacks {lacking}")
    return reader, chosen, types


def _scoring(
    settings: StreamSettings,
    rules: Any,
    store: Any,
    redis: Any,
    reader: Any,
    chosen: Any,
    types: dict[str, str],
    context: dict[str, float],
) -> Any:
    """The model call and the writer, in the running loop (the clients bind to it)."""
    from predictor.protocol.feast_redis import FeastRedisLayout
    from transformer.stream.scoring import Scoring
    from transformer.stream.sink import RedisSink

    sink = RedisSink(
        redis,
        FeastRedisLayout.of(store, reader.join_key),
        settings.features_view,
        types,
        settings.predictions_view,
        settings.output_stream,
        settings.output_maxlen,
        store.config.online_store.key_ttl_seconds,
    )
    scoring = Scoring(reader, chosen.client_factory(), rules, settings.features_view, context)
    return scoring, sink


async def run(settings: StreamSettings) -> int:
    from transformer.stream.metrics import HealthServer

    worker = await build(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    health = None
    if settings.http_port:
        health = HealthServer(
            worker.metrics,
            lambda: worker.beat,
            lambda: worker.ready,
            stall_s=max(60.0, settings.block_ms / 1000 * 10),
            waiting=lambda: worker.waiting,
        )
        port = await health.start(settings.http_port)
        log.info("metrics and health on :%d", port)
    try:
        await worker.run(before_batches=_freeze)
    finally:
        if health is not None:
            await health.stop()
        if worker.scoring is not None:
            await worker.scoring.client.close()
        await worker.source.r.aclose()
    return 0


def _freeze() -> None:
    """Feast's registry, protobuf and pandas leave ~10^6 long-lived objects; out of the
    collector's sight, full collections stop costing a third of a batch."""
    gc.collect()
    gc.freeze()


def read_events(path: Path) -> list[bytes]:
    """The events of a file as JSON texts, each validated; errors name the line/row."""
    from transformer.stream.events import BadEvent, parse, record_json

    if path.suffix in (".parquet", ".csv"):
        import pandas as pd

        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        texts = [record_json(r) for r in df.to_dict("records")]
        where = "row"
    else:
        texts = [line.strip() for line in path.read_bytes().splitlines()]
        where = "line"
    out: list[bytes] = []
    for i, text in enumerate(texts, start=1):
        if not text:
            continue
        try:
            parse(text)
        except BadEvent as e:
            raise SystemExit(f"{path}: {where} {i}: {e}") from None
        out.append(text)
    return out


def publish(redis_url: str, stream: str, path: Path, chunk: int = 1000) -> int:
    import redis

    texts = read_events(path)
    r = redis.Redis.from_url(redis_url)
    for start in range(0, len(texts), chunk):
        pipe = r.pipeline(transaction=False)
        for t in texts[start : start + chunk]:
            pipe.xadd(stream, {"event": t})
        pipe.execute()
    r.close()
    return len(texts)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0 if argv else 2)
    command, rest = argv[0], argv[1:]
    if command == "run":
        settings = settings_from_cli(StreamSettings, rest, "python -m transformer.stream run")
        logs.configure(settings.log_level, False)
        from predictor.protocol.artifact import ArtifactError
        from transformer.features import FeatureConfigError
        from transformer.rules import RulesFileError
        from transformer.stream.worker import NotYet

        try:
            raise SystemExit(asyncio.run(run(settings)))
        except (ArtifactError, FeatureConfigError, RulesFileError, NotYet) as e:
            print(f"python -m transformer.stream: {e}", file=sys.stderr)
            raise SystemExit(1) from None
    if command == "publish":
        p = argparse.ArgumentParser(prog="python -m transformer.stream publish")
        p.add_argument("file", type=Path, help="JSON lines, parquet or CSV of events")
        p.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis URL")
        p.add_argument("--stream", default=StreamSettings.model_fields["stream"].default)
        a = p.parse_args(rest)
        n = publish(a.redis, a.stream, a.file)
        print(f"published {n} events to {a.stream}")
        return
    print(
        f"python -m transformer.stream: unknown command {command!r} (run, publish)", file=sys.stderr
    )
    raise SystemExit(2)
