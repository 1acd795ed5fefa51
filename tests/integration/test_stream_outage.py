"""A dependency fails while the stream worker holds an unacknowledged batch: the online store
(redis-server SIGSTOPped past the worker's read timeout, or SIGKILLed and restarted from its
append-only file) or the remote predictor (SIGKILLed and restarted). The worker does not exit,
fails the batch (``stream_batch_errors_total``), retries it once the dependency is back, and
in the end every event is reflected exactly once, no event id is in two outputs and nothing
stays pending.

How "mid-batch" is caught: the worker is SIGSTOPped the moment it holds pending entries (read,
not acknowledged), the dependency is broken, and the worker resumes into the outage."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from devtools import stack
from devtools.bench_stream import wait_ready
from tests.integration.helpers import online_features
from tests.integration.stream_helpers import (
    assert_exactly_once,
    client,
    make_events,
    start_worker,
)
from tests.servers import features_on
from transformer.stream.events import to_json

pytestmark = pytest.mark.integration

N_USERS, PER_USER = 30, 40  # 1200 events, 24 batches of 50
CTX = {"session_duration_s": 35.0, "hour_of_day": 20}
# Redis SIGSTOPped longer than the worker's read timeout (block_ms / 1000 + 10 s). redis-py
# retries a timed-out command (reconnect, send again; 3 retries), so the batch in flight is
# held until Redis answers again rather than failed: the evidence is a batch that took longer
# than the histogram's last bucket (5 s), and the replayed commands must change nothing.
STOPPED_S = 13.0


@dataclass
class Deps:
    redis: stack.Redis
    fenv: stack.FeatureEnv
    ports: stack.Ports
    model_dir: Path
    logs: Path
    predictor: stack.Server

    def restart_predictor(self) -> None:
        self.predictor = stack.start_predictor(self.model_dir, self.ports, self.logs)
        stack.wait_ready(self.predictor)


@pytest.fixture(scope="module")
def deps(tmp_path_factory, model_dir) -> Iterator[Deps]:
    """Its own redis-server with an fsynced append-only file (a restart keeps every write
    that was acknowledged), the feature repo materialized into it, a v2 predictor."""
    logs = tmp_path_factory.mktemp("outage")
    with stack.redis_server(appendfsync="always") as r:
        fenv = features_on(tmp_path_factory, r)
        ports = stack.Ports.free()
        pred = stack.start_predictor(model_dir, ports, logs)
        d = Deps(r, fenv, ports, model_dir, logs, pred)
        try:
            stack.wait_ready(pred)
            yield d
        finally:
            if d.predictor.proc.poll() is None:
                os.kill(d.predictor.proc.pid, signal.SIGCONT)
            stack.stop(d.predictor)


def _metric(w: stack.Server, name: str) -> float:
    text = httpx.get(w.url + "/metrics", timeout=5).text
    return sum(float(ln.split()[-1]) for ln in text.splitlines() if ln.split(" ")[0] == name)


def _pending_of(rc, stream: str, group: str, consumer: str) -> int:
    return sum(
        c["pending"] for c in rc.xinfo_consumers(stream, group) if c["name"] == consumer.encode()
    )


def _wait_drained(rc, stream: str, group: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        (g,) = [g for g in rc.xinfo_groups(stream) if g["name"] == group.encode()]
        if g["lag"] == 0 and g["pending"] == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"{stream}/{group} not drained: {rc.xinfo_groups(stream)}")


def _break_redis_stop(d: Deps) -> None:
    d.redis.proc.send_signal(signal.SIGSTOP)


def _heal_redis_stop(d: Deps) -> None:
    d.redis.proc.send_signal(signal.SIGCONT)


def _break_redis_kill(d: Deps) -> None:
    d.redis.proc.kill()
    d.redis.proc.wait(timeout=10)


def _heal_redis_kill(d: Deps) -> None:
    d.redis.restart()


def _break_predictor(d: Deps) -> None:
    d.predictor.proc.kill()
    d.predictor.proc.wait(timeout=10)


def _heal_predictor(d: Deps) -> None:
    d.restart_predictor()


def _failed_batches(w: stack.Server) -> float:
    return _metric(w, "stream_batch_errors_total")


def _held_batches(w: stack.Server) -> float:
    """Batches that took more than 5 s (the last bucket of stream_batch_seconds)."""
    return _metric(w, "stream_batch_seconds_count") - _metric(
        w, 'stream_batch_seconds_bucket{le="5.0"}'
    )


def _failed_or_held(w: stack.Server) -> float:
    """Batches that failed, or that the outage held for more than a second (redis-py may
    reconnect to the restarted server inside its retries instead of failing the batch)."""
    held = _metric(w, "stream_batch_seconds_count") - _metric(
        w, 'stream_batch_seconds_bucket{le="1.0"}'
    )
    return _failed_batches(w) + held


CASES = {
    # (break, heal, seconds the outage lasts after the worker resumed into it, the evidence
    # that the outage hit a batch)
    "redis-sigstop": (_break_redis_stop, _heal_redis_stop, STOPPED_S, _held_batches),
    "redis-sigkill-restart": (_break_redis_kill, _heal_redis_kill, 3.0, _failed_or_held),
    "predictor-sigkill-restart": (_break_predictor, _heal_predictor, 3.0, _failed_batches),
}


# setup (a materialized feature repo, a predictor) alone takes minutes on a loaded machine
@pytest.mark.timeout(900)
@pytest.mark.parametrize("case", sorted(CASES))
def test_an_outage_mid_batch_loses_and_doubles_nothing(deps: Deps, case: str) -> None:
    brk, heal, outage_s, hit = CASES[case]
    k = sorted(CASES).index(case)
    stream, group, out, consumer = f"os{k}", f"og{k}", f"oo{k}", f"ow{k}"
    users = list(range(1101 + 100 * k, 1101 + 100 * k + N_USERS))
    events = make_events(users, PER_USER, f"o{k}")
    rc = client(deps.redis)
    before = online_features(deps.fenv, users, [35.0] * N_USERS, [20] * N_USERS)
    host = f"127.0.0.1:{deps.ports.predictor_http}"
    w = start_worker(
        deps.fenv,
        None,  # scores through the predictor (v2 REST)
        deps.logs,
        consumer,
        *("--stream", stream, "--group", group, "--output_stream", out),
        *("--dead_letter_stream", f"od{k}", "--batch_size", "50", "--block_ms", "100"),
        *("--predictor_host", host, "--predictor_timeout_s", "2"),
    )
    try:
        wait_ready(w)
        # the backlog arrives once the worker is up (on a quiet machine a worker that found it
        # at start drained it before the first SIGSTOP below)
        pipe = rc.pipeline(transaction=False)
        for e in events:
            pipe.xadd(stream, {"event": orjson.dumps(to_json(e, CTX))})
        pipe.execute()
        # stop the worker the moment it holds a batch it has not acknowledged
        caught = 0
        deadline = time.monotonic() + 60
        while not caught and time.monotonic() < deadline:
            os.kill(w.proc.pid, signal.SIGSTOP)
            caught = _pending_of(rc, stream, group, consumer)
            if not caught:
                os.kill(w.proc.pid, signal.SIGCONT)
                time.sleep(0.002)
        assert caught, "never caught the worker holding an unacknowledged batch"
        rc.close()
        brk(deps)
        os.kill(w.proc.pid, signal.SIGCONT)
        time.sleep(outage_s)
        assert w.proc.poll() is None, f"the worker exited during the outage:\n{w.log_tail()}"
        assert httpx.get(w.url + "/healthz", timeout=5).status_code == 200
        heal(deps)
        rc = client(deps.redis)
        _wait_drained(rc, stream, group)
        assert hit(w) >= 1, f"the outage hit no batch ({case}, {hit.__name__}):\n{w.log_tail()}"
        assert w.proc.poll() is None, w.log_tail()
    finally:
        for s in (deps.redis.proc, w.proc):
            if s.poll() is None:
                s.send_signal(signal.SIGCONT)
        if deps.redis.proc.poll() is not None:
            deps.redis.restart()
        if deps.predictor.proc.poll() is not None:
            deps.restart_predictor()
        w.proc.send_signal(signal.SIGTERM)
        code = w.proc.wait(timeout=30)
    assert code == 0, w.log_tail()

    # every event reflected exactly once, no event id in two outputs, nothing pending
    assert_exactly_once(deps.fenv, rc, users, before, events, (stream, group, out))
