"""An empty ``kserve.Model`` behind ``kserve.ModelServer``: the framework's own cost.

``python -m devtools.empty_model --http_port 8090 [--grpc_port 8091]`` serves ``empty``
(v1 and v2 REST, v2 gRPC when a gRPC port is given) whose ``predict`` hands back its input:
no decoding, no model, nothing but KServe's request parsing, routing and response encoding.
``make bench`` drives it with the same load generator as the real servers, as a floor.
Logging is set up like the real servers (no per-request lines).
"""

from __future__ import annotations

import argparse
import warnings
from typing import Any


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m devtools.empty_model", description=__doc__)
    p.add_argument("--http_port", type=int, default=8090)
    p.add_argument("--grpc_port", type=int, default=0, help="0: no gRPC server")
    p.add_argument("--model_name", default="empty")
    a, _ = p.parse_known_args(argv)

    from predictor.protocol import logs

    logs.configure("INFO", access_log=False)
    # kserve parses sys.argv when imported (it knows --http_port and --grpc_port too).
    import kserve
    from fastapi.exceptions import FastAPIDeprecationWarning
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

    warnings.filterwarnings("ignore", category=FastAPIDeprecationWarning)

    class Empty(kserve.Model):
        def __init__(self, name: str):
            super().__init__(name)
            self.ready = True

        async def predict(
            self,
            payload: Any,
            headers: dict[str, str] | None = None,
            response_headers: dict[str, str] | None = None,
        ) -> Any:
            if isinstance(payload, InferRequest):
                return InferResponse(
                    response_id=payload.id or "",
                    model_name=self.name,
                    infer_outputs=[
                        InferOutput(i.name, i.shape, i.datatype, i.data) for i in payload.inputs
                    ],
                )
            return payload

    kserve.ModelServer(
        http_port=a.http_port,
        grpc_port=a.grpc_port or 8081,
        enable_grpc=a.grpc_port > 0,
        workers=1,
    ).start([Empty(a.model_name)])


if __name__ == "__main__":
    main()
