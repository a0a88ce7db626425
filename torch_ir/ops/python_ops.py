"""The Python functions an IR may call as ops (SymInt arithmetic under dynamic shapes), by op type.

An IR file names its ops by string, so a crafted file could name ``builtins.exec`` or ``builtins.open``.
Only the functions listed here are ever resolved: arithmetic, comparisons and math, nothing that reaches
the file system, imports, or evaluates code.
"""

from __future__ import annotations

import builtins
import math
import operator
from collections.abc import Callable
from typing import Any

PYTHON_NAMESPACES = ("operator", "math", "builtins", "torch")

_OPERATOR = (
    "add",
    "sub",
    "mul",
    "truediv",
    "floordiv",
    "mod",
    "pow",
    "neg",
    "pos",
    "abs",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "and_",
    "or_",
    "xor",
    "not_",
    "invert",
    "lshift",
    "rshift",
    "truth",
    "index",
    "getitem",
)
_MATH = (
    "ceil",
    "floor",
    "trunc",
    "sqrt",
    "exp",
    "log",
    "log2",
    "log10",
    "sin",
    "cos",
    "tan",
    "tanh",
    "pow",
    "fabs",
    "gcd",
    "isqrt",
    "factorial",
    "prod",
    "fsum",
    "copysign",
    "fmod",
    "isfinite",
    "isinf",
    "isnan",
)
_BUILTINS = ("abs", "min", "max", "round", "int", "float", "bool", "pow", "divmod", "sum")

_TORCH_SYM = ("sym_ite", "sym_max", "sym_min", "sym_not", "sym_float", "sym_int", "sym_sum", "sym_fresh_size")
"""torch's functions on symbolic values, which torch.export calls for data-dependent sizes and checks."""


def _torch_sym_functions() -> dict[str, Callable[..., Any]]:
    import torch

    return {f"torch.{name}": getattr(torch, name) for name in _TORCH_SYM if callable(getattr(torch, name, None))}


PYTHON_OPS: dict[str, Callable[..., Any]] = {
    **{f"operator.{name}": getattr(operator, name) for name in _OPERATOR},
    **{f"math.{name}": getattr(math, name) for name in _MATH},
    **{f"builtins.{name}": getattr(builtins, name) for name in _BUILTINS},
}


def python_op(op_type: str) -> Callable[..., Any] | None:
    """The allowed Python function for ``op_type`` (``operator.mul``, ``torch.sym_max``), or None."""
    function = PYTHON_OPS.get(op_type)
    if function is None and op_type.startswith("torch."):
        PYTHON_OPS.update(_torch_sym_functions())
        function = PYTHON_OPS.get(op_type)
    return function
