"""The bandit on the real stack: redis-server (Feast features and the bandit's statistics), two
real predictors (scikit-learn and XGBoost: two model versions, the arms), transformers with
``--bandit_file``, and a feedback loop over HTTP.

The feedback comes from a synthetic world in which users click the XGBoost arm's answers 30 %
of the time and the scikit-learn arm's 5 % (what the test checks is the loop: routing,
prediction ids, feedback, shared statistics, share moving; ``make bandit-sim`` measures the
policies on the generator's ground truth offline).
"""

from __future__ import annotations

import random
import signal
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from devtools import stack
from tests.integration.helpers import JSON, outputs, v2_body
from transformer.multimodel.feedback import send_feedback

# training the XGBoost arm takes a minute or more on a loaded machine
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

CLICK_RATE = {"xgboost": 0.30, "sklearn": 0.05}


@pytest.fixture(scope="module")
def xgb_model_dir(sqlite_features, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("models") / "xgboost"
    stack.ensure_model(sqlite_features.repo, out, "xgboost")
    return out


@pytest.fixture(scope="module")
def arms(model_dir, xgb_model_dir, tmp_path_factory):
    """Two predictors; yields {framework: (server, ports)}."""
    logs = tmp_path_factory.mktemp("bandit-logs")
    out: dict[str, tuple[stack.Server, stack.Ports]] = {}
    try:
        for name, d in (("sklearn", model_dir), ("xgboost", xgb_model_dir)):
            ports = stack.Ports.free()
            server = stack.start_predictor(d, ports, logs)
            server.name = f"predictor-{name}"
            out[name] = (server, ports)
        for server, _ in out.values():
            stack.wait_ready(server)
        yield out
    finally:
        stack.stop(*(s for s, _ in out.values()))


def bandit_file(tmp_path: Path, arms, **extra) -> Path:
    lines = ["arms:"]
    for _, ports in arms.values():
        lines.append(f"  - {{host: '127.0.0.1:{ports.predictor_http}'}}")
    lines += [f"key_prefix: 'test-{uuid.uuid4().hex[:8]}'", "refresh_ms: 100"]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    p = tmp_path / "bandit.yaml"
    p.write_text("\n".join(lines) + "\n")
    return p


def framework(version: str) -> str:
    return version.split("-")[0]


def start(redis, redis_features, bandit_path: Path, log_dir: Path, *args: str) -> stack.Server:
    ports = stack.Ports.free()
    tr = stack.start_transformer(
        redis_features,
        ports,
        "v2",
        log_dir,
        ["--bandit_file", str(bandit_path), "--bandit_redis", redis.connection_string, *args],
    )
    stack.wait_ready(tr)
    return tr


def metric(text: str, name: str, arm_prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and f'arm="{arm_prefix}' in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} for {arm_prefix} not in /metrics")


def test_share_moves_to_the_better_arm_and_survives_losing_an_arm(
    redis, redis_features, arms, tmp_path
):
    path = bandit_file(tmp_path, arms, floor=0.05, arm_cooldown_s=0.5, seed=3)
    tr = start(redis, redis_features, path, tmp_path)
    world = random.Random(11)
    picks: list[str] = []
    try:
        with httpx.Client(base_url=tr.url, timeout=10.0) as c:
            for _ in range(30):  # rounds: 20 requests, then their feedback in one batch
                batch = []
                for _ in range(20):
                    user = world.randint(1, 2000)
                    out = outputs(c.post("/v2/models/click-model/infer", json=v2_body([user])))
                    arm = framework(out["model_version"][0])
                    picks.append(arm)
                    (pid,) = out["prediction_id"]
                    assert out["prediction_source"] == ["model"] and pid
                    batch.append(
                        {"prediction_id": pid, "reward": int(world.random() < CLICK_RATE[arm])}
                    )
                total = send_feedback(tr.url, batch)
                assert total["applied"] == 20 and total["duplicates"] == 0
                # the same batch again (a retry): ignored
                assert send_feedback(tr.url, batch)["duplicates"] == 20
            share = Counter(picks[-200:])["xgboost"] / 200
            assert share >= 0.8, Counter(picks)  # floor 0.05: at most 0.95
            # before the first reward both arms are tried (20 requests, then the first feedback;
            # how fast the split moves after that depends on the 250 ms statistics refresh)
            assert Counter(picks[:20])["sklearn"] >= 4, picks[:20]
            m = c.get("/metrics").text
            assert metric(m, "transformer_bandit_traffic_share", "xgboost") > 0.8
            assert metric(m, "transformer_bandit_posterior_mean", "xgboost") > metric(
                m, "transformer_bandit_posterior_mean", "sklearn"
            )
            assert metric(m, "transformer_bandit_requests_total", "xgboost") == picks.count(
                "xgboost"
            )
            assert metric(m, "transformer_bandit_rewards_total", "sklearn") > 0

            # unknown ids: 404 naming them, nothing applied
            r = c.post(
                "/v2/models/click-model/feedback",
                json={"feedback": [{"prediction_id": "feedfacefeedface1", "reward": 1}]},
            )
            assert r.status_code == 404 and r.json()["unknown"] == ["feedfacefeedface1"]
            assert "feedfacefeedface1" in r.json()["error"]
            r = c.post("/v2/models/click-model/feedback", json={"prediction_id": "x", "reward": 3})
            assert r.status_code == 400 and "'reward' must be 0 or 1" in r.json()["error"]

            # lose the better arm: every request still answered, by the other arm
            xgb, _ = arms["xgboost"]
            xgb.proc.send_signal(signal.SIGKILL)
            xgb.proc.wait()
            after = []
            for i in range(200):
                r = c.post("/v2/models/click-model/infer", json=v2_body([1 + i]))
                assert r.status_code == 200, r.text
                after.append(framework(outputs(r)["model_version"][0]))
            assert set(after) == {"sklearn"}
            m = c.get("/metrics").text
            failures = [
                ln
                for ln in m.splitlines()
                if ln.startswith("transformer_bandit_arm_failures_total{") and "xgboost" in ln
            ]
            assert failures and float(failures[0].rsplit(" ", 1)[1]) >= 1
            # feedback for the lost arm's earlier answers is still accepted
            pid = batch[0]["prediction_id"]
            assert (
                c.post(
                    "/v2/models/click-model/feedback", json={"prediction_id": pid, "reward": 1}
                ).json()["duplicates"]
                == 1
            )
    finally:
        stack.stop(tr)


def test_a_cache_hit_keeps_its_arm(
    redis, redis_features, model_dir, xgb_model_dir, tmp_path, tmp_path_factory
):
    """Cached mode: a user's cached prediction is served with the arm that computed it, even
    when the policy now prefers the other arm."""
    logs = tmp_path_factory.mktemp("bandit-cache-logs")
    sk_ports, xgb_ports = stack.Ports.free(), stack.Ports.free()
    sk = stack.start_predictor(model_dir, sk_ports, logs)
    servers = [sk]
    try:
        xgb = stack.start_predictor(xgb_model_dir, xgb_ports, logs)
        servers.append(xgb)
        stack.wait_ready(sk)
        stack.wait_ready(xgb)
        arms2 = {"sklearn": (sk, sk_ports), "xgboost": (xgb, xgb_ports)}
        # epsilon 0: the arm with the best posterior mean, always
        path = bandit_file(tmp_path, arms2, policy="epsilon_greedy", epsilon=0.0)
        tr = start(redis, redis_features, path, logs, "--mode", "cached")
        servers.append(tr)
        with httpx.Client(base_url=tr.url, timeout=10.0) as c:
            first = outputs(c.post("/v2/models/click-model/infer", json=v2_body([77])))
            arm = first["model_version"][0]
            # make the other arm the policy's choice: rewards for it, none for this one
            picks = []
            for u in range(100, 200):
                out = outputs(c.post("/v2/models/click-model/infer", json=v2_body([u])))
                picks.append(out["model_version"][0])
                good = out["model_version"][0] != arm
                fb = {"prediction_id": out["prediction_id"][0], "reward": int(good)}
                assert c.post("/v2/models/click-model/feedback", json=fb).status_code == 200
                if picks[-5:] == [picks[-1]] * 5 and picks[-1] != arm:
                    break
            assert picks[-1] != arm  # the policy switched (this is what the rule must resist)
            again = outputs(c.post("/v2/models/click-model/infer", json=v2_body([77])))
            assert again["prediction_source"] == ["cache"]
            assert again["model_version"] == [arm]
            pid = again["prediction_id"][0]
            assert pid and pid != first["prediction_id"][0]  # a new id, on the same arm
            r = c.post(
                "/v2/models/click-model/feedback",
                json={"user_id": 77, "model_version": arm, "reward": 1},
            )
            assert r.status_code == 200 and r.json()["applied"] == 1
            # the same user under another request context: a miss, the policy's current arm
            moved = outputs(c.post("/v2/models/click-model/infer", json=v2_body([77], hours=[3])))
            assert moved["prediction_source"] == ["model"] and moved["model_version"] != [arm]
    finally:
        stack.stop(*servers)


def test_feedback_needs_the_bandit_and_a_served_model(local_stack):
    with httpx.Client(base_url=local_stack.url, timeout=10.0) as c:
        r = c.post("/v2/models/click-model/feedback", json={"prediction_id": "a", "reward": 1})
        assert r.status_code == 404 and "bandit_file" in r.json()["error"]
        r = c.post("/v2/models/other/feedback", json={"prediction_id": "a", "reward": 1})
        assert r.status_code == 404 and "'other' is not served here" in r.json()["error"]
        r = c.post("/v2/models/click-model/infer", json=v2_body([42]), headers=JSON)
        assert "prediction_id" not in outputs(r)  # only with the bandit on
