"""Model versions on the v2 protocol: which versions a model serves, and the check that a
request for ``/v2/models/{name}/versions/{version}`` (or gRPC ``model_version``) names one.

A served model reports its version in the metadata (``versions``); a request for that
version is served like the unversioned one, any other version is "not found" with a message
naming the served version(s). Shared by the REST front (``fast_rest``) and the gRPC service
(``grpc_server``).
"""

from __future__ import annotations

from typing import Any


def served_versions(model: Any) -> list[str]:
    """The versions ``model`` serves: its ``version`` attribute, if it has a non-empty one."""
    version = getattr(model, "version", None)
    return [version] if isinstance(version, str) and version else []


def version_error(name: str, version: str, model: Any) -> str | None:
    """None when ``version`` is empty or served by ``model``, else the message for a 404."""
    if not version:
        return None
    served = served_versions(model)
    if version in served:
        return None
    if not served:
        return f"model '{name}' has no version '{version}': it serves no versioned model"
    return f"model '{name}' has no version '{version}'; served version(s): {', '.join(served)}"
