"""Decoding and validating v1 / v2 (Open Inference Protocol) tensors into numpy columns.

Shared by the predictor (feature columns) and the transformer (entity ids and request fields).
Every problem raises ``kserve.errors.InvalidInput`` with a message that names the input, which
KServe turns into HTTP 400 / gRPC INVALID_ARGUMENT.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferRequest

_KIND = {
    "BOOL": "b",
    **{t: "i" for t in ("INT8", "INT16", "INT32", "INT64")},
    **{t: "u" for t in ("UINT8", "UINT16", "UINT32", "UINT64")},
    **{t: "f" for t in ("FP16", "FP32", "FP64")},
    "BYTES": "S",
}
# Which sent kinds an expected kind accepts without losing meaning.
_ACCEPTS = {"f": {"f", "i", "u", "b"}, "i": {"i", "u", "b"}, "u": {"u", "i", "b"}, "b": {"b"}}
_NP = {"f": np.float64, "i": np.int64, "u": np.int64, "b": np.bool_}


FEAST_TO_V2 = {
    "FLOAT32": "FP32",
    "FLOAT64": "FP64",
    "INT64": "INT64",
    "INT32": "INT32",
    "BOOL": "BOOL",
}


def feast_to_v2(dtype: Any) -> str | None:
    """The v2 datatype of a Feast primitive type (``Float32`` → ``FP32``), or None."""
    return FEAST_TO_V2.get(getattr(dtype, "name", str(dtype)).upper())


@dataclass(frozen=True)
class TensorSpec:
    """One expected input: its name and v2 datatype (numeric or BOOL)."""

    name: str
    datatype: str

    @property
    def kind(self) -> str:
        return _KIND[self.datatype]


def _as_column(name: str, values: Any, spec: TensorSpec) -> np.ndarray:
    arr = values if isinstance(values, np.ndarray) else None
    if arr is None:
        try:
            arr = np.asarray(values)
        except (ValueError, TypeError) as e:  # ragged nesting
            raise InvalidInput(f"input '{name}': data is not a regular array: {e}") from None
    if arr.size == 0:
        return np.empty(0, dtype=_NP[spec.kind])
    if arr.dtype.kind not in _ACCEPTS[spec.kind]:
        got = {"U": "text", "S": "bytes", "O": "null or mixed"}.get(arr.dtype.kind, str(arr.dtype))
        raise InvalidInput(f"input '{name}': expected {spec.datatype} numbers, got {got} values")
    return arr.reshape(-1).astype(_NP[spec.kind], copy=False)


def _check_shape(name: str, shape: Sequence[int], n_values: int) -> int:
    dims = list(shape)
    if len(dims) == 0 or len(dims) > 2 or (len(dims) == 2 and dims[1] != 1):
        raise InvalidInput(f"input '{name}': shape {dims} is not [N] or [N, 1]")
    if any(d < 0 for d in dims):
        raise InvalidInput(f"input '{name}': shape {dims} has a negative dimension")
    if dims[0] != n_values:
        raise InvalidInput(
            f"input '{name}': shape {dims} says {dims[0]} rows but data has {n_values} values"
        )
    return dims[0]


def _input_values(inp: InferInput) -> Any:
    raw = getattr(inp, "_raw_data", None)
    if raw is not None:
        try:
            return inp.as_numpy()
        except Exception as e:
            raise InvalidInput(f"input '{inp.name}': bad binary data: {e}") from None
    return inp.data


def decode_v2(
    request: InferRequest, specs: Sequence[TensorSpec], max_rows: int
) -> tuple[dict[str, np.ndarray], int]:
    """Columns keyed by input name, and the row count N shared by all of them."""
    if not request.inputs:
        raise InvalidInput("request has no inputs")
    by_name: dict[str, InferInput] = {}
    for inp in request.inputs:
        if inp.name in by_name:
            raise InvalidInput(f"input '{inp.name}' is given more than once")
        by_name[inp.name] = inp
    wanted = {s.name for s in specs}
    missing = [s.name for s in specs if s.name not in by_name]
    extra = sorted(set(by_name) - wanted)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing inputs {missing}")
        if extra:
            parts.append(f"unexpected inputs {extra}")
        raise InvalidInput(f"{'; '.join(parts)}; expected exactly {[s.name for s in specs]}")
    cols: dict[str, np.ndarray] = {}
    n_rows: int | None = None
    for spec in specs:
        inp = by_name[spec.name]
        if inp.datatype not in _KIND:
            raise InvalidInput(f"input '{spec.name}': unknown datatype '{inp.datatype}'")
        if _KIND[inp.datatype] not in _ACCEPTS[spec.kind]:
            raise InvalidInput(
                f"input '{spec.name}': datatype {inp.datatype} cannot be used as {spec.datatype}"
            )
        values = _input_values(inp)
        col = _as_column(spec.name, values, spec)
        n = _check_shape(spec.name, inp.shape, col.size)
        if n_rows is None:
            n_rows = n
        elif n != n_rows:
            raise InvalidInput(
                f"input '{spec.name}' has {n} rows but '{specs[0].name}' has {n_rows}"
            )
        cols[spec.name] = col
    assert n_rows is not None
    check_rows(n_rows, max_rows)
    return cols, n_rows


def check_rows(n_rows: int, max_rows: int) -> None:
    if n_rows == 0:
        raise InvalidInput("batch is empty: send at least one row")
    if n_rows > max_rows:
        raise InvalidInput(f"batch of {n_rows} rows exceeds the limit of {max_rows}")


def decode_v1(
    payload: Any, specs: Sequence[TensorSpec], max_rows: int
) -> tuple[dict[str, np.ndarray], int]:
    """v1 ``{"instances": [...]}``: each instance an object keyed by input name, or a list in
    spec order."""
    if not isinstance(payload, Mapping):
        raise InvalidInput('v1 request must be a JSON object with "instances"')
    if "instances" not in payload:
        raise InvalidInput('v1 request has no "instances"')
    extra = sorted(set(payload) - {"instances", "parameters"})
    if extra:
        raise InvalidInput(f"v1 request has unexpected keys {extra}")
    instances = payload["instances"]
    if not isinstance(instances, list):
        raise InvalidInput('"instances" must be a list')
    check_rows(len(instances), max_rows)
    names = [s.name for s in specs]
    rows: list[Sequence[Any]] = []
    for i, inst in enumerate(instances):
        if isinstance(inst, Mapping):
            missing = [n for n in names if n not in inst]
            unexpected = sorted(set(inst) - set(names))
            if missing or unexpected:
                raise InvalidInput(
                    f"instance {i}: missing {missing}, unexpected {unexpected}; "
                    f"expected exactly {names}"
                )
            rows.append([inst[n] for n in names])
        elif isinstance(inst, list):
            if len(inst) != len(names):
                raise InvalidInput(
                    f"instance {i}: has {len(inst)} values, expected {len(names)} ({names})"
                )
            rows.append(inst)
        else:
            raise InvalidInput(f"instance {i}: must be an object or a list")
    cols = {}
    for j, spec in enumerate(specs):
        values = [r[j] for r in rows]
        bad = next((k for k, v in enumerate(values) if not _is_scalar_number(v)), None)
        if bad is not None:
            raise InvalidInput(
                f"instance {bad}: '{spec.name}' must be a number, got {values[bad]!r}"
            )
        cols[spec.name] = _as_column(spec.name, values, spec)
    return cols, len(rows)


def _is_scalar_number(v: Any) -> bool:
    return isinstance(v, bool | int | float)


def get_param(request: InferRequest | Mapping[str, Any], name: str, default: Any) -> Any:
    """A request parameter from a v2 REST or gRPC request (or a v1 "parameters" object)."""
    params = request.get("parameters") if isinstance(request, Mapping) else request.parameters
    if not params:
        return default
    if not (isinstance(params, Mapping) or hasattr(params, "WhichOneof") or hasattr(params, "get")):
        raise InvalidInput('"parameters" must be an object')
    if name not in params:
        return default
    value = params[name]
    if hasattr(value, "WhichOneof"):  # gRPC InferParameter
        which = value.WhichOneof("parameter_choice")
        return getattr(value, which) if which else default
    return value


def bool_param(request: InferRequest | Mapping[str, Any], name: str, default: bool) -> bool:
    value = get_param(request, name, default)
    if not isinstance(value, bool):
        raise InvalidInput(f"parameter '{name}' must be true or false, got {value!r}")
    return value


# --- raw tensor bytes (gRPC raw_output_contents, the binary tensor extension) ---------------

# Little-endian numpy dtypes of the fixed-size v2 datatypes.
RAW_DTYPES = {
    "BOOL": np.dtype(np.bool_),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}


_U32 = struct.Struct("<I").pack  # a BYTES element's length prefix


def _utf8(v: Any) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, np.bytes_):
        return bytes(v)
    return str(v).encode()


def encode_raw(datatype: str, data: Any) -> bytes:
    """A tensor's values as the v2 raw bytes: row-major little-endian for numbers and BOOL
    (one byte each); for BYTES each element is a 4-byte little-endian length, then its bytes
    (str elements as UTF-8). What Triton sends and ``tritonclient``'s ``as_numpy`` reads."""
    if datatype == "BYTES":
        items = data.reshape(-1).tolist() if isinstance(data, np.ndarray) else data
        encoded = [v.encode() if isinstance(v, str) else _utf8(v) for v in items]
        return b"".join([_U32(len(b)) + b for b in encoded])
    dtype = RAW_DTYPES.get(datatype)
    if dtype is None:
        raise InvalidInput(f"unknown datatype '{datatype}'")
    return np.asarray(data, dtype=dtype).tobytes()


def decode_raw(datatype: str, raw: bytes) -> np.ndarray:
    """The inverse of ``encode_raw`` (flat): BYTES elements come back as ``bytes`` objects."""
    if datatype != "BYTES":
        dtype = RAW_DTYPES.get(datatype)
        if dtype is None:
            raise InvalidInput(f"unknown datatype '{datatype}'")
        if len(raw) % dtype.itemsize:
            raise InvalidInput(f"{len(raw)} raw bytes are not a whole number of {datatype}")
        return np.frombuffer(raw, dtype=dtype)
    items: list[bytes] = []
    pos, end = 0, len(raw)
    while pos < end:
        if pos + 4 > end:
            raise InvalidInput("raw BYTES tensor ends inside a length prefix")
        size = int.from_bytes(raw[pos : pos + 4], "little")
        pos += 4
        if pos + size > end:
            raise InvalidInput("raw BYTES tensor element runs past the end")
        items.append(raw[pos : pos + size])
        pos += size
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


_CONTENTS = {
    "BOOL": "bool_contents",
    **{t: "int_contents" for t in ("INT8", "INT16", "INT32")},
    "INT64": "int64_contents",
    **{t: "uint_contents" for t in ("UINT8", "UINT16", "UINT32")},
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def grpc_outputs(response: Any) -> dict[str, np.ndarray]:
    """The outputs of a gRPC ``ModelInferResponse`` as flat arrays by name, from
    ``raw_output_contents`` (one per output, in order) or else the typed ``contents``."""
    raw = response.raw_output_contents
    if raw and len(raw) != len(response.outputs):
        raise InvalidInput(f"{len(response.outputs)} outputs but {len(raw)} raw contents")
    out: dict[str, np.ndarray] = {}
    for i, o in enumerate(response.outputs):
        if raw:
            out[o.name] = decode_raw(o.datatype, raw[i])
            continue
        field_name = _CONTENTS.get(o.datatype)
        if field_name is None:
            raise InvalidInput(f"output '{o.name}': unknown datatype '{o.datatype}'")
        values = list(getattr(o.contents, field_name))
        if o.datatype == "BYTES":
            arr = np.empty(len(values), dtype=object)
            arr[:] = values
            out[o.name] = arr
        else:
            out[o.name] = np.asarray(values, dtype=RAW_DTYPES[o.datatype])
    return out
