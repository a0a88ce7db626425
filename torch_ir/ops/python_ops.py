"""The Python functions an IR may call as ops (SymInt arithmetic under dynamic shapes), by op type.

An IR file names its ops by string, so a crafted file could name ``builtins.exec`` or ``builtins.open``.
Only the functions listed here are ever resolved: arithmetic, comparisons and math, nothing that reaches
the file system, imports, or evaluates code. Their arguments are bounded too (``python_call_problem``), so
a node such as ``math.factorial(50000000)`` is refused instead of running for hours.
"""

from __future__ import annotations

import builtins
import math
import operator
from collections.abc import Callable, Mapping, Sequence
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

TORCH_SYM_FUNCTIONS = ("sym_ite", "sym_max", "sym_min", "sym_not", "sym_float", "sym_int", "sym_sum", "sym_fresh_size")
"""torch's functions on symbolic values, which torch.export calls for data-dependent sizes and checks."""


def _torch_sym_functions() -> dict[str, Callable[..., Any]]:
    import torch

    return {
        f"torch.{name}": getattr(torch, name) for name in TORCH_SYM_FUNCTIONS if callable(getattr(torch, name, None))
    }


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


MAX_INT_BITS = 256
"""The widest integer a Python-level op accepts as an argument."""
MAX_RESULT_BITS = 4096
"""The widest integer a Python-level op may be asked to produce (a power, a shift, a factorial)."""


def _int_bits(value: Any) -> int:
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return value.bit_length()
    if isinstance(value, (list, tuple)):
        return max((_int_bits(v) for v in value), default=0)
    return 0


def _argument_problem(args: Sequence[Any]) -> str:
    for arg in args:
        if isinstance(arg, (str, bytes)):
            return f"Python-level ops take numbers, not {type(arg).__name__}"
        if isinstance(arg, (list, tuple)):
            if len(arg) > 1 << 16:
                return f"a list of {len(arg)} items is too long for a Python-level op"
            problem = _argument_problem(arg)
            if problem:
                return problem
        elif _int_bits(arg) > MAX_INT_BITS:
            return f"an integer of {_int_bits(arg)} bits is over the {MAX_INT_BITS}-bit limit of Python-level ops"
    return ""


def python_call_problem(op_type: str, args: Sequence[Any], kwargs: Mapping[str, Any] | None = None) -> str:
    """Why calling the Python op ``op_type`` on these arguments is refused ('' when it may run).

    Arguments are numbers (or lists of them, or tensors) of at most ``MAX_INT_BITS`` bits; an integer
    result may need at most ``MAX_RESULT_BITS`` bits (powers, shifts, factorials, products, ``round`` to huge
    negative digits), whichever way the arguments are passed (``pow(3, 2**200, None)``,
    ``prod(xs, start=3)``); sequences are never repeated (``[0] * 10**9``).
    """
    named = dict(kwargs or {})
    values = [*args, *named.values()]
    problem = _argument_problem(values)
    if problem:
        return problem
    name = op_type.split(".")[-1]
    if name in ("mul", "imul") and any(isinstance(a, (list, tuple)) for a in values):
        return "it would repeat a sequence"
    bits = _result_bits(name, list(args), named)
    if bits > MAX_RESULT_BITS:
        return f"its result would need about {bits} bits, over the {MAX_RESULT_BITS}-bit limit of Python-level ops"
    return ""


def _bits_of_all(value: Any) -> int:
    """The bits of every integer in ``value`` added up (the size of their product)."""
    if isinstance(value, (list, tuple)):
        return sum(_bits_of_all(v) for v in value)
    return _int_bits(value)


def _result_bits(name: str, args: list[Any], named: dict[str, Any]) -> int:
    """An upper bound on the bits of the integer ``name(*args, **named)`` produces (0 when small by nature)."""
    if name == "pow":
        base = args[0] if args else named.get("base")
        exponent = args[1] if len(args) > 1 else named.get("exp")
        modulus = args[2] if len(args) > 2 else named.get("mod")
        if modulus is not None or not isinstance(base, int) or not isinstance(exponent, int):
            return 0  # modular (as wide as its bounded modulus), or a float power (overflows at once)
        return 0 if exponent <= 0 or abs(base) <= 1 else exponent * abs(base).bit_length()
    ints = [a for a in args if isinstance(a, int) and not isinstance(a, bool)]
    if name == "lshift" and len(ints) == 2:
        return ints[0].bit_length() + max(ints[1], 0)
    if name == "factorial" and ints:
        n = ints[0]
        return 0 if n < 2 else int(n * math.log2(n)) + 1
    if name == "round" and len(args) == 2 and isinstance(args[1], int):
        return 4 * abs(args[1])
    if name == "round" and isinstance(named.get("ndigits"), int):
        return 4 * abs(named["ndigits"])
    if name in ("mul", "prod", "imul"):
        return _bits_of_all(args) + _bits_of_all(list(named.values()))
    return 0


__all__ = ["MAX_INT_BITS", "MAX_RESULT_BITS", "PYTHON_NAMESPACES", "PYTHON_OPS", "python_call_problem", "python_op"]
