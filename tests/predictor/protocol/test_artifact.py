import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from predictor.protocol.artifact import ArtifactError, load_model, read_metadata

pytestmark = pytest.mark.unit


def test_roundtrip_scores_like_the_original(tmp_path, tiny_sklearn_dir):
    model, meta = tiny_sklearn_dir(tmp_path)
    loaded = load_model(tmp_path)
    x = np.array([[1.0, 0.0], [-1.0, 2.0]])
    assert np.allclose(loaded.score(x), model.predict_proba(x)[:, 1])
    assert loaded.metadata.feature_names == ["v__a", "v__b"]
    assert meta.version.startswith("sklearn-") and len(meta.version) == len("sklearn-") + 12


def test_version_is_derived_from_content(tmp_path, tiny_sklearn_dir):
    _, m1 = tiny_sklearn_dir(tmp_path / "a", seed=0)
    _, m2 = tiny_sklearn_dir(tmp_path / "b", seed=0)
    _, m3 = tiny_sklearn_dir(tmp_path / "c", seed=1)
    assert m1.version == m2.version != m3.version


def test_tampered_model_file_is_refused(tmp_path, tiny_sklearn_dir):
    tiny_sklearn_dir(tmp_path)
    (tmp_path / "model.joblib").write_bytes(b"not a model")
    with pytest.raises(ArtifactError, match="does not match version"):
        load_model(tmp_path)


def test_metadata_errors_name_file_and_field(tmp_path, tiny_sklearn_dir):
    with pytest.raises(ArtifactError, match=r"metadata\.json: not found"):
        read_metadata(tmp_path)
    tiny_sklearn_dir(tmp_path)
    raw = json.loads((tmp_path / "metadata.json").read_text())
    raw["features"][0]["datatype"] = "STRING"
    raw["framework"] = "torch"
    (tmp_path / "metadata.json").write_text(json.dumps(raw))
    with pytest.raises(ArtifactError) as e:
        read_metadata(tmp_path)
    assert "metadata.json" in str(e.value)
    assert "framework" in str(e.value) and "features.0.datatype" in str(e.value)


def test_training_pipeline_scores_without_predict_proba_and_identically(tmp_path):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    from predictor.protocol.artifact import _compile_linear
    from predictor.transforms import signed_log1p

    rng = np.random.default_rng(3)
    x = rng.lognormal(size=(500, 4)) * np.array([1, 10, 100, 0.1])
    y = (np.log(x[:, 0]) + rng.normal(size=500) > 0).astype(int)
    pipe = make_pipeline(
        FunctionTransformer(signed_log1p), StandardScaler(), LogisticRegression(max_iter=500)
    ).fit(x, y)
    compiled = _compile_linear(pipe)
    assert compiled is not None
    probe = np.vstack([x[:50], -x[:5], np.zeros((1, 4))])
    np.testing.assert_allclose(compiled(probe), pipe.predict_proba(probe)[:, 1], rtol=1e-12)
    # anything else keeps predict_proba
    from sklearn.tree import DecisionTreeClassifier

    assert _compile_linear(DecisionTreeClassifier().fit(x, y)) is None
