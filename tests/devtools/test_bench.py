"""The pure parts of the serving benchmark (devtools/bench.py): no processes, no network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools import bench

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


def test_percentile_is_nearest_rank():
    values = [float(i) for i in range(1, 101)]  # 1..100
    assert bench.percentile(values, 50) == 50.0
    assert bench.percentile(values, 99) == 99.0
    assert bench.percentile(values, 99.9) == 100.0
    assert bench.percentile(values, 100) == 100.0
    assert bench.percentile([7.0], 50) == 7.0
    with pytest.raises(ValueError):
        bench.percentile([], 50)
    with pytest.raises(ValueError):
        bench.percentile(values, 0)


def test_latency_summary_in_ms():
    s = bench.latency_summary([0.001] * 999 + [0.1])
    assert s["p50"] == pytest.approx(1.0) and s["p99"] == pytest.approx(1.0)
    assert s["p999"] == pytest.approx(1.0) and s["max"] == pytest.approx(100.0)
    assert s["mean"] == pytest.approx((0.999 + 0.1) / 1000 * 1000)


def test_prom_value_sums_labels_and_ignores_other_metrics():
    text = "\n".join(
        [
            "# HELP transformer_cache_hits_total Rows answered from a fresh cached prediction",
            "transformer_cache_hits_total 12.0",
            "transformer_cache_hits_created 1.7e9",
            'transformer_predictions_total{source="cache"} 5.0',
            'transformer_predictions_total{source="model"} 2.0',
        ]
    )
    assert bench.prom_value(text, "transformer_cache_hits_total") == 12.0
    assert bench.prom_value(text, "transformer_predictions_total") == 7.0
    with pytest.raises(KeyError):
        bench.prom_value(text, "transformer_cache_misses_total")


def test_parse_proc_status_in_bytes():
    text = "Name:\tpython\nVmPeak:\t 2000 kB\nVmHWM:\t  300 kB\nVmRSS:\t  200 kB\nThreads:\t9\n"
    st = bench.parse_proc_status(text)
    assert st["VmHWM"] == 300 * 1024 and st["VmRSS"] == 200 * 1024 and "Threads" not in st


def test_cpu_model_from_cpuinfo():
    assert bench.cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n") == "AMD EPYC 7B13"


def test_predictor_body_follows_the_metadata_order_and_types():
    inputs = [
        {"name": "b__clicks", "datatype": "INT64", "shape": [-1]},
        {"name": "a__rate", "datatype": "FP32", "shape": [-1]},
        {"name": "c__missing", "datatype": "FP64", "shape": [-1]},
    ]
    body = bench.predictor_body(inputs, {"a__rate": 0.25, "b__clicks": 41.6, "c__missing": None})
    assert [t["name"] for t in body["inputs"]] == ["b__clicks", "a__rate", "c__missing"]
    assert [t["data"] for t in body["inputs"]] == [[42], [0.25], [1.0]]
    assert all(t["shape"] == [1] for t in body["inputs"])


def test_transformer_body_and_the_lua_request_agree():
    body = bench.transformer_body([1, 2], cache=False)
    assert body["parameters"] == {"cache": False}
    assert [i["data"] for i in body["inputs"]] == [[1, 2], [35.0, 35.0], [20, 20]]
    lua = (bench.ROOT / "bench" / "infer.lua").read_text()
    assert '"35.0"' in lua and '"20"' in lua  # same request context as the cache warm-up


def run(scenario, c, rps=100.0, p50=1.0, p99=2.0, p999=3.0, batch=1, errors=0):
    return {
        "scenario": scenario,
        "concurrency": c,
        "rps": rps,
        "users_per_s": rps * batch,
        "errors": errors,
        "requests": int(rps * 10),
        "latency_ms": {"p50": p50, "p90": p99, "p99": p99, "p999": p999, "mean": p50, "max": p999},
    }


def passing_results():
    return {
        "runs": [
            run("full", 1, p50=1.5, p99=4.0, p999=6.0),
            run("full", 32, rps=1200, p99=40.0),
            run("cache_hit", 1, p50=0.8, p999=2.0),
            run("cache_hit", 32, rps=2500),
            run("batch100", 8, rps=250, batch=100),
            *(run("predictor", c, rps=900) for c in bench.CONCURRENCY),
            *(run("mlserver", c, rps=800) for c in bench.CONCURRENCY),
        ],
        "cold_start_s": {"transformer": {"median": 2.5}, "predictor": {"median": 1.5}},
        "rss_mb": {"transformer": {"peak": 250.0}, "predictor": {"peak": 200.0}},
    }


def by_key(targets):
    return {t["key"]: t for t in targets}


def test_every_target_met():
    targets = by_key(bench.evaluate_targets(passing_results()))
    assert {k: t["met"] for k, t in targets.items()} == {
        "full_c1_p50": True,
        "full_c1_p99": True,
        "full_c32_rps": True,
        "full_c32_p99": True,
        "cache_c32_rps": True,
        "predictor_vs_mlserver": True,
        "batch100_users": True,
        "cold_transformer": True,
        "cold_predictor": True,
        "rss_transformer": True,
        "rss_predictor": True,
        "no_spikes": True,
    }
    assert targets["batch100_users"]["value"] == 25000
    assert targets["no_spikes"]["value"] == 4.0  # full: 6.0 / 1.5


def test_targets_not_met_and_not_measured():
    res = passing_results()
    res["runs"] = [r for r in res["runs"] if r["scenario"] not in ("mlserver", "batch100")]
    res["runs"][0] = run("full", 1, p50=2.5, p99=6.0, p999=30.0)  # slow, with a spike
    res["runs"][1] = run("full", 32, rps=1500, p99=40.0, errors=3)  # errors: not counted
    res["cold_start_s"]["transformer"]["median"] = 5.5
    res["rss_mb"]["predictor"]["peak"] = 301.0
    targets = by_key(bench.evaluate_targets(res))
    assert targets["full_c1_p50"]["met"] is False and targets["full_c1_p99"]["met"] is False
    assert targets["full_c32_rps"]["met"] is False and targets["full_c32_p99"]["met"] is False
    assert "3 failed requests" in targets["full_c32_rps"]["measured"]
    assert targets["predictor_vs_mlserver"]["met"] is None
    assert "--mlserver" in targets["predictor_vs_mlserver"]["measured"]
    assert targets["batch100_users"]["met"] is None
    assert targets["cold_transformer"]["met"] is False and targets["cold_predictor"]["met"]
    assert targets["rss_predictor"]["met"] is False
    assert targets["no_spikes"]["met"] is False and "full" in targets["no_spikes"]["measured"]


def test_predictor_slower_than_mlserver_at_one_concurrency_is_not_met():
    res = passing_results()
    for r in res["runs"]:
        if r["scenario"] == "mlserver" and r["concurrency"] == 32:
            r["rps"] = 1000.0
    t = by_key(bench.evaluate_targets(res))["predictor_vs_mlserver"]
    assert t["met"] is False and t["value"] == pytest.approx(0.9)


def test_predictor_is_compared_with_the_faster_mlserver_configuration():
    res = passing_results()  # predictor 900 req/s, mlserver (defaults) 800
    res["runs"].append(run("mlserver_inproc", 8, rps=950))
    t = by_key(bench.evaluate_targets(res))["predictor_vs_mlserver"]
    assert t["met"] is False and "c=8: 900 vs 950 (mlserver_inproc)" in t["measured"]


def test_empty_results_measure_nothing():
    assert all(t["met"] is None for t in bench.evaluate_targets({}))


def doc_results():
    res = passing_results()
    res.update(
        {
            "id": "20260101T000000Z",
            "started_at": "2026-01-01T00:00:00+00:00",
            "config": {"duration_s": 10, "warmup_s": 2, "users": 10000, "quick": False},
            "machine": {"cores": 2, "cpu": "Test CPU", "packages": {"kserve": "0.21.0"}},
            "floors": {
                "redis_hgetall": {
                    "title": "Redis round trip",
                    "how": "redis-py HGETALL",
                    "n": 1000,
                    "latency_ms": {"p50": 0.08, "p99": 0.1, "p999": 0.2, "mean": 0.09},
                }
            },
        }
    )
    res["cold_start_s"] = {"transformer": {"runs": [2.4, 2.5, 2.6], "median": 2.5}}
    res["rss_mb"] = {"transformer": {"peak": 250.0, "end": 240.0}}
    return res


def test_doc_has_the_table_targets_and_a_fresh_analysis_block():
    res = doc_results()
    text = bench.render_doc(res, bench.evaluate_targets(res), None)
    assert "| full | 1 |" in text and "Test CPU" in text and "kserve 0.21.0" in text
    assert "| full path, c=1: p50 ≤ 2 ms | 1.50 ms | **met** |" in text
    assert "Redis round trip" in text and "| transformer | 2.50 | 2.40, 2.50, 2.60 |" in text
    assert text.count(bench.ANALYSIS_OPEN) == 1 and bench.ANALYSIS_PLACEHOLDER in text
    assert "Cache hit ratio" not in text  # no cache_hit run carries a ratio here


def test_regenerating_the_doc_keeps_the_analysis_block():
    res = doc_results()
    first = bench.render_doc(res, bench.evaluate_targets(res), None)
    mine = "## Why\n\nMost of a request is **JSON** decoding.\n| a | table |\n"
    edited = first.replace(bench.ANALYSIS_PLACEHOLDER, mine) + "\nstray text after\n"
    res["runs"][0] = run("full", 1, p50=3.0, p99=4.0, p999=6.0)
    second = bench.render_doc(res, bench.evaluate_targets(res), edited)
    assert mine in second and bench.ANALYSIS_PLACEHOLDER not in second
    assert "| full path, c=1: p50 ≤ 2 ms | 3.00 ms | **not met** |" in second
    assert "stray text after" not in second
    assert second.count(bench.ANALYSIS_OPEN) == 1 and second.count(bench.ANALYSIS_CLOSE) == 1


def test_extract_analysis_without_a_closing_marker_starts_fresh():
    block = bench.extract_analysis(f"# old\n{bench.ANALYSIS_OPEN}\nhalf an edit")
    assert bench.ANALYSIS_PLACEHOLDER in block


def test_results_json_is_serializable_with_doc_inputs(tmp_path: Path):
    res = doc_results()
    res["targets"] = bench.evaluate_targets(res)
    (tmp_path / "r.json").write_text(json.dumps(res))
    assert json.loads((tmp_path / "r.json").read_text())["targets"][0]["key"] == "full_c1_p50"


def test_cli_subsets_and_quick(tmp_path: Path):
    cfg = bench.parse_args(["--quick", "--scenarios", "full,floors", "--out", str(tmp_path)])
    assert cfg.steps == ["full", "floors"] and (cfg.duration_s, cfg.warmup_s) == (3, 1)
    assert cfg.out == tmp_path and not cfg.mlserver
    cfg = bench.parse_args(["--scenarios", "predictor,mlserver_inproc", "--duration", "5"])
    assert cfg.steps == ["predictor", "mlserver"] and cfg.mlserver
    cfg = bench.parse_args(["--mlserver", "--duration", "5"])
    assert cfg.steps[-1] == "mlserver" and cfg.duration_s == 5 and cfg.mlserver
    assert set(bench.DEFAULT_STEPS) <= set(cfg.steps)
    with pytest.raises(SystemExit):
        bench.parse_args(["--scenarios", "nope"])


def test_wrk_command_is_one_thread_with_latency():
    load = bench.Load("http://127.0.0.1:1/x", Path("bench/infer.lua"), {})
    cmd = bench.wrk_cmd(load, 32, 3)
    assert cmd[:5] == ["wrk", "-t1", "-c32", "-d3s", "--latency"] and cmd[-1] == load.url


def test_stall_floor_round_trips_with_a_real_second_process():
    f = bench.stall_floor(0.3)
    assert f["n"] > 100  # a round trip is tens of microseconds
    assert 0 < f["latency_ms"]["p50"] < 5 and f["per_s"] >= 0
