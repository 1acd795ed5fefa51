"""Prediction ids, what feedback needs under them, and the feedback call.

``PredictionRecorder.record`` gives every scored row of a response a ``prediction_id`` and
queues ``(arm, user, score, time)`` for a background task that stores it in Redis under the id
with a TTL (``prediction_ttl_s``), plus an index ``user + model_version -> latest id``. The
request path only appends to a bounded queue: a full queue or a failed write drops the record
(counted in ``transformer_bandit_records_dropped``); feedback for it is then "unknown".

``POST /v2/models/{name}/feedback`` applies rewards with one Lua script per call: it first
checks that every id exists (any unknown or expired: nothing is applied, 404 naming them),
then marks each record rewarded with ``HSETNX`` and adds to its arm's counts with ``HINCRBY``
only when the mark is new, so a repeated id is ignored (idempotent by prediction id, even
across concurrent calls and replicas). Applied rewards also feed the live-quality monitor
(``transformer/monitoring/quality.py``) with the stored score: an exact join by id.

``python -m transformer.multimodel.feedback FILE.jsonl --url URL`` sends a file of feedback
objects in batches (``send_feedback`` is the same as a Python function).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from transformer.multimodel.bandit import BanditMetrics, keys_prefix

log = logging.getLogger(__name__)

MAX_ITEMS = 10_000  # feedback items per call
WRITE_BATCH = 512  # records per Redis call
Record = tuple[str, str, int, float, float, int]  # id, arm, user, score, time, id counter


class PredictionRecorder:
    """Ids for scored rows; their records go to Redis off the request path."""

    def __init__(
        self,
        redis: Any,  # redis.asyncio.Redis
        prefix: str,
        ttl_s: float,
        queue_size: int,
        metrics: BanditMetrics,
        linger_s: float = 0.0,
    ):
        self.redis = redis
        self.linger_s = linger_s
        self.prefix = keys_prefix(prefix)
        self.ttl_ms = int(ttl_s * 1000)
        self.metrics = metrics
        # unique across replicas and restarts: 64 random bits per process, then a counter
        self._id_prefix = secrets.token_hex(8)
        self._counter = itertools.count(1)
        self.queue: asyncio.Queue[Record] = asyncio.Queue(queue_size)
        self._task: asyncio.Task[None] | None = None
        self._store: Any = None
        self._issued = 0  # counter of the last id handed out
        self._written = 0  # every id up to this one is stored (or dropped)
        self._urgent = asyncio.Event()  # feedback is waiting: write without lingering

    def record(self, users: np.ndarray, scores: np.ndarray, versions: Sequence[str]) -> list[str]:
        """An id per row answered by a model (``versions[i]`` set), "" for default answers."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        now = time.time()
        ids: list[str] = []
        dropped = 0
        p, c = self._id_prefix, self._counter
        for u, s, v in zip(users.tolist(), scores.tolist(), versions, strict=True):
            if not v:
                ids.append("")
                continue
            n = next(c)
            pid = f"{p}{n:x}"
            ids.append(pid)
            try:
                self.queue.put_nowait((pid, v, int(u), float(s), now, n))
            except asyncio.QueueFull:
                dropped += 1
            else:
                self._issued = n
        if dropped:
            self.metrics.records_dropped.inc(dropped)
        return ids

    def record_key(self, pid: str) -> str:
        return f"{self.prefix}:p:{pid}"

    def user_key(self, user: int, version: str) -> str:
        return f"{self.prefix}:u:{user}:{version}"

    async def _run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            if self.linger_s > 0 and not self._urgent.is_set():  # gather a batch
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._urgent.wait(), self.linger_s)
            self._urgent.clear()
            while len(batch) < WRITE_BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                await self.write(batch)
            finally:
                self._written = batch[-1][5]
                for _ in batch:
                    self.queue.task_done()

    async def stored(self, timeout_s: float = 1.0) -> None:
        """Wait until every record queued so far is written (feedback on this replica for a
        prediction it just answered must not miss its record)."""
        target = self._issued
        deadline = time.monotonic() + timeout_s
        while self._written < target and self._task is not None and not self._task.done():
            self._urgent.set()
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(0.001)

    async def write(self, rows: list[Record]) -> bool:
        """One script call per batch: the client only packs arguments (redis-py spends ~15 us
        of CPU per pipelined command, three commands a row: measured 3x the CPU)."""
        args: list[Any] = [self.ttl_ms, self.prefix]
        for row in rows:
            args += row[:5]
        try:
            if self._store is None:
                self._store = self.redis.register_script(STORE)
            await self._store(keys=[f"{self.prefix}:stats"], args=args)
        except Exception as e:  # Redis down: the requests were answered; feedback will 404
            self.metrics.records_dropped.inc(len(rows))
            log.warning("storing %d prediction records failed: %s", len(rows), e)
            return False
        return True

    async def flush(self, timeout_s: float) -> None:
        if self._task is not None and not self._task.done():
            try:
                await asyncio.wait_for(self.queue.join(), timeout_s)
            except TimeoutError:
                log.error("shutdown: %d prediction records not stored", self.queue.qsize())
            self._task.cancel()


# KEYS[1]: the stats hash (routes the call to the slot of the {prefix} hash tag every key
# shares); ARGV: ttl (ms), the key prefix, then per row id, arm, user, score, time.
STORE = """
local ttl, p = ARGV[1], ARGV[2]
for i = 3, #ARGV, 5 do
  local k = p .. ':p:' .. ARGV[i]
  redis.call('HSET', k, 'arm', ARGV[i + 1], 'user', ARGV[i + 2], 'score', ARGV[i + 3],
             'at', ARGV[i + 4])
  redis.call('PEXPIRE', k, ttl)
  redis.call('SET', p .. ':u:' .. ARGV[i + 2] .. ':' .. ARGV[i + 1], ARGV[i], 'PX', ttl)
end
return (#ARGV - 2) / 5
"""

# KEYS[1]: the stats hash; KEYS[2..]: prediction records; ARGV[i]: the reward for KEYS[i+1].
# All or nothing on unknown ids; then per id: applied (1, arm, score) or duplicate (2, arm).
APPLY = """
local unknown = {}
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then unknown[#unknown + 1] = i - 1 end
end
if #unknown > 0 then return {0, unknown} end
local out = {}
for i = 2, #KEYS do
  local rec = redis.call('HMGET', KEYS[i], 'arm', 'score')
  if redis.call('HSETNX', KEYS[i], 'reward', ARGV[i - 1]) == 1 then
    redis.call('HINCRBY', KEYS[1], rec[1] .. '|trials', 1)
    redis.call('HINCRBY', KEYS[1], rec[1] .. '|reward', tonumber(ARGV[i - 1]))
    out[#out + 1] = {1, rec[1], rec[2]}
  else
    out[#out + 1] = {2, rec[1], rec[2]}
  end
end
return {1, out}
"""


class FeedbackError(ValueError):
    def __init__(self, status: int, message: str, unknown: list[Any] | None = None):
        super().__init__(message)
        self.status = status
        self.unknown = unknown


@dataclass
class Item:
    reward: int
    prediction_id: str | None = None
    user_id: int | None = None
    model_version: str | None = None

    def name(self) -> str:
        if self.prediction_id is not None:
            return self.prediction_id
        return f"user_id={self.user_id} model_version={self.model_version}"


def parse_feedback(body: Any) -> list[Item]:
    """One object or ``{"feedback": [objects]}``; each object is ``{"prediction_id", "reward"}``
    or ``{"user_id", "model_version", "reward"}``; reward 0 / 1 (or false / true)."""
    if isinstance(body, dict) and "feedback" in body:
        if set(body) != {"feedback"}:
            raise FeedbackError(400, 'a batch is {"feedback": [...]} with nothing beside it')
        rows, many = body["feedback"], True
        if not isinstance(rows, list) or not rows:
            raise FeedbackError(400, '"feedback" must be a non-empty list')
        if len(rows) > MAX_ITEMS:
            raise FeedbackError(400, f"{len(rows)} items exceed the limit of {MAX_ITEMS} per call")
    else:
        rows, many = [body], False
    items = []
    for i, r in enumerate(rows):
        where = f"feedback[{i}]: " if many else ""
        if not isinstance(r, dict):
            raise FeedbackError(400, f"{where}must be an object")
        unknown = sorted(set(r) - {"prediction_id", "user_id", "model_version", "reward"})
        if unknown:
            raise FeedbackError(400, f"{where}unknown fields {unknown}")
        y = r.get("reward")
        if y not in (0, 1) or isinstance(y, float):
            raise FeedbackError(400, f"{where}'reward' must be 0 or 1 (or a bool), got {y!r}")
        if "prediction_id" in r:
            if "user_id" in r or "model_version" in r:
                raise FeedbackError(
                    400, f"{where}give prediction_id or user_id + model_version, not both"
                )
            pid = r["prediction_id"]
            if not isinstance(pid, str) or not 1 <= len(pid) <= 64:
                raise FeedbackError(400, f"{where}'prediction_id' must be a string of 1-64 chars")
            items.append(Item(int(y), prediction_id=pid))
            continue
        uid, ver = r.get("user_id"), r.get("model_version")
        if not isinstance(uid, int) or isinstance(uid, bool):
            raise FeedbackError(
                400, f"{where}needs 'prediction_id', or 'user_id' (an integer) + 'model_version'"
            )
        if not isinstance(ver, str) or not ver:
            raise FeedbackError(400, f"{where}'model_version' must be a non-empty string")
        items.append(Item(int(y), user_id=uid, model_version=ver))
    return items


class FeedbackService:
    """Applies feedback to the shared statistics (and the quality monitor, if any)."""

    def __init__(self, recorder: PredictionRecorder, metrics: BanditMetrics, monitor: Any = None):
        self.recorder = recorder
        self.redis = recorder.redis
        self.metrics = metrics
        self.monitor = monitor  # transformer.monitoring.views.Monitoring or None
        self._script: Any = None

    async def apply(self, items: list[Item]) -> dict[str, int]:
        """Raises FeedbackError (404 naming unknown ids); Redis errors propagate (503)."""
        rec = self.recorder
        await rec.stored()  # records of this replica's recent answers are in Redis first
        by_user = [it for it in items if it.prediction_id is None]
        if by_user:  # resolve user + model version to the latest prediction id
            async with self.redis.pipeline(transaction=False) as pipe:
                for it in by_user:
                    assert it.user_id is not None and it.model_version is not None
                    pipe.get(rec.user_key(it.user_id, it.model_version))
                found = await pipe.execute()
            missing = [it.name() for it, pid in zip(by_user, found, strict=True) if pid is None]
            if missing:
                self.metrics.feedback_calls.labels("unknown").inc(len(missing))
                raise FeedbackError(
                    404,
                    "no prediction within prediction_ttl_s for: " + ", ".join(missing[:20]),
                    missing,
                )
            for it, pid in zip(by_user, found, strict=True):
                it.prediction_id = pid.decode() if isinstance(pid, bytes) else str(pid)
        if self._script is None:
            self._script = self.redis.register_script(APPLY)
        keys = [f"{rec.prefix}:stats"] + [rec.record_key(str(it.prediction_id)) for it in items]
        res = await self._script(keys=keys, args=[it.reward for it in items])
        if int(res[0]) == 0:
            names = [items[int(i) - 1].name() for i in res[1]]
            self.metrics.feedback_calls.labels("unknown").inc(len(names))
            raise FeedbackError(
                404, "unknown or expired prediction_id: " + ", ".join(names[:20]), names
            )
        applied, scores, outcomes = 0, [], []
        for it, (kind, arm, score) in zip(items, res[1], strict=True):
            if int(kind) == 1:
                applied += 1
                self.metrics.rewards.labels(_s(arm), str(it.reward)).inc()
                scores.append(float(score))
                outcomes.append(it.reward)
        dup = len(items) - applied
        self.metrics.feedback_calls.labels("applied").inc(applied)
        if dup:
            self.metrics.feedback_calls.labels("duplicate").inc(dup)
        if applied and self.monitor is not None:
            self.monitor.quality.add_pairs(np.array(scores), np.array(outcomes, np.int8))
        return {"received": len(items), "applied": applied, "duplicates": dup}


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def install_route(app: Any, model_name: str, service: FeedbackService | None) -> None:
    """``POST /v2/models/{name}/feedback`` (a 404 JSON answer while the bandit is off)."""
    import orjson
    from starlette.requests import Request
    from starlette.responses import Response

    from predictor.protocol.rest import json_error

    async def feedback(request: Request) -> Response:
        name = request.path_params["name"]
        if name != model_name:
            return json_error(404, f"model {name!r} is not served here (only {model_name!r})")
        if service is None:
            return json_error(404, "feedback needs the bandit: bandit_file is not set")
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as e:
            return json_error(400, f"body is not valid JSON: {e}")
        try:
            result = await service.apply(parse_feedback(body))
        except FeedbackError as e:
            out: dict[str, Any] = {"error": str(e)}
            if e.unknown is not None:
                out["unknown"] = e.unknown
            return Response(orjson.dumps(out), e.status, media_type="application/json")
        except Exception as e:  # Redis down or slow
            log.warning("feedback failed: %s", e)
            return json_error(503, f"bandit statistics store unavailable: {e}")
        return Response(orjson.dumps(result), 200, media_type="application/json")

    app.router.add_route("/v2/models/{name}/feedback", feedback, methods=["POST"])


# --- the batch helper --------------------------------------------------------------------------


def send_feedback(
    url: str,
    items: list[dict[str, Any]],
    *,
    model_name: str = "click-model",
    token: str | None = None,
    batch: int = 1000,
    skip_unknown: bool = False,
    timeout_s: float = 10.0,
) -> dict[str, int]:
    """POST ``items`` to ``{url}/v2/models/{model_name}/feedback`` in batches; with
    ``skip_unknown`` a batch refused for unknown ids is sent again without them."""
    import httpx

    headers = {"authorization": f"Bearer {token}"} if token else {}
    total = {"received": 0, "applied": 0, "duplicates": 0, "unknown": 0}
    endpoint = f"{url.rstrip('/')}/v2/models/{model_name}/feedback"
    with httpx.Client(timeout=timeout_s, headers=headers) as client:
        for start in range(0, len(items), batch):
            chunk = items[start : start + batch]
            while chunk:
                r = client.post(endpoint, json={"feedback": chunk})
                if r.status_code == 404 and skip_unknown and "unknown" in r.json():
                    bad = set(r.json()["unknown"])
                    keep = [it for it in chunk if _item_name(it) not in bad]
                    total["unknown"] += len(chunk) - len(keep)
                    chunk = keep
                    continue
                if r.status_code != 200:
                    raise RuntimeError(f"feedback: {r.status_code} {r.text[:300]}")
                for k, v in r.json().items():
                    total[k] += v
                break
    return total


def _item_name(it: dict[str, Any]) -> str:
    if "prediction_id" in it:
        return str(it["prediction_id"])
    return f"user_id={it.get('user_id')} model_version={it.get('model_version')}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m transformer.multimodel.feedback",
        description="Send feedback (one JSON object per line) to the transformer in batches.",
    )
    p.add_argument(
        "file", type=Path, help="JSON lines of {prediction_id | user_id + model_version, reward}"
    )
    p.add_argument("--url", default="http://127.0.0.1:8080", help="the transformer's HTTP URL")
    p.add_argument("--model-name", default="click-model")
    p.add_argument("--token-file", type=Path, help="file holding a bearer token (scope write)")
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--skip-unknown", action="store_true", help="drop unknown ids and go on")
    a = p.parse_args(argv)
    lines = [ln for ln in a.file.read_text().splitlines() if ln.strip()]
    items = [json.loads(ln) for ln in lines]
    token = a.token_file.read_text().strip() if a.token_file else None
    try:
        total = send_feedback(
            a.url,
            items,
            model_name=a.model_name,
            token=token,
            batch=a.batch,
            skip_unknown=a.skip_unknown,
        )
    except RuntimeError as e:
        print(e, file=sys.stderr)
        return 1
    print(json.dumps(total))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
