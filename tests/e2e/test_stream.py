"""Stream inference through the deployed service: click events published to the Redis Stream
change the user's features and prediction, and the transformer then serves that prediction
from the cache (``prediction_source: cache``).

Against a cluster (E2E_BASE_URL): the stream worker the deployment runs (helm
``streamWorker.enabled``, kustomize ``components/stream-worker``); the suite reaches Redis by
``kubectl port-forward`` to its pod with the password from its Secret (E2E_REDIS_SECRET, which
``scripts/kind/deploy.sh`` writes), and the worker's probes (:8090) by a port-forward to a
Ready worker pod. Against the local stack: a worker process this fixture starts on the stack's
Redis, scoring through the stack's predictor over v2 REST as the cluster's does.

The worker is ready without the predictor (a cold predictor never holds up the rollout): its
``/readyz`` says ``scoring: ready`` or what it waits for, and the events wait in the stream
until it can score; the test shows that status when the decisions do not come."""

from __future__ import annotations

import base64
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import orjson
import pytest
import redis

from devtools.bench_stream import wait_ready
from tests.e2e.calls import body, infer
from tests.e2e.kube import kubectl, kubectl_port_forward

pytestmark = pytest.mark.e2e

USER = 77
CLICKS = 20
CTX = {"session_duration_s": 35.0, "hour_of_day": 20}
# a cold predictor (Knative scale to zero) answers the worker's first batch after a start
DEADLINE_S = 300
# What the cluster fixture assumes of both kind deployments (defaults of its E2E_* variables;
# tests/deploy/test_stream_worker.py checks the rendered helm values and overlays/kind):
# the worker's pod labels and probe port, its streams, the Redis pods and password key.
WORKER_SELECTOR = "feast-kserve.io/component=stream-worker"
WORKER_PORT = 8090
EVENTS, DECISIONS = "events", "predictions"
REDIS_SELECTOR = "app.kubernetes.io/name=redis"
REDIS_PASSWORD_KEY = "redis-password"


@dataclass
class Stream:
    r: redis.Redis
    events: str
    decisions: str
    worker_url: str  # the worker's /metrics, /healthz, /readyz

    def status(self) -> str:
        """The worker's /readyz answer and scoring metrics, for a failure message."""
        try:
            ready = httpx.get(self.worker_url + "/readyz", timeout=10)
            metrics = httpx.get(self.worker_url + "/metrics", timeout=10).text
        except httpx.HTTPError as e:
            return f"worker status unavailable: {e}"
        wanted = ("stream_scoring_ready", "stream_lag", "stream_batch_errors_total")
        lines = [ln for ln in metrics.splitlines() if ln.startswith(wanted)]
        return f"/readyz {ready.status_code} {ready.text}; " + "; ".join(lines)


def _redis_password(namespace: str, secret: str, context: str | None) -> str:
    out = subprocess.run(
        kubectl(
            context,
            "get",
            "secret",
            secret,
            "-n",
            namespace,
            "-o",
            f"jsonpath={{.data.{REDIS_PASSWORD_KEY}}}",
        ),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 0 and out.stdout, f"secret {secret}: {out.stderr}"
    return base64.b64decode(out.stdout).decode()


@pytest.fixture(scope="module")
def stream(target, request, tmp_path_factory) -> Iterator[Stream]:
    if os.environ.get("E2E_BASE_URL"):
        secret = os.environ.get("E2E_REDIS_SECRET")
        if not secret:
            if os.environ.get("E2E_REQUIRE_CLUSTER") == "1":
                pytest.fail(
                    "E2E_REQUIRE_CLUSTER=1 but no E2E_REDIS_SECRET (scripts/kind/deploy.sh)"
                )
            pytest.skip("no E2E_REDIS_SECRET: the stream test needs the Redis of the deployment")
        namespace = os.environ.get("E2E_NAMESPACE", "feast-inference")
        context = os.environ.get("E2E_KUBE_CONTEXT") or None
        password = _redis_password(namespace, secret, context)
        selector = os.environ.get("E2E_REDIS_SELECTOR", REDIS_SELECTOR)
        # a Ready worker pod: Ready needs Redis and the group only, never the predictor
        workers = os.environ.get("E2E_STREAM_WORKER_SELECTOR", WORKER_SELECTOR)
        with (
            kubectl_port_forward(namespace, selector, 6379, context) as local,
            kubectl_port_forward(namespace, workers, WORKER_PORT, context) as worker,
        ):
            host, port = local.rsplit(":", 1)
            r = redis.Redis(host=host, port=int(port), password=password, socket_timeout=30)
            try:
                yield Stream(
                    r,
                    os.environ.get("E2E_STREAM", EVENTS),
                    os.environ.get("E2E_OUTPUT_STREAM", DECISIONS),
                    f"http://{worker}",
                )
            finally:
                r.close()
        return
    # local stack: a worker on the Redis the target's transformer reads, scoring through the
    # target's predictor (v2 REST), as in the cluster
    from tests.integration.stream_helpers import start_worker

    fenv = request.getfixturevalue("redis_features")
    assert target.predictor_host, "the local target has a predictor"
    names = ("--stream", "e2e-events", "--output_stream", "e2e-decisions", "--group", "e2e")
    w = start_worker(
        fenv,
        None,
        tmp_path_factory.mktemp("e2e-stream"),
        "e2e-worker",
        *names,
        *("--predictor_host", target.predictor_host),
    )
    host, port = str(fenv.redis).split(":")
    r = redis.Redis(host=host, port=int(port))
    try:
        wait_ready(w)
        yield Stream(r, "e2e-events", "e2e-decisions", w.url)
    finally:
        r.close()
        w.proc.terminate()
        w.proc.wait(timeout=30)


# the decisions may wait for a predictor cold start (DEADLINE_S); locally the first test of the
# session also starts the stack
@pytest.mark.timeout(900)
def test_published_events_change_the_prediction_served_from_the_cache(http, target, stream):
    ready = httpx.get(stream.worker_url + "/readyz", timeout=10)
    assert ready.status_code == 200 and "scoring" in ready.json(), stream.status()
    ask = body([USER], CTX["session_duration_s"], int(CTX["hour_of_day"]), return_features=True)
    first = infer(http, target, ask)
    last = stream.r.xrevrange(stream.decisions, count=1)
    since = last[0][0] if last else b"0-0"
    run = uuid.uuid4().hex[:12]
    ids = [f"e2e-{run}-{i}" for i in range(CLICKS)]
    now = datetime.now(UTC).isoformat()
    pipe = stream.r.pipeline(transaction=False)
    for i in ids:
        event = {"event_id": i, "user_id": USER, "event_time": now, "type": "click", "context": CTX}
        pipe.xadd(stream.events, {"event": orjson.dumps(event)})
    pipe.execute()

    # the worker's decisions for these events (one or several batches)
    seen: set[str] = set()
    decision: dict[str, str] = {}
    deadline = time.monotonic() + DEADLINE_S
    while seen != set(ids):
        assert time.monotonic() < deadline, (
            f"decisions for {len(seen)}/{CLICKS} events; {stream.status()}"
        )
        for _, entries in stream.r.xread({stream.decisions: since}, block=1000) or []:
            for entry_id, raw in entries:
                since = entry_id
                fields = {k.decode(): v.decode() for k, v in raw.items()}
                mine = set(fields["event_ids"].split(",")) & set(ids)
                if mine:
                    assert fields["user_id"] == str(USER), fields
                    assert not mine & seen, f"event ids decided twice: {mine & seen}"
                    seen |= mine
                    decision = fields

    after = infer(http, target, ask)
    assert after["prediction_source"] == ["cache"], after
    clicks = "user_data__number_of_clicks"
    assert after[clicks][0] == first[clicks][0] + CLICKS
    assert after["score"][0] == pytest.approx(float(decision["score"]), rel=1e-9)
    assert after["model_version"] == [decision["model_version"]]
    assert after["score"] != first["score"], "20 more clicks left the prediction unchanged"
