"""docs/benchmarks.md from results, keeping the analysis block (devtools/bench/report.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools.bench import report as bench
from devtools.bench.targets import RATIO_TARGETS, evaluate_targets

pytestmark = pytest.mark.unit

FULL_C1_P50 = "| full path, c=1: p50 ≤ 4 x the empty model's p50 at c=1 |"


def test_doc_has_the_table_targets_and_a_fresh_analysis_block(doc_results):
    res = doc_results()
    text = bench.render_doc(res, evaluate_targets(res), None)
    assert "| full | 1 |" in text and "Test CPU" in text and "kserve 0.21.0" in text
    assert f"{FULL_C1_P50} 1.50 ms = 2.96 x 0.506 ms | **met** |" in text
    assert "Redis round trip" in text and "| transformer | 2.50 | 2.40, 2.50, 2.60 |" in text
    assert text.count(bench.ANALYSIS_OPEN) == 1 and bench.ANALYSIS_PLACEHOLDER in text
    assert "Cache hit ratio" not in text  # no cache_hit run carries a ratio here


def test_regenerating_the_doc_keeps_the_analysis_block(doc_results, run):
    res = doc_results()
    first = bench.render_doc(res, evaluate_targets(res), None)
    mine = "## Why\n\nMost of a request is **JSON** decoding.\n| a | table |\n"
    edited = first.replace(bench.ANALYSIS_PLACEHOLDER, mine) + "\nstray text after\n"
    res["runs"][0] = run("full", 1, p50=3.0, p99=4.0, p999=6.0)
    second = bench.render_doc(res, evaluate_targets(res), edited)
    assert mine in second and bench.ANALYSIS_PLACEHOLDER not in second
    assert f"{FULL_C1_P50} 3.00 ms = 5.93 x 0.506 ms | **not met** |" in second
    assert "stray text after" not in second
    assert second.count(bench.ANALYSIS_OPEN) == 1 and second.count(bench.ANALYSIS_CLOSE) == 1


def test_extract_analysis_without_a_closing_marker_starts_fresh():
    block = bench.extract_analysis(f"# old\n{bench.ANALYSIS_OPEN}\nhalf an edit")
    assert bench.ANALYSIS_PLACEHOLDER in block


def test_results_json_is_serializable_with_doc_inputs(tmp_path: Path, doc_results):
    res = doc_results()
    res["targets"] = evaluate_targets(res)
    (tmp_path / "r.json").write_text(json.dumps(res))
    assert json.loads((tmp_path / "r.json").read_text())["targets"][0]["key"] == "full_c1_p50"


def test_doc_says_where_each_ratio_comes_from(doc_results):
    res = doc_results()
    text = bench.render_doc(res, evaluate_targets(res), None)
    assert "docs/results/serving-20261128.json" in text
    for t in RATIO_TARGETS:
        assert f"| {t.text} | {t.was} |" in text
    assert (
        "| full path, c=32: req/s ≥ 0.48 x the empty model's req/s at c=32 | ≥ 1,000 req/s" in text
    )
    assert "| 2,101.4 req/s | 0.476 | 0.48 |" in text


def test_doc_names_the_extra_transformer_settings(doc_results):
    res = doc_results()
    res["config"]["transformer_args"] = ["--mode", "cached", "--x=1"]
    res["config"]["transformer_env"] = {"AUTH": "off"}
    text = bench.render_doc(res, evaluate_targets(res), None)
    assert "`python -m transformer --mode cached --x=1` with `AUTH=off`," in text
    res["config"]["transformer_env"] = {}
    assert "with `" not in bench.render_doc(res, evaluate_targets(res), None)
