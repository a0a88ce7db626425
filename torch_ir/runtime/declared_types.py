"""What the IR declares about its values, checked against what runs: shapes with symbols, and dtypes.

A declared shape may hold symbols (``"s0"``) and expressions of them (``"2*s0+1"``). ``SymbolBindings``
binds each bare symbol to the size it first meets (graph inputs first) and then requires every later
occurrence to agree; expressions are the parsed ``SymExpr`` objects of the types (``torch_ir.ir.symbolic``),
evaluated under the bindings with bounded integer arithmetic, so an expression in a crafted file cannot make
it do unbounded work.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from torch_ir.ir.symbolic import SymExpr, evaluate_dim
from torch_ir.ir.types import ITEMSIZE, TensorType


class SymbolBindings:
    """Symbols bound to sizes as values are met; a second, different size for one symbol is a mismatch."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def bind_tensor(self, declared: TensorType, actual: torch.Tensor) -> None:
        """Bind the bare symbols of ``declared`` to ``actual``'s sizes (first binding wins, no checks)."""
        if len(declared.shape) != actual.dim():
            return
        for want, got in zip(declared.shape, actual.shape):
            if isinstance(want, SymExpr) and want.is_symbol:
                self.values.setdefault(want, int(got))

    def shape(self, declared: TensorType) -> tuple[int | None, ...]:
        """``declared``'s shape under the bindings, None for each dim that cannot be evaluated yet."""
        return tuple(evaluate_dim(d, self.values) for d in declared.shape)

    def mismatch(self, declared: TensorType, actual: Any) -> str:
        """Why ``actual`` does not have the ``declared`` type ('' when it does); binds new symbols."""
        if not isinstance(actual, torch.Tensor):
            return f"declared {declared}, got a {type(actual).__name__}"
        dtype = str(actual.dtype).removeprefix("torch.")
        got_shape = list(actual.shape)
        got_text = f"{dtype}{got_shape}"
        if len(declared.shape) != len(got_shape):
            return f"declared {declared}, got {got_text} (rank {len(got_shape)}, not {len(declared.shape)})"
        for axis, (want, got) in enumerate(zip(declared.shape, got_shape)):
            if isinstance(want, SymExpr) and want.is_symbol and want not in self.values:
                self.values[want] = int(got)
                continue
            value = evaluate_dim(want, self.values)
            if value is not None and value != got:
                bound = "" if isinstance(want, int) else f" ({want} = {value})"
                return f"declared {declared}, got {got_text}: dimension {axis} is {got}, not {value}{bound}"
        if dtype != declared.dtype:
            return f"declared {declared}, got {got_text}: dtype {dtype}, not {declared.dtype}"
        return ""


def bind_inputs(declared: Sequence[Any], inputs: Sequence[Any]) -> SymbolBindings:
    """Bindings of the symbols in the declared input types, from the actual inputs."""
    bindings = SymbolBindings()
    for type_, given in zip(declared, inputs):
        if isinstance(type_, TensorType) and isinstance(given, torch.Tensor):
            bindings.bind_tensor(type_, given)
    return bindings


def declared_nbytes(declared: TensorType, bindings: SymbolBindings) -> int | None:
    """Bytes of a value of the ``declared`` type under the bindings, or None while a dim is unknown."""
    dims = bindings.shape(declared)
    if any(d is None for d in dims):
        return None
    return math.prod(max(int(d), 0) for d in dims if d is not None) * int(ITEMSIZE.get(declared.dtype, 8))


__all__ = ["SymbolBindings", "bind_inputs", "declared_nbytes"]
