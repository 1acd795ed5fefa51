"""A batch run killed half-way through its writes is never served as complete.

Real parts: a redis-server of its own (the test pauses its writes), the feature repo applied
and materialized into it, the batch job as a subprocess (embedded Ray), a predictor and a
transformer in precomputed mode over HTTP.

1. run A completes: every covered user is served ``precomputed`` from generation A;
2. run B is SIGKILLed (its whole process group, Ray included) while writing: Redis holds
   rows of A and rows of B side by side, the commit row still names A. The running
   transformer serves A's rows as precomputed and computes B's users online (``model``),
   never B's half-written scores as precomputed;
3. run C completes: after one refresh every covered user is ``precomputed`` from C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import httpx
import pytest
import redis as redis_py

from devtools import stack
from predictor.protocol.generation import COMMIT_ENTITY, ROW_PREFIX, committed_generation
from tests.integration.helpers import outputs, v2_body
from tests.servers import batch_job, features_on, serving

pytestmark = pytest.mark.integration

URL = "/v2/models/click-model/infer"
USERS = list(range(1, 601))
CHUNK = 10  # rows per online-store write: 60 writes, so the kill lands between two


@pytest.fixture(scope="module")
def own_redis():
    with stack.redis_server() as r:
        yield r


@pytest.fixture(scope="module")
def fenv(tmp_path_factory, own_redis):
    return features_on(tmp_path_factory, own_redis)


def batch_cmd(fenv, model_dir) -> dict:
    return batch_job(fenv, model_dir, USERS, "--write-chunk", str(CHUNK))


def run_batch(fenv, model_dir) -> str:
    proc = subprocess.run(
        **batch_cmd(fenv, model_dir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert summary.startswith("batch summary: generation=")
    assert f"users={len(USERS)} scored={len(USERS)} written={len(USERS)} failed=0" in summary
    return summary.split("generation=")[1].split()[0]


def stored(fenv) -> tuple[dict[int, str], str | None]:
    """request_key per covered user, and the committed generation, through Feast's SDK."""
    from feast import FeatureStore

    with pytest.MonkeyPatch.context() as mp:
        for k, val in fenv.env.items():
            mp.setenv(k, val)
        store = FeatureStore(
            repo_path=str(fenv.repo), fs_yaml_file=fenv.repo / "feature_store.redis.yaml"
        )
        got = store.get_online_features(
            features=["model_predictions:request_key"],
            entity_rows=[{"user_id": u} for u in [*USERS, COMMIT_ENTITY]],
        ).to_dict()["request_key"]
    return dict(zip(USERS, got[:-1], strict=True)), committed_generation(got[-1])


def kill_mid_write(fenv, model_dir, r: stack.Redis) -> None:
    """Start a run, pause Redis writes once it has written its first chunk, SIGKILL it."""
    job = batch_cmd(fenv, model_dir)
    proc = subprocess.Popen(
        job["args"],
        cwd=job["cwd"],
        env={**job["env"], "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the driver and the Ray processes it started: one group
    )
    client = redis_py.Redis(port=r.port)
    lines = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if f"written {CHUNK}/{len(USERS)} predictions" in line:
                client.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
                break
        else:
            pytest.fail("the batch ended before writing:\n" + "".join(lines[-30:]))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        client.execute_command("CLIENT", "UNPAUSE")
        client.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


def wait_committed(tr_url: str, users: list[int], source: str, timeout_s: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        out = outputs(httpx.post(tr_url + URL, json=v2_body(users), timeout=30))
        if set(out["prediction_source"]) == {source} or time.monotonic() > deadline:
            return out
        time.sleep(0.5)


@pytest.mark.timeout(900)  # three Ray runs, a model server and a transformer on a shared machine
def test_a_killed_run_is_never_served_as_precomputed(fenv, own_redis, model_dir, tmp_path):
    gen_a = run_batch(fenv, model_dir)
    keys, committed = stored(fenv)
    assert committed == gen_a
    assert set(keys.values()) == {ROW_PREFIX + gen_a}

    args = ("--mode", "precomputed", "--batch_generation_refresh_s", "0.5")
    with serving(fenv, model_dir, tmp_path, *args) as (tr, _, _):
        out = outputs(httpx.post(tr.url + URL, json=v2_body(USERS), timeout=30))
        assert set(out["prediction_source"]) == {"precomputed"}
        before = dict(zip(USERS, out["score"], strict=True))

        kill_mid_write(fenv, model_dir, own_redis)
        keys, committed = stored(fenv)
        assert committed == gen_a, "the killed run must not have committed"
        of_a = [u for u, k in keys.items() if k == ROW_PREFIX + gen_a]
        of_b = [u for u, k in keys.items() if k != ROW_PREFIX + gen_a]
        # really half-written: rows of the dead run next to rows of the committed one
        assert of_a, "the kill came too late: every row was rewritten"
        assert of_b, "the kill came too early: nothing of the second run was written"
        assert all(keys[u].startswith(ROW_PREFIX) for u in of_b)

        time.sleep(1.5)  # several refreshes of the committed generation
        out = outputs(httpx.post(tr.url + URL, json=v2_body(USERS), timeout=30))
        source = dict(zip(USERS, out["prediction_source"], strict=True))
        score = dict(zip(USERS, out["score"], strict=True))
        assert {source[u] for u in of_a} == {"precomputed"}
        assert {source[u] for u in of_b} == {"model"}, "half-written rows served as precomputed"
        assert [score[u] for u in of_a] == [before[u] for u in of_a]

        gen_c = run_batch(fenv, model_dir)
        assert gen_c > gen_a
        out = wait_committed(tr.url, USERS, "precomputed")
        assert set(out["prediction_source"]) == {"precomputed"}
        keys, committed = stored(fenv)
        assert committed == gen_c
        assert set(keys.values()) == {ROW_PREFIX + gen_c}
