"""Benchmark of stream inference (``make bench-stream``), on a throwaway feature repo and a
redis-server on loopback:

1. throughput: a backlog of ``--events`` events drained by one worker (batches of
   ``--batch-size``), then by two workers in one group: events/s from the workers' summaries;
2. latency: one worker fed by a paced producer at 50% of (1) and at ``--rate`` events/s for
   ``--seconds``: event time (stamped at XADD) → prediction written, p50/p99 over events;
3. the same feature rows pushed instead: through Feast's feature server (``feast serve``,
   ``POST /push`` to ``user_data_push``) and through the transformer's
   ``POST /producer/v1/write`` (cached mode, collocated model: it also rescores), each in
   requests of ``--batch-size`` rows, sequentially, for ``--seconds``.

Writes ``docs/results/stream.json`` and ``docs/img/stream.png``. Short runs: on a shared
machine the numbers are a floor; rerun on a quiet one with the same command.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import redis as redis_lib

from devtools import stack

log = logging.getLogger("bench.stream")
SUMMARY = re.compile(r"summary: (\d+) events in ([\d.]+)s.*worker cpu ([\d.]+)s")
APPLIED = re.compile(r"summary: .*applied (\d+)")


def now_us() -> int:
    return time.time_ns() // 1000


def event(i: int, user: int, ts_us: int, run: str) -> bytes:
    """Event ``i`` of a run; ids are unique per run (an id seen in an earlier run would be a
    duplicate: skipped, not scored)."""
    kind = ("page_view", "click", "session_end")[i % 3]
    e: dict[str, Any] = {
        "event_id": f"{run}-{i}",
        "user_id": user,
        "type": kind,
        "event_time": datetime.fromtimestamp(ts_us / 1e6, UTC).isoformat(),
    }
    if kind == "page_view":
        e["duration_s"] = 10.0 + i % 40
    return orjson.dumps(e)


def worker(fenv, model_dir, log_dir, name, stream, *args) -> stack.Server:
    port = stack.free_port()
    argv = [
        stack.PY, "-m", "transformer.stream", "run",
        "--feast_repo_path", str(fenv.repo), "--model_dir", str(model_dir),
        "--http_port", str(port), "--consumer", name, "--stream", stream,
        "--group", f"g-{stream}", "--output_stream", f"out-{stream}",
        "--block_ms", "100", "--progress_s", "5", *args,
    ]  # fmt: skip
    return stack._spawn(name, argv, fenv.env, log_dir, port)


def wait_ready(w: stack.Server, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if w.proc.poll() is not None:
            raise RuntimeError(f"{w.name} exited:\n{w.log_tail()}")
        try:
            if httpx.get(w.url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{w.name} not ready:\n{w.log_tail()}")


def publish_backlog(rc, stream: str, n: int, users: int) -> None:
    ts = now_us()
    for k in range(0, n, 2000):
        pipe = rc.pipeline(transaction=False)
        for i in range(k, min(n, k + 2000)):
            pipe.xadd(stream, {"event": event(i, 1 + i % users, ts, stream)})
        pipe.execute()


def throughput(fenv, model_dir, log_dir, rc, n_workers: int, events: int, users: int, batch: int):
    stream = f"tp{n_workers}"
    rc.xgroup_create(stream, f"g-{stream}", id="0", mkstream=True)
    publish_backlog(rc, stream, events, users)
    ws = [
        worker(fenv, model_dir, log_dir, f"tp{n_workers}-{k}", stream, "--batch_size", str(batch),
               "--until_idle", "true")
        for k in range(n_workers)
    ]  # fmt: skip
    for w in ws:
        w.proc.wait(timeout=600)
    texts = [w.log_path.read_text() for w in ws if w.log_path]
    done = [SUMMARY.search(t) for t in texts]
    applied = sum(int(m.group(1)) for t in texts if (m := APPLIED.search(t)))
    if not all(done):
        raise RuntimeError("a worker printed no summary:\n" + "\n".join(w.log_tail() for w in ws))
    total = sum(int(m.group(1)) for m in done if m)
    seconds = max(float(m.group(2)) for m in done if m)
    cpu = sum(float(m.group(3)) for m in done if m)
    return {
        "workers": n_workers,
        "events": total,
        "seconds": seconds,
        "events_per_s": total / seconds,
        # what a dedicated core would give the worker(s) (Redis's own CPU not included)
        "events_per_worker_cpu_s": total / cpu if cpu else None,
        "applied": applied,  # = events: every event did the full work, none was a replay
    }


def paced(rc, stream: str, rate: float, seconds: float, users: int, start_i: int) -> dict[str, int]:
    """XADD at ``rate`` events/s in 10 ms ticks; returns event id → event time (µs)."""
    sent: dict[str, int] = {}
    tick = 0.01
    per_tick = rate * tick
    due = 0.0
    i = start_i
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        due += per_tick
        pipe = rc.pipeline(transaction=False)
        while due >= 1:
            ts = now_us()
            pipe.xadd(stream, {"event": event(i, 1 + i % users, ts, stream)})
            sent[f"{stream}-{i}"] = ts
            i += 1
            due -= 1
        pipe.execute()
        next_t = t0 + (tick * (1 + int((time.perf_counter() - t0) / tick)))
        time.sleep(max(0.0, next_t - time.perf_counter()))
    return sent


def latency(fenv, model_dir, log_dir, rc, rate: float, seconds: float, users: int, batch: int):
    stream = f"lat{int(rate)}"
    w = worker(fenv, model_dir, log_dir, stream, stream, "--batch_size", str(batch))
    try:
        wait_ready(w)
        sent = paced(rc, stream, rate, seconds, users, 0)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            g = rc.xinfo_groups(stream)[0]
            if g["lag"] == 0 and g["pending"] == 0:
                break
            time.sleep(0.1)
    finally:
        w.proc.send_signal(signal.SIGTERM)
        w.proc.wait(timeout=30)
    lat = []
    for _, f in rc.xrange(f"out-{stream}"):
        written = int(f[b"written_us"])
        lat += [
            (written - sent[i]) / 1000 for i in f[b"event_ids"].decode().split(",") if i in sent
        ]
    a = np.asarray(lat)
    return {
        "rate": rate,
        "achieved_rate": len(sent) / seconds,
        "events": len(sent),
        "measured": int(a.size),
        "p50_ms": float(np.percentile(a, 50)),
        "p99_ms": float(np.percentile(a, 99)),
    }


def feature_rows(n: int, users: int, k: int) -> list[dict[str, Any]]:
    return [
        {
            "user_id": 1 + (k * n + i) % users,
            "click_through_rate": 0.05 + (i % 10) / 100,
            "number_of_clicks": 10 + i % 50,
            "average_page_duration": 20.0 + i % 30,
            "sessions_last_7d": 1 + i % 9,
            "days_since_signup": 100 + i % 300,
            "conversion_rate": 0.02,
        }
        for i in range(n)
    ]


def push_loop(post, rows_per_req: int, seconds: float, users: int) -> dict[str, float]:
    lat = []
    k = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        rows = feature_rows(rows_per_req, users, k)
        t = time.perf_counter()
        post(rows)
        lat.append((time.perf_counter() - t) * 1000)
        k += 1
    total = time.perf_counter() - t0
    return {
        "rows_per_request": rows_per_req,
        "requests": k,
        "rows_per_s": k * rows_per_req / total,
        "request_p50_ms": float(np.percentile(lat, 50)),
        "request_p99_ms": float(np.percentile(lat, 99)),
    }


def feast_push(fenv, log_dir, rows_per_req, seconds, users) -> dict[str, float]:
    port = stack.free_port()
    feast = str(Path(stack.PY).parent / "feast")
    argv = [feast, "--chdir", str(fenv.repo), "serve", "-h", "127.0.0.1", "-p", str(port)]
    server = stack._spawn("feast-serve", argv, fenv.env, log_dir, port)
    try:
        stack.wait_listening(port, server.proc, "feast serve", 120)
        with httpx.Client(base_url=server.url, timeout=30) as c:

            def post(rows):
                df = {k: [r[k] for r in rows] for k in rows[0]}
                now = datetime.now(UTC).isoformat()
                df["event_timestamp"] = [now] * len(rows)
                df["created"] = [now] * len(rows)
                body = {"push_source_name": "user_data_push", "df": df, "to": "online"}
                r = c.post("/push", json=body)
                r.raise_for_status()

            post(feature_rows(1, users, 0))  # warm up
            return push_loop(post, rows_per_req, seconds, users)
    finally:
        stack.stop(server)


def producer_write(fenv, model_dir, log_dir, rows_per_req, seconds, users) -> dict[str, float]:
    ports = stack.Ports.free()
    extra = ["--mode", "cached", "--collocated_model_dir", str(model_dir)]
    tr = stack.start_transformer(fenv, ports, "v2", log_dir, extra)
    try:
        stack.wait_ready(tr)
        with httpx.Client(base_url=tr.url, timeout=30) as c:

            def post(rows):
                r = c.post("/producer/v1/write", json={"rows": rows})
                r.raise_for_status()

            post(feature_rows(1, users, 0))
            return push_loop(post, rows_per_req, seconds, users)
    finally:
        stack.stop(tr)


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=110)
    labels = [f"stream, {t['workers']} worker(s)" for t in results["throughput"]]
    values = [t["events_per_s"] for t in results["throughput"]]
    labels += ["feast serve /push", "transformer /producer/v1/write"]
    values += [results["feast_push"]["rows_per_s"], results["producer_write"]["rows_per_s"]]
    a1.barh(labels, values, color=["#1f77b4", "#1f77b4", "#7f7f7f", "#ff7f0e"])
    a1.axvline(10_000, color="red", ls="--", lw=1, label="target 10,000/s")
    a1.set_xlabel(f"events (rows) per second, batches of {results['batch_size']}")
    a1.legend(loc="lower right", fontsize=8)
    lat = results["latency"]
    for x in lat:
        r = f"{int(x['rate'])}/s"
        a2.bar([f"{r}\np50", f"{r}\np99"], [x["p50_ms"], x["p99_ms"]], color=["#1f77b4", "#aec7e8"])
    a2.axhline(50, color="red", ls="--", lw=1, label="p99 target 50 ms at 1,000/s")
    a2.set_ylabel("event time → prediction written, ms")
    a2.legend(fontsize=8)
    fig.suptitle(f"Stream inference ({results['machine']}, {results['note']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m devtools.bench_stream", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--events", type=int, default=100_000, help="backlog for the throughput run")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--rate", type=float, default=1000.0, help="the latency target's rate")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each paced/push run")
    p.add_argument("--note", default="shared machine, short runs")
    p.add_argument("--out", type=Path, default=stack.ROOT / "docs/results/stream.json")
    p.add_argument("--plot", type=Path, default=stack.ROOT / "docs/img/stream.png")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from devtools.bench.machine import machine_info

    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp, stack.redis_server() as rs:
        tmp_path = Path(tmp)
        repo = tmp_path / "feature_repo"
        repo.mkdir()
        for f in (stack.ROOT / "feature_repo").iterdir():
            if f.is_file():
                (repo / f.name).write_bytes(f.read_bytes())
        fenv = stack.FeatureEnv(repo, rs.connection_string)
        stack.prepare_features(fenv, n_users=a.users, force=True)
        model_dir = tmp_path / "model"
        stack.ensure_model(repo, model_dir, "sklearn")
        rc = redis_lib.Redis(port=rs.port)
        logs = tmp_path / "logs"
        logs.mkdir()
        results: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{os.cpu_count()} cores",
            "machine_info": machine_info(),
            "note": a.note,
            "users": a.users,
            "batch_size": a.batch_size,
            "command": "make bench-stream",
            "throughput": [],
        }
        for n in (1, 2):
            r = throughput(fenv, model_dir, logs, rc, n, a.events, a.users, a.batch_size)
            log.info("throughput: %s", r)
            results["throughput"].append(r)
        one = results["throughput"][0]["events_per_s"]
        results["latency"] = []
        for rate in sorted({round(one * 0.5), a.rate}):
            r = latency(fenv, model_dir, logs, rc, rate, a.seconds, a.users, a.batch_size)
            log.info("latency: %s", r)
            results["latency"].append(r)
        results["feast_push"] = feast_push(fenv, logs, a.batch_size, a.seconds, a.users)
        log.info("feast push: %s", results["feast_push"])
        results["producer_write"] = producer_write(
            fenv, model_dir, logs, a.batch_size, a.seconds, a.users
        )
        log.info("producer write: %s", results["producer_write"])
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2) + "\n")
    plot(results, a.plot)
    print(json.dumps({k: v for k, v in results.items() if k != "machine_info"}, indent=2))


if __name__ == "__main__":
    main()
