"""Degraded mode (rules ``store_unavailable: default``): during a store outage inference
answers 200 with the rules' default, within the store timeout; ``error`` (the default) is
covered by test_redis_faults (503)."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from tests.faults.probes import wait_ping
from tests.integration.helpers import outputs, v2_body
from tests.servers import serving

pytestmark = pytest.mark.faults

URL = "/v2/models/click-model/infer"


@pytest.mark.parametrize("mode", ["online", "cached"])
def test_store_outage_answers_the_default(aof_features, model_dir, tmp_path, redis_up, mode):
    rules = tmp_path / "rules.yaml"
    rules.write_text("store_unavailable: default\ndefault_decision: fallback_offer\n")
    redis = redis_up
    args = ("--mode", mode, "--rules_file", str(rules))
    with serving(aof_features, model_dir, tmp_path, *args) as (tr, _, _):
        with httpx.Client(base_url=tr.url, timeout=5) as c:
            slowest = outage(c, redis)
        print(f"degraded ({mode}): slowest default answer {slowest * 1000:.0f} ms")


def outage(c: httpx.Client, redis) -> float:
    """Kill Redis, check the degraded answers, restart it; the slowest answer."""
    assert outputs(c.post(URL, json=v2_body([5, 6])))["feature_status"] == ["present"] * 2
    redis.proc.send_signal(signal.SIGKILL)
    redis.proc.wait()
    slowest = 0.0
    for i in range(20):
        t0 = time.monotonic()
        out = outputs(c.post(URL, json=v2_body([5, 6, 10 + i])))
        slowest = max(slowest, time.monotonic() - t0)
        assert out["decision"] == ["fallback_offer"] * 3
        assert out["prediction_source"] == ["default"] * 3
        assert out["feature_status"] == ["unavailable"] * 3
    assert slowest <= 0.5, f"a degraded answer took {slowest:.3f}s"
    redis.restart()
    wait_ping(redis)
    time.sleep(0.2)
    out = outputs(c.post(URL, json=v2_body([5, 6])))
    assert out["feature_status"] == ["present"] * 2 and "default" not in out["prediction_source"]
    return slowest
