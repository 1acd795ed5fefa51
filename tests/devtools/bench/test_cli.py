"""The command line (devtools/bench/cli.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools.bench import cli as bench
from devtools.bench.report import ANALYSIS_CLOSE, ANALYSIS_OPEN
from devtools.bench.scenarios import DEFAULT_STEPS

pytestmark = pytest.mark.unit


def test_cli_subsets_and_quick(tmp_path: Path):
    cfg = bench.parse_args(["--quick", "--scenarios", "full,floors", "--out", str(tmp_path)])
    assert cfg.steps == ["full", "floors"] and (cfg.duration_s, cfg.warmup_s) == (3, 1)
    assert cfg.out == tmp_path and not cfg.mlserver
    cfg = bench.parse_args(["--scenarios", "predictor,mlserver_inproc", "--duration", "5"])
    assert cfg.steps == ["predictor", "mlserver"] and cfg.mlserver
    cfg = bench.parse_args(["--mlserver", "--duration", "5"])
    assert cfg.steps[-1] == "mlserver" and cfg.duration_s == 5 and cfg.mlserver
    assert set(DEFAULT_STEPS) <= set(cfg.steps)
    with pytest.raises(SystemExit):
        bench.parse_args(["--scenarios", "nope"])


def test_cli_extra_transformer_env_and_args():
    cfg = bench.parse_args(
        [
            "--transformer-env",
            "AUTH=off",
            "--transformer-env",
            "EMPTY=",
            "--transformer-env=URL=http://x/?a=b",
            "--transformer-arg=--log_level=debug",
            "--transformer-arg",
            "value",
        ]
    )
    assert cfg.transformer_env == {"AUTH": "off", "EMPTY": "", "URL": "http://x/?a=b"}
    assert cfg.transformer_extra == ["--log_level=debug", "value"]
    assert bench.parse_args([]).transformer_env == {}


@pytest.mark.parametrize("bad", ["NOVALUE", "=x"])
def test_cli_rejects_an_env_without_a_name(bad, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(["--transformer-env", bad])
    assert "KEY=VALUE" in capsys.readouterr().err


def test_render_rewrites_the_doc_from_saved_results_and_measures_nothing(
    tmp_path: Path, doc_results, capsys
):
    res = doc_results()
    res["targets"] = [{"key": "stale"}]  # re-evaluated with the current definitions
    saved = tmp_path / "results.json"
    saved.write_text(json.dumps(res))
    doc, png = tmp_path / "benchmarks.md", tmp_path / "bench.png"
    doc.write_text(f"old\n{ANALYSIS_OPEN}\nkept by hand\n{ANALYSIS_CLOSE}\n")
    argv = ["--render", str(saved), "--doc", str(doc), "--plot", str(png)]
    assert bench.main([*argv, "--out", str(tmp_path / "unused")]) == 0
    text = doc.read_text()
    assert "kept by hand" in text and "**met**" in text and "stale" not in text
    assert png.stat().st_size > 0 and not (tmp_path / "unused").exists()
    assert bench.main(["--render", str(tmp_path / "missing.json")]) == 1
    assert "missing.json" in capsys.readouterr().err
