"""The CLI: files of events are validated before anything is sent; settings come from flags
and STREAM_* variables."""

import pandas as pd
import pytest

from predictor.protocol.cli import settings_from_cli
from transformer.stream.cli import main, read_events
from transformer.stream.settings import StreamSettings

pytestmark = pytest.mark.unit

GOOD = b'{"event_id":"a","user_id":1,"event_time":"2026-11-29T10:00:00Z","type":"click"}'


def test_json_lines_are_validated_and_bad_lines_named(tmp_path):
    ok = tmp_path / "ok.jsonl"
    ok.write_bytes(GOOD + b"\n\n" + GOOD.replace(b'"a"', b'"b"') + b"\n")
    assert len(read_events(ok)) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(GOOD + b"\n" + GOOD.replace(b"click", b"buy") + b"\n")
    with pytest.raises(SystemExit, match=r"bad.jsonl: line 2: .*tag .buy"):
        read_events(bad)


def test_tables_become_events(tmp_path):
    path = tmp_path / "events.parquet"
    pd.DataFrame(
        {
            "event_id": ["a", "b"],
            "user_id": [1, 2],
            "event_time": pd.to_datetime(["2026-11-29T10:00:00Z"] * 2, utc=True),
            "type": ["page_view", "click"],
            "duration_s": pd.array([3.5, None], "Float64"),
            "converted": pd.array([None, True], "boolean"),
            "context.session_duration_s": [35.0, 35.0],
            "context.hour_of_day": [20, 20],
        }
    ).to_parquet(path)
    texts = read_events(path)
    assert b'"duration_s":3.5' in texts[0] and b"converted" not in texts[0]
    assert b'"converted":true' in texts[1] and b'"hour_of_day":20' in texts[1]


def test_settings_from_flags_and_environment(monkeypatch):
    monkeypatch.setenv("STREAM_BATCH_SIZE", "200")
    s = settings_from_cli(StreamSettings, ["--stream", "clicks", "--until_idle", "true"], "x")
    assert (s.stream, s.batch_size, s.until_idle) == ("clicks", 200, True)
    with pytest.raises(SystemExit):
        settings_from_cli(StreamSettings, ["--batch_size", "0"], "x")


def test_unknown_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["replay"])
    assert e.value.code == 2 and "unknown command" in capsys.readouterr().err
