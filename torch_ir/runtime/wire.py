"""The messages between torch-ir and its worker process: plain data and raw tensor bytes, never pickle.

A frame is two little-endian 64-bit lengths, a JSON header of that length, and a payload of that length.
Values travel as a JSON tree in which tensors are references into the payload (``{"$t": 0}``), each
described by its dtype, shape, offset and byte count; tuples, dicts, non-finite floats, big integers and
complex numbers are tagged. Decoding checks every description against the payload before it builds a
tensor, so whichever side reads a frame (the parent reading a crashed or subverted worker's answer, too)
only ever gets numbers, strings, lists and tensors of its own bytes: nothing is evaluated, imported or
unpickled. Sizes are bounded by the reader's ``limit``.
"""

from __future__ import annotations

import math
import socket
import struct
from collections.abc import Iterator
from typing import Any

import msgspec
import torch

from torch_ir.errors import InterpreterError
from torch_ir.serde.schema import DTYPE_NAMES

_PREFIX = struct.Struct("<QQ")
ALIGN = 64
"""Byte alignment of each tensor in a payload (any dtype may be viewed in place)."""
MAX_DEPTH = 64
"""How deeply a value may nest (lists of tuples of ...)."""

DTYPES: dict[str, torch.dtype] = {
    name: getattr(torch, name) for name in DTYPE_NAMES if isinstance(getattr(torch, name, None), torch.dtype)
}
"""The dtypes a tensor may have on the wire, by name."""


class WireError(InterpreterError):
    """A frame that is not what the protocol allows (truncated, oversized, malformed)."""


class Message:
    """A header (plain data) and the tensors its values refer to."""

    def __init__(self, header: dict[str, Any], tensors: list[torch.Tensor] | None = None):
        self.header = header
        self.tensors = tensors or []

    def __getitem__(self, key: str) -> Any:
        return self.header[key]

    def get(self, key: str, default: Any = None) -> Any:
        """The header field ``key`` (``default`` when absent)."""
        return self.header.get(key, default)


# ------------------------------------------------------------------ values


class Encoder:
    """Turns values into a JSON tree plus the list of tensors it refers to."""

    def __init__(self) -> None:
        self.tensors: list[torch.Tensor] = []

    def encode(self, value: Any, depth: int = 0) -> Any:
        """``value`` as plain data, its tensors set aside as raw bytes; ``WireError`` for what cannot be sent."""
        if depth > MAX_DEPTH:
            raise WireError(f"a value nested deeper than {MAX_DEPTH} cannot be sent")
        if isinstance(value, torch.Tensor):
            self.tensors.append(value)
            return {"$t": len(self.tensors) - 1}
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return value if -(2**63) <= value < 2**63 else {"$int": str(value)}
        if isinstance(value, float):
            return value if math.isfinite(value) else {"$float": repr(value)}
        if isinstance(value, complex):
            return {"$complex": [self.encode(value.real), self.encode(value.imag)]}
        if isinstance(value, torch.dtype):
            return {"$dtype": str(value).removeprefix("torch.")}
        if isinstance(value, (torch.SymInt, torch.SymFloat, torch.SymBool)):
            raise WireError("a symbolic value cannot be sent")
        if isinstance(value, list):
            return [self.encode(v, depth + 1) for v in value]
        if isinstance(value, tuple):
            return {"$tuple": [self.encode(v, depth + 1) for v in value]}
        if isinstance(value, dict):
            return {"$dict": [[self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in value.items()]}
        raise WireError(f"a {type(value).__name__} cannot be sent between torch-ir and its worker")


def decode_value(tree: Any, tensors: list[torch.Tensor], depth: int = 0) -> Any:
    """The value a tree describes, its tensor references resolved in ``tensors``."""
    if depth > MAX_DEPTH:
        raise WireError(f"a value nested deeper than {MAX_DEPTH}")
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    if isinstance(tree, list):
        return [decode_value(v, tensors, depth + 1) for v in tree]
    if isinstance(tree, dict) and len(tree) == 1:
        ((tag, body),) = tree.items()
        if tag == "$t" and isinstance(body, int) and 0 <= body < len(tensors):
            return tensors[body]
        if tag == "$tuple" and isinstance(body, list):
            return tuple(decode_value(v, tensors, depth + 1) for v in body)
        if tag == "$dict" and isinstance(body, list) and all(isinstance(p, list) and len(p) == 2 for p in body):
            return {_key(decode_value(k, tensors, depth + 1)): decode_value(v, tensors, depth + 1) for k, v in body}
        if tag == "$int" and isinstance(body, str) and body.lstrip("-").isdigit() and len(body) < 400:
            return int(body)
        if tag == "$float" and body in ("inf", "-inf", "nan"):
            return float(body)
        if tag == "$complex" and isinstance(body, list) and len(body) == 2:
            return complex(*(float(decode_value(v, tensors, depth + 1)) for v in body))
        if tag == "$dtype" and body in DTYPES:
            return DTYPES[body]
    raise WireError(f"malformed value in a worker message: {str(tree)[:80]}")


def _key(value: Any) -> Any:
    if isinstance(value, (list, dict, torch.Tensor)):
        raise WireError("a dict key must be a number or a string")
    return value


# ------------------------------------------------------------------ frames


def _tensor_bytes(tensor: torch.Tensor) -> memoryview:
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    if flat.numel() == 0:
        return memoryview(b"")
    return memoryview(flat.view(torch.uint8).numpy())


def encode_frame(header: dict[str, Any], tensors: list[torch.Tensor]) -> list[bytes | memoryview]:
    """The pieces of one frame: prefix, header, then each tensor's bytes at an aligned offset."""
    described = []
    pieces: list[bytes | memoryview] = []
    offset = 0
    for tensor in tensors:
        if tensor.layout != torch.strided or tensor.is_quantized:
            raise WireError(f"a {tensor.layout} tensor cannot be sent between torch-ir and its worker")
        data = _tensor_bytes(tensor)
        pad = -offset % ALIGN
        if pad:
            pieces.append(b"\0" * pad)
            offset += pad
        dtype = str(tensor.dtype).removeprefix("torch.")
        described.append({"dtype": dtype, "shape": list(tensor.shape), "offset": offset, "nbytes": data.nbytes})
        pieces.append(data)
        offset += data.nbytes
    head = msgspec.json.encode({**header, "$tensors": described})
    return [_PREFIX.pack(len(head), offset), head, *pieces]


def send(sock: socket.socket, header: dict[str, Any], values: Any = None, fds: list[int] | None = None) -> None:
    """Send ``header`` with ``values`` (any tree of tensors, numbers, strings, containers) under ``"value"``;
    ``fds`` travel with the first bytes (``SCM_RIGHTS``)."""
    encoder = Encoder()
    if values is not None:
        header = {**header, "value": encoder.encode(values)}
    pieces = encode_frame(header, encoder.tensors)
    first = bytes(pieces[0]) + bytes(pieces[1])
    if fds:
        socket.send_fds(sock, [first], fds)
    else:
        sock.sendall(first)
    for piece in pieces[2:]:
        sock.sendall(piece)


def _recv_exact(sock: socket.socket, size: int, fds: list[int] | None = None) -> bytearray:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        if fds is not None and got == 0:
            n, received, _, _ = socket.recv_fds(sock, size, 4)
            if received:
                fds.extend(received)
            if not n:
                raise EOFError
            view[: len(n)] = n
            got = len(n)
            continue
        count = sock.recv_into(view[got:], size - got)
        if not count:
            raise EOFError
        got += count
    return buffer


def receive(sock: socket.socket, limit: int, fds: list[int] | None = None) -> Message:
    """Read one frame; ``EOFError`` when the other side is gone, ``WireError`` for a frame over ``limit``
    bytes or not as described. Received file descriptors are appended to ``fds``."""
    prefix = _recv_exact(sock, _PREFIX.size, fds)
    head_size, payload_size = _PREFIX.unpack(prefix)
    if head_size > min(limit, 1 << 30) or payload_size > limit:
        raise WireError(f"a worker message of {head_size + payload_size} bytes is over the limit of {limit}")
    try:
        header = msgspec.json.decode(bytes(_recv_exact(sock, head_size)))
    except (msgspec.DecodeError, RecursionError) as exc:
        raise WireError(f"malformed worker message: {exc}") from None
    payload = _recv_exact(sock, payload_size) if payload_size else bytearray()
    if not isinstance(header, dict):
        raise WireError("malformed worker message: not an object")
    tensors = [_tensor(spec, payload) for spec in _specs(header.pop("$tensors", []))]
    return Message(header, tensors)


def _specs(specs: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(specs, list):
        raise WireError("malformed tensor list")
    for spec in specs:
        if not isinstance(spec, dict):
            raise WireError("malformed tensor description")
        yield spec


def _tensor(spec: dict[str, Any], payload: bytearray) -> torch.Tensor:
    dtype = DTYPES.get(spec.get("dtype"))  # type: ignore[arg-type]
    shape, offset, nbytes = spec.get("shape"), spec.get("offset"), spec.get("nbytes")
    if (
        dtype is None
        or not isinstance(shape, list)
        or len(shape) > 64
        or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**62 for d in shape)
        or not isinstance(offset, int)
        or not isinstance(nbytes, int)
        or offset < 0
        or offset % ALIGN
        or offset + nbytes > len(payload)
    ):
        raise WireError(f"malformed tensor description {str(spec)[:80]}")
    itemsize = torch.empty((), dtype=dtype).element_size()
    if math.prod(shape) * itemsize != nbytes:
        raise WireError(f"tensor of shape {shape} and dtype {spec['dtype']} does not take {nbytes} bytes")
    if nbytes == 0:
        return torch.empty(shape, dtype=dtype)
    flat = torch.frombuffer(payload, dtype=torch.uint8, count=nbytes, offset=offset)
    return flat.view(dtype).reshape(shape)


__all__ = ["ALIGN", "DTYPES", "Encoder", "Message", "WireError", "decode_value", "receive", "send"]
