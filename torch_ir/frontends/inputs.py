"""Example-input specs: ``1x128:int64``, ``ids:1x32:int64:0..50257``, and dynamic dims ``0=batch:1..64``.

``parse_input_spec`` and ``parse_dynamic_spec`` read the text the CLI takes; ``build_inputs`` makes the
tensors (on ``meta`` by default: no memory) and ``dynamic_shapes_for`` the ``torch.export`` ``Dim`` specs,
keyed by ``forward``'s argument names. For tracing, integer and bool inputs are zeros (valid token ids
everywhere) and floating inputs ``randn`` (on meta, just a shape). For verification, ``random_input`` draws
informative values from a seeded generator: integers uniform in their range (a spec's ``LOW..HIGH``, half
open like ``range``), floats ``randn`` (or uniform in a given range), masks a random pattern that keeps
every row valid.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from torch_ir.errors import ModelSpecError

DTYPE_ALIASES: dict[str, str] = {
    "f64": "float64",
    "double": "float64",
    "f32": "float32",
    "float": "float32",
    "f16": "float16",
    "half": "float16",
    "bf16": "bfloat16",
    "i64": "int64",
    "long": "int64",
    "i32": "int32",
    "int": "int32",
    "i16": "int16",
    "i8": "int8",
    "u8": "uint8",
    "i1": "bool",
}
"""Short dtype names accepted in input specs, mapped to torch's names."""

_NAME = r"[A-Za-z_]\w*"
_NUMBER = r"-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"
_INPUT = re.compile(
    rf"^(?:(?P<name>{_NAME})[=:])?(?P<shape>\d+(?:x\d+)*|scalar)(?::(?P<dtype>\w+))?"
    rf"(?::(?P<low>{_NUMBER})\.\.(?P<high>{_NUMBER}))?$"
)
_DYNAMIC = re.compile(
    rf"^(?:(?P<input>{_NAME}|\d+)\.)?(?P<axis>\d+)=(?P<name>{_NAME})(?::(?P<min>\d+)?\.\.(?P<max>\d+)?)?$"
)


@dataclass(frozen=True)
class InputSpec:
    """One example input: its keyword name (None: positional), shape, dtype name, and optionally the range
    ``[low, high)`` its values are drawn from in verification (token ids: ``0..vocab_size``)."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    name: str | None = None
    low: float | None = None
    high: float | None = None

    def __str__(self) -> str:
        shape = "x".join(map(str, self.shape)) or "scalar"
        bounds = "" if self.low is None or self.high is None else f":{_number(self.low)}..{_number(self.high)}"
        return f"{self.name + '=' if self.name else ''}{shape}:{self.dtype}{bounds}"

    @property
    def range(self) -> tuple[float, float] | None:
        """``(low, high)`` when the spec gives one."""
        return None if self.low is None or self.high is None else (self.low, self.high)

    def sample(self, generator: torch.Generator, device: str | torch.device = "cpu") -> torch.Tensor:
        """Random values of this shape and dtype (``random_input``), in the spec's range when it has one."""
        self.make("meta")  # the size checks
        return random_input(self.shape, self.dtype, generator, value_range=self.range, name=self.name, device=device)

    def make(self, device: str | torch.device = "meta") -> torch.Tensor:
        """A tensor of this shape and dtype on ``device``: zeros for int/bool, randn for floats.

        A shape whose byte size overflows, or that the device cannot allocate, is a ``ModelSpecError``.
        """
        dtype = getattr(torch, self.dtype)
        nbytes = math.prod(self.shape) * dtype.itemsize
        if nbytes >= 2**63:
            raise ModelSpecError(
                f"input spec {self}: {math.prod(self.shape):.3g} elements ({nbytes:.3g} bytes) is more than "
                "any tensor can hold; check the shape"
            )
        try:
            if dtype.is_floating_point or dtype.is_complex:
                return torch.randn(self.shape, dtype=dtype, device=device)
            return torch.zeros(self.shape, dtype=dtype, device=device)
        except (RuntimeError, MemoryError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelSpecError(f"input spec {self}: cannot make this tensor on {device}: {reason}") from None


@dataclass(frozen=True)
class DynamicSpec:
    """A dynamic dim: ``input`` (a name, a positional index, or None for the first input), ``axis``, and
    the ``Dim`` it becomes (``name``, ``min``, ``max``; None: torch's default bound)."""

    axis: int
    name: str
    min: int | None = None
    max: int | None = None
    input: str | int | None = None

    def __str__(self) -> str:
        where = "" if self.input is None else f"{self.input}."
        bounds = "" if self.min is None and self.max is None else f":{self.min or ''}..{self.max or ''}"
        return f"{where}{self.axis}={self.name}{bounds}"


def parse_input_spec(text: str) -> InputSpec:
    """Parse ``[NAME=]DIMxDIM...[:DTYPE][:LOW..HIGH]`` (``1x128:int64``, ``attention_mask=1x128:int64``,
    ``scalar:f32``, ``ids:1x32:int64:0..50257``: ``NAME:`` works as ``NAME=``; values in ``[LOW, HIGH)``)."""
    match = _INPUT.match(text.strip())
    if match is None:
        raise ModelSpecError(
            f"input spec {text!r}: expected [NAME=]SHAPE[:DTYPE][:LOW..HIGH] with SHAPE like 1x3x224x224 "
            "(e.g. 1x128:int64, attention_mask=1x128:int64, 1x3x224x224:float32, ids=1x32:int64:0..50257)"
        )
    shape_text = match["shape"]
    shape = () if shape_text == "scalar" else tuple(int(d) for d in shape_text.split("x"))
    if 0 in shape:
        raise ModelSpecError(
            f"input spec {text!r}: a dimension of 0 makes an empty example input, which traces nothing the "
            "model does; give every dimension a size of at least 1"
        )
    dtype = _dtype_name(match["dtype"] or "float32", text)
    if match["low"] is None:
        return InputSpec(shape, dtype, match["name"])
    low, high = _bound(match["low"], dtype, text), _bound(match["high"], dtype, text)
    if dtype == "bool":
        raise ModelSpecError(f"input spec {text!r}: a bool input takes no range (it is drawn as a mask)")
    if not low < high:
        raise ModelSpecError(
            f"input spec {text!r}: the range {match['low']}..{match['high']} is empty (LOW..HIGH, HIGH excluded)"
        )
    return InputSpec(shape, dtype, match["name"], low, high)


def _bound(text: str, dtype: str, spec: str) -> float:
    value = float(text)
    floating = getattr(torch, dtype).is_floating_point
    if not floating and not value.is_integer():
        raise ModelSpecError(f"input spec {spec!r}: an {dtype} range needs integer bounds, got {text}")
    if not math.isfinite(value):
        raise ModelSpecError(f"input spec {spec!r}: range bound {text} is not finite")
    return value if floating else int(value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


DEFAULT_INTEGER_RANGE = (0, 2)
"""Where integer inputs are drawn from when nothing gives their range (no spec range, no indexing op, no
known vocabulary): 0 and 1, which every flag, count and index of a non-empty dimension accepts."""


def is_mask(name: str | None, dtype: str) -> bool:
    """Whether an input is drawn as a mask: every bool input, and integer inputs named like ``*mask*``."""
    if dtype == "bool":
        return True
    return name is not None and "mask" in name.lower() and not getattr(torch, dtype).is_floating_point


def random_input(
    shape: tuple[int, ...],
    dtype: str,
    generator: torch.Generator,
    *,
    value_range: tuple[float, float] | None = None,
    name: str | None = None,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Informative random values for a test input, from ``generator`` (so a seed fixes them).

    Floats (and complex) are standard normal, or uniform in ``value_range``; integers uniform in
    ``value_range`` (``[low, high)``, default ``DEFAULT_INTEGER_RANGE``), clipped to the dtype; masks (see
    ``is_mask``) are random 0/1 with the first element of every row (last dimension) set, so no row masks
    everything out (a causal query always sees the first key).
    """
    torch_dtype = getattr(torch, dtype)
    if is_mask(name, dtype) and value_range is None:
        bits = torch.rand(shape, generator=generator) < 0.5
        if bits.dim() == 0:
            bits = torch.ones((), dtype=torch.bool)
        else:
            bits[..., 0] = True
        return bits.to(device=device, dtype=torch_dtype)
    if torch_dtype.is_floating_point or torch_dtype.is_complex:
        if value_range is None:
            values = torch.randn(shape, generator=generator, dtype=torch.complex64 if torch_dtype.is_complex else None)
        else:
            low, high = value_range
            values = torch.rand(shape, generator=generator, dtype=torch.float64) * (high - low) + low
        return values.to(device=device, dtype=torch_dtype)
    info = torch.iinfo(torch_dtype)
    low, high = value_range if value_range is not None else DEFAULT_INTEGER_RANGE
    low, high = max(int(low), info.min), min(int(high), info.max + 1)
    if low >= high:
        raise ModelSpecError(f"input {name or ''}: no {dtype} value lies in {value_range[0]}..{value_range[1]}")  # type: ignore[index]
    values = torch.randint(low, high, shape, generator=generator, dtype=torch.int64)
    return values.to(device=device, dtype=torch_dtype)


def parse_dynamic_spec(text: str) -> DynamicSpec:
    """Parse ``[INPUT.]AXIS=NAME[:MIN..MAX]`` (``0=batch:1..64``, ``input_ids.1=seq:2..2048``)."""
    match = _DYNAMIC.match(text.strip())
    if match is None:
        raise ModelSpecError(
            f"dynamic dim {text!r}: expected [INPUT.]AXIS=NAME[:MIN..MAX], e.g. 0=batch:1..64 (axis 0 of the "
            "first input) or input_ids.1=seq:2..2048 (INPUT is an argument name or a positional index)"
        )
    where = match["input"]
    lo = None if match["min"] is None else int(match["min"])
    hi = None if match["max"] is None else int(match["max"])
    if lo is not None and hi is not None and lo > hi:
        raise ModelSpecError(f"dynamic dim {text!r}: min {lo} is larger than max {hi}")
    index: str | int | None = int(where) if where is not None and where.isdigit() else where
    return DynamicSpec(int(match["axis"]), match["name"], lo, hi, index)


def _dtype_name(text: str, spec: str) -> str:
    name = DTYPE_ALIASES.get(text.lower(), text.lower())
    if not isinstance(getattr(torch, name, None), torch.dtype):
        raise ModelSpecError(f"input spec {spec!r}: unknown dtype {text!r} (use e.g. float32, bfloat16, int64, bool)")
    return name


def build_inputs(
    specs: Sequence[InputSpec | str],
    dynamic: Sequence[DynamicSpec | str] = (),
    *,
    device: str | torch.device = "meta",
    model: torch.nn.Module | None = None,
    extra_kwargs: Mapping[str, Any] | None = None,
) -> tuple[tuple[Any, ...], dict[str, Any], Any]:
    """Make ``(args, kwargs, dynamic_shapes)`` from input and dynamic-dim specs (text or parsed).

    Positional specs come in order; named ones become kwargs, merged over ``extra_kwargs``
    (``use_cache=False``). ``dynamic_shapes`` is None when no dim is dynamic.
    """
    parsed = [parse_input_spec(s) if isinstance(s, str) else s for s in specs]
    args: list[Any] = []
    kwargs: dict[str, Any] = dict(extra_kwargs or {})
    named = False
    for spec in parsed:
        if spec.name is None:
            if named:
                raise ModelSpecError(f"input spec {spec}: a positional input cannot follow a named one")
            args.append(spec.make(device))
        else:
            named = True
            kwargs[spec.name] = spec.make(device)
    return tuple(args), kwargs, dynamic_shapes_for(model, tuple(args), kwargs, dynamic)


def dynamic_shapes_for(
    model: torch.nn.Module | None,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    dynamic: Sequence[DynamicSpec | str],
) -> Any:
    """The ``dynamic_shapes`` argument of ``torch.export`` for these inputs, or None when nothing is dynamic.

    Keyed by ``forward``'s parameter names (what torch.export wants once kwargs are passed); a tuple over
    ``args`` when the names are unknown (``forward(*args)``) and there are no kwargs. Dims with the same
    name are one ``Dim``.
    """
    specs = [parse_dynamic_spec(s) if isinstance(s, str) else s for s in dynamic]
    if not specs:
        return None
    names = positional_names(model, len(args))
    dims: dict[str, torch.export.Dim] = {}
    per_input: dict[str | int, dict[int, Any]] = {}
    for spec in specs:
        key, tensor = _locate(spec, names, args, kwargs)
        if not isinstance(tensor, torch.Tensor):
            raise ModelSpecError(f"dynamic dim {spec}: input {key!r} is not a tensor")
        if spec.axis >= tensor.dim():
            raise ModelSpecError(f"dynamic dim {spec}: input {key!r} has {tensor.dim()} dims, no axis {spec.axis}")
        size = tensor.shape[spec.axis]
        if isinstance(size, int) and size < 2:
            raise ModelSpecError(
                f"dynamic dim {spec}: the example input {key!r} has size {size} on axis {spec.axis}, and torch.export "
                "specializes sizes 0 and 1; give an example of at least 2 there (e.g. --input 2x...)"
            )
        dim = dims.get(spec.name)
        if dim is None:
            bounds = {k: v for k, v in (("min", spec.min), ("max", spec.max)) if v is not None}
            dim = dims[spec.name] = torch.export.Dim(spec.name, **bounds)
        per_input.setdefault(key, {})[spec.axis] = dim
    if names is None:
        if kwargs:
            raise ModelSpecError("dynamic dims with keyword inputs need a forward() with named parameters")
        return tuple(per_input.get(i) for i in range(len(args)))
    result: dict[str, Any] = {name: per_input.get(name) for name in names}
    for name, value in kwargs.items():
        result[name] = per_input.get(name) if isinstance(value, torch.Tensor) else None
    return result


def positional_names(model: torch.nn.Module | None, count: int) -> list[str] | None:
    """The names of ``forward``'s first ``count`` positional parameters, or None when they are unknown."""
    if model is None:
        return [] if count == 0 else None
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    names: list[str] = []
    for param in params:
        if param.kind == param.VAR_POSITIONAL:
            return None if len(names) < count else names
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD) and len(names) < count:
            names.append(param.name)
    return names if len(names) == count else None


def _locate(
    spec: DynamicSpec, names: list[str] | None, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[str | int, Any]:
    """Which input a dynamic spec names, as (key in the dynamic_shapes result, the tensor)."""
    where = spec.input
    if where is None:
        if args:
            where = 0
        elif kwargs:
            where = next((k for k, v in kwargs.items() if isinstance(v, torch.Tensor)), next(iter(kwargs)))
        else:
            raise ModelSpecError(f"dynamic dim {spec}: the model takes no inputs")
    if isinstance(where, int):
        if where >= len(args):
            raise ModelSpecError(f"dynamic dim {spec}: there are {len(args)} positional inputs, no input {where}")
        return (names[where] if names is not None else where), args[where]
    if where in kwargs:
        return where, kwargs[where]
    if names is not None and where in names:
        return where, args[names.index(where)]
    known = [*(names or []), *kwargs]
    import difflib

    close = difflib.get_close_matches(where, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ModelSpecError(f"dynamic dim {spec}: no input named {where!r}{hint}; inputs: {', '.join(known) or 'none'}")


__all__ = [
    "DEFAULT_INTEGER_RANGE",
    "DTYPE_ALIASES",
    "DynamicSpec",
    "InputSpec",
    "build_inputs",
    "dynamic_shapes_for",
    "is_mask",
    "parse_dynamic_spec",
    "parse_input_spec",
    "positional_names",
    "random_input",
]
