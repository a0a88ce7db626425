"""The values an integer input may take, read off the ops that index with it.

An input that reaches ``aten.embedding`` (through reshapes, casts, slices: ops that keep its values) must
be a row of the table; one that reaches ``index_select``, ``gather``, ``index.Tensor``, ``scatter`` or
``index_copy`` must index the dimension it selects; ``one_hot`` bounds it by ``num_classes``, ``nll_loss``
by the number of classes. ``input_index_bounds(graph)`` gives, for each integer graph input that reaches
such an op, the tightest bound and the node it comes from; given the module's functions, it follows an
input into the bodies that calls pass it to. Verification draws random test inputs inside these bounds and
refuses given inputs outside them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from torch_ir.ir.calls import callee_name, is_call
from torch_ir.ir.graph import Graph, Node, Value
from torch_ir.ir.types import TensorType
from torch_ir.ops import op_info
from torch_ir.ops.canonical import COPY, IDENTITY, SAME_SHAPE, SAME_TYPE

INTEGER_DTYPES = frozenset({"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"})
"""Dtypes of the inputs whose ranges are inferred."""

VALUE_CLASSES = (IDENTITY, COPY, SAME_TYPE, SAME_SHAPE)
"""The canonicalization classes (``torch_ir.ops.canonical``) whose ops give their first operand's values."""


def preserves_values(op_type: str) -> bool:
    """Whether the results of ``op_type`` hold only values of its first operand, so an index stays an index
    through it: a view (``op_info(op_type).view``), an identity, copy or conversion of the op registry's
    canonicalization classes, or ``repeat``."""
    info = op_info(op_type)
    return info.view or info.canonical in VALUE_CLASSES or op_type == "aten.repeat.default"


@dataclass(frozen=True)
class IndexBound:
    """An integer input must lie in ``[0, high)`` (``[-high, high)`` where ``negative`` indexing is allowed),
    because node ``node`` (``op_type``) indexes ``high`` rows, classes or positions with it."""

    high: int
    negative: bool
    node: str
    op_type: str

    @property
    def low(self) -> int:
        """The smallest value the op accepts."""
        return -self.high if self.negative else 0

    def describe(self) -> str:
        """``node embedding (aten.embedding.default) indexes 50257 rows``."""
        return f"node {self.node} ({self.op_type}) indexes {self.high} entries with it"


def input_index_bounds(graph: Graph, functions: Mapping[str, Graph] | None = None) -> dict[str, IndexBound]:
    """The tightest index bound of each integer graph input that reaches an indexing op, by input name;
    with ``functions`` (a module's graphs by name), also through the calls that pass it on."""
    bounds: dict[str, IndexBound] = {}
    for value in graph.inputs:
        if not isinstance(value.type, TensorType) or value.type.dtype not in INTEGER_DTYPES:
            continue
        for bound in _bounds_of(graph, value, functions or {}):
            best = bounds.get(value.name)
            if best is None or bound.high < best.high or (bound.high == best.high and best.negative > bound.negative):
                bounds[value.name] = bound
    return bounds


def _bounds_of(graph: Graph, start: Value, functions: Mapping[str, Graph]) -> Iterator[IndexBound]:
    seen: set[int] = set()
    work = [(start, graph)]
    while work:
        value, where = work.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        for node in where.users(value):
            if preserves_values(node.op_type) and node.inputs and node.inputs[0] is value:
                work.extend((v, where) for v in node.outputs)
                continue
            callee = functions.get(callee_name(node)) if is_call(node) else None
            if callee is not None:  # the callee's parameter holds the same values
                work.extend((p, callee) for a, p in zip(node.inputs, callee.inputs) if a is value)
                continue
            bound = _index_bound(node, value)
            if bound is not None:
                yield bound


def _index_bound(node: Node, value: Value) -> IndexBound | None:
    """The bound ``node`` puts on ``value`` where ``value`` is one of its index operands."""
    op = node.op_type
    try:
        operands = node.operands
    except Exception:  # an op torch does not know: no schema, no bound
        return None
    if op.startswith(("aten.embedding.", "aten.embedding_bag.", "aten._embedding_bag.")):
        if operands.get("indices") is value:
            return _bound(node, operands.get("weight"), 0, negative=False)
        return None
    if op.startswith(("aten.index_select.", "aten.gather.", "aten.index_copy.", "aten.index_add.", "aten.index_fill.")):
        if operands.get("index") is value:
            return _bound(node, operands.get("self"), operands.get("dim"), negative=True)
        return None
    if op.startswith(("aten.scatter.", "aten.scatter_add.", "aten.scatter_reduce.")):
        if operands.get("index") is value:
            return _bound(node, operands.get("self"), operands.get("dim"), negative=False)
        return None
    if op.startswith(("aten.index.Tensor", "aten.index_put.", "aten._unsafe_index.", "aten._unsafe_index_put.")):
        indices = operands.get("indices")
        if isinstance(indices, list):
            for dim, item in enumerate(indices):
                if item is value:
                    return _bound(node, operands.get("self"), dim, negative=True)
        return None
    if op.startswith("aten.take.") and operands.get("index") is value:
        source = operands.get("self")
        shape = _static_shape(source)
        if shape is not None:
            numel = 1
            for d in shape:
                numel *= d
            return IndexBound(numel, True, node.name, op)
        return None
    if op.startswith("aten.one_hot.") and operands.get("self") is value:
        classes = operands.get("num_classes")
        if isinstance(classes, int) and classes > 0:
            return IndexBound(classes, False, node.name, op)
        return None
    if op.startswith(("aten.nll_loss", "aten.cross_entropy_loss.")) and operands.get("target") is value:
        scores = _static_shape(operands.get("self"))
        if scores:
            return IndexBound(scores[1] if len(scores) >= 2 else scores[0], False, node.name, op)
    return None


def _bound(node: Node, source: Any, dim: Any, *, negative: bool) -> IndexBound | None:
    shape = _static_shape(source)
    if shape is None or not isinstance(dim, int) or not -len(shape) <= dim < len(shape):
        return None
    return IndexBound(shape[dim], negative, node.name, node.op_type)


def _static_shape(value: Any) -> tuple[int, ...] | None:
    if not isinstance(value, Value) or not isinstance(value.type, TensorType):
        return None
    shape = value.type.shape
    return tuple(int(d) for d in shape) if all(isinstance(d, int) for d in shape) else None


__all__ = ["INTEGER_DTYPES", "VALUE_CLASSES", "IndexBound", "input_index_bounds", "preserves_values"]
