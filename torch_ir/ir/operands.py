"""Operands by schema name: one view over a node's ``args`` (values) and ``attrs`` (literals).

The IR stores an operand that holds a value in ``node.args`` and a literal in ``node.attrs`` (by its schema
name), so a position in ``args`` shifts when an optional operand is absent (``conv2d`` without a bias).
These functions walk the op's torch schema the way the interpreter does (an argument named in ``attrs`` is
that attribute, else it is the next entry of ``args``) so that passes read and write operands by name::

    node.operand("attn_mask")            # a Value, a literal, or the schema default
    node.set_operand("bias", new_bias)   # moves it between args and attrs as needed

An op without a torch schema (a Python ``operator.*`` op, a library that is not imported) names its
``args`` ``"0"``, ``"1"`` ... and its ``attrs`` by their keys. Schemas come from the op registry
(``torch_ir.ops``), and so do the result types of a node about to be built (``infer_result_types``, what
``Graph.create_op`` uses).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from torch_ir.errors import IRError
from torch_ir.ir.types import ScalarType, TensorType, ValueType
from torch_ir.ops import ArgumentSpec, op_info
from torch_ir.ops.schema import plain_literal
from torch_ir.ops.type_inference import Operand, ShapeFunctionError, infer_types

if TYPE_CHECKING:
    from torch_ir.ir.graph import Graph, Node

MISSING: Any = object()
"""The sentinel for an operand that is neither given nor defaulted."""


def op_arguments(op_type: str) -> tuple[ArgumentSpec, ...] | None:
    """The schema arguments of ``aten.add.Tensor`` (or a custom op), or None when torch does not know it."""
    return op_info(op_type).arguments


def read_operands(node: Node) -> dict[str, Any]:
    """Every operand of ``node`` by schema name, in schema order (absent optional ones left out)."""
    spec = op_info(node.op_type).arguments
    if spec is None:
        out: dict[str, Any] = {str(i): a for i, a in enumerate(node.args)}
        out.update(node.attrs)
        return out
    args = iter(node.args)
    out = {}
    for argument in spec:
        if argument.name in node.attrs:
            out[argument.name] = node.attrs[argument.name]
            continue
        value = next(args, MISSING)
        if value is MISSING:  # absent (an optional operand left out): later ones may still be attributes
            continue
        out[argument.name] = value
    return out


def operand(node: Node, name: str, default: Any = MISSING) -> Any:
    """The operand ``name`` of ``node``: a value, a literal, else ``default``, else the schema default."""
    operands = read_operands(node)
    if name in operands:
        return operands[name]
    if default is not MISSING:
        return default
    spec = op_info(node.op_type).arguments
    if spec is not None:
        for argument in spec:
            if argument.name == name:
                if argument.has_default:
                    return argument.default
                break
        else:
            raise IRError(f"node {node.name} ({node.op_type}) has no operand {name!r}; its operands: {_names(spec)}")
    raise IRError(f"node {node.name} ({node.op_type}): operand {name!r} is not set and has no default")


def split_operands(op_type: str, operands: Mapping[str, Any], where: str = "") -> tuple[list[Any], dict[str, Any]]:
    """``(args, attrs)`` for a node of ``op_type`` whose operands by name are ``operands``.

    Operands that hold a value go to ``args`` in schema order, literals to ``attrs`` (``torch.float16`` as
    ``"float16"``); an absent argument takes its schema default (as the frontend writes every argument), a
    missing required one is an error.
    """
    spec = op_info(op_type).arguments
    where = where or op_type
    if spec is None:
        args: list[Any] = []
        attrs: dict[str, Any] = {}
        for key, value in operands.items():
            if key.isdigit():
                args.append(value)
            else:
                attrs[key] = value
        return args, attrs
    known = {a.name for a in spec}
    unknown = [k for k in operands if k not in known]
    if unknown:
        raise IRError(f"{where}: {op_type} has no operand {unknown[0]!r}; its operands: {_names(spec)}")
    args, attrs = [], {}
    for argument in spec:
        if argument.name in operands:
            value = operands[argument.name]
        elif argument.has_default:
            value = argument.default
        else:
            raise IRError(f"{where}: {op_type} needs operand {argument.name!r}")
        if holds_value(value):
            args.append(value)
        else:
            attrs[argument.name] = plain_literal(value)
    return args, attrs


def bind_operands(op_type: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Operands by name from a call written like the op's Python signature (``mul(a, b)``, ``sum(x, dim=1)``)."""
    spec = op_info(op_type).arguments
    if spec is None:
        out: dict[str, Any] = {str(i): a for i, a in enumerate(args)}
        out.update(kwargs)
        return out
    positional = [a for a in spec if not a.kwarg_only]
    if len(args) > len(positional):
        raise IRError(f"{op_type} takes {len(positional)} positional operands, {len(args)} given")
    out = {a.name: v for a, v in zip(positional, args)}
    for key, value in kwargs.items():
        if key in out:
            raise IRError(f"{op_type}: operand {key!r} given twice")
        out[key] = value
    return out


def holds_value(arg: Any) -> bool:
    """Whether an operand is (or is a list holding) a ``Value``."""
    from torch_ir.ir.graph import Value

    if isinstance(arg, Value):
        return True
    return isinstance(arg, list) and any(isinstance(a, Value) for a in arg)


def infer_result_types(graph: Graph, op_type: str, args: list[Any], attrs: dict[str, Any]) -> list[ValueType | None]:
    """The result types of a node ``op_type(args, attrs)`` that is about to be built in ``graph``.

    Runs the op's shape function (``torch_ir.ops.register_op``) or its meta/fake kernel on the operand
    types (``torch_ir.ops.type_inference``), as annotate-shapes does. ``IRError`` when it cannot.
    """
    from torch_ir.ir.graph import Value, iter_arg_values

    for value in iter_arg_values(args):
        if value.type is None:
            raise IRError(f"create_op({op_type}): operand {value.ref} has no type; pass output_types=")
    operands = [
        [Operand(a.type) if isinstance(a, Value) else a for a in arg]
        if isinstance(arg, list)
        else Operand(arg.type)
        if isinstance(arg, Value)
        else arg
        for arg in args
    ]
    try:
        types = infer_types(op_type, operands, attrs, TensorType, ScalarType, graph.symbols)
    except ShapeFunctionError as exc:
        raise IRError(f"create_op({op_type}): {exc}") from exc.__cause__
    if isinstance(types, str):
        raise IRError(
            f"create_op({op_type}): cannot infer the result types ({types}); import the library that defines "
            "the op, register a shape function with torch_ir.ops.register_op, or pass output_types="
        )
    return types


def _names(spec: tuple[ArgumentSpec, ...]) -> str:
    return ", ".join(a.name for a in spec)


__all__ = [
    "ArgumentSpec",
    "bind_operands",
    "holds_value",
    "infer_result_types",
    "op_arguments",
    "operand",
    "read_operands",
    "split_operands",
]
