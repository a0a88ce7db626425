"""What torch says about an op: its overload, its schema's arguments, and the schema's alias annotations.

Everything here imports torch inside the function that needs it, on first use, so that knowing an op's
name-only traits (its cost model, its canonicalization class) never imports torch.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

from torch_ir.ops.python_ops import PYTHON_NAMESPACES, python_op
from torch_ir.ops.runnable import define_library_op


class ArgumentSpec(NamedTuple):
    """One argument of an op's schema: its name, whether it is keyword-only, and its default."""

    name: str
    kwarg_only: bool
    has_default: bool
    default: Any


@functools.cache
def resolve_op(op_type: str) -> Any:
    """The ``torch._ops.OpOverload`` for ``aten.add.Tensor`` (or the allowed Python function for
    ``operator.mul``); None when it cannot be found."""
    parts = op_type.split(".")
    if parts[0] in PYTHON_NAMESPACES:
        return python_op(op_type)
    if len(parts) != 3:
        return None
    import torch

    for attempt in range(2):
        try:
            packet = getattr(getattr(torch.ops, parts[0]), parts[1])
            return getattr(packet, parts[2])
        except (AttributeError, RuntimeError):
            if attempt or not define_library_op(op_type):
                return None
    return None


def schema_arguments(schema: Any) -> tuple[ArgumentSpec, ...]:
    """The arguments of a ``torch.FunctionSchema``, defaults written as the IR writes literals."""
    out = []
    for argument in schema.arguments:
        has_default = argument.has_default_value()
        default = plain_literal(argument.default_value) if has_default else None
        out.append(ArgumentSpec(argument.name, argument.kwarg_only, has_default, default))
    return tuple(out)


def plain_literal(value: Any) -> Any:
    """A literal as the IR writes it: JSON types, with torch dtypes, devices, layouts and formats by name."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [plain_literal(v) for v in value]
    return str(value).removeprefix("torch.")


def mutated_operands(schema: Any) -> tuple[str, ...]:
    """The arguments the op writes: those annotated ``Tensor(a!)`` (``self`` of ``add_``, ``out`` of ``.out``)."""
    return tuple(a.name for a in schema.arguments if a.alias_info is not None and a.alias_info.is_write)


def aliased_operands(schema: Any) -> tuple[str, ...]:
    """The arguments a result may alias: those whose alias set a return shares (``Tensor(a) self`` of
    ``view``, returned as ``Tensor(a)``) or that flow into a returned list (``Tensor(a -> *) self`` of
    ``split``)."""
    returned: set[str] = set()
    for result in schema.returns:
        if result.alias_info is not None:
            returned.update(result.alias_info.before_set)
    out = []
    for argument in schema.arguments:
        info = argument.alias_info
        if info is not None and (info.before_set & returned or "*" in info.after_set):
            out.append(argument.name)
    return tuple(out)


def writes_outside_results(schema: Any) -> bool:
    """Whether a call changes something other than its results: a mutable schema, a written argument, or an
    ``out=`` argument."""
    if schema.is_mutable or mutated_operands(schema):
        return True
    return any(a.kwarg_only and a.name == "out" for a in schema.arguments)


def is_composite(target: Any) -> bool:
    """Whether torch runs the overload as a composite of other ops (``CompositeImplicitAutograd``), whose
    result may then be what one of them returned: an operand itself, or a view of it."""
    name = getattr(target, "name", None)
    if not callable(name):
        return False
    import torch

    try:
        return bool(torch._C._dispatch_has_kernel_for_dispatch_key(name(), "CompositeImplicitAutograd"))
    except RuntimeError:
        return False


def is_seeded_random(target: Any) -> bool:
    """Whether torch tags the overload ``nondeterministic_seeded`` (it draws from the random generator)."""
    tags = getattr(target, "tags", ()) or ()
    if not tags:
        return False
    import torch

    return torch.Tag.nondeterministic_seeded in tags


__all__ = [
    "ArgumentSpec",
    "aliased_operands",
    "is_composite",
    "is_seeded_random",
    "mutated_operands",
    "plain_literal",
    "resolve_op",
    "schema_arguments",
    "writes_outside_results",
]
