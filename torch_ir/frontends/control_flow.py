"""Converting torch's control-flow higher-order ops (cond, while_loop, scan, map) into region ops.

torch.export emits each as a ``torch.ops.higher_order.<op>`` call whose first arguments are ``get_attr``
nodes naming GraphModules (the branches, the loop body ...). Each GraphModule becomes a region: a
``Graph`` converted with the same rules as the top-level graph, its placeholders as the region's inputs.
Captured weights and outer values are already explicit operands, so regions need no weights.
"""

from __future__ import annotations

import copy
import operator
from typing import TYPE_CHECKING, Any

import torch
from torch import fx

from torch_ir.errors import ExportError
from torch_ir.ir.graph import Graph, Value
from torch_ir.ir.regions import CONSTANT_GROUPS, REGION_OPS

if TYPE_CHECKING:
    from torch_ir.frontends.torch_export import _Converter

CONVERTED_HIGHER_ORDER_OPS = tuple(op.split(".", 1)[1] for op in REGION_OPS)
"""Names of the higher-order ops converted to region ops (``cond``, ``while_loop``, ``scan``, ``map_impl``)."""


def fetch_submodule(owner: torch.nn.Module, node: fx.Node) -> fx.GraphModule:
    """The GraphModule a ``get_attr`` node names; anything else is refused."""
    target = str(node.target)
    module: Any = owner
    for part in target.split("."):
        module = getattr(module, part, None)
    if not isinstance(module, fx.GraphModule):
        raise ExportError(
            f"node {node.name}: get_attr {target!r} is not a subgraph (got {type(module).__name__}); "
            "torch-ir reads get_attr only as the regions of cond, while_loop, scan and map"
        )
    return module


def convert_region_op(converter: _Converter, node: fx.Node) -> tuple[str, list[Any], dict[str, Any], list[Graph]]:
    """``(op_type, args, attrs, regions)`` of the region op for a higher-order call ``node``."""
    name = node.target.name()  # type: ignore[union-attr]
    subgraphs: list[fx.GraphModule]
    if name == "cond":
        pred, true_gm, false_gm, operands = node.args
        subgraphs = [_submodule(converter, true_gm, node), _submodule(converter, false_gm, node)]
        args: list[Any] = [_value(converter, pred, node, "pred"), _values(converter, operands, node, "operands")]
    elif name == "while_loop":
        cond_gm, body_gm, carried, additional = node.args
        subgraphs = [_submodule(converter, cond_gm, node), _submodule(converter, body_gm, node)]
        args = [_values(converter, carried, node, "carried"), _values(converter, additional, node, "additional")]
    elif name == "scan":
        combine_gm, init, xs, additional = node.args
        subgraphs = [_submodule(converter, combine_gm, node)]
        args = [
            _values(converter, init, node, "init"),
            _values(converter, xs, node, "xs"),
            _values(converter, additional, node, "additional"),
        ]
    elif name == "map_impl":
        body_gm, xs, extra = node.args
        subgraphs = [_submodule(converter, body_gm, node)]
        args = [_values(converter, xs, node, "xs"), _values(converter, extra, node, "args")]
    else:
        raise ExportError(f"node {node.name}: higher-order op {name} is not a control-flow op torch-ir converts")
    if node.kwargs:
        raise ExportError(f"node {node.name}: {name} with keyword arguments {sorted(node.kwargs)} is not supported")
    contract = REGION_OPS[f"higher_order.{name}"]
    regions = [
        convert_region(converter, gm, f"node {node.name}, region {region}")
        for gm, region in zip(subgraphs, contract.region_names)
    ]
    return contract.op_type, args, {}, regions


def convert_region(parent: _Converter, gm: fx.GraphModule, where: str) -> Graph:
    """Convert one subgraph into a region ``Graph`` (nested region ops converted recursively)."""
    child = copy.copy(parent)
    child.graph = Graph()
    child.env = {}
    child.multi_names = _multi_result_names(gm.graph)
    graph = child.graph
    for fx_node in gm.graph.nodes:
        if fx_node.op == "placeholder":
            type_ = child._type_of(fx_node.meta.get("val"), f"{where}: input {fx_node.name}")
            child.env[fx_node] = graph.add_input(fx_node.name, type_)
        elif fx_node.op == "get_attr":
            child.env[fx_node] = fetch_submodule(gm, fx_node)
        elif fx_node.op == "call_function":
            child._add_call(fx_node)
        elif fx_node.op == "output":
            returned = fx_node.args[0]
            items = list(returned) if isinstance(returned, (list, tuple)) else [returned]
            outputs: list[Value] = []
            for item in items:
                value = child.env.get(item) if isinstance(item, fx.Node) else None
                if not isinstance(value, Value):
                    raise ExportError(f"{where}: region result {item!r} is not a tensor value of the region")
                outputs.append(value)
            graph.set_outputs(outputs)
        else:
            raise ExportError(f"{where}: unsupported FX node kind {fx_node.op!r} ({fx_node.target}) in a region")
    return graph


def _multi_result_names(graph: fx.Graph) -> dict[fx.Node, dict[int, str]]:
    names: dict[fx.Node, dict[int, str]] = {}
    for node in graph.nodes:
        if node.op == "call_function" and node.target is operator.getitem:
            src, index = node.args
            if isinstance(src, fx.Node) and isinstance(index, int):
                names.setdefault(src, {})[index] = node.name
    return names


def _submodule(converter: _Converter, raw: Any, node: fx.Node) -> fx.GraphModule:
    module = converter.env.get(raw) if isinstance(raw, fx.Node) else raw
    if not isinstance(module, fx.GraphModule):
        raise ExportError(f"node {node.name}: expected a subgraph (get_attr) operand, got {raw!r}")
    return module


def _value(converter: _Converter, raw: Any, node: fx.Node, what: str) -> Value:
    value = converter.env.get(raw) if isinstance(raw, fx.Node) else None
    if not isinstance(value, Value):
        if what == "pred":  # torch.export resolves a Python bool predicate itself: only a value reaches here
            raise ExportError(f"node {node.name}: the predicate of {node.target} is {raw!r}, not a value of the graph")
        raise ExportError(f"node {node.name}: {what} of {node.target} holds {raw!r}, not a value of the graph")
    return value


def _values(converter: _Converter, raw: Any, node: fx.Node, what: str) -> list[Any]:
    """The values of an operand group; groups that torch lets hold Python numbers keep them as constants
    (``while_loop(cond, body, (0, x))`` carries the ``0``)."""
    if not isinstance(raw, (list, tuple)):
        raise ExportError(f"node {node.name}: {what} of {node.target} is not a list of values")
    return [
        item
        if what in CONSTANT_GROUPS and isinstance(item, (bool, int, float))
        else _value(converter, item, node, what)
        for item in raw
    ]


__all__ = ["CONVERTED_HIGHER_ORDER_OPS", "convert_region", "convert_region_op", "fetch_submodule"]
