"""KServe's v2 gRPC service, answering the way standard v2 clients expect. Both servers use it.

Three differences from ``kserve.protocol.grpc.servicer.InferenceServicer``:

* every output travels in ``raw_output_contents`` (``codec.encode_raw``), as Triton always
  sends it: ``tritonclient.grpc`` reads only the raw form, and KServe's own client
  (``InferResponse.from_grpc``) reads both;
* ``model_version`` in ModelInfer / ModelMetadata / ModelReady is checked: the served version
  (``versions.served_versions``) is served, any other is NOT_FOUND naming the served ones;
* ModelMetadata lists the served version in ``versions``.

Everything else (validation of raw inputs) is KServe's; ``serving._GRPCServer`` serves it with
the project's interceptors (auth), bind address and request limits.
"""

from __future__ import annotations

from typing import Any

from grpc import ServicerContext
from grpc_interceptor.exceptions import NotFound
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.infer_type import InferRequest, InferResponse, to_grpc_parameters
from kserve.utils.utils import to_headers

from predictor.protocol.codec import encode_raw
from predictor.protocol.versions import served_versions, version_error


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
