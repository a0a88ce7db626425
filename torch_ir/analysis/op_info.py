"""What passes need to know about an op type: its torch overload and schema, and whether it is pure.

Classification is conservative: an op torch-ir cannot resolve (a custom op whose library is not loaded)
counts as side-effecting, so no pass removes or merges it.
"""

from __future__ import annotations

import functools
from typing import Any

from torch_ir.ops.python_ops import PYTHON_NAMESPACES, python_op

SIDE_EFFECT_PREFIXES = (
    "aten._assert",
    "aten.sym_constrain_range",
    "aten._print",
    "aten.print",
    "aten.copy_",
    "aten.resize_",
    "aten.set_",
    "aten.record_stream",
    "aten._foreach_",
)
"""Op types (prefixes) that are kept even when their results are unused."""

RANDOM_MARKERS = (
    "rand",
    "dropout",
    "bernoulli",
    "multinomial",
    "normal",
    "uniform",
    "poisson",
    "exponential",
    "geometric",
    "cauchy",
    "log_normal",
    "empty",
    "seed",
)
"""Substrings of op names whose results differ between calls (random, or uninitialized memory)."""

PURE_NAMESPACES = PYTHON_NAMESPACES


@functools.cache
def resolve_op(op_type: str) -> Any:
    """The ``torch._ops.OpOverload`` for ``aten.add.Tensor`` (or a Python function for ``operator.mul``);
    None when it cannot be found."""
    parts = op_type.split(".")
    if parts[0] in PURE_NAMESPACES:
        return python_op(op_type)
    if len(parts) != 3:
        return None
    import torch

    try:
        packet = getattr(getattr(torch.ops, parts[0]), parts[1])
        return getattr(packet, parts[2])
    except (AttributeError, RuntimeError):
        return None


def op_name(op_type: str) -> str:
    """The op's name without namespace and overload: ``add_`` for ``aten.add_.Tensor``."""
    parts = op_type.split(".")
    return parts[1] if len(parts) >= 3 else parts[-1]


@functools.cache
def has_side_effects(op_type: str) -> bool:
    """Whether a node of this type must stay even when nothing reads its results."""
    if op_type.startswith(SIDE_EFFECT_PREFIXES):
        return True
    namespace = op_type.split(".", 1)[0]
    if namespace in PURE_NAMESPACES:
        return resolve_op(op_type) is None or op_name(op_type) in ("print", "setitem", "delitem")
    if op_name(op_type).endswith("_") and not op_name(op_type).endswith("__"):
        return True
    op = resolve_op(op_type)
    if op is None or not hasattr(op, "_schema"):
        return True
    schema = op._schema
    if schema.is_mutable or any(a.alias_info is not None and a.alias_info.is_write for a in schema.arguments):
        return True
    return any(a.kwarg_only and a.name == "out" for a in schema.arguments)


@functools.cache
def is_random(op_type: str) -> bool:
    """Whether two nodes of this type with equal operands may give different results."""
    name = op_name(op_type).lower()
    if any(marker in name for marker in RANDOM_MARKERS):
        return True
    op = resolve_op(op_type)
    tags = getattr(op, "tags", ()) or ()
    try:
        import torch

        return torch.Tag.nondeterministic_seeded in tags
    except AttributeError:
        return False


def is_pure(op_type: str) -> bool:
    """Neither side-effecting nor random: safe to remove when unused, merge, or hoist."""
    return not has_side_effects(op_type) and not is_random(op_type)
