"""Region ops: nodes that own closed nested graphs (regions), and the contract each op's regions obey.

Four ops come from torch's control-flow higher-order operators. Their operands are grouped in lists
(``args``); their regions are positional:

- ``higher_order.cond(pred, [operands])``: regions ``true`` and ``false``, each operands -> results.
- ``higher_order.while_loop([carried], [additional])``: ``cond``: carried + additional -> ``bool[]``;
  ``body``: carried + additional -> carried; results: the final carried values.
- ``higher_order.scan([init], [xs], [additional])``: ``combine``: carry + xs[i] + additional -> new carry
  + ys[i]; results: the final carry, then the ys stacked along dimension 0.
- ``higher_order.map_impl([xs], [args])``: ``body``: xs[i] + args -> ys[i]; results: the ys stacked.

A region reads nothing of the enclosing graph: weights and outer values it needs are operands of the
op (torch.export passes them explicitly), so each region is a graph of its own with inputs, outputs
and no weights. A group other than ``pred``, ``xs`` and ``init`` may also hold Python numbers (a
``while_loop`` counter that starts at ``0``): the region takes them as scalars. ``check_region_op`` says
whether a node keeps its op's contract.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch_ir.ir.types import ScalarType, TensorType, ValueType

if TYPE_CHECKING:
    from torch_ir.ir.graph import Graph, Node, Value


@dataclass(frozen=True)
class RegionOpContract:
    """What a region op takes: its operand groups (in ``args`` order) and the names of its regions."""

    op_type: str
    operand_groups: tuple[str, ...]
    region_names: tuple[str, ...]
    loop: bool
    """Whether a region runs more than once per execution of the op (FLOPs are per iteration)."""


REGION_OPS: dict[str, RegionOpContract] = {
    c.op_type: c
    for c in (
        RegionOpContract("higher_order.cond", ("pred", "operands"), ("true", "false"), False),
        RegionOpContract("higher_order.while_loop", ("carried", "additional"), ("cond", "body"), True),
        RegionOpContract("higher_order.scan", ("init", "xs", "additional"), ("combine",), True),
        RegionOpContract("higher_order.map_impl", ("xs", "args"), ("body",), True),
    )
}
"""The region ops torch-ir knows, by op type."""


def region_name(op_type: str, index: int) -> str:
    """The name of region ``index`` of an op (``true``, ``body`` ...); ``region<index>`` for unknown ops."""
    contract = REGION_OPS.get(op_type)
    if contract is not None and index < len(contract.region_names):
        return contract.region_names[index]
    return f"region{index}"


def operand_group(node: Node, name: str) -> list[Value]:
    """The values of operand group ``name`` (``operands``, ``carried`` ...) of a region op."""
    from torch_ir.ir.graph import Value

    contract = REGION_OPS[node.op_type]
    index = contract.operand_groups.index(name)
    arg = node.args[index] if index < len(node.args) else []
    if isinstance(arg, Value):
        return [arg]
    return [a for a in arg if isinstance(a, Value)]


CONSTANT_GROUPS = ("operands", "carried", "additional", "args")
"""Operand groups that may hold Python numbers besides values (torch passes them through as scalars)."""


def operand_types(node: Node, name: str) -> list[ValueType | None]:
    """The types of operand group ``name``, constants included (``0`` is an ``int`` scalar)."""
    contract = REGION_OPS[node.op_type]
    index = contract.operand_groups.index(name)
    arg = node.args[index] if index < len(node.args) else []
    return [_operand_type(a) for a in (arg if isinstance(arg, list) else [arg])]


def _operand_type(arg: object) -> ValueType | None:
    from torch_ir.ir.graph import Value

    if isinstance(arg, Value):
        return arg.type
    if isinstance(arg, bool):
        return ScalarType("bool")
    if isinstance(arg, int):
        return ScalarType("int")
    if isinstance(arg, float):
        return ScalarType("float")
    return None


def sliced(type_: ValueType | None) -> ValueType | None:
    """The type of one slice along dimension 0 (what scan and map hand their region per iteration)."""
    if isinstance(type_, TensorType) and type_.shape:
        return TensorType(type_.shape[1:], type_.dtype)
    return type_


def stacked(type_: ValueType | None, length: int | str) -> ValueType | None:
    """The type of ``length`` slices stacked along a new dimension 0."""
    if isinstance(type_, TensorType):
        return TensorType((length, *type_.shape), type_.dtype)
    return type_


def check_region_op(node: Node) -> str | None:
    """The first way ``node`` breaks its op's region contract, or None when it keeps it.

    Checks the operand groups, the number of regions, and that each region's inputs and outputs match
    the op's operands and results in number, dtype and rank (and in static sizes where both are known).
    """
    contract = REGION_OPS.get(node.op_type)
    if contract is None:
        return None if not node.regions else f"{node.op_type} is not a known region op"
    if len(node.args) != len(contract.operand_groups):
        groups = ", ".join(contract.operand_groups)
        return f"takes {len(contract.operand_groups)} operand groups ({groups}), has {len(node.args)}"
    for name, arg in zip(contract.operand_groups, node.args):
        if name == "pred":
            if not _is_value(arg):
                return f"operand pred must be a value, got {arg!r}"
        elif not isinstance(arg, list) or not all(_is_value(a) or _is_number(a, name) for a in arg):
            allowed = "values and numbers" if name in CONSTANT_GROUPS else "values"
            return f"operand group {name} must be a list of {allowed}, got {arg!r}"
    if len(node.regions) != len(contract.region_names):
        names = ", ".join(contract.region_names)
        return f"needs {len(contract.region_names)} region(s) ({names}), has {len(node.regions)}"
    results = [v.type for v in node.outputs]
    if node.op_type == "higher_order.cond":
        operands = operand_types(node, "operands")
        for name, region in zip(contract.region_names, node.regions):
            problem = _signature(region, operands, results)
            if problem:
                return f"region {name}: {problem}"
    elif node.op_type == "higher_order.while_loop":
        carried = operand_types(node, "carried")
        inputs = carried + operand_types(node, "additional")
        problem = _match("inputs", [v.type for v in node.regions[0].inputs], inputs)
        if problem:
            return f"region cond: {problem}"
        outputs = [v.type for v in node.regions[0].outputs]
        if len(outputs) != 1 or outputs[0] not in (TensorType((), "bool"), ScalarType("bool"), None):
            return f"region cond: returns {outputs}, the op's contract needs one bool (a bool[] tensor or a bool)"
        problem = _signature(node.regions[1], inputs, carried)
        if problem:
            return f"region body: {problem}"
        problem = _match("results", results, carried)
        if problem:
            return problem
    elif node.op_type == "higher_order.scan":
        init = [v.type for v in operand_group(node, "init")]
        xs = operand_group(node, "xs")
        inputs = init + [sliced(v.type) for v in xs] + operand_types(node, "additional")
        region = node.regions[0]
        if len(region.outputs) < len(init):
            return f"region combine: returns {len(region.outputs)} value(s), fewer than the {len(init)} carried"
        ys = [stacked(v.type, _length(xs, results[len(init) :])) for v in region.outputs[len(init) :]]
        problem = _signature(region, inputs, init + [sliced(t) for t in ys])
        if problem:
            return f"region combine: {problem}"
        problem = _match("results", results, init + ys)
        if problem:
            return problem
    elif node.op_type == "higher_order.map_impl":
        xs = operand_group(node, "xs")
        inputs = [sliced(v.type) for v in xs] + operand_types(node, "args")
        problem = _signature(node.regions[0], inputs, [sliced(t) for t in results])
        if problem:
            return f"region body: {problem}"
    return None


def nested_regions(graph: Graph) -> list[tuple[str, Graph]]:
    """Every region of ``graph`` and of its init graph, at any depth, innermost first: ``(path, region)``.

    Passes that work graph by graph run over these, then over the graph itself; the order lets a pass
    see a region op after it has simplified the op's regions.
    """
    found: list[tuple[str, Graph]] = []
    for prefix, owner in (("init/", graph.init), ("", graph)):
        if owner is not None:
            found.extend((prefix + path, region) for path, region in owner.walk_regions())
    found.sort(key=lambda item: -item[0].count("/"))
    return found


def region_result_types(node: Node) -> list[ValueType | None] | None:
    """The result types a region op's contract gives from its regions (None for an unknown op)."""
    if node.op_type not in REGION_OPS or not node.regions:
        return None
    region = node.regions[-1]
    outputs = [v.type for v in region.outputs]
    if node.op_type == "higher_order.cond":
        recorded = [v.type for v in node.outputs]
        branches = [[v.type for v in r.outputs] for r in node.regions]
        return [
            _unified([b[i] for b in branches], recorded[i] if i < len(recorded) else None) for i in range(len(outputs))
        ]
    if node.op_type == "higher_order.while_loop":
        return operand_types(node, "carried")
    if node.op_type == "higher_order.scan":
        init = operand_group(node, "init")
        length = _length(operand_group(node, "xs"), [])
        return [v.type for v in init] + [stacked(t, length) for t in outputs[len(init) :]]
    return [stacked(t, _length(operand_group(node, "xs"), [])) for t in outputs]


def has_nested_side_effects(node: Node, side_effects: Callable[[str], bool]) -> bool:
    """Whether any node in ``node``'s regions (at any depth) has side effects, by ``side_effects(op_type)``."""
    for region in node.regions:
        for _, inner in region.walk():
            if inner.regions:
                continue
            if side_effects(inner.op_type):
                return True
    return False


def _unified(types: list[ValueType | None], recorded: ValueType | None) -> ValueType | None:
    """One result type for what the branches of a ``cond`` return: their type where they agree; where a
    size differs between branches, the recorded (unbacked, symbolic) size; None when nothing is known."""
    first = types[0]
    if all(t == first for t in types):
        return first
    tensors = [t for t in types if isinstance(t, TensorType)]
    if len(tensors) != len(types) or len({(t.dtype, len(t.shape)) for t in tensors}) != 1:
        return None
    if not isinstance(recorded, TensorType) or len(recorded.shape) != len(first.shape):  # type: ignore[union-attr]
        return None
    shape = []
    for axis, sizes in enumerate(zip(*(t.shape for t in tensors))):
        if all(size == sizes[0] for size in sizes):
            shape.append(sizes[0])
        elif isinstance(recorded.shape[axis], str):
            shape.append(recorded.shape[axis])
        else:
            return None  # the branches differ where the recorded type is static: nothing to unify with
    return TensorType(tuple(shape), tensors[0].dtype)


def _is_number(arg: object, group: str) -> bool:
    return group in CONSTANT_GROUPS and isinstance(arg, (bool, int, float))


def _is_value(arg: object) -> bool:
    from torch_ir.ir.graph import Value

    return isinstance(arg, Value)


def _length(xs: list[Value], results: list[ValueType | None]) -> int | str:
    for type_ in [v.type for v in xs] + results:
        if isinstance(type_, TensorType) and type_.shape:
            return type_.shape[0]
    return 0


def _signature(region: object, inputs: list[ValueType | None], outputs: list[ValueType | None]) -> str | None:
    from torch_ir.ir.graph import Graph

    assert isinstance(region, Graph)
    problem = _match("inputs", [v.type for v in region.inputs], inputs)
    if problem:
        return problem
    return _match("outputs", [v.type for v in region.outputs], outputs)


def _match(what: str, got: list[ValueType | None], want: list[ValueType | None]) -> str | None:
    if len(got) != len(want):
        return f"has {len(got)} {what}, the op's contract needs {len(want)}"
    for index, (a, b) in enumerate(zip(got, want)):
        if not types_compatible(a, b):
            return f"{what[:-1]} {index} is {a}, the op's contract needs {b}"
    return None


def types_compatible(a: ValueType | None, b: ValueType | None) -> bool:
    """Equal dtype and rank, and equal sizes wherever both are static (symbolic sizes match anything)."""
    if a is None or b is None:
        return True
    if isinstance(a, TensorType) and isinstance(b, TensorType):
        if a.dtype != b.dtype or len(a.shape) != len(b.shape):
            return False
        return all(not (isinstance(x, int) and isinstance(y, int)) or x == y for x, y in zip(a.shape, b.shape))
    return a == b


__all__ = [
    "CONSTANT_GROUPS",
    "REGION_OPS",
    "RegionOpContract",
    "check_region_op",
    "has_nested_side_effects",
    "nested_regions",
    "operand_group",
    "operand_types",
    "region_name",
    "region_result_types",
    "sliced",
    "stacked",
    "types_compatible",
]
