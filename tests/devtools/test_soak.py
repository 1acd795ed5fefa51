"""The soak's reading of RSS and descriptors: per-peer census and windowed medians."""

import os
import socket

import pytest

from devtools import stack
from devtools.soak import compare, fd_census

pytestmark = pytest.mark.unit


def test_census_names_sockets_by_peer():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    try:
        census = fd_census(os.getpid(), {port: "redis"})
    finally:
        for s in (client, accepted, server):
            s.close()
    assert census["listening on redis"] == 1
    assert census["connection to redis"] == 1  # the client side
    assert census["connection from a client of redis"] == 1  # the accepted side
    after = fd_census(os.getpid(), {port: "redis"})
    assert not any("redis" in k for k in after)


def _samples(fds: list[int], every_s: float = 5.0) -> list[dict]:
    return [
        {"t_s": (i + 1) * every_s, "rss_kib": 1000, "fds": n, "fds_by_kind": {"x": n}}
        for i, n in enumerate(fds)
    ]


def test_one_socket_of_churn_at_either_end_is_not_a_change():
    """48 -> 51 in single samples (the old rule failed it); medians of a minute agree."""
    fds = [48] * 6 + [50, 49, 50] * 30 + [50] * 11 + [51]
    out = compare(_samples(fds), warmup_s=0)
    assert fds[-1] / fds[0] - 1 > 0.05  # what the single first and last samples said
    assert (out["start"]["fds"], out["end"]["fds"]) == (49, 50)
    assert abs(out["fds_change"]) <= 0.05
    assert out["window_s"] == 60.0 and out["start"]["samples"] == 13


def test_a_steady_climb_is_a_change():
    fds = list(range(48, 48 + 120))  # one descriptor more every 5 s: a leak
    out = compare(_samples(fds), warmup_s=30)
    assert out["fds_change"] > 0.05
    assert out["end"]["fds_by_kind"]["x"] > out["start"]["fds_by_kind"]["x"]


def test_short_runs_compare_quarters():
    out = compare(_samples([10] * 24), warmup_s=30)  # 120 s, 90 s measured
    assert out["window_s"] == 22.5 and out["fds_change"] == 0


def test_children_do_not_inherit_feasts_multiprocess_metrics_dir(monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/tmp/feast_metrics_abc")
    monkeypatch.setenv("PROMETHEUS_MULTIPROCESS_DIR", "/tmp/feast_metrics_abc")
    env = stack.child_environ()
    assert "PROMETHEUS_MULTIPROC_DIR" not in env and "PROMETHEUS_MULTIPROCESS_DIR" not in env
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/var/run/mine")  # the user's own: kept
    assert stack.child_environ()["PROMETHEUS_MULTIPROC_DIR"] == "/var/run/mine"
