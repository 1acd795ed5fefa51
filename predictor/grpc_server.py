"""KServe's v2 gRPC service, answering the way standard v2 clients expect. Both servers use it.

Three differences from ``kserve.protocol.grpc.servicer.InferenceServicer``:

* every output travels in ``raw_output_contents`` (``codec.encode_raw``), as Triton always
  sends it: ``tritonclient.grpc`` reads only the raw form, and KServe's own client
  (``InferResponse.from_grpc``) reads both;
* ``model_version`` in ModelInfer / ModelMetadata / ModelReady is checked: the served version
  (``versions.served_versions``) is served, any other is NOT_FOUND naming the served ones;
* ModelMetadata lists the served version in ``versions``.

Everything else (interceptors, message size options, validation of raw inputs) is KServe's.
"""

from __future__ import annotations

from concurrent import futures
from typing import Any

from grpc import ServicerContext, aio
from grpc_interceptor.exceptions import NotFound
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor, LoggingInterceptor
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.infer_type import InferRequest, InferResponse, to_grpc_parameters
from kserve.protocol.model_repository_extension import ModelRepositoryExtension
from kserve.utils.utils import to_headers

from predictor.codec import encode_raw
from predictor.versions import served_versions, version_error


def to_grpc_raw(response: InferResponse) -> pb.ModelInferResponse:
    """``response`` as a gRPC message with every output's values in ``raw_output_contents``."""
    outputs = []
    raw = []
    for o in response.outputs:
        outputs.append(
            pb.ModelInferResponse.InferOutputTensor(
                name=o.name,
                datatype=o.datatype,
                shape=o.shape,
                parameters=to_grpc_parameters(o.parameters) if o.parameters else None,
            )
        )
        raw_data = getattr(o, "_raw_data", None)
        raw.append(raw_data if raw_data is not None else encode_raw(o.datatype, o.data))
    return pb.ModelInferResponse(
        id=response.id,
        model_name=response.model_name,
        model_version=response.model_version or "",
        outputs=outputs,
        raw_output_contents=raw,
        parameters=to_grpc_parameters(response.parameters) if response.parameters else None,
    )


class Servicer(InferenceServicer):
    def _check_version(self, name: str, version: str) -> None:
        model = self._data_plane.model_registry.get_model(name)
        if model is None:
            return  # KServe's own "not found" follows
        error = version_error(name, version, model)
        if error is not None:
            raise NotFound(error)  # a status, not a logged traceback

    async def ModelReady(self, request: pb.ModelReadyRequest, context: Any) -> Any:
        self._check_version(request.name, request.version)
        return await super().ModelReady(request, context)

    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Any) -> Any:
        self._check_version(request.name, request.version)
        response = await super().ModelMetadata(request, context)
        model = self._data_plane.model_registry.get_model(request.name)
        response.versions.extend(served_versions(model))
        return response

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: ServicerContext
    ) -> pb.ModelInferResponse:
        self._check_version(request.model_name, request.model_version)
        self.validate_grpc_request(request)
        response, _ = await self._data_plane.infer(
            request=InferRequest.from_grpc(request),
            headers=to_headers(context),
            model_name=request.model_name,
        )
        if isinstance(response, pb.ModelInferResponse):
            return response
        if isinstance(response, InferResponse):
            return to_grpc_raw(response)
        return pb.ModelInferResponse(  # a dict from a model that builds its own (not ours)
            id=response["id"], model_name=response["model_name"], outputs=response["outputs"]
        )


class Server(GRPCServer):
    """``GRPCServer`` with ``Servicer``; the rest as in KServe (``start`` follows theirs)."""

    def __init__(
        self,
        port: int,
        data_plane: DataPlane,
        repository: ModelRepositoryExtension,
        kwargs: dict[str, Any],
        grace_period: int = 30,
    ):
        super().__init__(port, data_plane, repository, kwargs, grace_period=grace_period)

    async def start(self, max_workers: int) -> None:
        self._server = aio.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=(LoggingInterceptor(), ExceptionToStatusInterceptor()),
            options=[
                ("grpc.max_send_message_length", self._kwargs.get("grpc_max_send_message_length")),
                (
                    "grpc.max_receive_message_length",
                    self._kwargs.get("grpc_max_receive_message_length"),
                ),
            ],
        )
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
            Servicer(self._data_plane, self._model_repository_extension), self._server
        )
        self._server.add_insecure_port(f"[::]:{self._port}")
        await self._server.start()
        await self._server.wait_for_termination()
