"""An IR as Model Explorer graphs: one per function, one per region, layers that follow module paths.

Every function of the module becomes a graph with its name: the entries first (``forward``, or a
program's ``prefill`` and ``decode``), then the private functions that calls run (``llama_decoder_layer``),
each drawn once however many calls run it; the init graph that computes derived weights is ``init``. An
operation becomes a node labelled with its op (``linear``) in the namespace of its module path
(``model.layers.17.self_attn`` -> ``model/layers/17/self_attn``), so each module is a layer that expands
and collapses; its attributes give the op, every operand by schema name, the result types, the module
type and the source line. Inputs (``%ids``), the weights a graph reads (``@model.embed_tokens.weight``,
placed in the layer of the module that owns them) and declared state are nodes of their own; the outputs
and the state updates end the graph. Each edge carries the type of the value it holds (Model Explorer
shows it on the edge). A region op (``cond``, ``while_loop``, ``scan``, ``map``) links to its regions, each
a graph of its own (``forward/cond/true``). A call (``func.call``) is a node labelled with its callee, in
the layer of the module it stands for (``model/layers/3``), that links to the callee's graph and names each
operand by the callee's input it binds (``self_attn.q_proj.weight: @model.layers.3.self_attn.q_proj.weight``).
Inside a function's graph, namespaces are relative to the module the function was outlined from
(``body.meta["module_path"]``): a decoder layer's body shows ``self_attn/q_proj``, which every call shares.

``bodies`` walks the same graphs with the same ids, so overlays (``overlays.py``) key their values the way
the graphs name their nodes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch_ir.backends.model_explorer.schema import (
    Graph,
    GraphCollection,
    GraphNode,
    IncomingEdge,
    KeyValue,
    MetadataItem,
)
from torch_ir.errors import IRError
from torch_ir.ir.calls import callee_name, calls_in, is_call
from torch_ir.ir.graph import Graph as IRGraph
from torch_ir.ir.graph import Node, Value, Weight, iter_arg_values
from torch_ir.ir.module import IR
from torch_ir.ir.regions import region_name
from torch_ir.ir.run_record import paused_gc
from torch_ir.ops import op_name as op_short_name

MAX_VALUE_ELEMENTS = 16
"""How many elements of a known constant the weight node shows (Model Explorer's ``__value`` attribute)."""

INIT_GRAPH = "init"
"""The graph id of the init graph (``init_id`` picks another when a function has that name)."""

_RESERVED = ("op", "callee", "results", "regions", "module", "module_type", "source_location", "source_code")
"""Attribute keys of an op node that are not operands; an operand of the same name gets `` (operand)``."""

BODY_MODULE = "(the module each call stands for)"
"""The ``module`` attribute of a node of a function's body that its outlined module computed itself."""


def ir_to_graphs(ir: IR) -> GraphCollection:
    """Every graph of ``ir`` (functions, then the regions and init graph they hold), labelled by the model."""
    collection = GraphCollection(label=ir.name)
    context = _Context.of(ir)
    with paused_gc():
        for graph_id, graph in bodies(ir):
            collection.graphs.append(_convert_body(graph_id, graph, context.scope(graph_id, graph)))
    return collection


def bodies(ir: IR) -> Iterator[tuple[str, IRGraph]]:
    """Every graph the conversion writes, as ``(graph id, graph)``: each public function and its regions,
    then each private function (once, whatever calls it) and its regions, then the init graph."""
    functions = ir.functions
    ordered = [f for f in functions.values() if f.public] + [f for f in functions.values() if not f.public]
    for function in ordered:
        yield from _nested(function.name, function.graph)
    if ir.init is not None:
        yield from _nested(init_id(ir), ir.init)


def _nested(graph_id: str, graph: IRGraph) -> Iterator[tuple[str, IRGraph]]:
    yield graph_id, graph
    for node in graph.nodes:
        for sub_id, region in zip(region_ids(graph_id, node), node.regions):
            yield from _nested(sub_id, region)


def init_id(ir: IR) -> str:
    """The id of the module's init graph: ``init``, or ``_init`` ... when a function is called that."""
    graph_id = INIT_GRAPH
    while graph_id in ir.functions:
        graph_id = f"_{graph_id}"
    return graph_id


def region_ids(graph_id: str, node: Node) -> list[str]:
    """The ids of the graphs of ``node``'s regions (``forward/cond/true``), in order."""
    return [f"{graph_id}/{node.name}/{region_name(node.op_type, i)}" for i in range(len(node.regions))]


def subgraph_ids(graph_id: str, node: Node, functions: Mapping[str, Any]) -> list[str]:
    """The ids of the graphs ``node`` links to: its regions, or the function a call runs (its name), when
    ``functions`` (the module's, by name) has it."""
    if is_call(node):
        callee = callee_name(node)
        return [callee] if callee in functions else []
    return region_ids(graph_id, node)


def region_graph_id(graph_id: str, region_path: str) -> str:
    """The graph id of the region at ``region_path`` (``cond/true/``, as the verifier writes it) of graph
    ``graph_id`` (an entry, or a function)."""
    path = region_path.strip("/")
    return f"{graph_id}/{path}" if path else graph_id


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


def relative_path(module_path: str, base: str) -> str | None:
    """``module_path`` inside the module ``base`` (``model.layers.0.mlp`` in ``model.layers.0``: ``mlp``;
    ``base`` itself: ''), None when it is not inside; ``module_path`` itself when there is no ``base``."""
    if not base:
        return module_path
    if module_path == base:
        return ""
    if module_path.startswith(base + "."):
        return module_path[len(base) + 1 :]
    return None


def type_text(value: Value) -> str:
    """The value's type as the text form writes it (``f32[1,seq,32]``), ``?`` when unknown."""
    return "?" if value.type is None else _type_str(value.type)


@functools.lru_cache(maxsize=65536)
def _type_str(type_: Any) -> str:
    return str(type_)


@dataclass
class _Context:
    """What converting one graph needs from the module: its functions, state, init graph id, the weights no
    function reads (drawn in the first entry), and which inputs of each function calls bind to weights."""

    ir: IR
    functions: dict[str, IRGraph]
    bases: dict[str, str]
    init: str
    first_entry: str
    unread: list[Weight]
    weight_params: dict[str, set[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, ir: IR) -> _Context:
        functions = {name: f.graph for name, f in ir.functions.items()}
        bases = {name: str(f.graph.meta.get("module_path") or "") for name, f in ir.functions.items() if not f.public}
        read = {w.name for g in functions.values() for w in _weights_read(g)}
        unread = [w for w in ir.table.weights.values() if w.name not in read]
        params: dict[str, set[int]] = {}
        for graph in functions.values():
            for call in calls_in(graph):
                bound = {i for i, v in enumerate(call.inputs) if isinstance(v, Weight)}
                params.setdefault(callee_name(call), set()).update(bound)
        first = next(iter(ir.entries), "")
        return cls(ir, functions, bases, init_id(ir), first, unread, params)

    def scope(self, graph_id: str, graph: IRGraph) -> _Scope:
        """How to draw the graph ``graph_id``: relative to the module of the function that holds it."""
        function = graph_id.split("/", 1)[0]
        weights = _weights_read(graph) + (self.unread if graph_id == self.first_entry else [])
        params = self.weight_params.get(graph_id, set())
        return _Scope(self, self.bases.get(function, ""), weights, params)


@dataclass
class _Scope:
    """One graph's drawing: the module its namespaces are relative to, the weights it shows, and the indices
    of its inputs that calls bind to weights (a function's weight parameters)."""

    context: _Context
    base: str
    weights: list[Weight]
    weight_params: set[int]

    def namespace(self, module_path: str) -> str:
        """The namespace of a node of ``module_path`` in this graph."""
        relative = relative_path(module_path, self.base)
        return namespace_of(module_path if relative is None else relative)


def _weights_read(graph: IRGraph) -> list[Weight]:
    """The weights ``graph`` reads, returns or writes (a module's functions share one table of them all)."""
    return [w for w in graph.weights.values() if graph.num_uses(w) or graph.is_live(w) or graph.is_state_target(w.name)]


def _convert_body(graph_id: str, graph: IRGraph, scope: _Scope) -> Graph:
    sources: dict[Value, tuple[str, str]] = {}
    nodes: list[GraphNode] = []
    symbols = ", ".join(f"{name} in {rng}" for name, rng in graph.symbols.items())
    for index, value in enumerate(graph.inputs):
        node = _input_node(value, index, scope)
        if symbols:
            node.attrs.append(KeyValue("symbols", symbols))
        nodes.append(node)
        sources[value] = (node.id, "0")
    for weight in scope.weights:
        node = _weight_node(weight, scope)
        nodes.append(node)
        sources[weight] = (node.id, "0")
    groups: dict[str, dict[str, str]] = {}
    for op in graph.nodes:
        convert = _call_node if is_call(op) else _op_node
        nodes.append(convert(graph_id, op, sources, groups, scope))
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


def _input_node(value: Value, index: int, scope: _Scope) -> GraphNode:
    """A graph input; a function's weight parameter sits in the layer of the module that owns the weight."""
    bound = index in scope.weight_params
    owner, _, local = value.name.rpartition(".") if bound else ("", "", value.name)
    node = _value_node(input_id(value), local, namespace_of(owner), value)
    node.attrs = [KeyValue("input", f"{value.ref}: {type_text(value)}"), KeyValue("index", str(index))]
    if bound:
        node.attrs.append(KeyValue("binds", "a weight, given by each call"))
    return node


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


def _weight_node(weight: Weight, scope: _Scope) -> GraphNode:
    owner, _, local = weight.name.rpartition(".")
    node = _value_node(weight_id(weight), local, scope.namespace(owner), weight)
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
    spec = scope.context.ir.state.get(weight.name)
    if spec is not None:
        attrs.append(KeyValue("state", f"declared state, {spec.init} before the first call"))
    if weight.data is not None:
        attrs.append(KeyValue("__value", _preview(weight.data)))
    node.attrs = attrs
    if weight.kind == "derived" and scope.context.ir.init is not None:
        node.subgraphIds = [scope.context.init]
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
    graph_id: str,
    op: Node,
    sources: dict[Value, tuple[str, str]],
    groups: dict[str, dict[str, str]],
    scope: _Scope,
) -> GraphNode:
    node = GraphNode(id=op.name, label=op_short_name(op.op_type), namespace=scope.namespace(op.module_path))
    attrs = [KeyValue("op", op.op_type)]
    operands = _operands(op)
    for name, arg in operands.items():
        attrs.append(KeyValue(_operand_key(name), _operand_text(arg)))
    attrs.append(KeyValue("results", ", ".join(f"{v.ref}: {type_text(v)}" for v in op.outputs)))
    if op.regions:
        node.subgraphIds = region_ids(graph_id, op)
        names = ", ".join(region_name(op.op_type, i) for i in range(len(op.regions)))
        attrs.append(KeyValue("regions", names))
    attrs.extend(_module_attrs(op, groups, scope))
    source = op.meta.get("source")
    if isinstance(source, dict):
        attrs.append(KeyValue("source_location", f"{source.get('file')}:{source.get('line')}"))
        if source.get("code"):
            attrs.append(KeyValue("source_code", str(source["code"])))
    node.attrs = attrs
    node.outputsMetadata = [_output_metadata(i, v) for i, v in enumerate(op.outputs)]
    _connect(node, op.inputs, sources, _slot_names(operands))
    return node


def _call_node(
    graph_id: str,
    op: Node,
    sources: dict[Value, tuple[str, str]],
    groups: dict[str, dict[str, str]],
    scope: _Scope,
) -> GraphNode:
    """A call: labelled with its callee, in the layer of the module it stands for, linked to the callee's
    graph; each operand (the weights bound at this call among them) is named by the callee input it binds."""
    callee = callee_name(op)
    path = op.meta.get("module_path")
    path = path if isinstance(path, str) else op.module_path
    node = GraphNode(id=op.name, label=callee or "call", namespace=scope.namespace(path))
    node.subgraphIds = subgraph_ids(graph_id, op, scope.context.functions)
    body = scope.context.functions.get(callee)
    params = [v.name for v in body.inputs] if body is not None else []
    if len(params) != len(op.inputs):
        params = [str(i) for i in range(len(op.inputs))]
    attrs = [KeyValue("op", op.op_type), KeyValue("callee", callee or "?")]
    attrs.extend(KeyValue(_operand_key(name), _operand_text(arg)) for name, arg in zip(params, op.inputs))
    weights = sum(1 for v in op.inputs if isinstance(v, Weight))
    if weights:
        attrs.append(KeyValue("weights", f"{weights} bound at this call"))
    attrs.append(KeyValue("results", ", ".join(f"{v.ref}: {type_text(v)}" for v in op.outputs)))
    attrs.extend(_module_attrs(op, groups, scope))
    if path and not any(a.key == "module" for a in attrs):
        attrs.append(KeyValue("module", path))
    node.attrs = attrs
    node.outputsMetadata = [_output_metadata(i, v) for i, v in enumerate(op.outputs)]
    _connect(node, op.inputs, sources, params)
    return node


def _operand_key(name: str) -> str:
    return f"{name} (operand)" if name in _RESERVED else name


def _module_attrs(op: Node, groups: dict[str, dict[str, str]], scope: _Scope) -> list[KeyValue]:
    """``module`` and ``module_type`` of ``op``, and the layers of its module stack as group attributes
    (inside a function's graph: relative to its module, the layers outside it left out)."""
    stack = op.meta.get("module_stack") or []
    if not stack:
        return []
    for path, module_type in stack:
        inner = relative_path(str(path), scope.base)
        if inner:
            groups.setdefault(namespace_of(inner), {"module": inner, "module_type": str(module_type)})
    path = str(stack[-1][0])
    inner = relative_path(path, scope.base)
    if inner is None:
        inner = path
    shown = inner or (BODY_MODULE if scope.base else "(root)")
    return [KeyValue("module", shown), KeyValue("module_type", str(stack[-1][1]))]


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
    "BODY_MODULE",
    "INIT_GRAPH",
    "MAX_VALUE_ELEMENTS",
    "bodies",
    "init_id",
    "input_id",
    "ir_to_graphs",
    "namespace_of",
    "region_graph_id",
    "region_ids",
    "relative_path",
    "subgraph_ids",
    "type_text",
    "weight_id",
]
