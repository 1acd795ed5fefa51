"""The predictor as a ``kserve.Model``: validate → score → encode. Nothing else."""

from __future__ import annotations

from typing import Any

import numpy as np
from kserve import Model
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from predictor.protocol.artifact import LoadedModel, load_model
from predictor.protocol.codec import TensorSpec, decode_v1, decode_v2

OUTPUTS = [
    {"name": "probability", "datatype": "FP64", "shape": [-1]},
    {"name": "model_version", "datatype": "BYTES", "shape": [-1]},
]


class ClickModel(Model):
    """Serves one model directory written by ``predictor.jobs.train``."""

    def __init__(self, name: str, model_dir: str, max_batch_size: int):
        super().__init__(name)
        self.model_dir = model_dir
        self.max_batch_size = max_batch_size
        self._model: LoadedModel | None = None
        self._specs: list[TensorSpec] = []

    def load(self) -> bool:
        self._model = load_model(self.model_dir)
        self._specs = [TensorSpec(f.name, f.datatype) for f in self._model.metadata.features]
        self.ready = True
        return self.ready

    @property
    def version(self) -> str:
        assert self._model is not None
        return self._model.metadata.version

    def get_input_types(self) -> list[dict[str, Any]]:
        return [{"name": s.name, "datatype": s.datatype, "shape": [-1]} for s in self._specs]

    def get_output_types(self) -> list[dict[str, Any]]:
        return OUTPUTS

    def validate(self, payload: Any) -> Any:  # decoding below does the real validation
        return payload

    def matrix(self, cols: dict[str, np.ndarray]) -> np.ndarray:
        return np.column_stack([cols[s.name].astype(np.float64, copy=False) for s in self._specs])

    async def predict(
        self,
        payload: dict[str, Any] | InferRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | InferResponse:
        assert self._model is not None
        if isinstance(payload, InferRequest):
            cols, n = decode_v2(payload, self._specs, self.max_batch_size)
            p = self._model.score(self.matrix(cols))
            return InferResponse(
                response_id=payload.id or "",
                model_name=self.name,
                model_version=self.version,
                infer_outputs=[
                    InferOutput("probability", [n], "FP64", p.tolist()),
                    InferOutput("model_version", [n], "BYTES", [self.version] * n),
                ],
            )
        if isinstance(payload, dict):
            cols, _ = decode_v1(payload, self._specs, self.max_batch_size)
            p = self._model.score(self.matrix(cols))
            return {"predictions": p.tolist(), "model_version": self.version}
        raise InvalidInput(f"unsupported request body of type {type(payload).__name__}")
