"""Drift and quality monitoring on the real stack: redis-server, Feast on Redis, predictor,
transformer. Users 1-1000 are served as generated; users 1001-2000 get shifted
click_through_rate and conversion_rate written through the producer endpoint. Outcomes are
drawn from the generator's ground truth (``click_logit``) on the users' true features."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from devtools import stack
from predictor.jobs.datagen import USER_FEATURES, click_logit, shift_features
from predictor.protocol.artifact import read_metadata
from tests.integration.helpers import metric, outputs, v2_body
from tests.servers import N_USERS, copy_repo, serving

pytestmark = pytest.mark.integration

MODEL = "click-model"
SHIFTED = {"click_through_rate": 2.0, "conversion_rate": 3.0}
SHIFTED_INPUTS = {f"user_data__{n}" for n in SHIFTED}  # no on-demand feature derives from them
THRESHOLD = 0.2  # the alert threshold (PSI), monitoring/rules.yaml and monitoring_psi_threshold
WINDOW = 1000  # drift window, rows
BATCH = 100
ROUNDS = 3  # each user scored and labelled this many times: 3000 (score, outcome) pairs
STREAM = "test:payloads"
AUC_TOLERANCE = 0.06  # live vs hold-out AUC: ~2400 hold-out and 3000 live pairs, ~2 SE each


@dataclass
class Monitored:
    url: str
    snapshots: pd.DataFrame  # latest true (unshifted) snapshot per user
    holdout_auc: float
    model_dir: Path
    redis: str  # host:port; the payload stream is there too
    predictor_url: str
    log_path: Path | None  # the transformer's log (JSON lines)


@pytest.fixture(scope="module")
def monitored(model_dir, tmp_path_factory) -> Iterator[Monitored]:
    """A stack of its own (its own redis-server: the shift writes to the online store)."""
    with stack.redis_server() as redis:
        fenv = stack.FeatureEnv(
            copy_repo(tmp_path_factory.mktemp("fs") / "feature_repo"), redis.connection_string
        )
        stack.prepare_features(fenv, n_users=N_USERS, force=True)
        snaps = pd.read_parquet(fenv.repo / "data" / "user_data.parquet")
        latest = snaps.sort_values("event_timestamp").groupby("user_id").tail(1)
        latest = latest.set_index("user_id").sort_index()
        args = [
            "--monitoring_baseline", str(model_dir / "baseline.json"),
            "--monitoring_window", "rows",
            "--monitoring_window_size", str(WINDOW),
            "--monitoring_buckets", "10",
            "--monitoring_compute_interval_ms", "0",
            "--monitoring_quality_window", str(ROUNDS * WINDOW),
            "--max_batch_size", "500",
            "--payload_log_rate", "1",
            "--payload_log_redis", redis.connection_string,
            "--payload_log_stream", STREAM,
            "--payload_log_salt", "test-salt",
            "--log_format", "json",
        ]  # fmt: skip

        with serving(fenv, model_dir, tmp_path_factory.mktemp("logs"), *args) as (tr, pred, _):
            auc = read_metadata(model_dir).metrics["auc"]
            yield Monitored(
                tr.url, latest, auc, model_dir, redis.connection_string, pred.url, tr.log_path
            )


def serve_and_label(m: Monitored, users: np.ndarray, seed: int) -> None:
    """Score ``users`` with request fields drawn like the generator's, then send outcomes
    drawn from the ground truth on their true features."""
    rng = np.random.default_rng(seed)
    duration = rng.lognormal(3.3, 0.8, len(users))
    hour = rng.integers(0, 24, len(users))
    for start in range(0, len(users), BATCH):
        sl = slice(start, start + BATCH)
        body = v2_body(users[sl].tolist(), duration[sl].tolist(), hour[sl].tolist(), cache=False)
        out = outputs(httpx.post(f"{m.url}/v2/models/{MODEL}/infer", json=body, timeout=30))
        assert set(out["prediction_source"]) == {"model"}
    truth = m.snapshots.loc[users]
    logit = click_logit(
        truth["click_through_rate"].to_numpy(float),
        truth["sessions_last_7d"].to_numpy(float),
        truth["average_page_duration"].to_numpy(float),
        duration,
        hour.astype(float),
    )
    clicked = rng.random(len(users)) < 1 / (1 + np.exp(-logit))
    labels = [{"user_id": int(u), "outcome": int(c)} for u, c in zip(users, clicked, strict=True)]
    r = httpx.post(f"{m.url}/v2/models/{MODEL}/labels", json={"labels": labels}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json() == {"received": len(users), "joined": len(users), "unmatched": 0}


def view(m: Monitored) -> dict:
    r = httpx.get(f"{m.url}/v2/models/{MODEL}/monitoring", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def psi_by_feature(v: dict) -> dict[str, float]:
    return {f["name"]: f["psi"] for f in v["features"]}


def test_drift_and_quality_follow_the_shift(monitored):
    m = monitored
    unshifted = np.arange(1, 1001)
    shifted = np.arange(1001, 2001)

    # 1. the world as trained: every PSI below the threshold, live AUC ~ hold-out AUC
    for r in range(ROUNDS):
        serve_and_label(m, unshifted, seed=r)
    before = view(m)
    psi = psi_by_feature(before)
    assert list(psi) == read_metadata(m.model_dir).feature_names  # every input, model order
    assert all(p is not None and p < THRESHOLD for p in psi.values()), psi
    assert before["score"]["psi"] < THRESHOLD
    assert not any(f["drifted"] for f in before["features"])
    assert before["score"]["rows"] >= WINDOW * 0.9
    print("before", psi, before["score"]["psi"], before["quality"])
    auc_before = before["quality"]["auc"]
    assert before["quality"]["labels"] == ROUNDS * len(unshifted)
    assert abs(auc_before - m.holdout_auc) < AUC_TOLERANCE, (auc_before, m.holdout_auc)

    # 2. a broken feature pipeline: two features of users 1001-2000 move
    truth = m.snapshots.loc[shifted].reset_index()
    moved = shift_features(truth, SHIFTED, seed=1)
    rows = moved[["user_id", *USER_FEATURES]]
    r = httpx.post(
        f"{m.url}/producer/v1/write", json={"rows": rows.to_dict(orient="records")}, timeout=60
    )
    assert r.status_code == 200, r.text
    for r_ in range(ROUNDS):
        serve_and_label(m, shifted, seed=10 + r_)
    after = view(m)
    psi = psi_by_feature(after)
    drifted = {n for n, p in psi.items() if p > THRESHOLD}
    assert drifted == SHIFTED_INPUTS, psi  # exactly the shifted features
    assert {f["name"] for f in after["features"] if f["drifted"]} == SHIFTED_INPUTS
    assert after["score"]["psi"] > THRESHOLD  # prediction drift follows (CTR drives the score)
    version = after["model_version"]
    ctr = metric(
        m.url, "transformer_drift_psi", feature="user_data__click_through_rate",
        model_version=version,
    )  # fmt: skip
    assert ctr == pytest.approx(psi["user_data__click_through_rate"], rel=0.05)
    assert metric(m.url, "transformer_drift_psi", feature="user_data__number_of_clicks") < 0.2

    # 3. quality: the model's inputs no longer describe the users; the live AUC drops
    print("after", psi, after["score"]["psi"], after["quality"], m.holdout_auc)
    auc_after = after["quality"]["auc"]
    assert auc_after < auc_before - 0.04, (auc_before, auc_after)  # measured: 0.836 → 0.775
    assert after["quality"]["log_loss"] > 2 * before["quality"]["log_loss"]  # 0.38 → 0.98
    assert metric(m.url, "transformer_quality_auc", model_version=version) == pytest.approx(
        auc_after, abs=1e-6
    )
    holdout = metric(m.url, "transformer_quality_holdout_auc", model_version=version)
    assert holdout == pytest.approx(m.holdout_auc)
    assert auc_after < holdout - 0.05 < auc_before  # the quality alert's condition
    if out := os.environ.get("MONITORING_DRIFT_JSON"):  # docs/monitoring.md's plot
        Path(out).write_text(json.dumps({"before": before, "after": after}))
    assert not math.isnan(metric(m.url, "transformer_quality_log_loss", model_version=version))


def test_bad_label_bodies_get_400_naming_the_problem(monitored):
    url = f"{monitored.url}/v2/models/{MODEL}/labels"
    cases = [
        (b"{", "not valid JSON"),
        (b'{"labels": [{"user_id": 1, "outcome": 7}]}', "'outcome' must be 0 or 1"),
        (b'{"rows": []}', "body must be"),
        (b'{"labels": [{"user_id": 1}]}', "'outcome' must be 0 or 1"),
    ]
    for body, message in cases:
        r = httpx.post(url, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400 and message in r.json()["error"], (body, r.text)
    r = httpx.get(f"{monitored.url}/v2/models/other/monitoring")
    assert r.status_code == 404 and "other" in r.json()["error"]
    counted = metric(
        monitored.url, "transformer_http_requests_total", endpoint="labels", code="4xx"
    )
    assert counted >= len(cases)


def test_payload_log_has_hashed_keys_scores_and_features(monitored):
    import redis

    from transformer.monitoring.payload import hash_key

    body = v2_body([7, 8, 10_000_001], return_features=False, cache=False)
    out = outputs(httpx.post(f"{monitored.url}/v2/models/{MODEL}/infer", json=body))
    host, port = monitored.redis.split(":")
    r = redis.Redis(host=host, port=int(port))
    want = json.dumps([hash_key("test-salt", k) for k in (7, 8, 10_000_001)])
    for _ in range(50):  # written by a background task
        entries = [f for _, f in r.xrevrange(STREAM, count=20) if f[b"keys"].decode() == want]
        if entries:
            break
        time.sleep(0.1)
    assert entries, "request not in the payload stream"
    fields = {k.decode(): v.decode() for k, v in entries[0].items()}
    scores = json.loads(fields["scores"])
    assert scores[:2] == pytest.approx(out["score"][:2]) and scores[2] is None  # unknown user
    feats = json.loads(fields["features"])
    assert list(feats) == read_metadata(monitored.model_dir).feature_names
    assert "10000001" not in fields["keys"] and fields["model_version"] == out["model_version"][0]


def test_request_ids_are_echoed_and_log_lines_are_json(monitored):
    body = v2_body([7])
    for url in (monitored.url, monitored.predictor_url):
        path = "/v2/models/click-model/infer"
        if url == monitored.predictor_url:
            path = "/v2/health/ready"
            r = httpx.get(url + path, headers={"x-request-id": "req-42"})
        else:
            r = httpx.post(url + path, json=body, headers={"x-request-id": "req-42"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "req-42", url
    infer_ok = ("transformer_http_requests_total", {"endpoint": "infer", "code": "2xx"})
    before = metric(monitored.url, infer_ok[0], **infer_ok[1])
    generated = httpx.post(f"{monitored.url}/v2/models/{MODEL}/infer", json=body)
    assert len(generated.headers["x-request-id"]) == 32
    # the fast v2 infer path is counted too (the middleware wraps it)
    assert metric(monitored.url, infer_ok[0], **infer_ok[1]) == before + 1
    assert monitored.log_path is not None
    lines = [ln for ln in monitored.log_path.read_text().splitlines() if ln.startswith("{")]
    parsed = [json.loads(ln) for ln in lines]
    assert parsed and all({"ts", "level", "logger", "message"} <= set(p) for p in parsed)
    assert any(p["message"].startswith("monitoring: model") for p in parsed)


def test_offline_report_of_logged_windows(monitored, tmp_path):
    """The Evidently report over windows of the payload stream the transformer wrote: users as
    generated drift nowhere; the window of shifted users drifts in exactly the shifted inputs
    (and the score)."""
    from transformer.monitoring import report

    m = monitored
    shifted = np.arange(1001, 2001)
    truth = m.snapshots.loc[shifted].reset_index()
    rows = shift_features(truth, SHIFTED, seed=1)[["user_id", *USER_FEATURES]]
    r = httpx.post(
        f"{m.url}/producer/v1/write", json={"rows": rows.to_dict(orient="records")}, timeout=60
    )
    assert r.status_code == 200, r.text  # idempotent: the drift test wrote the same rows
    windows = {}
    for name, users in (("as generated", np.arange(1, 1001)), ("shifted", shifted)):
        since = time.time()
        serve_and_label(m, users, seed=20)
        time.sleep(0.5)  # the payload log writes in the background
        windows[name] = (since, time.time())
    baseline = m.model_dir / "baseline.json"
    summaries = {}
    for name, (since, until) in windows.items():
        out, summary = tmp_path / f"{name}.html", tmp_path / f"{name}.json"
        code = report.main([
            "--redis", m.redis, "--stream", STREAM, "--baseline", str(baseline),
            "--since", str(since), "--until", str(until),
            "--out", str(out), "--summary", str(summary),
        ])  # fmt: skip
        assert code == 0
        summaries[name] = json.loads(summary.read_text())
        html = out.read_text()
        assert "<html" in html.lower() and "user_data__click_through_rate" in html
    calm, moved = summaries["as generated"], summaries["shifted"]
    assert calm["rows"] == moved["rows"] == 1000  # every request logged (rate 1), no overlap
    assert calm["drifted"] == []
    assert set(moved["drifted"]) == SHIFTED_INPUTS | {"score"}, moved["drift"]
    # Evidently's PSI is the live monitor's statistic on the same rows (unit-tested exactly in
    # tests/transformer/monitoring/test_report.py); here: the same order as the drift test's
    for name in SHIFTED_INPUTS:
        assert 0.5 < moved["drift"][name] < 1.5, (name, moved["drift"][name])
    # an empty window is an error that says so, not an empty report
    code = report.main([
        "--redis", m.redis, "--stream", STREAM, "--baseline", str(baseline),
        "--since", "1000", "--until", "2000", "--out", str(tmp_path / "none.html"),
    ])  # fmt: skip
    assert code == 1 and not (tmp_path / "none.html").exists()
