"""The fold: how events move the features, order independence, idempotence, lateness."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transformer.stream.fold import DAY_US, Activity, UserState, features, fold

pytestmark = pytest.mark.unit

HOUR = 3_600_000_000
BASE_US = 1_700_000_000_000_000
ROW = {
    "click_through_rate": 0.1,
    "number_of_clicks": 20,
    "average_page_duration": 30.0,
    "sessions_last_7d": 3,
    "days_since_signup": 100,
    "conversion_rate": 0.05,
}
LATE = 24 * HOUR


def ev(i, type_, dt_s=1.0, **kw):
    return Activity(f"e{i}", 7, BASE_US + int(dt_s * 1e6), type_, **kw)


def test_each_event_type_moves_its_features():
    s = UserState.start(ROW, BASE_US)
    assert features(s) == pytest.approx(ROW)  # no events: the row as it is
    r = fold(s, [ev(1, "click", converted=True)], LATE)
    f = features(r.state)
    assert f["number_of_clicks"] == 21
    # base impressions = 20 / 0.1 = 200; one more click, no more views
    assert f["click_through_rate"] == pytest.approx(21 / 200)
    assert f["conversion_rate"] == pytest.approx((0.05 * 20 + 1) / 21)
    r = fold(s, [ev(2, "page_view", duration_ms=130_000)], LATE)
    f = features(r.state)
    assert f["click_through_rate"] == pytest.approx(20 / 201)
    assert f["average_page_duration"] == pytest.approx((30.0 * 200 + 130.0) / 201)
    assert f["number_of_clicks"] == 20
    r = fold(s, [ev(3, "session_end", dt_s=2 * 86_400 + 5)], LATE)
    f = features(r.state)
    assert f["sessions_last_7d"] == 4
    assert f["days_since_signup"] == 102
    assert r.state.ts_us == BASE_US + (2 * 86_400 + 5) * 1_000_000


def test_a_new_user_starts_from_zero():
    s = UserState.start(None, 0)
    r = fold(s, [ev(1, "page_view", duration_ms=10_000), ev(2, "click"), ev(3, "page_view")], LATE)
    f = features(r.state)
    assert f["number_of_clicks"] == 1
    assert f["click_through_rate"] == pytest.approx(0.5)
    assert f["average_page_duration"] == pytest.approx(5.0)
    assert f["days_since_signup"] == 0


def test_replays_are_no_ops_and_counted_as_duplicates():
    s = UserState.start(ROW, BASE_US)
    batch = [ev(1, "click"), ev(2, "page_view", duration_ms=5000), ev(1, "click")]
    once = fold(s, batch, LATE)
    assert once.applied == ["e1", "e2"] and once.duplicate == ["e1"]
    twice = fold(once.state, batch, LATE)
    assert twice.applied == [] and sorted(twice.duplicate) == ["e1", "e1", "e2"]
    assert twice.state == once.state


def test_events_covered_by_the_row_or_too_late_are_stale():
    s = UserState.start(ROW, BASE_US)
    r = fold(s, [ev(1, "click", dt_s=-10), ev(2, "click", dt_s=0)], LATE)
    assert r.stale == ["e1", "e2"] and r.applied == []  # at or before the row: in the row
    assert features(r.state)["number_of_clicks"] == 20
    r = fold(s, [ev(3, "click", dt_s=48 * 3600)], LATE)
    r2 = fold(r.state, [ev(4, "click", dt_s=10)], LATE)  # 2 days older than the newest
    assert r2.stale == ["e4"]
    r3 = fold(r.state, [ev(5, "click", dt_s=30 * 3600)], LATE)  # out of order but in window
    assert r3.applied == ["e5"] and r3.state.ts_us == r.state.ts_us  # ts never goes back


def test_the_state_round_trips_through_json():
    import orjson

    r = fold(UserState.start(ROW, BASE_US), [ev(1, "click"), ev(2, "session_end")], LATE)
    back = UserState.from_json(orjson.loads(orjson.dumps(r.state.to_json())))
    assert back == r.state and features(back) == features(r.state)


activities = st.lists(
    st.tuples(
        st.sampled_from(["click", "page_view", "session_end"]),
        st.integers(1, 3 * 3600),  # seconds after the row
        st.integers(0, 600_000),  # duration ms
        st.booleans(),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(activities, st.integers(0, 2**32), st.integers(1, 5))
def test_any_order_any_split_any_replay_gives_the_same_state(items, seed, n_parts):
    events = [
        Activity(f"e{i}", 7, BASE_US + dt * 1_000_000, t, d if t == "page_view" else 0, c)
        for i, (t, dt, d, c) in enumerate(items)
    ]
    start = UserState.start(ROW, BASE_US)
    once = fold(start, events, LATE)
    shuffled = events + random.Random(seed).sample(events, len(events) // 2)  # replays too
    random.Random(seed + 1).shuffle(shuffled)
    state = start
    size = -(-len(shuffled) // n_parts)
    for k in range(0, len(shuffled), size):
        state = fold(state, shuffled[k : k + size], LATE).state
    assert state == once.state
    f = features(state)
    n = {t: sum(1 for e in events if e.type == t) for t in ("click", "page_view", "session_end")}
    assert f["number_of_clicks"] == ROW["number_of_clicks"] + n["click"]
    assert f["sessions_last_7d"] == ROW["sessions_last_7d"] + n["session_end"]
    assert 0.0 <= f["click_through_rate"] <= 1.0
    assert f["days_since_signup"] == ROW["days_since_signup"] + (
        (max(e.ts_us for e in events) - BASE_US) // DAY_US
    )
