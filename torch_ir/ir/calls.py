"""Calls: a node that runs a function of the module (MLIR's ``func.call``).

``%out, %k = func.call(%h, %cos, %sin, @model.layers.3.q_proj.weight, ...) {callee="decoder_layer"}``: its
operands are the callee's inputs, in order (values of the caller, and the module's weights bound to the
callee's weight parameters at this call site); its results are the callee's outputs. The callee is a
function of the same module (usually private), whose graph takes what a block reads, weights included,
as inputs, so one body serves every call: a decoder layer traced once, called 80 times. State a block
writes (a KV-cache slice) is an input of the body and one of its outputs; the caller's state update
writes the call's result, so the body stays functional.

A call's ``meta`` may hold ``inline``: the names the nodes and values of the body had where the call
stands (``{"nodes": [...], "values": [...]}``, body order; ``values`` is left out when every node has at most
one result, named as the node), so that inlining gives back exactly the graph the block was outlined from, and
``module_path``: the module the call stands for (``model.layers.3``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from torch_ir.ir.types import TensorType, ValueType

if TYPE_CHECKING:
    from torch_ir.ir.graph import Graph, Node

CALL_OP = "func.call"
"""The op type of a call."""


def is_call(node: Node) -> bool:
    """Whether ``node`` calls a function of its module."""
    return node.op_type == CALL_OP


def callee_name(node: Node) -> str:
    """The name of the function ``node`` calls ('' when it has none)."""
    name = node.attrs.get("callee")
    return name if isinstance(name, str) else ""


def calls_in(graph: Graph) -> Iterator[Node]:
    """Every call in ``graph`` and the regions nested in it."""
    for _, node in graph.walk():
        if node.op_type == CALL_OP:
            yield node


def check_call(node: Node, functions: Mapping[str, Graph]) -> str:
    """Why ``node`` is not a valid call of one of ``functions`` (name -> graph), or '' when it is.

    The callee exists; the operands match its inputs and the results its outputs in number, and in dtype
    and rank (and in each dimension that is static on both sides).
    """
    name = callee_name(node)
    if not name:
        return "a call needs a callee attribute naming a function of the module"
    callee = functions.get(name)
    if callee is None:
        return f"calls {name!r}, which is not a function of the module"
    if any(isinstance(a, list) for a in node.args):
        return "a call's operands are values, not lists"
    operands = node.inputs
    if len(operands) != len(callee.inputs):
        return f"passes {len(operands)} operands, but {name} takes {len(callee.inputs)}"
    for index, (given, param) in enumerate(zip(operands, callee.inputs)):
        problem = _type_mismatch(given.type, param.type)
        if problem:
            return f"operand {index} ({given.ref}) {problem} {name}'s input %{param.name} ({param.type})"
    if len(node.outputs) != len(callee.outputs):
        return f"has {len(node.outputs)} results, but {name} returns {len(callee.outputs)}"
    for index, (result, returned) in enumerate(zip(node.outputs, callee.outputs)):
        problem = _type_mismatch(result.type, returned.type)
        if problem:
            return f"result {index} ({result.ref}) {problem} what {name} returns there ({returned.type})"
    return ""


def _type_mismatch(given: ValueType | None, wanted: ValueType | None) -> str:
    if given is None or wanted is None:
        return ""
    if type(given) is not type(wanted):
        return f"is {given}, not the kind of"
    if isinstance(given, TensorType) and isinstance(wanted, TensorType):
        if given.dtype != wanted.dtype or given.rank != wanted.rank:
            return f"is {given}, which does not fit"
        for a, b in zip(given.shape, wanted.shape):
            if isinstance(a, int) and isinstance(b, int) and a != b:
                return f"is {given}, which does not fit"
    elif given != wanted:
        return f"is {given}, which does not fit"
    return ""


def call_graph(functions: Mapping[str, Graph]) -> dict[str, list[str]]:
    """Function name -> the names of the functions it calls (each once, in order)."""
    out: dict[str, list[str]] = {}
    for name, graph in functions.items():
        out[name] = list(dict.fromkeys(callee_name(n) for n in calls_in(graph)))
    return out


def find_recursion(functions: Mapping[str, Graph]) -> list[str]:
    """A cycle of calls (``["a", "b", "a"]``), or [] when calls never recurse."""
    graph = call_graph(functions)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str]:
        state[name] = 1
        stack.append(name)
        for callee in graph.get(name, []):
            if state.get(callee) == 1:
                return [*stack[stack.index(callee) :], callee]
            if callee in graph and callee not in state:
                found = visit(callee)
                if found:
                    return found
        stack.pop()
        state[name] = 2
        return []

    for name in graph:
        if name not in state:
            found = visit(name)
            if found:
                return found
    return []


def call_counts(functions: Mapping[str, Graph], entries: list[str]) -> dict[str, int]:
    """How many times each function runs per call of every entry once (calls inside loops count once)."""
    graph = {name: [callee_name(n) for n in calls_in(g)] for name, g in functions.items()}
    counts: dict[str, int] = dict.fromkeys(functions, 0)

    def visit(name: str, times: int) -> None:
        counts[name] = counts.get(name, 0) + times
        for callee in graph.get(name, []):
            visit(callee, times)

    for entry in entries:
        visit(entry, 1)
    return counts


def block_function_name(taken: Collection[str], module_type: str) -> str:
    """A function name for a block of class ``module_type`` (``...LlamaDecoderLayer`` -> ``llama_decoder_layer``),
    not in ``taken`` (``llama_decoder_layer_2`` when it is)."""
    short = module_type.rsplit(".", 1)[-1] or "block"
    base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", short).lower()
    base = re.sub(r"\W", "_", base) or "block"
    base = base if base[0].isalpha() or base[0] == "_" else f"_{base}"
    name, counter = base, 1
    while name in taken:
        counter += 1
        name = f"{base}_{counter}"
    return name


def inline_names(node: Node) -> dict[str, Any] | None:
    """The names the callee's nodes and values had at this call site, when the call keeps them."""
    names = node.meta.get("inline")
    return names if isinstance(names, dict) else None


def inline_meta(nodes: list[str], values: list[str], body_nodes: Any) -> dict[str, Any]:
    """A call's ``meta["inline"]``: the node names, and the value names unless each of ``body_nodes`` has at
    most one result, named there as its node."""
    body_nodes = list(body_nodes)
    if all(len(n.outputs) <= 1 for n in body_nodes):
        derived = [name for name, node in zip(nodes, body_nodes) if len(node.outputs) == 1]
        if len(nodes) == len(body_nodes) and values == derived:
            return {"nodes": nodes}
    return {"nodes": nodes, "values": values}


def site_values(names: Mapping[str, Any], body: Graph) -> list[str]:
    """The names the results of ``body``'s nodes have at a call, in order ('' where the call keeps none)."""
    values = names.get("values")
    if isinstance(values, list):
        return [str(v) if v else "" for v in values]
    nodes = list(names.get("nodes") or [])
    out: list[str] = []
    for index, node in enumerate(body.nodes):
        if len(node.outputs) == 1:
            out.append(str(nodes[index] or "") if index < len(nodes) else "")
        else:
            out.extend("" for _ in node.outputs)
    return out


BodyNames = list[tuple[str, tuple[str, ...]]]
"""A body's nodes as names: ``(node name, its results' names)`` in order."""


def body_names(graph: Graph) -> BodyNames:
    """``graph``'s nodes as names, to give ``follow_body`` after a pass changed the graph."""
    return [(n.name, tuple(v.name for v in n.outputs)) for n in graph.nodes]


def follow_body(functions: Mapping[str, Graph], callee: str, before: BodyNames) -> None:
    """Keep the names of the calls of ``callee`` (``meta["inline"]``, one per body node and value, in body
    order) in step with its body after a pass changed it: a node the pass kept keeps its names, a node it
    removed takes its names away, a node it made gets '' (a fresh name, when inlined)."""
    body = functions.get(callee)
    if body is None:
        return
    after = body_names(body)
    if after == before:
        return
    counts = [len(outputs) for _, outputs in before]
    where: dict[str, tuple[int, int]] = {}
    offset = 0
    for index, (name, outputs) in enumerate(before):
        where[name] = (index, offset)
        offset += len(outputs)
    for graph in functions.values():
        for call in calls_in(graph):
            names = inline_names(call)
            if callee_name(call) != callee or names is None:
                continue
            nodes = list(names.get("nodes") or [])
            values = names.get("values")
            if not isinstance(values, list):  # one result per node, named as the node
                values = [n for n, count in zip(nodes, counts) for _ in range(count)]
            new_nodes: list[str] = []
            new_values: list[str] = []
            for name, outputs in after:
                found = where.get(name)
                if found is None or len(before[found[0]][1]) != len(outputs):
                    new_nodes.append("")
                    new_values.extend("" for _ in outputs)
                    continue
                index, start = found
                new_nodes.append(nodes[index] if index < len(nodes) else "")
                kept = values[start : start + len(outputs)]
                new_values.extend(kept + [""] * (len(outputs) - len(kept)))
            call.meta["inline"] = inline_meta(new_nodes, new_values, body.nodes)


def copy_nodes(target: Graph, nodes: Iterable[Node], env: dict[int, Any], *, keep_unmapped: bool) -> None:
    """Copy ``nodes`` into ``target`` in order: names, attributes and literals (``copy_literal``), result
    types, meta and regions (cloned). ``env`` maps ``id(value)`` of a source value to its value in
    ``target`` and gains the copies' results. An operand not in ``env`` stays as it is with
    ``keep_unmapped`` (a value of the graph copied into), else is a ``KeyError``."""
    from torch_ir.ir.graph import Value

    def value(arg: Value) -> Any:
        return env.get(id(arg), arg) if keep_unmapped else env[id(arg)]

    def operand(arg: Any) -> Any:
        if isinstance(arg, Value):
            return value(arg)
        if isinstance(arg, list):
            return [value(a) if isinstance(a, Value) else a for a in arg]
        return copy_literal(arg)

    for node in nodes:
        copy = target.create_node(
            node.op_type,
            [operand(a) for a in node.args],
            copy_literal(node.attrs),
            [v.type for v in node.outputs],
            name=node.name,
            output_names=[v.name for v in node.outputs],
            meta=dict(node.meta),
        )
        copy.regions = [region.clone(share_weights=False) for region in node.regions]
        for result, new in zip(node.outputs, copy.outputs):
            env[id(result)] = new


def copy_literal(value: Any) -> Any:
    """A copy of an attribute or literal argument, lists and dicts copied all the way down, so a node copied
    into or out of a function body shares nothing mutable with the node it copies."""
    if isinstance(value, list):
        return [copy_literal(v) for v in value]
    if isinstance(value, dict):
        return {k: copy_literal(v) for k, v in value.items()}
    return value


__all__ = [
    "copy_literal",
    "copy_nodes",
    "CALL_OP",
    "block_function_name",
    "body_names",
    "follow_body",
    "call_counts",
    "call_graph",
    "callee_name",
    "calls_in",
    "check_call",
    "find_recursion",
    "inline_meta",
    "inline_names",
    "site_values",
    "is_call",
]
