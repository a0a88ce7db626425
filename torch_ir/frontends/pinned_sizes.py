"""Sizes a traced program pins: values read from tensor data that the trace fixed to one value.

A model that reads a number from a tensor (``.item()``, ``.tolist()``) gets an unbacked symbol in the
trace; when its code then forces that number (a mask of ``past + seq`` positions added to a score over
the whole cache), torch.export records the constraint as a runtime assertion and narrows the symbol's
range. A range of one value means the program runs only when that number is exactly that value; an empty
range means it never runs. ``pinned_sizes`` finds them in an ``ExportedProgram`` and says, in the model's
terms, what must hold (``cache_position[0] + seq == 16``) and where the model's code asks for it.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind

DATA_SCALAR_OPS = ("aten.item.default", "aten._local_scalar_dense.default")
"""Ops that read a number from tensor data (an unbacked symbol in the trace)."""

_INFIX = {
    "aten.add.Tensor": "+",
    "aten.add.Scalar": "+",
    "aten.sub.Tensor": "-",
    "aten.sub.Scalar": "-",
    "aten.mul.Tensor": "*",
    "aten.mul.Scalar": "*",
    operator.add: "+",
    operator.sub: "-",
    operator.mul: "*",
}
_PASS_THROUGH = ("aten.copy.default", "aten.copy_.default", "aten.clone.default", "aten.alias.default")
"""Ops whose result is their (last) tensor operand's value: the expression looks through them."""


@dataclass(frozen=True)
class PinnedSize:
    """A number read from tensor data that the trace constrains to ``low..high`` (one value, or none)."""

    expression: str
    low: int
    high: int
    source: dict[str, Any] | None

    @property
    def satisfiable(self) -> bool:
        """Whether any value meets the range (False: the program can never run)."""
        return self.low <= self.high

    def describe(self) -> str:
        """What must hold, and where the model's code asks for it."""
        where = ""
        if self.source:
            where = f" ({self.source['file']}:{self.source['line']}: `{self.source['code']}`)"
        if not self.satisfiable:
            return f"{self.expression} must lie in {self.low}..{self.high}, which no value can{where}"
        return f"{self.expression} == {self.low}{where}"


def pinned_sizes(program: ExportedProgram, symbol_names: dict[Any, Any] | None = None) -> list[PinnedSize]:
    """Every data-dependent number of ``program`` that its trace pins to one value or to an empty range.

    ``symbol_names`` maps torch's size symbols to the user's ``Dim`` names (``seq``), for the message.
    """
    from torch_ir.frontends.torch_export import _source_of

    names = _placeholder_names(program)
    found: list[PinnedSize] = []
    seen: set[str] = set()
    for node in program.graph.nodes:
        if node.op != "call_function" or str(node.target) not in DATA_SCALAR_OPS:
            continue
        bounds = _bounds(node.meta.get("val"))
        if bounds is None or bounds[0] < bounds[1] or not _reads_inputs(node, set(names)):
            continue  # free to vary, or a number of a tensor the model makes from constants
        expression = _expression(node.args[0], names, symbol_names or {}, depth=8)
        if expression in seen:
            continue
        seen.add(expression)
        trace = node.meta.get("stack_trace")
        found.append(PinnedSize(expression, bounds[0], bounds[1], _source_of(trace) if trace else None))
    return found


def warn_pinned_sizes(program: ExportedProgram, symbol_names: dict[Any, Any], model_name: str) -> None:
    """Warn of each size ``program`` pins (it runs only for that value); an ``ExportError`` for a range no
    value meets (it never runs)."""
    import warnings

    from torch_ir.errors import ExportError, TorchIRWarning

    found = pinned_sizes(program, symbol_names)
    never = [p for p in found if not p.satisfiable]
    if never:
        error = ExportError(f"{model_name} can never run as traced: " + "; ".join(p.describe() for p in never))
        error.cause = "model"
        raise error
    for pinned in found:
        warnings.warn(f"{model_name}: the graph runs only when {pinned.describe()}", TorchIRWarning, stacklevel=3)


def _bounds(val: Any) -> tuple[int, int] | None:
    """The range the trace allows a scalar: a constant is pinned to itself; an unbacked symbol has a range."""
    if isinstance(val, (bool, float)) or val is None:
        return None
    if isinstance(val, int):
        return val, val
    if not isinstance(val, torch.SymInt):
        return None
    expr = val.node.expr
    if getattr(expr, "is_number", False):
        value = _finite(expr)
        return None if value is None else (value, value)
    bounds = val.node.shape_env.bound_sympy(expr)
    low, high = _finite(bounds.lower), _finite(bounds.upper)
    return None if low is None or high is None else (low, high)  # an infinite bound: not pinned


def _finite(bound: Any) -> int | None:
    """A bound as an int; None for an infinite one (torch's ``int_oo``, sympy's ``oo``: ``int()`` of them
    raises an ``AttributeError`` in some sympy versions, so they are recognized before)."""
    if getattr(bound, "is_finite", True) is False or getattr(bound, "is_infinite", False):
        return None
    try:
        return int(bound)
    except (TypeError, ValueError, OverflowError, AttributeError):
        return None


def _placeholder_names(program: ExportedProgram) -> dict[str, str]:
    """The inputs and buffers of ``program`` (what varies from call to call), by placeholder name."""
    names: dict[str, str] = {}
    for spec in program.graph_signature.input_specs:
        arg = getattr(spec.arg, "name", None)
        if arg is not None and spec.kind in (InputKind.USER_INPUT, InputKind.BUFFER):
            names[arg] = arg if spec.kind == InputKind.USER_INPUT else str(spec.target)
    return names


def _reads_inputs(node: fx.Node, placeholders: set[str]) -> bool:
    """Whether ``node``'s value depends on an input or a buffer of the program."""
    stack, seen = [node], set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        if current.op == "placeholder" and current.name in placeholders:
            return True
        stack.extend(current.all_input_nodes)
    return False


def _expression(arg: Any, names: dict[str, str], symbols: dict[Any, Any], depth: int) -> str:
    """A readable expression for the value of ``arg``, through the few ops that index, copy and add."""
    if not isinstance(arg, fx.Node):
        return str(arg)
    if arg.op == "placeholder":
        return names.get(arg.name, arg.name)
    val = arg.meta.get("val")
    if isinstance(val, torch.SymInt) and not getattr(val.node.expr, "is_number", True):
        expr = val.node.expr
        if expr.free_symbols <= set(symbols):
            return str(expr.xreplace(symbols))
    if depth <= 0 or arg.op != "call_function":
        return "…"
    target = arg.target if arg.target in _INFIX else str(arg.target)
    args = arg.args
    if target in _INFIX and len(args) == 2:
        left = _expression(args[0], names, symbols, depth - 1)
        right = _expression(args[1], names, symbols, depth - 1)
        return f"{left} {_INFIX[target]} {right}"
    if target in _PASS_THROUGH:
        return _expression(args[1] if len(args) > 1 else args[0], names, symbols, depth - 1)
    if target == "aten.select.int" and len(args) == 3 and args[1] == 0:
        return f"{_expression(args[0], names, symbols, depth - 1)}[{args[2]}]"
    if target == "aten.sym_size.int" and len(args) == 2:
        return f"{_expression(args[0], names, symbols, depth - 1)}.shape[{args[1]}]"
    op = str(target).split(".")[1] if str(target).startswith("aten.") else getattr(target, "__name__", str(target))
    inner = ", ".join(_expression(a, names, symbols, depth - 1) for a in args if isinstance(a, fx.Node))
    return f"{op}({inner})"


__all__ = ["PinnedSize", "pinned_sizes", "warn_pinned_sizes"]
