"""The run's plan and the transformers' settings (devtools/bench/run.py); no processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.bench import run as bench
from devtools.bench.cli import parse_args

pytestmark = pytest.mark.unit


def plan(tmp_path: Path, *argv: str) -> bench.Bench:
    b = bench.Bench(parse_args(list(argv)), tmp_path / "work")
    b.http.close()
    return b


def test_a_subset_run_adds_the_floors_of_its_targets(tmp_path: Path):
    b = plan(tmp_path, "--scenarios", "full,cache_hit")
    assert b.cfg.steps == ["full", "cache_hit"] and b.steps == ["full", "cache_hit", "empty"]
    assert plan(tmp_path / "2", "--scenarios", "empty,full").steps == ["empty", "full"]
    assert plan(tmp_path / "3", "--scenarios", "features").steps == ["features"]


def test_extra_transformer_args_follow_the_benchmarks_own(tmp_path: Path):
    b = plan(tmp_path, "--transformer-arg=--x=1", "--registry-refresh-s", "2")
    assert b.transformer_args() == ["--mode", "cached", "--registry_refresh_s", "2.0", "--x=1"]


def test_transformer_env_adds_to_the_feature_env(tmp_path: Path):
    env = bench.TransformerEnv(tmp_path, "127.0.0.1:1", {"AUTH": "off"}).env
    assert env["AUTH"] == "off" and env["REDIS_CONNECTION_STRING"] == "127.0.0.1:1"
    assert "FEAST_FS_YAML_FILE_PATH" in env
    assert bench.TransformerEnv(tmp_path, None, {}).env == {}
