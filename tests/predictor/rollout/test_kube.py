"""The real kubernetes client against a stand-in API server: the wire format of a patch and
the errors the CLI turns into messages."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.predictor.rollout.fakes import FakeApiServer, run
from tests.predictor.rollout.isvcs import (
    CANARY_20,
    NAME,
    NS,
    V2_URI,
    make_isvc,
)

pytestmark = pytest.mark.unit


def _real_api(host: str) -> Any:
    from kubernetes import client

    cfg = client.Configuration(host=host)
    return client.CustomObjectsApi(client.ApiClient(cfg))


def test_real_client_sends_merge_patch_with_json_null(
    api_server: tuple[str, type[FakeApiServer]],
) -> None:
    host, handler = api_server
    handler.isvc = make_isvc(CANARY_20, canary=20, uri=V2_URI)
    code, _out, err = run(["promote", "--no-wait"], _real_api(host))
    assert code == 0, err
    method, path, content_type, body = handler.requests[-1]
    assert method == "PATCH"
    path, _, query = path.partition("?")
    assert path.endswith(f"/namespaces/{NS}/inferenceservices/{NAME}")
    # the API server records the CLI as the owner of the fields it set (managedFields)
    assert query == "fieldManager=feast-kserve-rollout"
    assert content_type == "application/merge-patch+json"
    assert json.loads(body) == {"spec": {"predictor": {"canaryTrafficPercent": None}}}
    assert b"null" in body
    assert "canaryTrafficPercent" not in handler.isvc["spec"]["predictor"]


def test_real_client_404_becomes_not_found(
    api_server: tuple[str, type[FakeApiServer]],
) -> None:
    host, handler = api_server
    code, _out, err = run(["status", "--name", "nope"], _real_api(host))
    assert code == 1
    assert "InferenceService 'nope' not found in namespace 'feast-inference'" in err
    assert [r[0] for r in handler.requests] == ["GET"]
