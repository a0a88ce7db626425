"""Value types of the IR: tensors with static or symbolic shapes, and scalars."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

from torch_ir.errors import IRError
from torch_ir.ir.symbolic import SymExpr, parse_dim

Dim = Union[int, SymExpr]
"""A dimension: an int, or a symbolic expression such as ``"s0"`` or ``"2*s0"`` (a ``SymExpr``: text given
as a ``str`` is parsed by the one bounded grammar of ``torch_ir.ir.symbolic`` when the type is built)."""

DTYPES: dict[str, str] = {
    "float64": "f64",
    "float32": "f32",
    "float16": "f16",
    "bfloat16": "bf16",
    "float8_e4m3fn": "f8e4m3fn",
    "float8_e5m2": "f8e5m2",
    "float8_e4m3fnuz": "f8e4m3fnuz",
    "float8_e5m2fnuz": "f8e5m2fnuz",
    "int64": "i64",
    "int32": "i32",
    "int16": "i16",
    "int8": "i8",
    "uint8": "u8",
    "uint16": "u16",
    "uint32": "u32",
    "uint64": "u64",
    "bool": "i1",
    "complex64": "c64",
    "complex128": "c128",
    "complex32": "c32",
}
"""Every dtype name the IR knows, mapped to its short form in the text form."""

SHORT_DTYPES: dict[str, str] = {short: long for long, short in DTYPES.items()}

ITEMSIZE: dict[str, float] = {
    "float64": 8,
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "float8_e4m3fn": 1,
    "float8_e5m2": 1,
    "float8_e4m3fnuz": 1,
    "float8_e5m2fnuz": 1,
    "int64": 8,
    "int32": 4,
    "int16": 2,
    "int8": 1,
    "uint8": 1,
    "uint16": 2,
    "uint32": 4,
    "uint64": 8,
    "bool": 1,
    "complex64": 8,
    "complex128": 16,
    "complex32": 4,
}

SCALAR_KINDS = ("int", "float", "bool")


def check_dtype(dtype: str) -> str:
    """Return ``dtype`` if the IR knows it, else raise an ``IRError`` listing the known ones."""
    if dtype not in DTYPES:
        raise IRError(f"unknown dtype {dtype!r}; known dtypes: {', '.join(DTYPES)}")
    return dtype


@dataclass(frozen=True)
class TensorType:
    """The type of a tensor value: its shape (ints or symbolic dims) and dtype name (``"float32"``).

    A dimension given as text (``"2*seq"``) is parsed into a ``SymExpr`` (``"16"`` into 16); text outside
    the grammar of ``torch_ir.ir.symbolic`` is an ``IRError``.
    """

    shape: tuple[Dim, ...]
    dtype: str

    def __post_init__(self) -> None:
        check_dtype(self.dtype)
        shape = self.shape
        for dim in shape:
            kind = type(dim)
            if kind is int or kind is SymExpr:
                continue
            if isinstance(dim, bool) or not isinstance(dim, (int, str)):
                raise IRError(f"dimension {dim!r} of {shape} is neither an int nor a symbol")
            parsed = tuple(parse_dim(d) for d in shape)
            object.__setattr__(self, "shape", parsed)
            return
        if type(shape) is not tuple:
            object.__setattr__(self, "shape", tuple(shape))

    @staticmethod
    def dim(text: int | str) -> Dim:
        """A dimension from its text, by the grammar of ``torch_ir.ir.symbolic`` (``IRError`` outside it)."""
        return parse_dim(text)

    @property
    def rank(self) -> int:
        """The number of dimensions."""
        return len(self.shape)

    @property
    def is_static(self) -> bool:
        """True when every dimension is an int."""
        return all(isinstance(d, int) for d in self.shape)

    @property
    def numel(self) -> int | None:
        """The number of elements, or None when a dimension is symbolic."""
        if not self.is_static:
            return None
        return math.prod(d for d in self.shape if isinstance(d, int))

    @property
    def itemsize(self) -> float:
        """Bytes per element."""
        return ITEMSIZE[self.dtype]

    @property
    def nbytes(self) -> int | None:
        """Bytes of the tensor's data, or None when a dimension is symbolic."""
        numel = self.numel
        return None if numel is None else int(numel * self.itemsize)

    def __str__(self) -> str:
        dims = ",".join(str(d).replace(" ", "") for d in self.shape)
        return f"{DTYPES[self.dtype]}[{dims}]"


@dataclass(frozen=True)
class ScalarType:
    """The type of a non-tensor value, such as a symbolic size read by ``aten.sym_size.int``."""

    kind: str

    def __post_init__(self) -> None:
        if self.kind not in SCALAR_KINDS:
            raise IRError(f"unknown scalar kind {self.kind!r}; expected one of {SCALAR_KINDS}")

    @property
    def shape(self) -> tuple[Dim, ...]:
        """A scalar has rank 0."""
        return ()

    @property
    def dtype(self) -> str:
        """The scalar kind, in place of a dtype."""
        return self.kind

    def __str__(self) -> str:
        return self.kind


ValueType = Union[TensorType, ScalarType]


@dataclass(frozen=True)
class SymbolRange:
    """The range of a symbolic dimension: ``min`` and ``max`` inclusive, ``max`` None when unbounded."""

    min: int
    max: int | None

    def __str__(self) -> str:
        return f"{self.min}..{'inf' if self.max is None else self.max}"
