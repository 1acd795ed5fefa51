import pytest

from predictor.protocol.cli import settings_from_cli
from predictor.settings import PredictorSettings
from transformer.settings import TransformerSettings

pytestmark = pytest.mark.unit


def test_flags_in_kserve_and_kebab_spelling(monkeypatch):
    monkeypatch.delenv("PREDICTOR_HTTP_PORT", raising=False)
    s = settings_from_cli(
        PredictorSettings, ["--model_name", "m", "--model-dir", "/x", "--http_port", "9000"], "p"
    )
    assert (s.model_name, str(s.model_dir), s.http_port) == ("m", "/x", 9000)


def test_environment_fills_what_flags_leave(monkeypatch):
    monkeypatch.setenv("PREDICTOR_GRPC_PORT", "9100")
    monkeypatch.setenv("PREDICTOR_HTTP_PORT", "9001")
    s = settings_from_cli(PredictorSettings, ["--http_port", "9002"], "p")
    assert s.grpc_port == 9100 and s.http_port == 9002


def test_unknown_flags_are_ignored_and_kserve_protocol_alias(caplog):
    s = settings_from_cli(
        TransformerSettings,
        ["--protocol", "grpc-v2", "--workers", "2", "--predictor_host", "h:1"],
        "t",
    )
    assert s.predictor_protocol == "grpc-v2" and s.predictor_host == "h:1"
    assert "--workers" in caplog.text


def test_bad_value_exits_2_naming_the_flag(capsys):
    with pytest.raises(SystemExit) as e:
        settings_from_cli(PredictorSettings, ["--http_port", "0"], "p")
    assert e.value.code == 2
    assert "--http_port" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        settings_from_cli(TransformerSettings, ["--predictor_protocol", "v1"], "t")
