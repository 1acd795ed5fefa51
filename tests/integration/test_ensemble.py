"""Ensemble on the real stack: redis-server, Feast, two real predictor processes (scikit-learn
over v2 REST, XGBoost over v2 gRPC) and the transformer combining them."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from devtools import stack
from tests.integration.helpers import outputs, v2_body
from transformer.multimodel.ensemble import ensemble_version
from transformer.rules import Ensemble

pytestmark = pytest.mark.integration

URL = "/v2/models/click-model/infer"
WEIGHTS = {"sklearn": 1.0, "xgboost": 3.0}
TIMEOUT_S = 1.0  # --predictor_timeout_s of the ensemble's transformers


@pytest.fixture(scope="session")
def xgboost_dir(sqlite_features, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("models") / "xgboost"
    stack.ensure_model(sqlite_features.repo, out, "xgboost")
    return out


def ensemble_config(sk: stack.Ports, xgb: stack.Ports) -> dict:
    return {
        "combine": "weighted_mean",
        "members": [
            {
                "name": "sklearn",
                "host": f"127.0.0.1:{sk.predictor_http}",
                "protocol": "v2",
                "weight": WEIGHTS["sklearn"],
            },
            {
                "name": "xgboost",
                "host": f"127.0.0.1:{xgb.predictor_grpc}",
                "protocol": "grpc-v2",
                "weight": WEIGHTS["xgboost"],
            },
        ],
    }


class Members:
    """Two predictor processes and the rules file of an ensemble over them."""

    def __init__(self, sk_dir: Path, xgb_dir: Path, logs: Path):
        self.logs = logs
        self.sk_ports, self.xgb_ports = stack.Ports.free(), stack.Ports.free()
        self.sk = stack.start_predictor(sk_dir, self.sk_ports, logs)
        self.xgb = stack.start_predictor(xgb_dir, self.xgb_ports, logs / "xgb")
        self.config = ensemble_config(self.sk_ports, self.xgb_ports)
        self.rules = logs / "rules.yaml"
        self.rules.write_text(yaml.safe_dump({"ensemble": self.config}))

    def wait(self) -> None:
        stack.wait_ready(self.sk)
        stack.wait_ready(self.xgb)

    def replace_xgb(self, model_dir: Path) -> None:
        """The xgboost member rolls out another model on the same address."""
        stack.stop(self.xgb)
        self.xgb = stack.start_predictor(model_dir, self.xgb_ports, self.logs / "xgb2")
        stack.wait_ready(self.xgb)

    def start_transformer(self, fenv, *extra: str) -> stack.Server:
        ports = stack.Ports(
            self.sk_ports.predictor_http,
            self.sk_ports.predictor_grpc,
            stack.free_port(),
            stack.free_port(),
        )
        tr = stack.start_transformer(
            fenv,
            ports,
            "v2",
            self.logs,
            ["--rules_file", str(self.rules), "--predictor_timeout_s", str(TIMEOUT_S), *extra],
        )
        stack.wait_ready(tr)
        return tr

    def stop(self) -> None:
        for p in (self.sk, self.xgb):  # a test may have stopped (SIGSTOP) one
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.proc.pid, signal.SIGCONT)
        stack.stop(self.sk, self.xgb)


@contextlib.contextmanager
def members(model_dir, xgboost_dir, logs: Path) -> Iterator[Members]:
    (logs / "xgb").mkdir()
    (logs / "xgb2").mkdir()
    m = Members(model_dir, xgboost_dir, logs)
    try:
        m.wait()
        yield m
    finally:
        m.stop()


def metadata(url: str) -> dict:
    r = httpx.get(f"{url}/v2/models/click-model", timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def direct(url: str, feature_values: dict[str, list], specs: list[dict]) -> dict[str, list]:
    """Call one predictor directly with the features the transformer read."""
    n = len(next(iter(feature_values.values())))
    body = {
        "inputs": [
            {
                "name": s["name"],
                "datatype": s["datatype"],
                "shape": [n],
                "data": (
                    [int(v) for v in feature_values[s["name"]]]
                    if s["datatype"].startswith("INT")
                    else feature_values[s["name"]]
                ),
            }
            for s in specs
        ]
    }
    return outputs(httpx.post(f"{url}/v2/models/click-model/infer", json=body, timeout=5))


def ask(url: str, ids: list[int], **params) -> httpx.Response:
    n = len(ids)
    return httpx.post(url + URL, json=v2_body(ids, [35.0] * n, [20] * n, **params), timeout=10)


def test_ensemble_score_is_the_weighted_mean_of_the_members_and_a_lost_member_fails_fast(
    redis_features, model_dir, xgboost_dir, tmp_path
):
    with members(model_dir, xgboost_dir, tmp_path) as m:
        tr = m.start_transformer(redis_features)
        try:
            sk_meta, xgb_meta = metadata(m.sk.url), metadata(m.xgb.url)
            sk_version, xgb_version = sk_meta["versions"][0], xgb_meta["versions"][0]
            assert sk_version.startswith("sklearn-") and xgb_version.startswith("xgboost-")
            expected_version = ensemble_version(
                Ensemble.model_validate(m.config), [sk_version, xgb_version]
            )
            # the transformer advertises the ensemble's version
            assert metadata(tr.url)["versions"] == [expected_version]

            ids = [1, 2, 3, 4, 5, 6, 7, 8]
            out = outputs(ask(tr.url, ids, return_members=True, return_features=True))
            assert out["model_version"] == [expected_version] * len(ids)
            assert out["prediction_source"] == ["model"] * len(ids)
            features = {s["name"]: out[s["name"]] for s in sk_meta["inputs"]}
            sk = direct(m.sk.url, features, sk_meta["inputs"])["probability"]
            xgb = direct(m.xgb.url, features, xgb_meta["inputs"])["probability"]
            assert out["member_score__sklearn"] == pytest.approx(sk, abs=1e-12)
            assert out["member_score__xgboost"] == pytest.approx(xgb, abs=1e-6)  # FP32 model
            assert out["member_version__sklearn"] == [sk_version] * len(ids)
            assert out["member_version__xgboost"] == [xgb_version] * len(ids)
            total = sum(WEIGHTS.values())
            want = [
                (WEIGHTS["sklearn"] * a + WEIGHTS["xgboost"] * b) / total
                for a, b in zip(sk, xgb, strict=True)
            ]
            assert out["score"] == pytest.approx(want, abs=1e-6)
            assert sk != pytest.approx(xgb, abs=1e-3)  # two different models, really combined

            # a member that hangs: 504 naming it, within the predictor timeout
            os.kill(m.xgb.proc.pid, signal.SIGSTOP)
            t0 = time.monotonic()
            r = ask(tr.url, [1])
            elapsed = time.monotonic() - t0
            os.kill(m.xgb.proc.pid, signal.SIGCONT)
            assert r.status_code == 504, r.text
            assert "ensemble member 'xgboost'" in r.json()["error"]
            assert elapsed < TIMEOUT_S + 1.0, elapsed
            assert outputs(ask(tr.url, [1]))["model_version"] == [expected_version]  # recovers

            # a member that is gone: 503 JSON naming it, at once
            m.xgb.proc.kill()
            m.xgb.proc.wait()
            t0 = time.monotonic()
            r = ask(tr.url, [1, 2])
            elapsed = time.monotonic() - t0
            assert r.status_code == 503, r.text
            assert r.headers["content-type"].startswith("application/json")
            assert "ensemble member 'xgboost'" in r.json()["error"]
            assert elapsed < TIMEOUT_S + 1.0, elapsed
        finally:
            stack.stop(tr)


def until(url: str, ids: list[int], source: str, timeout_s: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        out = outputs(ask(url, ids))
        if out["prediction_source"] == [source] * len(ids) or time.monotonic() > deadline:
            return out
        time.sleep(0.05)


def test_cached_mode_serves_the_ensemble_and_a_member_change_is_a_new_version(
    redis_features, model_dir, xgboost_dir, tmp_path
):
    a, d, probe = [1201], [1202], [1203]
    with members(model_dir, xgboost_dir, tmp_path) as m:
        tr = m.start_transformer(redis_features, "--mode", "cached")
        try:
            first = outputs(ask(tr.url, a))
            v1 = first["model_version"][0]
            assert first["prediction_source"] == ["model"] and v1.startswith("ensemble-")
            hit = until(tr.url, a, "cache")  # written back, then served from the cache
            assert hit["prediction_source"] == ["cache"]
            assert hit["model_version"] == [v1] and hit["score"] == first["score"]

            # the xgboost member rolls out another model (here: the sklearn one)
            m.replace_xgb(model_dir)
            deadline = time.monotonic() + 15
            while (r := ask(tr.url, probe, cache=False)).status_code != 200:
                assert time.monotonic() < deadline, r.text  # the gRPC channel reconnects
                time.sleep(0.2)
            v2 = outputs(r)["model_version"][0]
            assert v2.startswith("ensemble-") and v2 != v1
            # both ensemble versions answered within cache_max_age_s: both are live (the rule
            # for one model's rollout), so the old row may still be served by this replica
            assert outputs(ask(tr.url, a))["model_version"] == [v1]
            # d is cached under the new version
            assert outputs(ask(tr.url, d))["model_version"] == [v2]
            assert until(tr.url, d, "cache")["model_version"] == [v2]
        finally:
            stack.stop(tr)
        # a replica (or a restart) that has only seen the new ensemble never serves the old
        tr = m.start_transformer(redis_features, "--mode", "cached")
        try:
            assert outputs(ask(tr.url, probe, cache=False))["model_version"] == [v2]
            kept = outputs(ask(tr.url, d))  # control: a live version's row is served
            assert kept["prediction_source"] == ["cache"] and kept["model_version"] == [v2]
            old = outputs(ask(tr.url, a))  # the v1 row is still in Redis, but v1 is not live
            assert old["prediction_source"] == ["model"] and old["model_version"] == [v2]
            assert old["score"] != hit["score"]
            assert until(tr.url, a, "cache")["model_version"] == [v2]
        finally:
            stack.stop(tr)


def test_the_stream_worker_scores_with_the_same_ensemble(
    redis, redis_features, model_dir, xgboost_dir, tmp_path
):
    """The stream worker reads the same rules file: its predictions (which cached mode serves)
    carry the ensemble's score and version, not one member's."""
    from tests.integration.helpers import online_features
    from tests.integration.stream_helpers import client, make_events, run_until_idle, write_jsonl
    from tests.integration.stream_helpers import outputs as stream_outputs
    from transformer.stream.cli import main as stream_cli

    users = [1901, 1902]
    ctx = {"session_duration_s": 35.0, "hour_of_day": 20}
    path = write_jsonl(tmp_path / "events.jsonl", make_events(users, 3, "ens"), ctx)
    url = f"redis://127.0.0.1:{redis.port}"
    streams = ["--stream", "ev-ens", "--output_stream", "out-ens"]
    streams += ["--dead_letter_stream", "dead-ens", "--group", "g-ens"]
    with members(model_dir, xgboost_dir, tmp_path) as m:
        stream_cli(["publish", str(path), "--redis", url, "--stream", "ev-ens"])
        run_until_idle(
            redis_features, None, tmp_path, "w-ens", *streams, "--rules_file", str(m.rules)
        )
        sk_meta, xgb_meta = metadata(m.sk.url), metadata(m.xgb.url)
        got = online_features(redis_features, users, [35.0] * 2, [20] * 2)
        features = {s["name"]: got[s["name"]] for s in sk_meta["inputs"]}
        sk = direct(m.sk.url, features, sk_meta["inputs"])["probability"]
        xgb = direct(m.xgb.url, features, xgb_meta["inputs"])["probability"]
    version = ensemble_version(
        Ensemble.model_validate(m.config), [sk_meta["versions"][0], xgb_meta["versions"][0]]
    )
    out = {int(o["user_id"]): o for o in stream_outputs(client(redis), "out-ens")}
    assert {o["model_version"] for o in out.values()} == {version}
    total = sum(WEIGHTS.values())
    for i, u in enumerate(users):
        want = (WEIGHTS["sklearn"] * sk[i] + WEIGHTS["xgboost"] * xgb[i]) / total
        assert float(out[u]["score"]) == pytest.approx(want, abs=1e-6)
