from __future__ import annotations

import os
from typing import Any

import httpx

JSON = {"content-type": "application/json"}
REQUEST_FIELDS = ("session_duration_s", "hour_of_day")


def producer_row(user_id: int, click_through_rate: float = 0.45) -> dict[str, Any]:
    """One row of ``user_data`` for ``POST /producer/v1/write``."""
    return {
        "user_id": user_id,
        "click_through_rate": click_through_rate,
        "number_of_clicks": 90,
        "average_page_duration": 12.0,
        "sessions_last_7d": 9,
        "days_since_signup": 30,
        "conversion_rate": 0.2,
    }


def v2_body(
    ids: list[int],
    durations: list[float] | None = None,
    hours: list[int] | None = None,
    **params: Any,
) -> dict[str, Any]:
    n = len(ids)
    durations = durations or [35.0] * n
    hours = hours or [20] * n
    body: dict[str, Any] = {
        "inputs": [
            {"name": "user_id", "datatype": "INT64", "shape": [n], "data": ids},
            {"name": "session_duration_s", "datatype": "FP64", "shape": [n], "data": durations},
            {"name": "hour_of_day", "datatype": "INT64", "shape": [n], "data": hours},
        ]
    }
    if params:
        body["parameters"] = params
    return body


def outputs(response: httpx.Response) -> dict[str, list[Any]]:
    assert response.status_code == 200, response.text
    return {o["name"]: o["data"] for o in response.json()["outputs"]}


def online_features(features_env, ids, durations, hours) -> dict[str, list[Any]]:
    """What Feast's SDK returns for these users, keyed by full feature name."""
    from feast import FeatureStore

    old = {k: os.environ.get(k) for k in features_env.env}
    os.environ.update(features_env.env)
    try:
        yaml = "feature_store.redis.yaml" if features_env.redis else "feature_store.yaml"
        store = FeatureStore(
            repo_path=str(features_env.repo), fs_yaml_file=features_env.repo / yaml
        )
        svc = store.get_feature_service("click_model_v1")
        resp = store.get_online_features(
            features=svc,
            entity_rows={"user_id": ids, "session_duration_s": durations, "hour_of_day": hours},
            full_feature_names=False,
        ).to_dict()
        out = {}
        for proj in svc.feature_view_projections:
            for f in proj.features:
                out[f"{proj.name_to_use()}__{f.name}"] = resp[f.name]
        return out
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def metric(url: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=10).text
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    raise AssertionError(f"{name}{labels} not in /metrics")
