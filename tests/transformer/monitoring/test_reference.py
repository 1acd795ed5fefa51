from __future__ import annotations

import logging

import httpx
import numpy as np
import pytest

from predictor.jobs import baseline
from transformer.monitoring import reference
from transformer.settings import TransformerSettings

pytestmark = pytest.mark.unit

URL = "http://p:8080/v2/models/click-model/baseline"


@pytest.fixture
def b() -> baseline.Baseline:
    x = np.random.default_rng(0).random((100, 2))
    return baseline.compute("sklearn-1", ["a", "b"], x, np.linspace(0, 1, 100))


def answers(*responses: httpx.Response | Exception):
    calls = []

    def get(url: str, timeout: float) -> httpx.Response:
        calls.append(url)
        r = responses[min(len(calls), len(responses)) - 1]
        if isinstance(r, Exception):
            raise r
        return r

    return get, calls


def test_url_follows_the_predictor_and_grpc_needs_one():
    s = TransformerSettings(predictor_host="p:8080")
    assert reference.baseline_url(s) == URL
    s = TransformerSettings(predictor_host="p:443", predictor_use_ssl=True, model_name="m")
    assert reference.baseline_url(s) == "https://p:443/v2/models/m/baseline"
    assert reference.baseline_url(TransformerSettings(predictor_protocol="grpc-v2")) is None
    s = TransformerSettings(predictor_protocol="grpc-v2", monitoring_baseline_url="http://x/b")
    assert reference.baseline_url(s) == "http://x/b"


def test_retries_until_the_predictor_answers(b):
    get, calls = answers(
        httpx.ConnectError("refused"),
        httpx.Response(503, text="starting"),
        httpx.Response(200, content=b.model_dump_json()),
    )
    assert reference.fetch(URL, 5.0, get) == b
    assert len(calls) == 3


@pytest.mark.parametrize(
    ("response", "said"),
    [
        (httpx.Response(404, json={"error": "model x has no baseline.json"}), "HTTP 404"),
        (httpx.Response(200, content=b'{"model_version": "x"}'), "invalid baseline"),
    ],
)
def test_a_404_or_a_bad_body_ends_at_once_with_a_warning(response, said, caplog):
    get, calls = answers(response)
    with caplog.at_level(logging.WARNING):
        assert reference.fetch(URL, 5.0, get) is None
    assert len(calls) == 1 and said in caplog.text and "drift and quality off" in caplog.text


def test_bounded_by_the_wait(caplog):
    get, calls = answers(httpx.ConnectError("refused"))
    with caplog.at_level(logging.WARNING):
        assert reference.fetch(URL, 0.3, get) is None
    assert 1 <= len(calls) <= 2 and "ConnectError" in caplog.text
    assert reference.fetch(URL, 0.0, get) is None  # 0: no attempt


def test_only_without_a_file_or_a_model_dir(tmp_path, caplog):
    for s in (
        TransformerSettings(monitoring_baseline=tmp_path / "b.json"),
        TransformerSettings(collocated_model_dir=tmp_path),
        TransformerSettings(monitoring_baseline_fetch=False),
        TransformerSettings(monitoring_enabled=False),
    ):
        assert reference.from_predictor(s, "v1") is None  # no request made (none could answer)
    with caplog.at_level(logging.WARNING):
        assert (
            reference.from_predictor(TransformerSettings(predictor_protocol="grpc-v2"), "") is None
        )
    assert "monitoring_baseline_url" in caplog.text
