"""Serving approach 3: a Ray batch job precomputes predictions into Redis; the transformer's
precomputed mode serves them, with the model (or the default) for users the batch missed."""

import os
import subprocess
import sys

import httpx
import pytest

from devtools.stack import ROOT
from predictor.artifact import read_metadata
from tests.conftest import serving
from tests.integration.helpers import outputs, v2_body

pytestmark = pytest.mark.integration

URL = "/v2/models/click-model/infer"
COVERED = [11, 12, 13, 14]


@pytest.fixture(scope="module")
def batch_done(redis_features, model_dir):
    users = ",".join(map(str, COVERED))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "predictor.batch",
            "--repo",
            str(redis_features.repo),
            "--model-dir",
            str(model_dir),
            "--users",
            users,
            "--workers",
            "1",
        ],
        cwd=ROOT,
        env={**os.environ, **redis_features.env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{len(COVERED)} predictions of" in proc.stdout
    return read_metadata(model_dir).version


@pytest.mark.parametrize("fallback", ["model", "default"])
def test_precomputed_scores_are_served(batch_done, redis_features, model_dir, tmp_path, fallback):
    with serving(
        redis_features,
        model_dir,
        tmp_path,
        "--mode",
        "precomputed",
        "--precomputed_fallback",
        fallback,
    ) as (tr, _, _):
        ids = [*COVERED, 15]
        out = outputs(httpx.post(tr.url + URL, json=v2_body(ids)))
        assert out["prediction_source"] == ["precomputed"] * 4 + [fallback]
        assert out["model_version"][:4] == [batch_done] * 4
        # the batch job scored the same model on the same features (fixed request context)
        same_ctx = outputs(
            httpx.post(tr.url + URL, json=v2_body(COVERED, [30.0] * 4, [12] * 4, cache=False))
        )
        assert same_ctx["prediction_source"] == ["model"] * 4
        assert out["score"][:4] == pytest.approx(same_ctx["score"], rel=1e-9)
