"""Train the click model on a point-in-time-correct Feast training set.

``python -m predictor.jobs.train --framework sklearn|xgboost --output models/sklearn``

1. labelled events (``data/events.parquet``) are the entity dataframe;
2. ``get_historical_features`` joins each event to the feature values *as of its timestamp*
   and computes the on-demand features from the request fields;
3. a time-based split keeps the latest ``--holdout`` share of events for evaluation;
4. the model is trained, evaluated (AUC, log loss, base rate) and written with its metadata,
   the hold-out's input and score distributions (``baseline.json``, see ``predictor.jobs.baseline``)
   and a ROC plot (``roc.png``).
"""

from __future__ import annotations

import argparse
import io
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from predictor.jobs import baseline
from predictor.protocol.artifact import ModelMetadata, write_model_dir
from predictor.protocol.codec import feast_to_v2
from predictor.transforms import signed_log1p

log = logging.getLogger("predictor.jobs.train")


class Progress:
    """Numbered steps with timings, so a long run shows where it is."""

    def __init__(self, total: int):
        self.total, self.n, self.t0 = total, 0, time.perf_counter()

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        self.n += 1
        t = time.perf_counter()
        log.info("[%d/%d] %s ...", self.n, self.total, what)
        yield
        log.info(
            "[%d/%d] %s done in %.1fs (total %.1fs)",
            self.n,
            self.total,
            what,
            time.perf_counter() - t,
            time.perf_counter() - self.t0,
        )


@dataclass
class TrainingSet:
    frame: pd.DataFrame
    features: list[dict[str, str]]  # [{"name", "datatype"}] in column order


def feature_specs(store: Any, feature_service: str) -> list[dict[str, str]]:
    """Ordered (full name, v2 datatype) of a FeatureService's features."""
    specs = []
    for proj in store.get_feature_service(feature_service).feature_view_projections:
        for f in proj.features:
            datatype = feast_to_v2(f.dtype)
            if datatype is None:
                raise ValueError(f"{proj.name}:{f.name} has type {f.dtype}, not a model input type")
            specs.append({"name": f"{proj.name_to_use()}__{f.name}", "datatype": datatype})
    return specs


def build_training_set(repo: Path, feature_service: str, label: str) -> TrainingSet:
    from feast import FeatureStore

    store = FeatureStore(repo_path=str(repo))
    events = pd.read_parquet(repo / "data" / "events.parquet")
    entity_df = events[["user_id", "event_timestamp", "session_duration_s", "hour_of_day", label]]
    svc = store.get_feature_service(feature_service)
    frame = store.get_historical_features(
        entity_df=entity_df, features=svc, full_feature_names=True
    ).to_df()
    specs = feature_specs(store, feature_service)
    names = [s["name"] for s in specs]
    before = len(frame)
    frame = frame.dropna(subset=names).sort_values("event_timestamp", ignore_index=True)
    log.info(
        "training set: %d of %d events have features as of their timestamp (%d dropped)",
        len(frame),
        len(events),
        len(events) - len(frame),
    )
    if before == 0 or frame.empty:
        raise SystemExit("no training rows: run `feast apply` and generate data first")
    return TrainingSet(frame, specs)


def fit(framework: str, x: np.ndarray, y: np.ndarray, seed: int) -> tuple[Any, bytes]:
    """Train one framework; returns (model, serialized bytes)."""
    if framework == "sklearn":
        import joblib
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import FunctionTransformer, StandardScaler

        model = make_pipeline(
            FunctionTransformer(signed_log1p),
            StandardScaler(),
            LogisticRegression(C=1.0, max_iter=2000),
        )
        model.fit(x, y)
        buf = io.BytesIO()
        joblib.dump(model, buf)
        return model, buf.getvalue()
    import xgboost as xgb

    model = xgb.XGBClassifier(
        n_estimators=300,
        max_depth=4,
        learning_rate=0.05,
        subsample=0.9,
        colsample_bytree=0.9,
        random_state=seed,
        n_jobs=2,
        eval_metric="logloss",
    )
    model.fit(x, y, verbose=False)
    raw = model.get_booster().save_raw(raw_format="ubj")
    return model, bytes(raw)


def evaluate(model: Any, x: np.ndarray, y: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    from sklearn.metrics import log_loss, roc_auc_score

    p = model.predict_proba(x)[:, 1]
    return (
        {
            "auc": float(roc_auc_score(y, p)),
            "log_loss": float(log_loss(y, p)),
            "base_rate": float(y.mean()),
            "mean_prediction": float(p.mean()),
        },
        p,
    )


def plot_roc(path: Path, y: np.ndarray, p: np.ndarray, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=110)
    ax.plot(fpr, tpr, label=f"AUC {roc_auc_score(y, p):.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def train(
    repo: Path,
    output: Path,
    framework: str,
    feature_service: str,
    label: str,
    holdout: float,
    seed: int,
) -> ModelMetadata:
    progress = Progress(5)
    with progress.step("building the point-in-time training set"):
        ts = build_training_set(repo, feature_service, label)
    names = [s["name"] for s in ts.features]
    frame = ts.frame
    cut = int(len(frame) * (1.0 - holdout))
    train_df, test_df = frame.iloc[:cut], frame.iloc[cut:]
    x_train = train_df[names].to_numpy(np.float64)
    y_train = train_df[label].to_numpy(np.int64)
    x_test = test_df[names].to_numpy(np.float64)
    y_test = test_df[label].to_numpy(np.int64)
    log.info(
        "time split: %d train rows, %d hold-out rows (from %s)",
        len(train_df),
        len(test_df),
        test_df["event_timestamp"].iloc[0],
    )
    with progress.step(f"training {framework}"):
        model, blob = fit(framework, x_train, y_train, seed)
    with progress.step("evaluating on the hold-out"):
        metrics, p = evaluate(model, x_test, y_test)
        train_metrics, _ = evaluate(model, x_train, y_train)
        metrics["train_auc"] = train_metrics["auc"]
        log.info(
            "hold-out AUC %.4f, log loss %.4f (train AUC %.4f)",
            metrics["auc"],
            metrics["log_loss"],
            metrics["train_auc"],
        )
    with progress.step(f"writing {output}"):
        meta = write_model_dir(
            output,
            framework,
            blob,
            {
                "feature_service": feature_service,
                "label": label,
                "features": ts.features,
                "training_window": _window(train_df),
                "holdout_window": _window(test_df),
                "metrics": metrics
                | {"n_train": float(len(train_df)), "n_holdout": float(len(test_df))},
                "created_at": datetime.now(UTC),
            },
        )
        # the hold-out's input and score distributions, for live drift monitoring
        quality = {k: metrics[k] for k in ("auc", "log_loss")}
        baseline.write(output, baseline.compute(meta.version, names, x_test, p, metrics=quality))
    with progress.step("plotting the ROC curve"):
        plot_roc(output / "roc.png", y_test, p, f"{meta.version} ({label}, hold-out)")
    log.info("model %s written to %s", meta.version, output)
    return meta


def _window(df: pd.DataFrame) -> dict[str, Any]:
    return {
        "start": df["event_timestamp"].min().to_pydatetime(),
        "end": df["event_timestamp"].max().to_pydatetime(),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m predictor.jobs.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--repo", type=Path, default=Path("feature_repo"), help="Feast feature repo")
    p.add_argument("--framework", choices=["sklearn", "xgboost"], default="sklearn")
    p.add_argument("--output", type=Path, help="model directory (default models/<framework>)")
    p.add_argument("--feature-service", default="click_model_v1")
    p.add_argument("--label", choices=["clicked", "converted"], default="clicked")
    p.add_argument("--holdout", type=float, default=0.2, help="latest share of events held out")
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not 0.0 < a.holdout < 1.0:
        p.error("--holdout must be between 0 and 1")
    train(
        a.repo,
        a.output or Path("models") / a.framework,
        a.framework,
        a.feature_service,
        a.label,
        a.holdout,
        a.seed,
    )


if __name__ == "__main__":
    main()
