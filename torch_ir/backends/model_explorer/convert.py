"""An IR as Model Explorer graphs: one graph per entry, one per region, layers that follow module paths.

Every entry of the IR (``forward``, or a program's ``prefill`` and ``decode``) becomes a graph with that id.
An operation becomes a node labelled with its op (``linear``) in the namespace of its module path
(``model.layers.17.self_attn`` -> ``model/layers/17/self_attn``), so each module is a layer that expands
and collapses; its attributes give the op, every operand by schema name, the result types, the module
type and the source line. Inputs (``%ids``), weights (``@model.embed_tokens.weight``, placed in the layer
of the module that owns them) and declared state are nodes of their own; the outputs and the state
updates end the graph. Each edge carries the type of the value it holds (Model Explorer shows it on the
edge). A region op (``cond``, ``while_loop``, ``scan``, ``map``) links to its regions, each a graph of its
own (``forward/cond/true``); the init graph that computes derived weights is ``forward/init``.

``bodies`` walks the same graphs with the same ids, so overlays (``overlays.py``) key their values the way
the graphs name their nodes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

from torch_ir.analysis.statistics import op_short_name
from torch_ir.backends.model_explorer.schema import (
    Graph,
    GraphCollection,
    GraphNode,
    IncomingEdge,
    KeyValue,
    MetadataItem,
)
from torch_ir.errors import IRError
from torch_ir.ir.graph import Graph as IRGraph
from torch_ir.ir.graph import Node, Value, Weight, iter_arg_values
from torch_ir.ir.module import IR
from torch_ir.ir.regions import region_name
from torch_ir.ir.run_record import paused_gc

MAX_VALUE_ELEMENTS = 16
"""How many elements of a known constant the weight node shows (Model Explorer's ``__value`` attribute)."""

_RESERVED = ("op", "results", "regions", "module", "module_type", "source_location", "source_code")
"""Attribute keys of an op node that are not operands; an operand of the same name gets `` (operand)``."""


def ir_to_graphs(ir: IR) -> GraphCollection:
    """Every graph of ``ir`` (entries, then the regions and init graphs they hold), labelled by the model."""
    collection = GraphCollection(label=ir.name)
    with paused_gc():
        for graph_id, graph in bodies(ir):
            collection.graphs.append(_convert_body(graph_id, graph, ir))
    return collection


def bodies(ir: IR) -> Iterator[tuple[str, IRGraph]]:
    """Every graph the conversion writes, as ``(graph id, graph)``: each entry, then its init graph and regions."""
    for name, graph in ir.entries.items():
        yield from _nested(name, graph)


def _nested(graph_id: str, graph: IRGraph) -> Iterator[tuple[str, IRGraph]]:
    yield graph_id, graph
    if graph.init is not None:
        yield from _nested(init_id(graph_id), graph.init)
    for node in graph.nodes:
        for sub_id, region in zip(subgraph_ids(graph_id, node), node.regions):
            yield from _nested(sub_id, region)


def init_id(graph_id: str) -> str:
    """The id of the init graph of graph ``graph_id``."""
    return f"{graph_id}/init"


def subgraph_ids(graph_id: str, node: Node) -> list[str]:
    """The ids of the graphs ``node`` links to: its regions (``forward/cond/true``), in order.

    ``bodies`` and this function are the two places a new kind of nested body enters: a call of a function
    of the module would link here to the function's graph, which ``bodies`` would yield once.
    """
    return [f"{graph_id}/{node.name}/{region_name(node.op_type, i)}" for i in range(len(node.regions))]


def region_graph_id(entry: str, region_path: str) -> str:
    """The graph id of the region at ``region_path`` (``cond/true/``, as the verifier writes it) of ``entry``."""
    path = region_path.strip("/")
    return f"{entry}/{path}" if path else entry


def input_id(value: Value) -> str:
    """The node id of a graph input: ``%name``."""
    return f"%{value.name}"


def weight_id(weight: Weight) -> str:
    """The node id of a weight: ``@name``."""
    return f"@{weight.name}"


@functools.lru_cache(maxsize=65536)
def namespace_of(module_path: str) -> str:
    """``model.layers.17.self_attn`` -> ``model/layers/17/self_attn`` (a ``/`` inside a name is escaped)."""
    if not module_path:
        return ""
    return "/".join(part.replace("/", "\\/") for part in module_path.split("."))


def type_text(value: Value) -> str:
    """The value's type as the text form writes it (``f32[1,seq,32]``), ``?`` when unknown."""
    return "?" if value.type is None else _type_str(value.type)


@functools.lru_cache(maxsize=65536)
def _type_str(type_: Any) -> str:
    return str(type_)


def _convert_body(graph_id: str, graph: IRGraph, ir: IR) -> Graph:
    sources: dict[Value, tuple[str, str]] = {}
    nodes: list[GraphNode] = []
    symbols = ", ".join(f"{name} in {rng}" for name, rng in graph.symbols.items())
    for index, value in enumerate(graph.inputs):
        node = _value_node(input_id(value), value.name, "", value)
        node.attrs = [KeyValue("input", f"{value.ref}: {type_text(value)}"), KeyValue("index", str(index))]
        if symbols:
            node.attrs.append(KeyValue("symbols", symbols))
        nodes.append(node)
        sources[value] = (node.id, "0")
    for weight in graph.weights.values():
        node = _weight_node(graph_id, weight, ir)
        nodes.append(node)
        sources[weight] = (node.id, "0")
    groups: dict[str, dict[str, str]] = {}
    for op in graph.nodes:
        nodes.append(_op_node(graph_id, op, sources, groups))
    for index, value in enumerate(graph.outputs):
        node = GraphNode(id=f"output:{index}", label="output")
        node.attrs = [KeyValue("output", f"{value.ref}: {type_text(value)}"), KeyValue("index", str(index))]
        _connect(node, [value], sources, ["output"])
        nodes.append(node)
    for update in graph.state_updates:
        node = GraphNode(id=f"state:{update.target_ref}", label="state update")
        node.attrs = [
            KeyValue("target", update.target_ref),
            KeyValue("kind", update.kind),
            KeyValue("value", f"{update.value.ref}: {type_text(update.value)}"),
        ]
        _connect(node, [update.value], sources, ["value"])
        nodes.append(node)
    return Graph(id=graph_id, nodes=nodes, groupNodeAttributes=groups or None)


def _value_node(node_id: str, label: str, namespace: str, value: Value) -> GraphNode:
    node = GraphNode(id=node_id, label=label, namespace=namespace)
    node.outputsMetadata = [_output_metadata(0, value)]
    return node


def _output_metadata(index: int, value: Value) -> MetadataItem:
    return MetadataItem(
        id=str(index),
        attrs=[
            KeyValue("tensor_shape", type_text(value)),
            KeyValue("tensor_name", value.name),
            KeyValue("__tensor_tag", value.ref),
        ],
    )


def _weight_node(graph_id: str, weight: Weight, ir: IR) -> GraphNode:
    owner, _, local = weight.name.rpartition(".")
    node = _value_node(weight_id(weight), local, namespace_of(owner), weight)
    attrs = [
        KeyValue("weight", weight.ref),
        KeyValue("kind", weight.kind),
        KeyValue("dtype", weight.dtype or "?"),
        KeyValue("shape", "?" if weight.shape is None else json.dumps(list(weight.shape))),
    ]
    if weight.aliases:
        attrs.append(KeyValue("aliases", ", ".join(weight.aliases)))
    if not weight.persistent:
        attrs.append(KeyValue("persistent", "false"))
    spec = ir.state.get(weight.name)
    if spec is not None:
        attrs.append(KeyValue("state", f"declared state, {spec.init} before the first call"))
    if weight.data is not None:
        attrs.append(KeyValue("__value", _preview(weight.data)))
    node.attrs = attrs
    if weight.kind == "derived":
        node.subgraphIds = [init_id(graph_id)]
    return node


def _preview(data: Any) -> str:
    flat: list[Any] = []

    def walk(item: Any) -> None:
        if len(flat) > MAX_VALUE_ELEMENTS:
            return
        if isinstance(item, list):
            for x in item:
                walk(x)
        else:
            flat.append(item)

    walk(data)
    text = json.dumps(flat[:MAX_VALUE_ELEMENTS], default=str)
    return text[:-1] + ", ...]" if len(flat) > MAX_VALUE_ELEMENTS else text


def _op_node(
    graph_id: str, op: Node, sources: dict[Value, tuple[str, str]], groups: dict[str, dict[str, str]]
) -> GraphNode:
    stack = op.meta.get("module_stack") or []
    node = GraphNode(id=op.name, label=op_short_name(op.op_type), namespace=namespace_of(op.module_path))
    attrs = [KeyValue("op", op.op_type)]
    operands = _operands(op)
    for name, arg in operands.items():
        key = f"{name} (operand)" if name in _RESERVED else name
        attrs.append(KeyValue(key, _operand_text(arg)))
    attrs.append(KeyValue("results", ", ".join(f"{v.ref}: {type_text(v)}" for v in op.outputs)))
    if op.regions:
        node.subgraphIds = subgraph_ids(graph_id, op)
        names = ", ".join(region_name(op.op_type, i) for i in range(len(op.regions)))
        attrs.append(KeyValue("regions", names))
    if stack:
        attrs.append(KeyValue("module", str(stack[-1][0]) or "(root)"))
        attrs.append(KeyValue("module_type", str(stack[-1][1])))
        for path, module_type in stack:
            if path:
                groups.setdefault(namespace_of(str(path)), {"module": str(path), "module_type": str(module_type)})
    source = op.meta.get("source")
    if isinstance(source, dict):
        attrs.append(KeyValue("source_location", f"{source.get('file')}:{source.get('line')}"))
        if source.get("code"):
            attrs.append(KeyValue("source_code", str(source["code"])))
    node.attrs = attrs
    node.outputsMetadata = [_output_metadata(i, v) for i, v in enumerate(op.outputs)]
    _connect(node, op.inputs, sources, _slot_names(operands))
    return node


def _operands(op: Node) -> dict[str, Any]:
    """The node's operands by schema name; by position (``0``, ``1`` ...) when its schema does not fit."""
    try:
        return op.operands
    except IRError:
        return {**{str(i): arg for i, arg in enumerate(op.args)}, **op.attrs}


def _slot_names(operands: dict[str, Any]) -> list[str]:
    """The operand name of each value slot of ``node.inputs`` (a list operand names every value in it)."""
    names: list[str] = []
    for name, arg in operands.items():
        names.extend(name for _ in iter_arg_values([arg]))
    return names


def _operand_text(arg: Any) -> str:
    if isinstance(arg, Value):
        return f"{arg.ref}: {type_text(arg)}"
    if isinstance(arg, list):
        return "[" + ", ".join(a.ref if isinstance(a, Value) else _literal_text(a) for a in arg) + "]"
    return _literal_text(arg)


def _literal_text(arg: Any) -> str:
    """A literal as JSON writes it (``null``, ``true``, ``1e-05``, ``[1, 2]``), the common kinds without json."""
    if arg is None:
        return "null"
    if arg is True or arg is False:
        return "true" if arg else "false"
    if type(arg) is int:
        return str(arg)
    return json.dumps(arg, default=str)


def _connect(node: GraphNode, values: list[Value], sources: dict[Value, tuple[str, str]], names: list[str]) -> None:
    """Add an edge per value read (from its producer, or from its input or weight node) and tag each input."""
    for slot, value in enumerate(values):
        source = sources.get(value)
        if source is None and value.producer is not None:
            source = (value.producer.name, str(value.index))
        if source is None:
            raise IRError(f"node {node.id} reads {value.ref}, which no input, weight or node of the graph defines")
        node.incomingEdges.append(IncomingEdge(source[0], source[1], str(slot)))
        tag = names[slot] if slot < len(names) else str(slot)
        node.inputsMetadata.append(MetadataItem(id=str(slot), attrs=[KeyValue("__tensor_tag", tag)]))


__all__ = [
    "MAX_VALUE_ELEMENTS",
    "bodies",
    "init_id",
    "input_id",
    "ir_to_graphs",
    "namespace_of",
    "region_graph_id",
    "subgraph_ids",
    "type_text",
    "weight_id",
]
