"""The predictor paused or killed under load: 504 at the predictor timeout / 503 at once,
JSON, and immediate recovery (keeps today's behaviour under test)."""

from __future__ import annotations

import random
import signal
import time

import pytest

from devtools import stack
from tests.faults.load import Load
from tests.integration.helpers import v2_body
from tests.servers import serving

pytestmark = pytest.mark.faults

URL = "/v2/models/click-model/infer"
TIMEOUT_S = 0.5


def body(rng: random.Random) -> dict:
    return v2_body(rng.sample(range(1, 301), rng.randint(1, 4)))


def test_predictor_sigstop_then_sigkill_under_load(aof_features, model_dir, tmp_path, redis_up):
    args = ("--predictor_timeout_s", str(TIMEOUT_S))
    with serving(aof_features, model_dir, tmp_path, *args) as (tr, pred, ports):
        with Load(tr.url, URL, body) as load:
            time.sleep(2.0)
            t_stop = time.monotonic()
            pred.proc.send_signal(signal.SIGSTOP)
            time.sleep(3.0)
            t_cont = time.monotonic()
            pred.proc.send_signal(signal.SIGCONT)
            time.sleep(2.0)
            t_kill = time.monotonic()
            pred.proc.send_signal(signal.SIGKILL)
            pred.proc.wait()
            time.sleep(2.0)
            t_restart = time.monotonic()
            (tmp_path / "again").mkdir()
            pred2 = stack.start_predictor(model_dir, ports, tmp_path / "again")
            try:
                stack.wait_ready(pred2)
                t_ready = time.monotonic()
                time.sleep(2.0)
            finally:
                load.stop()
                stack.stop(pred2)
        o = load.outcomes
        assert all(x.status != 0 for x in o), [x.error for x in o if x.status == 0][:3]
        paused = [x for x in o if t_stop <= x.start < t_cont - TIMEOUT_S]
        assert paused and {x.status for x in paused} == {504}
        assert all(x.json_error and x.latency <= TIMEOUT_S + 0.3 for x in paused)
        resumed = [x for x in o if t_cont + 0.1 <= x.start and x.end < t_kill]
        late = [(x.status, round(x.start - t_cont, 3), x.error) for x in resumed if x.status != 200]
        assert resumed and not late, late[:5]
        dead = [x for x in o if t_kill + 0.1 <= x.start < t_restart]
        assert dead and {x.status for x in dead} == {503}
        assert all(x.json_error and x.latency <= 0.5 for x in dead)
        back = [x for x in o if x.start >= t_ready + 0.1]
        assert back and all(x.status == 200 for x in back), {x.status for x in back}
        assert tr.proc.poll() is None
        print(
            f"predictor: paused -> 504 in <= {max(x.latency for x in paused):.3f}s, "
            f"killed -> 503 in <= {max(x.latency for x in dead):.3f}s"
        )
