import json

import pytest

from devtools import bandit_sim

pytestmark = pytest.mark.unit


def test_bandit_sim_writes_the_plot_and_thompson_beats_the_fixed_split(tmp_path):
    out = tmp_path / "sim.json"
    argv = ["--requests", "20000", "--seeds", "2", "--users", "2000"]
    assert bandit_sim.main([*argv, "--plot", str(tmp_path / "sim.png"), "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["best_arm"] == "context-aware"
    assert r["arms"]["context-aware"] > r["arms"]["context-blind"]
    ratios = {name.split(" ")[0]: p["regret_vs_fixed"] for name, p in r["policies"].items()}
    assert ratios["fixed"] == 1.0 and ratios["thompson"] < 0.6
    assert (tmp_path / "sim.png").stat().st_size > 10_000
