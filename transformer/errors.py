"""Failures of the transformer's dependencies, each with the HTTP status it maps to.

They subclass KServe's ``ServerNotReady`` so the gRPC server answers UNAVAILABLE instead of
INTERNAL; REST gets the specific status from ``install``'s handler.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from kserve.errors import ServerNotReady
from starlette.responses import Response

from predictor.protocol.rest import json_error


class UpstreamError(ServerNotReady):
    status = 502

    def __init__(self, message: str):
        super().__init__()
        self.reason = message
        self.error_msg = message


class PredictorRejected(UpstreamError):
    """The predictor answered 4xx/5xx: our request or its model is wrong."""

    status = 502


class PredictorUnavailable(UpstreamError):
    """Cannot connect to the predictor."""

    status = 503


class PredictorTimeout(UpstreamError):
    """The predictor did not answer within the configured timeout."""

    status = 504


class FeatureStoreUnavailable(UpstreamError):
    """The online store failed or timed out."""

    status = 503


async def _upstream(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, UpstreamError)
    return json_error(exc.status, exc.reason)


def install(app: FastAPI) -> None:
    app.add_exception_handler(UpstreamError, _upstream)
