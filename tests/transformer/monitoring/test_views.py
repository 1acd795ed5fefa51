"""Building monitoring from the settings: off switch, missing baseline, wrong model."""

import logging

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from predictor.jobs import baseline
from transformer.monitoring.views import build
from transformer.settings import TransformerSettings

pytestmark = pytest.mark.unit


@pytest.fixture
def baseline_path(tmp_path):
    b = baseline.compute("sklearn-1", ["a", "b"], np.random.default_rng(0).random((100, 2)),
                         np.linspace(0, 1, 100))  # fmt: skip
    return baseline.write(tmp_path, b)


def test_no_baseline_turns_drift_off_with_a_log_line(caplog):
    with caplog.at_level(logging.WARNING):
        assert build(TransformerSettings(), ["a", "b"], None) is None
    assert "no baseline file" in caplog.text


def test_switched_off(baseline_path):
    s = TransformerSettings(monitoring_enabled=False, monitoring_baseline=baseline_path)
    assert build(s, ["a", "b"], None) is None


def test_collocated_model_dir_provides_the_baseline(baseline_path):
    reg = CollectorRegistry()
    m = build(TransformerSettings(collocated_model_dir=baseline_path.parent), ["a", "b"], reg)
    assert m is not None and m.model_version == "sklearn-1"
    assert (
        reg.get_sample_value("transformer_drift_window_rows", {"model_version": "sklearn-1"}) == 0
    )


def test_baseline_of_another_model_is_a_startup_error(baseline_path):
    s = TransformerSettings(monitoring_baseline=baseline_path)
    with pytest.raises(baseline.BaselineError, match="not the model's inputs"):
        build(s, ["a", "c"], None)


def test_a_fetched_baseline_is_used_and_a_mismatch_only_turns_drift_off(baseline_path, caplog):
    fetched = baseline.read(baseline_path)
    reg = CollectorRegistry()
    m = build(TransformerSettings(), ["a", "b"], reg, fetched=fetched)
    assert m is not None and m.model_version == "sklearn-1"
    with caplog.at_level(logging.WARNING):
        assert build(TransformerSettings(), ["a", "c"], None, fetched=fetched) is None
    assert "the predictor's baseline has inputs" in caplog.text
