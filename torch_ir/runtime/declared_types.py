"""What the IR declares about its values, checked against what runs: shapes with symbols, and dtypes.

A declared shape may hold symbols (``"s0"``) and expressions of them (``"2*s0+1"``). ``SymbolBindings``
binds each bare symbol to the size it first meets (graph inputs first) and then requires every later
occurrence to agree; expressions are evaluated under the bindings with bounded integer arithmetic, so an
expression in a crafted file cannot make the evaluator do unbounded big-integer work.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Sequence
from typing import Any

import torch

from torch_ir.ir.types import ITEMSIZE, Dim, TensorType

MAX_DIM_MAGNITUDE = 1 << 126
"""The largest magnitude a dimension expression may reach while it is evaluated; beyond it, it is unknown."""


class _Unknown(Exception):
    pass


_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Div: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
}


def evaluate_dim(expr: Dim, bindings: dict[str, int]) -> int | None:
    """The value of ``expr`` (an int, ``"s0"``, ``"2*s0+1"``, ``"Max(1, s0)"``), or None when unknown.

    Unknown means: a symbol is unbound, the text is no dimension expression, or a step would exceed
    ``MAX_DIM_MAGNITUDE`` (a power whose result would, too).
    """
    if isinstance(expr, int):
        return expr
    if len(expr) > 4096:
        return None
    try:
        tree = ast.parse(expr.replace("//", " // "), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None

    def bounded(value: int) -> int:
        if abs(value) > MAX_DIM_MAGNITUDE:
            raise _Unknown
        return value

    def walk(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
            return bounded(node.value)
        if isinstance(node, ast.Name) and node.id in bindings:
            return bounded(int(bindings[node.id]))
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return bounded(_BINOPS[type(node.op)](walk(node.left), walk(node.right)))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            base, exponent = walk(node.left), walk(node.right)
            if exponent < 0 or (abs(base) > 1 and exponent * max(abs(base).bit_length(), 1) > 127):
                raise _Unknown
            return bounded(base**exponent)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("Max", "Min"):
            values = [walk(a) for a in node.args]
            if not values:
                raise _Unknown
            return max(values) if node.func.id == "Max" else min(values)
        raise _Unknown

    try:
        return walk(tree)
    except (_Unknown, ZeroDivisionError, RecursionError):
        return None


class SymbolBindings:
    """Symbols bound to sizes as values are met; a second, different size for one symbol is a mismatch."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def bind_tensor(self, declared: TensorType, actual: torch.Tensor) -> None:
        """Bind the bare symbols of ``declared`` to ``actual``'s sizes (first binding wins, no checks)."""
        if len(declared.shape) != actual.dim():
            return
        for want, got in zip(declared.shape, actual.shape):
            if isinstance(want, str) and want.isidentifier():
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
            if isinstance(want, str) and want.isidentifier() and want not in self.values:
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


__all__ = ["MAX_DIM_MAGNITUDE", "SymbolBindings", "bind_inputs", "declared_nbytes", "evaluate_dim"]
