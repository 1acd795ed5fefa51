"""``make bandit-sim``: the bandit's policies offline, on the synthetic users.

Users and their features come from ``predictor.jobs.datagen`` (the same generator as the feature
repo), each request draws a user and a request context (session length, hour) as the labelled
events do, and the click probability is the generator's ground truth (``click_logit``).

Two arms, two models of that probability:

- ``context-aware``: the ground-truth logit with noise (sd 0.3), i.e. a model that learned the
  user features and the request-time (on-demand) features;
- ``context-blind``: only the user features (click-through rate, sessions), as a model without
  the on-demand features would.

The application shows an offer to the requests its arm scores in that arm's top 20 % (the
same budget for both arms), and a shown offer is clicked with the true probability: reward 1.
So the better arm is the one that ranks better. Regret is the pseudo-regret
``sum_t (mu_best - mu_{arm_t})`` with each arm's mean reward ``mu`` measured on 400,000 draws.

Policies: the transformer's own ``Thompson`` and ``EpsilonGreedy`` (``transformer/multimodel/
bandit.py``), statistics refreshed every ``--refresh-every`` requests as the serving path's
local copy lags, and a fixed 50/50 split. Writes ``docs/img/bandit-sim.png`` and
``docs/results/bandit-sim.json``.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from predictor.jobs.datagen import DataSpec, _sigmoid, click_logit, user_snapshots
from transformer.multimodel.bandit import ArmStats, EpsilonGreedy, Policy, Thompson

ROOT = Path(__file__).resolve().parents[1]
ARMS = ("context-aware", "context-blind")
BUDGET = 0.2  # share of requests shown the offer, per arm


@dataclass
class World:
    p: np.ndarray  # true click probability per request
    shown: np.ndarray  # (requests, arms): the arm's score is in its top BUDGET
    mu: np.ndarray  # mean reward per arm

    @property
    def best(self) -> int:
        return int(self.mu.argmax())


def world(n: int, n_users: int, seed: int) -> World:
    """``n`` requests over ``n_users`` synthetic users."""
    snap = user_snapshots(DataSpec(n_users=n_users, seed=7)).groupby("user_id").last()
    rng = np.random.default_rng(seed)
    u = rng.integers(0, len(snap), n)
    ctr = snap["click_through_rate"].to_numpy(float)[u]
    ses = snap["sessions_last_7d"].to_numpy(float)[u]
    dur = snap["average_page_duration"].to_numpy(float)[u]
    session = rng.lognormal(3.3, 0.8, n)  # as predictor.jobs.datagen.labelled_events draws them
    hour = rng.integers(0, 24, n)
    logit = click_logit(ctr, ses, dur, session, hour)
    scores = np.column_stack(
        [logit + rng.normal(0.0, 0.3, n), -2.4 + 28.0 * (ctr - 0.06) + 0.45 * np.log1p(ses)]
    )
    cut = np.quantile(scores, 1.0 - BUDGET, axis=0)
    shown = scores >= cut
    p = _sigmoid(logit)
    return World(p, shown, (shown * p[:, None]).mean(axis=0))


class Fixed(Policy):
    def choose(self, stats: Sequence[ArmStats], healthy: Sequence[int], rng: random.Random) -> int:
        return healthy[rng.randrange(len(healthy))]


def simulate(policy: Policy, w: World, n: int, seed: int, refresh_every: int) -> np.ndarray:
    """The arm picked per request."""
    rng, env = random.Random(seed), np.random.default_rng(seed + 1)
    idx = env.integers(0, len(w.p), n)
    clicks = env.random(n) < w.p[idx]  # the click if an offer is shown
    live = [ArmStats() for _ in ARMS]
    snap = [ArmStats() for _ in ARMS]
    picks = np.empty(n, np.int64)
    healthy = list(range(len(ARMS)))
    for t in range(n):
        a = policy.choose(snap, healthy, rng)
        picks[t] = a
        s = live[a]
        s.trials += 1
        s.reward += int(clicks[t] and w.shown[idx[t], a])
        if (t + 1) % refresh_every == 0:
            snap = [ArmStats(x.requests, x.trials, x.reward) for x in live]
    return picks


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m devtools.bandit_sim", description=__doc__)
    p.add_argument("--requests", type=int, default=50_000)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--refresh-every", type=int, default=250, help="requests per stats refresh")
    p.add_argument("--floor", type=float, default=0.02)
    p.add_argument("--indifference", type=float, default=0.05)
    p.add_argument("--epsilon", type=float, default=0.1)
    p.add_argument("--plot", type=Path, default=ROOT / "docs" / "img" / "bandit-sim.png")
    p.add_argument("--json", type=Path, default=ROOT / "docs" / "results" / "bandit-sim.json")
    a = p.parse_args(argv)

    w = world(400_000, a.users, seed=1)
    gap = w.mu[w.best] - w.mu
    policies: dict[str, Policy] = {
        f"thompson (floor {a.floor}, indifference {a.indifference})": Thompson(
            a.floor, a.indifference
        ),
        f"epsilon-greedy (epsilon {a.epsilon})": EpsilonGreedy(a.epsilon),
        "fixed 50/50": Fixed(),
    }
    results: dict[str, dict[str, float | list[float]]] = {}
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, policy in policies.items():
        regrets, shares = [], []
        for seed in range(a.seeds):
            picks = simulate(policy, w, a.requests, seed, a.refresh_every)
            regrets.append(np.cumsum(gap[picks]))
            shares.append((picks == w.best).astype(float))
        regret = np.mean(regrets, axis=0)
        share = np.mean(shares, axis=0)
        curves[name] = (regret, share)
        results[name] = {
            "regret": round(float(regret[-1]), 1),
            "regret_per_seed": [round(float(r[-1]), 1) for r in regrets],
            "best_arm_share_overall": round(float(share.mean()), 3),
            "best_arm_share_last_10000": round(float(share[-10_000:].mean()), 3),
        }
        print(f"{name:45s} regret {regret[-1]:8.1f}  best-arm share {share.mean():.3f}")
    fixed = results["fixed 50/50"]["regret"]
    assert isinstance(fixed, float)
    for r in results.values():
        assert isinstance(r["regret"], float)
        r["regret_vs_fixed"] = round(r["regret"] / fixed, 3)
    out = {
        "requests": a.requests,
        "seeds": a.seeds,
        "refresh_every": a.refresh_every,
        "arms": {name: round(float(m), 5) for name, m in zip(ARMS, w.mu, strict=True)},
        "best_arm": ARMS[w.best],
        "policies": results,
    }
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(out, indent=2) + "\n")
    plot(curves, a.plot, out)
    print(json.dumps({k: v["regret_vs_fixed"] for k, v in results.items()}))
    return 0


def plot(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, out: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    x = np.arange(1, out["requests"] + 1)
    k = 1000
    for name, (regret, share) in curves.items():
        left.plot(x, regret, label=name)
        rolling = np.convolve(share, np.ones(k) / k, mode="valid")
        right.plot(x[k - 1 :], rolling, label=name)
    mu = ", ".join(f"{n} {m:.4f}" for n, m in out["arms"].items())
    left.set(
        title=f"cumulative regret (mean of {out['seeds']} seeds)",
        xlabel="requests",
        ylabel="expected clicks lost",
    )
    right.set(
        title=f"share of the better arm ({out['best_arm']}), rolling {k}",
        xlabel="requests",
        ylim=(0, 1.02),
    )
    left.legend(fontsize=8)
    right.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"bandit on the synthetic users: clicks per request {mu}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
