"""The worker's start-up does not depend on the predictor (or on Redis being up first).

In Kubernetes the worker's Deployment must become Ready while the predictor it scores through
is still cold (Knative scale to zero, a first install): otherwise a rollout that waits for the
worker waits for the predictor. So, on real processes: a worker whose predictor is not up yet
is live and ready, says what it waits for (``/healthz`` and ``/readyz`` JSON,
``stream_scoring_ready``), reads nothing (the events stay in the stream: none pending, none
acknowledged), and once the predictor starts it scores every event exactly once. A worker
started before its Redis is live, not ready, and ready once Redis answers. With
``--predictor_wait_s`` it gives up: exit 1, naming what it waited for. A configuration error
is not waited for: exit 1 at once."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import orjson
import pytest

from devtools import stack
from devtools.bench_stream import wait_ready
from tests.integration.helpers import online_features
from tests.integration.stream_helpers import assert_exactly_once, client, make_events, start_worker
from transformer.stream.events import to_json

pytestmark = pytest.mark.integration

CTX = {"session_duration_s": 35.0, "hour_of_day": 20}


def _metric(w: stack.Server, name: str) -> float:
    """The sample ``name`` (a full ``name{labels}`` too) of the worker's /metrics."""
    text = httpx.get(w.url + "/metrics", timeout=5).text
    return sum(float(ln.split()[-1]) for ln in text.splitlines() if ln.split(" ")[0] == name)


def _group(rc, stream: str, group: str) -> dict:
    (g,) = [g for g in rc.xinfo_groups(stream) if g["name"] == group.encode()]
    return g


def _exit(w: stack.Server, timeout_s: float = 240) -> tuple[int, str]:
    """The worker's exit code when it exits by itself, and its log."""
    try:
        code = w.proc.wait(timeout=timeout_s)
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()
    return code, w.log_path.read_text() if w.log_path else ""


def _stop(w: stack.Server) -> int:
    if w.proc.poll() is None:
        w.proc.send_signal(signal.SIGTERM)
    return w.proc.wait(timeout=30)


# a predictor start and a feature repo on a loaded machine take minutes
@pytest.mark.timeout(600)
def test_ready_without_the_predictor_then_scores_everything_once_it_is_up(
    redis, redis_features, model_dir, tmp_path
) -> None:
    stream, group, out = "su-events", "su-group", "su-out"
    users = list(range(1921, 1936))
    events = make_events(users, 8, "su")
    rc = client(redis)
    before = online_features(redis_features, users, [35.0] * len(users), [20] * len(users))
    ports = stack.Ports.free()  # nothing listens on the predictor's port yet
    host = f"127.0.0.1:{ports.predictor_http}"
    w = start_worker(
        redis_features,
        None,  # scores through the predictor (v2 REST)
        tmp_path,
        "su-worker",
        *("--stream", stream, "--group", group, "--output_stream", out),
        *("--dead_letter_stream", "su-dead", "--block_ms", "100", "--batch_size", "40"),
        *("--predictor_host", host, "--retry_max_s", "1"),
    )
    pred = None
    try:
        wait_ready(w, timeout_s=180)
        pipe = rc.pipeline(transaction=False)
        for e in events:
            pipe.xadd(stream, {"event": orjson.dumps(to_json(e, CTX))})
        pipe.execute()
        time.sleep(3)  # a few retries of the metadata
        ready = httpx.get(w.url + "/readyz", timeout=5)
        live = httpx.get(w.url + "/healthz", timeout=5)
        assert ready.status_code == 200 and live.status_code == 200, (ready.text, live.text)
        for answer in (ready.json(), live.json()):
            assert answer["scoring"].startswith("waiting for scoring: "), answer
            assert host in answer["scoring"], answer
        assert _metric(w, "stream_scoring_ready") == 0
        assert _metric(w, "stream_scoring_waits_total") >= 2
        # nothing read, so nothing pending and nothing acknowledged: all still to deliver
        g = _group(rc, stream, group)
        assert (g["lag"], g["pending"]) == (len(events), 0), g
        assert rc.xlen(out) == 0
        # the backlog is visible meanwhile
        assert _metric(w, 'stream_lag{kind="undelivered"}') == len(events)
        log = w.log_path.read_text() if w.log_path else ""
        assert "waiting for scoring" in log and "the events stay in the stream" in log, log

        pred = stack.start_predictor(model_dir, ports, tmp_path)
        stack.wait_ready(pred)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            g = _group(rc, stream, group)
            if g["lag"] == 0 and g["pending"] == 0:
                break
            time.sleep(0.2)
        assert (g["lag"], g["pending"]) == (0, 0), (g, w.log_tail())
        assert _metric(w, "stream_scoring_ready") == 1
        assert httpx.get(w.url + "/readyz", timeout=5).json()["scoring"] == "ready"
        assert w.proc.poll() is None, w.log_tail()
    finally:
        code = _stop(w)
        if pred is not None:
            stack.stop(pred)
    assert code == 0, w.log_tail()
    assert_exactly_once(redis_features, rc, users, before, events, (stream, group, out))


@pytest.mark.timeout(300)
def test_live_but_not_ready_until_redis_answers(redis_features, model_dir, tmp_path) -> None:
    port = stack.free_port()  # the worker's Redis: not started yet
    fenv = stack.FeatureEnv(redis_features.repo, f"127.0.0.1:{port}")
    w = start_worker(fenv, model_dir, tmp_path, "su-redis", "--retry_max_s", "1")
    try:
        deadline = time.monotonic() + 120
        live = None
        while live is None and time.monotonic() < deadline:
            assert w.proc.poll() is None, w.log_tail()
            try:
                live = httpx.get(w.url + "/healthz", timeout=1)
            except httpx.TransportError:
                time.sleep(0.2)
        assert live is not None and live.status_code == 200, w.log_tail()
        time.sleep(2)  # several attempts
        ready = httpx.get(w.url + "/readyz", timeout=5)
        assert ready.status_code == 503, ready.text
        assert ready.json()["scoring"].startswith("waiting for Redis: "), ready.json()
        assert w.proc.poll() is None, w.log_tail()
        with stack.redis_server(port=port):
            wait_ready(w, timeout_s=60)
            deadline = time.monotonic() + 60  # then the model (the registry is a file)
            while _metric(w, "stream_scoring_ready") != 1 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert httpx.get(w.url + "/readyz", timeout=5).json()["scoring"] == "ready"
            code = _stop(w)
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()
    assert code == 0, w.log_tail()


@pytest.mark.timeout(300)
def test_gives_up_after_predictor_wait_s(redis_features, tmp_path: Path) -> None:
    """The bound of a bounded run: the predictor never comes, the worker exits 1 saying so."""
    host = f"127.0.0.1:{stack.free_port()}"
    w = start_worker(
        redis_features,
        None,
        tmp_path,
        "su-give-up",
        *("--stream", "su-give-up", "--predictor_host", host),
        *("--predictor_wait_s", "3", "--retry_max_s", "1"),
    )
    code, log = _exit(w)
    assert code == 1, log
    assert "scoring not there after" in log and host in log, log


@pytest.mark.timeout(300)
def test_a_configuration_error_is_not_waited_for(redis_features, model_dir, tmp_path) -> None:
    """Only what may still come is retried: a view the feature service does not have exits 1
    at once, naming it, instead of waiting for ever."""
    w = start_worker(redis_features, model_dir, tmp_path, "su-config", "--features_view", "nope")
    code, log = _exit(w)
    assert code == 1, log
    assert "features_view 'nope' is not a batch view" in log, log
    assert "waiting for scoring" not in log, log
