"""The event schema: valid events become activities, every kind of bad input is named."""

import pytest

from transformer.stream.events import BadEvent, activity, from_entry, parse, to_json
from transformer.stream.fold import Activity

pytestmark = pytest.mark.unit

OK = b'{"event_id":"a1","user_id":5,"event_time":"2026-11-29T10:00:00.000123+00:00",'


def test_valid_events_become_activities():
    a = activity(parse(OK + b'"type":"page_view","duration_s":12.3456}'))
    assert a == Activity("a1", 5, 1_795_946_400_000_123, "page_view", duration_ms=12_346)
    c = parse(
        OK + b'"type":"click","converted":true,"context":{"session_duration_s":35,'
        b'"hour_of_day":20}}'
    )
    assert activity(c).converted and c.context is not None and c.context.hour_of_day == 20
    assert activity(parse(OK + b'"type":"session_end"}')).type == "session_end"


def test_to_json_is_the_inverse():
    a = Activity("x", 9, 1_795_946_400_000_123, "page_view", duration_ms=1500)
    import orjson

    assert activity(parse(orjson.dumps(to_json(a)))) == a


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        (b"{not json", "JSON"),
        (OK + b'"type":"purchase"}', "type"),
        (b'{"event_id":"a","event_time":"2026-11-29T10:00:00Z","type":"click"}', "user_id"),
        (OK.replace(b"5", b'"5"') + b'"type":"click"}', "user_id"),
        (OK + b'"type":"page_view"}', "duration_s"),
        (OK + b'"type":"page_view","duration_s":-1}', "duration_s"),
        (OK + b'"type":"click","converted":"yes"}', "converted"),
        (OK + b'"type":"click","extra":1}', "extra"),
        (
            b'{"event_id":"a","user_id":1,"event_time":"2026-11-29T10:00:00","type":"click"}',
            "event_time",
        ),
        (OK + b'"type":"click","context":{"hour_of_day":25,"session_duration_s":1}}', "hour"),
        (b"[]", "(event)"),
    ],
)
def test_bad_events_are_named(raw, names):
    with pytest.raises(BadEvent, match=names.replace("(", r"\(").replace(")", r"\)")):
        parse(raw)


def test_an_entry_without_the_event_field():
    with pytest.raises(BadEvent, match="no 'event' field"):
        from_entry({b"payload": b"{}"})
