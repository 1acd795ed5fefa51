"""Interleaved A/B of the bandit's cost on the full path, and feedback calls/s (issue 14).

``python -m devtools.bandit_ab --rounds 6`` starts redis-server, Feast on Redis (a throwaway
copy of feature_repo), a scikit-learn and an XGBoost predictor (trained there), and two
transformers: A calls the scikit-learn predictor, B runs the bandit over both with statistics
seeded so that the policy picks the scikit-learn arm for every request (the same model as A:
the difference is the bandit's own work: the choice, the prediction ids, their records written
to Redis in the background, the statistics refresh). Then short wrk runs of the full path (one
user per request, cache bypassed: bench/infer.lua) against A and B in ABBA order, as
``devtools.monitoring_ab`` does, and wrk on ``POST .../feedback`` (one id per call, and 100).
"""

from __future__ import annotations

import argparse
import json
import uuid
from pathlib import Path

import httpx
import redis as redis_py

from devtools import stack
from devtools.bench.load import Load, run_wrk
from devtools.monitoring_ab import compare_arms, throwaway_repo


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m devtools.bandit_ab", description=__doc__)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--seconds", type=int, default=3)
    p.add_argument("--concurrency", default="1,32")
    p.add_argument("--users", type=int, default=2000)
    a = p.parse_args(argv)
    tmp, repo = throwaway_repo("bandit-ab-")
    with stack.redis_server() as redis:
        fenv = stack.FeatureEnv(repo, redis.connection_string)
        stack.prepare_features(fenv, n_users=a.users, force=True)
        dirs = {fw: tmp / fw for fw in ("sklearn", "xgboost")}
        for fw, d in dirs.items():
            stack.ensure_model(repo, d, fw)
        ports = {fw: stack.Ports.free() for fw in dirs}
        servers = [stack.start_predictor(d, ports[fw], tmp) for fw, d in dirs.items()]
        try:
            for s in servers:
                stack.wait_ready(s)
            sk_version = json.loads((dirs["sklearn"] / "metadata.json").read_text())["version"]
            xgb_version = json.loads((dirs["xgboost"] / "metadata.json").read_text())["version"]
            prefix = f"ab-{uuid.uuid4().hex[:6]}"
            with redis_py.Redis(port=redis.port) as r:  # the policy's pick: sklearn, always
                r.hset(
                    "{" + prefix + "}:stats",
                    mapping={
                        f"{sk_version}|trials": 100_000,
                        f"{sk_version}|reward": 50_000,
                        f"{xgb_version}|trials": 100_000,
                        f"{xgb_version}|reward": 0,
                    },
                )
            cfg = tmp / "bandit.yaml"
            cfg.write_text(
                "arms:\n"
                + "".join(f"  - {{host: '127.0.0.1:{p.predictor_http}'}}\n" for p in ports.values())
                + f"floor: 0\nindifference: 0\nkey_prefix: {prefix}\n"
            )
            other = stack.Ports(
                ports["sklearn"].predictor_http, 0, stack.free_port(), stack.free_port()
            )
            arms = {
                "single": stack.start_transformer(fenv, ports["sklearn"], "v2", tmp),
                "bandit": stack.start_transformer(
                    fenv,
                    other,
                    "v2",
                    tmp,
                    ["--bandit_file", str(cfg), "--bandit_redis", redis.connection_string],
                ),
            }
            servers += arms.values()
            compare_arms(arms, a)
            feedback_rate(arms["bandit"].url, tmp)
        finally:
            stack.stop(*servers)


def feedback_rate(url: str, tmp: Path) -> None:
    """Feedback calls/s: one id per call (after the first, duplicates: the same script run),
    and 100 ids per call."""
    with httpx.Client(base_url=url, timeout=10.0) as c:
        ids = []
        for u in range(1, 101):
            body = {
                "inputs": [
                    {"name": "user_id", "datatype": "INT64", "shape": [1], "data": [u]},
                    {
                        "name": "session_duration_s",
                        "datatype": "FP64",
                        "shape": [1],
                        "data": [30.0],
                    },
                    {"name": "hour_of_day", "datatype": "INT64", "shape": [1], "data": [20]},
                ]
            }
            out = c.post("/v2/models/click-model/infer", json=body).json()["outputs"]
            ids += next(o["data"] for o in out if o["name"] == "prediction_id")
    script = stack.ROOT / "bench" / "post.lua"
    for n in (1, 100):
        body_file = tmp / f"feedback-{n}.json"
        body_file.write_text(
            json.dumps({"feedback": [{"prediction_id": i, "reward": 1} for i in ids[:n]]})
        )
        load = Load(f"{url}/v2/models/click-model/feedback", script, {"BODY_FILE": str(body_file)})
        rec = run_wrk(load, 8, 3)
        print(
            f"feedback, {n} id(s) per call, c=8: {rec['rps']:.0f} calls/s "
            f"({rec['rps'] * n:.0f} items/s), p50 {rec['latency_ms']['p50']:.2f} ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
