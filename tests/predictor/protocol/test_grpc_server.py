import numpy as np
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.infer_type import InferOutput, InferResponse

from predictor.protocol.codec import decode_raw, encode_raw, grpc_outputs
from predictor.protocol.grpc_server import to_grpc_raw
from predictor.protocol.versions import served_versions, version_error

pytestmark = pytest.mark.unit


def _response() -> InferResponse:
    return InferResponse(
        response_id="r1",
        model_name="m",
        model_version="v1",
        infer_outputs=[
            InferOutput("score", [3], "FP64", [0.25, 0.5, 1.0]),
            InferOutput("n", [3], "INT64", np.array([1, -2, 3])),
            InferOutput("flag", [3], "BOOL", [True, False, True]),
            InferOutput("half", [3], "FP32", [1.5, 2.5, 3.5]),
            InferOutput("label", [3], "BYTES", ["yes", "", "naïve"]),
        ],
    )


def test_every_output_is_raw_and_reads_back_the_same():
    msg = to_grpc_raw(_response())
    assert msg.model_version == "v1" and msg.id == "r1"
    assert len(msg.raw_output_contents) == len(msg.outputs) == 5
    assert not any(o.HasField("contents") for o in msg.outputs)
    out = grpc_outputs(msg)
    assert out["score"].tolist() == [0.25, 0.5, 1.0]
    assert out["n"].tolist() == [1, -2, 3]
    assert out["flag"].tolist() == [True, False, True]
    assert out["half"].tolist() == [1.5, 2.5, 3.5]
    assert out["label"].tolist() == [b"yes", b"", "naïve".encode()]


def test_bytes_are_length_prefixed_little_endian_as_triton_sends_them():
    assert encode_raw("BYTES", ["ab", b"c"]) == b"\x02\x00\x00\x00ab\x01\x00\x00\x00c"
    assert encode_raw("INT32", [1, 256]) == b"\x01\x00\x00\x00\x00\x01\x00\x00"


def test_kserves_client_reads_the_raw_response():
    parsed = InferResponse.from_grpc(to_grpc_raw(_response()))
    outs = {o.name: o for o in parsed.outputs}
    assert outs["score"].as_numpy().tolist() == [0.25, 0.5, 1.0]
    assert outs["label"].as_numpy().tolist() == [b"yes", b"", "naïve".encode()]


def test_typed_contents_are_still_read():
    """A predictor that answers the typed way (KServe's own servers, older releases)."""
    msg = pb.ModelInferResponse(
        outputs=[
            pb.ModelInferResponse.InferOutputTensor(
                name="p",
                datatype="FP64",
                shape=[2],
                contents=pb.InferTensorContents(fp64_contents=[0.1, 0.2]),
            ),
            pb.ModelInferResponse.InferOutputTensor(
                name="v",
                datatype="BYTES",
                shape=[2],
                contents=pb.InferTensorContents(bytes_contents=[b"a", b"a"]),
            ),
        ]
    )
    out = grpc_outputs(msg)
    assert out["p"].tolist() == [0.1, 0.2] and out["v"].tolist() == [b"a", b"a"]


@pytest.mark.parametrize(
    ("datatype", "raw", "needle"),
    [
        ("FP64", b"\x00" * 7, "whole number"),
        ("BYTES", b"\x05\x00\x00\x00ab", "past the end"),
        ("BYTES", b"\x01\x00", "inside a length prefix"),
        ("COMPLEX", b"", "unknown datatype"),
    ],
)
def test_malformed_raw_contents_are_invalid_input(datatype, raw, needle):
    from kserve.errors import InvalidInput

    with pytest.raises(InvalidInput, match=needle):
        decode_raw(datatype, raw)


def test_raw_and_output_counts_must_agree():
    from kserve.errors import InvalidInput

    msg = to_grpc_raw(_response())
    del msg.raw_output_contents[-1]
    with pytest.raises(InvalidInput, match="5 outputs but 4 raw"):
        grpc_outputs(msg)


def test_versions():
    class M:
        version = "v1"

    class Unversioned:
        pass

    assert served_versions(M()) == ["v1"] and served_versions(Unversioned()) == []
    assert version_error("m", "", M()) is None
    assert version_error("m", "v1", M()) is None
    assert "'v2'" in version_error("m", "v2", M()) and "v1" in version_error("m", "v2", M())
    assert "no versioned model" in version_error("m", "v1", Unversioned())
