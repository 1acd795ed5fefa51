"""tritonclient calls, run in a worker process of their own (``test_v2_clients.py``).

tritonclient.grpc and kserve each register the v2 protos (package ``inference``) in
protobuf's default descriptor pool, so they cannot be imported into one process: a user's
client process has only tritonclient, and so does this worker. Nothing here imports kserve
or the project. Every function returns plain values (arrays, dicts, booleans) or
``Failure`` for a client exception, so the results cross the process boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

Inputs = list[tuple[str, str, np.ndarray]]  # (name, datatype, values)


@dataclass
class Failure:
    status: str
    message: str


def _failure(e: Exception) -> Failure:
    return Failure(str(e.status()), str(e.message()))  # type: ignore[attr-defined]


def http_infer(
    addr: str, model: str, inputs: Inputs, outputs: list[str], mode: str, version: str = ""
) -> dict[str, Any] | Failure:
    """``mode``: "json" (JSON tensors both ways: tritonclient sends no content-type),
    "json-in-binary-out" (its default outputs: all binary), "binary" (binary both ways)."""
    import tritonclient.http as thttp
    from tritonclient.utils import InferenceServerException

    tensors = []
    for name, dt, values in inputs:
        t = thttp.InferInput(name, [len(values)], dt)
        t.set_data_from_numpy(values, binary_data=mode == "binary")
        tensors.append(t)
    requested = (
        [thttp.InferRequestedOutput(o, binary_data=False) for o in outputs]
        if mode == "json"
        else None
    )
    with thttp.InferenceServerClient(addr) as client:
        try:
            result = client.infer(model, tensors, model_version=version, outputs=requested)
        except InferenceServerException as e:
            return _failure(e)
        return {
            "outputs": {o: result.as_numpy(o) for o in outputs},
            "model_name": result.get_response()["model_name"],
        }


def _meta(client: Any, model: str, version: str, **metadata_kw: Any) -> dict[str, Any]:
    """Liveness, readiness and metadata as a tritonclient client sees them; version "7" is
    one the servers do not serve."""
    from tritonclient.utils import InferenceServerException

    def attempt(call: Any) -> Any:
        try:
            return call()
        except InferenceServerException as e:
            return _failure(e)

    return {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(model),
        "version_ready": client.is_model_ready(model, model_version=version),
        "other_version_ready": attempt(lambda: client.is_model_ready(model, model_version="7")),
        "metadata": client.get_model_metadata(model, **metadata_kw),
        "version_metadata": client.get_model_metadata(model, version, **metadata_kw),
        "other_version_metadata": attempt(
            lambda: client.get_model_metadata(model, "7", **metadata_kw)
        ),
    }


def http_meta(addr: str, model: str, version: str) -> dict[str, Any]:
    import tritonclient.http as thttp

    with thttp.InferenceServerClient(addr) as client:
        return _meta(client, model, version)


def grpc_infer(
    addr: str, model: str, inputs: Inputs, outputs: list[str], version: str = ""
) -> dict[str, Any] | Failure:
    import tritonclient.grpc as tgrpc
    from tritonclient.utils import InferenceServerException

    tensors = []
    for name, dt, values in inputs:
        t = tgrpc.InferInput(name, [len(values)], dt)
        t.set_data_from_numpy(values)
        tensors.append(t)
    with tgrpc.InferenceServerClient(addr) as client:
        try:
            result = client.infer(model, tensors, model_version=version)
        except InferenceServerException as e:
            return _failure(e)
        return {
            "outputs": {o: result.as_numpy(o) for o in outputs},
            "model_name": result.get_response().model_name,
        }


def grpc_meta(addr: str, model: str, version: str) -> dict[str, Any]:
    import tritonclient.grpc as tgrpc

    with tgrpc.InferenceServerClient(addr) as client:
        return _meta(client, model, version, as_json=True)
