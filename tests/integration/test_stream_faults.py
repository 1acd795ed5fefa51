"""Two stream workers in one group; one is SIGKILLed in the middle of a batch (it has read
entries and not acknowledged them). Every event is reflected exactly once, nothing stays
pending, no event id is in two outputs; the survivor stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import orjson
import pytest

from devtools.bench_stream import wait_ready
from tests.integration.helpers import online_features
from tests.integration.stream_helpers import (
    assert_exactly_once,
    client,
    make_events,
    start_worker,
    wait_drained,
)
from transformer.stream.events import to_json

pytestmark = pytest.mark.integration

ARGS = [
    "--stream",
    "ev3",
    "--output_stream",
    "out3",
    "--dead_letter_stream",
    "dead3",
    "--group",
    "g3",
    "--batch_size",
    "50",
    "--block_ms",
    "100",
    "--claim_idle_ms",
    "1500",
    "--claim_every_s",
    "0.3",
]


def pending_of(rc, consumer: str) -> int:
    return sum(
        c["pending"] for c in rc.xinfo_consumers("ev3", "g3") if c["name"] == consumer.encode()
    )


def test_sigkill_mid_batch_loses_and_doubles_nothing(redis, redis_features, model_dir, tmp_path):
    users = list(range(1701, 1761))
    events = make_events(users, 50, "t3")  # 3000 events
    rc = client(redis)
    n = len(users)
    before = online_features(redis_features, users, [35.0] * n, [20] * n)
    a = start_worker(redis_features, model_dir, tmp_path, "wa", *ARGS)
    b = start_worker(redis_features, model_dir, tmp_path, "wb", *ARGS)
    try:
        wait_ready(a)
        wait_ready(b)

        def trickle():
            for k in range(0, len(events), 25):
                pipe = rc.pipeline(transaction=False)
                for e in events[k : k + 25]:
                    pipe.xadd("ev3", {"event": orjson.dumps(to_json(e))})
                pipe.execute()
                time.sleep(0.01)

        producer = threading.Thread(target=trickle)
        producer.start()
        caught = 0
        while producer.is_alive() or (caught == 0 and rc.xinfo_groups("ev3")[0]["lag"]):
            os.kill(a.proc.pid, signal.SIGSTOP)
            caught = pending_of(rc, "wa")
            if caught:
                os.kill(a.proc.pid, signal.SIGKILL)
                break
            os.kill(a.proc.pid, signal.SIGCONT)
            time.sleep(0.003)
        producer.join()
        assert caught > 0, "never caught worker a holding an unacknowledged batch"
        a.proc.wait(timeout=10)
        assert a.proc.returncode == -signal.SIGKILL

        wait_drained(rc, "ev3", "g3")
        assert pending_of(rc, "wa") == 0  # its batch was reclaimed by b
        metrics = httpx.get(b.url + "/metrics").text
        claimed = [ln for ln in metrics.splitlines() if ln.startswith("stream_claimed_total")]
        assert float(claimed[0].split()[-1]) >= caught
        assert 'stream_lag{kind="pending"}' in metrics
        assert 'stream_events_total{outcome="applied"}' in metrics
        assert httpx.get(b.url + "/healthz").status_code == 200
    finally:
        b.proc.send_signal(signal.SIGTERM)
        code = b.proc.wait(timeout=30)
        if a.proc.poll() is None:
            a.proc.kill()
    assert code == 0, b.log_tail()
    assert "summary:" in b.log_tail(5)

    # every event reflected exactly once, no event id in two outputs, nothing pending
    assert_exactly_once(redis_features, rc, users, before, events, ("ev3", "g3", "out3"))
