import numpy as np
import pytest

from transformer.rules import BusinessRules, RulesFileError, load_rules

pytestmark = pytest.mark.unit


def test_default_bands_map_every_score():
    r = BusinessRules()
    assert r.decide(np.array([0.0, 0.19, 0.2, 0.49, 0.5, 1.0])) == [
        "no_action",
        "no_action",
        "show_banner",
        "show_banner",
        "show_offer",
        "show_offer",
    ]


def test_clamp():
    r = BusinessRules(clamp_min=0.01, clamp_max=0.9)
    assert r.clamp(np.array([0.0, 0.5, 0.99])).tolist() == [0.01, 0.5, 0.9]


def test_rules_file(tmp_path):
    p = tmp_path / "rules.yaml"
    p.write_text(
        "bands:\n  - {decision: approve, min_score: 0.7}\n  - {decision: review, min_score: 0}\n"
        "stale_features: default\nstale_after_s: 60\n"
    )
    r = load_rules(p)
    assert r.decide(np.array([0.8, 0.1])) == ["approve", "review"]
    assert r.stale_features == "default" and r.stale_after_s == 60


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bands: [{decision: a, min_score: 0.2}]", "last band must have min_score 0"),
        (
            "bands: [{decision: a, min_score: 0}, {decision: b, min_score: 0.5}]",
            "strictly decrease",
        ),
        ("bands: [{decision: a, min_score: 2}]", "bands.0.min_score"),
        ("stale_features: maybe", "stale_features"),
        ("unknown_key: 1", "unknown_key"),
        ("clamp_min: 0.9\nclamp_max: 0.1", "clamp_min must not exceed clamp_max"),
        ("bands: [", "rules.yaml"),
    ],
)
def test_bad_rules_name_file_and_field(tmp_path, text, message):
    p = tmp_path / "rules.yaml"
    p.write_text(text)
    with pytest.raises(RulesFileError) as e:
        load_rules(p)
    assert str(p) in str(e.value) and message in str(e.value)


def test_no_file_means_defaults():
    assert load_rules(None) == BusinessRules()


def test_store_unavailable_is_validated(tmp_path):
    f = tmp_path / "rules.yaml"
    f.write_text("store_unavailable: default\n")
    assert load_rules(f).store_unavailable == "default"
    assert load_rules(None).store_unavailable == "error"
    f.write_text("store_unavailable: ignore\n")
    with pytest.raises(RulesFileError, match=r"rules.yaml: store_unavailable: Input should be"):
        load_rules(f)
