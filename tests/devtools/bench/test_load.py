"""wrk's command line and its summary line (devtools/bench/load.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.bench import load as bench

pytestmark = pytest.mark.unit

WRK_OUT = """Running 3s test @ http://127.0.0.1:8080/v2/models/click-model/infer
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.89ms  542.13us   9.20ms   92.01%
  3265 requests in 2.00s, 0.98MB read
Requests/sec:   1629.95
JSON {"requests":3265,"duration_us":2000000,"bytes":1028601,"errors":{"connect":0,"read":0,\
"write":0,"status":2,"timeout":1},"p50":4930,"p90":5060,"p99":6857,"p999":8473,"mean":4888.9,\
"stdev":542.1,"max":9196}
"""


def test_parse_wrk_reads_the_json_line():
    raw = bench.parse_wrk(WRK_OUT)
    assert raw["requests"] == 3265 and raw["p99"] == 6857 and raw["errors"]["status"] == 2


def test_parse_wrk_without_the_script_line_says_so():
    with pytest.raises(ValueError, match="JSON"):
        bench.parse_wrk("Running 3s test @ http://x\nRequests/sec: 10\n")


def test_wrk_record_rates_latency_and_errors():
    rec = bench.wrk_record(bench.parse_wrk(WRK_OUT), batch=100)
    assert rec["rps"] == pytest.approx(1632.5)
    assert rec["users_per_s"] == pytest.approx(163250.0)
    assert rec["errors"] == 3
    assert rec["latency_ms"]["p50"] == pytest.approx(4.93)
    assert rec["latency_ms"]["p999"] == pytest.approx(8.473)


def test_wrk_command_is_one_thread_with_latency():
    load = bench.Load("http://127.0.0.1:1/x", Path("bench/infer.lua"), {})
    cmd = bench.wrk_cmd(load, 32, 3)
    assert cmd[:5] == ["wrk", "-t1", "-c32", "-d3s", "--latency"] and cmd[-1] == load.url
