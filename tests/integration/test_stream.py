"""Stream inference on real parts: redis-server, the Feast repo, the worker as a process,
the transformer in cached mode."""

from __future__ import annotations

import collections

import httpx
import numpy as np
import pandas as pd
import pytest

from predictor.jobs.datagen import replay_activity
from tests.integration.helpers import online_features, outputs, v2_body
from tests.integration.stream_helpers import (
    client,
    make_events,
    run_until_idle,
    write_jsonl,
)
from tests.integration.stream_helpers import (
    outputs as stream_outputs,
)
from tests.servers import serving
from transformer.stream.cli import main as stream_cli
from transformer.stream.fold import FEATURES

pytestmark = pytest.mark.integration

URL = "/v2/models/click-model/infer"
CTX = {"session_duration_s": 35.0, "hour_of_day": 20}


def feast_rows(fenv, users: list[int]) -> pd.DataFrame:
    """The users' user_data rows as Feast's SDK reads them, in the datagen table shape."""
    got = online_features(fenv, users, [35.0] * len(users), [20] * len(users))
    df = pd.DataFrame({"user_id": users})
    for f in FEATURES:
        df[f] = got[f"user_data__{f}"]
    return df


def names(i: int) -> list[str]:
    return [
        "--stream",
        f"ev{i}",
        "--output_stream",
        f"out{i}",
        "--dead_letter_stream",
        f"dead{i}",
        "--group",
        f"g{i}",
    ]


def test_events_to_features_predictions_and_outputs(
    redis, redis_features, model_dir, tmp_path, monkeypatch
):
    users = list(range(1501, 1521))
    rc = client(redis)
    before = online_features(redis_features, users, [35.0] * 20, [20] * 20)
    base_ts = pd.read_parquet(redis_features.repo / "data" / "user_data.parquet")
    base_ts = base_ts[base_ts.user_id.isin(users)]
    events = make_events(users, 6, "t1")
    path = write_jsonl(tmp_path / "events.jsonl", events, CTX)
    stream_cli(
        ["publish", str(path), "--redis", f"redis://127.0.0.1:{redis.port}", "--stream", "ev1"]
    )
    # bad entries: each kind goes to the dead-letter stream, acknowledged, never a crash
    bad = [
        b"{not json",
        b'{"event_id":"b2","user_id":1501,"event_time":"2026-11-29T10:00:00Z","type":"buy"}',
        b'{"event_id":"b3","event_time":"2026-11-29T10:00:00Z","type":"click"}',
        b'{"event_id":"b4","user_id":"x","event_time":"2026-11-29T10:00:00Z","type":"click"}',
    ]
    for b in bad:
        rc.xadd("ev1", {"event": b})
    rc.xadd("ev1", {"something": b"else"})
    log = run_until_idle(redis_features, model_dir, tmp_path, "w1", *names(1), "--batch_size", "37")
    assert "summary: 125 events" in log and "applied 120" in log and "dead_letter 5" in log, log

    # features: what Feast's SDK reads equals the offline fold of the same events
    want = replay_activity(
        base_ts,
        pd.DataFrame(
            {
                "event_id": [e.event_id for e in events],
                "user_id": [e.user_id for e in events],
                "event_time": pd.to_datetime([e.ts_us for e in events], unit="us", utc=True),
                "type": [e.type for e in events],
                "duration_s": [
                    e.duration_ms / 1000 if e.type == "page_view" else None for e in events
                ],
                "converted": [e.converted if e.type == "click" else None for e in events],
            }
        ),
    ).set_index("user_id")
    got = feast_rows(redis_features, users).set_index("user_id")
    for f in FEATURES:
        np.testing.assert_allclose(
            got[f].to_numpy(float), want.loc[users, f].to_numpy(float), rtol=1e-6
        )
    clicks = collections.Counter(e.user_id for e in events if e.type == "click")
    assert [
        got.loc[u, "number_of_clicks"] - before["user_data__number_of_clicks"][i]
        for i, u in enumerate(users)
    ] == [clicks[u] for u in users]

    # predictions in the predictions view (read by Feast) and one output entry per user
    from feast import FeatureStore

    for k, v in redis_features.env.items():
        monkeypatch.setenv(k, v)
    store = FeatureStore(
        repo_path=str(redis_features.repo),
        fs_yaml_file=redis_features.repo / "feature_store.redis.yaml",
    )
    preds = store.get_online_features(
        features=[
            f"model_predictions:{f}"
            for f in ("score", "model_version", "features_timestamp", "request_key")
        ],
        entity_rows={"user_id": users},
    ).to_dict()
    out = stream_outputs(rc, "out1")
    assert sorted({int(o["user_id"]) for o in out}) == users
    by_user = {int(o["user_id"]): o for o in out}  # the last decision per user
    for i, u in enumerate(users):
        assert preds["score"][i] == pytest.approx(float(by_user[u]["score"]))
        assert preds["request_key"][i] == "hour_of_day=20|session_duration_s=35.0"
        assert preds["model_version"][i] == by_user[u]["model_version"]
        assert preds["features_timestamp"][i] == max(e.ts_us for e in events if e.user_id == u)
    ids = [i for o in out for i in o["event_ids"].split(",")]
    assert sorted(ids) == sorted(e.event_id for e in events)
    dead = rc.xrange("dead1")
    assert len(dead) == 5 and all(b"error" in f and b"entry_id" in f for _, f in dead)
    assert b"type" in dict(dead[1][1])[b"error"] and dict(dead[1][1])[b"orig.event"] == bad[1]
    assert rc.xpending("ev1", "g1")["pending"] == 0

    # a replay of every event (new entries, same ids) changes nothing and outputs nothing
    stream_cli(
        ["publish", str(path), "--redis", f"redis://127.0.0.1:{redis.port}", "--stream", "ev1"]
    )
    log = run_until_idle(redis_features, model_dir, tmp_path, "w1b", *names(1))
    assert "summary: 120 events" in log and "duplicate 120" in log, log
    assert len(stream_outputs(rc, "out1")) == len(out)
    again = feast_rows(redis_features, users).set_index("user_id")
    pd.testing.assert_frame_equal(again, got)


def test_cached_mode_serves_the_streamed_prediction(redis, redis_features, model_dir, tmp_path):
    users = [1601, 1602]
    with serving(redis_features, model_dir, tmp_path, "--mode", "cached") as (tr, _, _):
        body = v2_body(users, [35.0] * 2, [20] * 2, return_features=True)
        first = outputs(httpx.post(tr.url + URL, json=body))
        assert first["prediction_source"] == ["model", "model"]
        events = [e for e in make_events(users, 9, "t2") if e.type == "click"]
        path = write_jsonl(tmp_path / "clicks.jsonl", events, CTX)
        stream_cli(
            ["publish", str(path), "--redis", f"redis://127.0.0.1:{redis.port}", "--stream", "ev2"]
        )
        run_until_idle(redis_features, model_dir, tmp_path, "w2", *names(2))
        streamed = {
            int(o["user_id"]): float(o["score"]) for o in stream_outputs(client(redis), "out2")
        }
        after = outputs(httpx.post(tr.url + URL, json=body))
        clicks = collections.Counter(e.user_id for e in events)
        assert [
            a - b
            for a, b in zip(
                after["user_data__number_of_clicks"],
                first["user_data__number_of_clicks"],
                strict=True,
            )
        ] == [clicks[u] for u in users]
        assert after["prediction_source"] == ["cache", "cache"]
        assert after["score"] == [pytest.approx(streamed[u], rel=1e-12) for u in users]
        assert [
            after["user_data__number_of_clicks"][i] - first_clicks
            for i, first_clicks in enumerate([0, 0])
        ]
        truth = outputs(
            httpx.post(tr.url + URL, json=v2_body(users, [35.0] * 2, [20] * 2, cache=False))
        )
        assert truth["prediction_source"] == ["model", "model"]
        assert after["score"] == [pytest.approx(s, rel=1e-12) for s in truth["score"]]
        assert after["score"] != first["score"]
        # another request context is not what the stream computed: the model answers
        other = outputs(httpx.post(tr.url + URL, json=v2_body(users, [99.0] * 2, [3] * 2)))
        assert other["prediction_source"] == ["model", "model"]


def test_scoring_through_the_predictor_over_v2(redis, redis_features, model_dir, tmp_path):
    """Without --model_dir the worker calls the predictor (v2 REST): same scores as the
    embedded model on the same events."""
    from devtools import stack

    users = [1801, 1802, 1803]
    events = make_events(users, 4, "t4")
    path = write_jsonl(tmp_path / "events.jsonl", events, CTX)
    url = f"redis://127.0.0.1:{redis.port}"
    ports = stack.Ports.free()
    pred = stack.start_predictor(model_dir, ports, tmp_path)
    try:
        stack.wait_ready(pred)
        stream_cli(["publish", str(path), "--redis", url, "--stream", "ev4"])
        host = f"127.0.0.1:{ports.predictor_http}"
        log = run_until_idle(
            redis_features, None, tmp_path, "w4", *names(4), "--predictor_host", host
        )
        assert f"scoring through the predictor at {host}" in log
    finally:
        stack.stop(pred)
    via_v2 = {int(o["user_id"]): o for o in stream_outputs(client(redis), "out4")}
    # the embedded model on the features the worker wrote (read back through Feast's SDK)
    from predictor.protocol.artifact import load_model

    model = load_model(model_dir)
    assert {o["model_version"] for o in via_v2.values()} == {model.metadata.version}
    got = online_features(redis_features, users, [35.0] * 3, [20] * 3)
    x = [[got[f][i] for f in model.metadata.feature_names] for i in range(3)]
    want = model.score(np.asarray(x, np.float64))
    assert [float(via_v2[u]["score"]) for u in users] == [pytest.approx(w) for w in want]
