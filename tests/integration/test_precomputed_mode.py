"""Serving approach 3: a Ray batch job precomputes predictions into the online store (Redis
and the embedded SQLite store); the transformer's precomputed mode serves them, with the model
(or the default) for users the batch missed."""

import subprocess

import httpx
import pytest

from predictor.protocol.artifact import read_metadata
from tests.integration.helpers import outputs, v2_body
from tests.servers import batch_job, serving

pytestmark = pytest.mark.integration

URL = "/v2/models/click-model/infer"
COVERED = [11, 12, 13, 14]


@pytest.fixture(scope="module", params=["redis", "sqlite"])
def batch_done(request, model_dir):
    fenv = request.getfixturevalue(f"{request.param}_features")
    proc = subprocess.run(
        **batch_job(fenv, model_dir, COVERED),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{len(COVERED)} predictions of" in proc.stdout
    return fenv, read_metadata(model_dir).version


@pytest.mark.parametrize("fallback", ["model", "default"])
def test_precomputed_scores_are_served(batch_done, model_dir, tmp_path, fallback):
    fenv, version = batch_done
    args = ("--mode", "precomputed", "--precomputed_fallback", fallback)
    with serving(fenv, model_dir, tmp_path, *args) as (tr, _, _):
        ids = [*COVERED, 15]
        out = outputs(httpx.post(tr.url + URL, json=v2_body(ids)))
        assert out["prediction_source"] == ["precomputed"] * 4 + [fallback]
        assert out["model_version"][:4] == [version] * 4
        # the batch job scored the same model on the same features (fixed request context)
        same_ctx = outputs(
            httpx.post(tr.url + URL, json=v2_body(COVERED, [30.0] * 4, [12] * 4, cache=False))
        )
        assert same_ctx["prediction_source"] == ["model"] * 4
        assert out["score"][:4] == pytest.approx(same_ctx["score"], rel=1e-9)
