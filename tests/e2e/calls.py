"""The v2 request every e2e test sends, and the call that checks it answered 200."""

from __future__ import annotations


def body(ids, dur=35.0, hour=20, **params):
    n = len(ids)
    b = {
        "inputs": [
            {"name": "user_id", "datatype": "INT64", "shape": [n], "data": ids},
            {"name": "session_duration_s", "datatype": "FP64", "shape": [n], "data": [dur] * n},
            {"name": "hour_of_day", "datatype": "INT64", "shape": [n], "data": [hour] * n},
        ]
    }
    if params:
        b["parameters"] = params
    return b


def infer(http, target, b):
    r = http.post(f"/v2/models/{target.model}/infer", json=b)
    assert r.status_code == 200, r.text
    return {o["name"]: o["data"] for o in r.json()["outputs"]}
