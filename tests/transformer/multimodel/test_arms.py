"""An ensemble as one bandit arm: configuration, start-up wiring (``arms.build`` with the
arms' metadata faked) and routing through ``BanditClient`` (fake member clients)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import yaml
import yarl
from prometheus_client import CollectorRegistry

from tests.transformer.fakes import FEATURES
from tests.transformer.multimodel.fakes import Clock, FakeArm, client
from transformer.errors import PredictorUnavailable
from transformer.multimodel import arms, ensemble
from transformer.multimodel.bandit import BanditConfigError, load_config
from transformer.predictor_client import Prediction, PredictorMetadata, RestPredictorClient
from transformer.rules import Ensemble

pytestmark = pytest.mark.unit

MEMBERS = [
    {"name": "sklearn", "host": "sk:80", "weight": 1},
    {"name": "xgboost", "host": "xgb:80", "model_name": "click-model-xgboost", "weight": 3},
]
ENSEMBLE_ARM = {"ensemble": {"combine": "weighted_mean", "members": MEMBERS}, "timeout_s": 0.5}


def write(tmp_path: Path, arms_: list[dict]) -> Path:
    path = tmp_path / "bandit.yaml"
    path.write_text(yaml.safe_dump({"arms": arms_, "seed": 1}))
    return path


def test_an_ensemble_is_an_arm(tmp_path):
    cfg = load_config(write(tmp_path, [{"host": "single:80"}, ENSEMBLE_ARM]))
    assert cfg.arms[0].ensemble is None
    assert cfg.arms[1].host is None
    assert cfg.arms[1].ensemble == Ensemble.model_validate(ENSEMBLE_ARM["ensemble"])


@pytest.mark.parametrize(
    ("arm", "message"),
    [
        ({"host": "x:80", **ENSEMBLE_ARM}, "arms.1: Value error, an arm has either a host or an"),
        ({"model_name": "m"}, "arms.1: Value error, an arm has either a host or an ensemble"),
        (
            {"ensemble": {"members": [MEMBERS[0], {"name": "b"}]}},
            "ensemble: every member needs a host",
        ),
        (  # the ensemble's own rules apply
            {"ensemble": {"combine": "mean", "members": MEMBERS}},
            "weights are set but combine is 'mean'",
        ),
    ],
)
def test_a_bad_ensemble_arm_is_refused_naming_the_file_and_field(tmp_path, arm, message):
    path = write(tmp_path, [{"host": "single:80"}, arm])
    with pytest.raises(BanditConfigError) as e:
        load_config(path)
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value), e.value


def test_the_same_ensemble_twice_is_refused(tmp_path):
    with pytest.raises(BanditConfigError, match="two arms name the same host and model"):
        load_config(write(tmp_path, [ENSEMBLE_ARM, ENSEMBLE_ARM]))


VERSIONS = {"single:80": "sklearn-aaa", "sk:80": "sklearn-aaa", "xgb:80": "xgboost-bbb"}


@pytest.fixture
def metadata(monkeypatch):
    """Each host reports its version in VERSIONS; calls recorded."""
    calls: list[tuple] = []

    def fake(host, model_name, protocol, wait_s, use_ssl=False):
        calls.append((host, model_name, protocol, wait_s, use_ssl))
        return PredictorMetadata(list(FEATURES), [VERSIONS[host]])

    monkeypatch.setattr(arms, "fetch_model_metadata", fake)
    monkeypatch.setattr(ensemble, "fetch_model_metadata", fake)
    return calls


def build(path: Path) -> arms.Bandit:
    return arms.build(path, "127.0.0.1:1", "click-model", 2.0, 7.0, CollectorRegistry())


def test_build_gives_the_ensemble_arm_the_ensembles_version(tmp_path, metadata):
    # arm 0 serves sklearn-aaa, the ensemble's member sk:80 too: the ensemble is still its own
    # version (another model), so the two arms are different model versions
    bandit = build(write(tmp_path, [{"host": "single:80"}, ENSEMBLE_ARM]))
    config = Ensemble.model_validate(ENSEMBLE_ARM["ensemble"])
    expected = ensemble.ensemble_version(config, ["sklearn-aaa", "xgboost-bbb"])
    assert bandit.versions == ["sklearn-aaa", expected]
    assert bandit.features == list(FEATURES)
    # members without model_name / protocol take the arm's (the transformer's model name)
    assert metadata == [
        ("single:80", "click-model", "v2", 7.0, False),
        ("sk:80", "click-model", "v2", 7.0, False),
        ("xgb:80", "click-model-xgboost", "v2", 7.0, False),
    ]

    async def members():
        c = bandit.client()
        arm = c.arms[1].client
        assert isinstance(arm, ensemble.EnsembleClient)
        assert all(isinstance(m, RestPredictorClient) for m in arm.clients)
        out = [(m.url, m.timeout_s) for m in arm.clients]
        for a in c.arms:
            await a.client.close()
        await bandit.redis.aclose()
        return out

    got = asyncio.run(members())
    assert got == [  # yarl URLs (parsed once); equal whether or not :80 is spelled out
        (yarl.URL("http://sk:80/v2/models/click-model/infer"), 0.5),
        (yarl.URL("http://xgb:80/v2/models/click-model-xgboost/infer"), 0.5),
    ]


def test_an_ensemble_arm_of_the_same_version_as_another_arm_is_refused(tmp_path, metadata):
    # the same members listed the other way round: another config, the same ensemble version
    swapped = {"ensemble": {"members": MEMBERS[::-1]}}
    with pytest.raises(BanditConfigError, match=r"arms.1: ensemble\(xgboost, sklearn\) serves"):
        build(write(tmp_path, [ENSEMBLE_ARM, swapped]))


class Member:
    def __init__(self, score: float, version: str, error: Exception | None = None):
        self.score, self.version, self.error = score, version, error

    async def infer(self, features, matrix):
        if self.error is not None:
            raise self.error
        return Prediction(np.full(matrix.shape[0], self.score), self.version)

    async def close(self):
        return None


def test_the_bandit_answers_with_the_ensembles_score_and_version_and_fails_over():
    config = Ensemble.model_validate(ENSEMBLE_ARM["ensemble"])
    composite = ensemble.EnsembleClient(config, [Member(0.2, "sk"), Member(0.6, "xgb")])
    version = composite.version_of(["sk", "xgb"])
    other = FakeArm("single")
    clock = Clock()
    c, _, _ = client([FakeArm(version), other], clock)
    c.arms[0].client = composite  # the ensemble is arm 0
    c.stats.picks = np.zeros(10, dtype=np.int64)  # the policy picks arm 0
    pred = asyncio.run(c.infer(FEATURES, np.zeros((2, 2))))
    assert pred.model_version == version
    assert pred.scores == pytest.approx([(0.2 * 1 + 0.6 * 3) / 4] * 2)
    assert other.calls == 0
    # a member down fails the ensemble (all or nothing): the bandit answers with the other arm
    composite.clients[1] = Member(0.6, "xgb", PredictorUnavailable("xgb down"))
    pred = asyncio.run(c.infer(FEATURES, np.zeros((2, 2))))
    assert pred.model_version == "single" and other.calls == 1
