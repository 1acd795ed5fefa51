"""Serving approach 1 and 2: cached predictions with write-back, refreshed by producer writes,
on Redis and on the embedded SQLite store."""

import asyncio
import time

import httpx
import pytest

from tests.integration.helpers import outputs, producer_row, v2_body
from tests.servers import serving

pytestmark = pytest.mark.integration

URL = "/v2/models/click-model/infer"


@pytest.fixture(scope="module", params=["redis", "sqlite"])
def cached(request, tmp_path_factory, model_dir):
    fenv = request.getfixturevalue(f"{request.param}_features")
    with serving(fenv, model_dir, tmp_path_factory.mktemp("logs"), "--mode", "cached") as s:
        yield s


def ask(url, ids, dur=35.0, **params):
    n = len(ids)
    return outputs(httpx.post(url + URL, json=v2_body(ids, [dur] * n, [20] * n, **params)))


def until_cached(url, ids, dur=35.0, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = ask(url, ids, dur)
        if set(out["prediction_source"]) == {"cache"}:
            return out
        time.sleep(0.05)
    raise AssertionError(f"no cache hit for {ids} within {timeout_s}s: {out}")


def test_miss_then_write_back_then_hit(cached):
    tr, _, _ = cached
    first = ask(tr.url, [101, 102])
    assert first["prediction_source"] == ["model", "model"]
    hit = until_cached(tr.url, [101, 102])
    assert hit["score"] == first["score"] and hit["model_version"] == first["model_version"]
    # another request context is another prediction
    assert ask(tr.url, [101], dur=400.0)["prediction_source"] == ["model"]
    # cache: false bypasses it
    assert ask(tr.url, [101], cache=False)["prediction_source"] == ["model"]
    metrics = httpx.get(tr.url + "/metrics").text
    assert "transformer_cache_hits_total" in metrics
    assert "transformer_writeback_rows_total" in metrics


def test_producer_write_refreshes_the_prediction(cached):
    tr, _, _ = cached
    ask(tr.url, [201])
    before = until_cached(tr.url, [201])
    row = producer_row(201)
    r = httpx.post(tr.url + "/producer/v1/write", json={"rows": [row]})
    assert r.status_code == 200, r.text
    assert r.json()["written"] == 1 and r.json()["refreshed"] == 1
    after = ask(tr.url, [201], return_features=True)
    assert after["prediction_source"] == ["cache"]  # recomputed before the acknowledgement
    assert after["user_data__click_through_rate"] == [pytest.approx(0.45)]
    truth = ask(tr.url, [201], cache=False)
    assert after["score"] == truth["score"] != before["score"]


def test_producer_cli_sends_files(cached, tmp_path):
    tr, _, _ = cached
    ask(tr.url, [401], dur=60.0)
    until_cached(tr.url, [401], dur=60.0)
    import pandas as pd

    from transformer.producer import main

    path = tmp_path / "rows.csv"
    pd.DataFrame(
        [
            {
                "user_id": u,
                "click_through_rate": 0.3,
                "number_of_clicks": 50,
                "average_page_duration": 20.0,
                "sessions_last_7d": 5,
                "days_since_signup": 99,
                "conversion_rate": 0.05,
            }
            for u in (401, 402)
        ]
    ).to_csv(path, index=False)
    main(["--url", tr.url, str(path)])
    out = ask(tr.url, [401, 402], dur=60.0, return_features=True)
    assert out["user_data__number_of_clicks"] == [50.0, 50.0]
    assert out["prediction_source"][0] == "cache"  # 401 had a cached context: refreshed


def test_producer_rejects_bad_rows(cached):
    tr, _, _ = cached
    post = lambda body: httpx.post(tr.url + "/producer/v1/write", json=body)  # noqa: E731
    r = post({"rows": [{"user_id": 1}]})
    assert r.status_code == 400 and "missing" in r.json()["error"]
    r = post({"rows": []})
    assert r.status_code == 400 and "non-empty" in r.json()["error"]
    r = post({"rowz": []})
    assert r.status_code == 400
    r = httpx.post(
        tr.url + "/producer/v1/write", content=b"{", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and "JSON" in r.json()["error"]


@pytest.mark.parametrize("round_", range(3))
def test_no_prediction_from_older_features_after_an_ack(cached, round_):
    """Readers hammer users with the cache on while a producer writes new feature versions.
    A request that starts after write k was acknowledged must return the score of version
    k or newer, whether it came from the cache or the model."""
    tr, _, _ = cached
    users = [301 + 10 * round_ + i for i in range(4)]

    async def run():
        acks: list[float] = []
        truth: list[dict[int, float]] = []
        seen: list[tuple[float, int, float]] = []
        done = asyncio.Event()
        async with httpx.AsyncClient(base_url=tr.url, timeout=10) as c:

            async def reader(u):
                while not done.is_set():
                    t = time.monotonic()
                    r = await c.post(URL, json=v2_body([u], [35.0], [20]))
                    seen.append((t, u, outputs(r)["score"][0]))

            async def producer():
                for k in range(6):
                    rows = [
                        {
                            "user_id": u,
                            "click_through_rate": 0.02 + 0.08 * k,
                            "number_of_clicks": 5 + 20 * k,
                            "average_page_duration": 30.0,
                            "sessions_last_7d": 3,
                            "days_since_signup": 100,
                            "conversion_rate": 0.05,
                        }
                        for u in users
                    ]
                    r = await c.post("/producer/v1/write", json={"rows": rows})
                    assert r.status_code == 200, r.text
                    acks.append(time.monotonic())
                    r = await c.post(URL, json=v2_body(users, [35.0] * 4, [20] * 4, cache=False))
                    truth.append(dict(zip(users, outputs(r)["score"], strict=True)))
                    await asyncio.sleep(0.15)
                done.set()

            await asyncio.gather(producer(), *(reader(u) for u in users))
        return acks, truth, seen

    acks, truth, seen = asyncio.run(run())
    checked = 0
    for t, u, score in seen:
        k = max((i for i, a in enumerate(acks) if a <= t), default=None)
        if k is None:
            continue
        allowed = {truth[j][u] for j in range(k, len(truth))}
        assert any(score == pytest.approx(a, rel=1e-12) for a in allowed), (u, k, score, allowed)
        checked += 1
    assert checked > 50
