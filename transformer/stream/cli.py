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
    """Settings → Feast store + model + Redis → a ready ``Worker`` (nothing read yet)."""
    from predictor.jobs.batch import parse_context
    from predictor.protocol.feast_redis import FeastRedisLayout
    from transformer import scorer
    from transformer.features import (
        FeatureConfigError,
        FeatureReader,
        open_store,
        v2_type,
        wait_for_feature_service,
    )
    from transformer.features.redis_direct import dedicated_client
    from transformer.rules import load_rules
    from transformer.stream.metrics import StreamMetrics
    from transformer.stream.scoring import Scoring
    from transformer.stream.sink import RedisSink
    from transformer.stream.source import RedisStreamSource
    from transformer.stream.worker import Worker

    rules = load_rules(settings.rules_file)
    # the transformer's own choice (embedded model, ensemble, predictor), so cache rows agree
    chosen = await asyncio.to_thread(
        scorer.choose, settings, rules, settings.rules_file, settings.model_dir, "model_dir"
    )
    model_features = chosen.features
    client = chosen.client_factory()
    store = await asyncio.to_thread(open_store, settings.feast_repo_path, settings.feast_fs_yaml)
    await asyncio.to_thread(wait_for_feature_service, store, settings.feature_service, 120.0)
    if store.config.online_store.type != "redis":
        raise FeatureConfigError(
            f"the stream worker needs a Redis online store (the bus), got "
            f"{store.config.online_store.type!r}"
        )
    reader = FeatureReader(store, settings.feature_service, model_features, rules.stale_after_s)
    if settings.features_view not in reader.batch_views:
        raise FeatureConfigError(
            f"features_view '{settings.features_view}' is not a batch view of feature service "
            f"'{settings.feature_service}' (it has {sorted(reader.batch_views)})"
        )
    from transformer.stream.fold import FEATURES

    view = store.get_feature_view(settings.features_view)
    types = {f.name: v2_type(f.dtype) for f in view.features}
    lacking = sorted(set(FEATURES) - set(types))
    if lacking:
        raise FeatureConfigError(f"feature view '{settings.features_view}' lacks {lacking}")
    try:
        context = parse_context(settings.default_context)
    except SystemExit as e:
        raise FeatureConfigError(f"default_context: {e}") from None
    # The worker blocks in XREADGROUP for block_ms: its client's read timeout must outlast that
    redis = await dedicated_client(store, read_timeout_s=settings.block_ms / 1000 + 10)
    metrics = metrics or StreamMetrics()
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
    scoring = Scoring(reader, client, rules, settings.features_view, context)
    return Worker(
        source,
        sink,
        scoring,
        metrics,
        settings.lateness_s,
        settings.commit_retries,
        settings.max_events,
        settings.until_idle,
        settings.progress_s,
    )


async def run(settings: StreamSettings) -> int:
    from transformer.stream.metrics import HealthServer

    worker = await build(settings)
    # Feast's registry, protobuf and pandas leave ~10^6 long-lived objects; out of the
    # collector's sight, full collections stop costing a third of a batch
    gc.collect()
    gc.freeze()
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
        )
        port = await health.start(settings.http_port)
        log.info("metrics and health on :%d", port)
    try:
        await worker.run()
    finally:
        if health is not None:
            await health.stop()
        await worker.scoring.client.close()
        await worker.sink.r.aclose()
    return 0


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

        try:
            raise SystemExit(asyncio.run(run(settings)))
        except (ArtifactError, FeatureConfigError, RulesFileError) as e:
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
