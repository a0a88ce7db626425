"""Calls: a node that runs a function of the module (MLIR's ``func.call``).

``%out, %k = func.call(%h, %cos, %sin, @model.layers.3.q_proj.weight, ...) {callee="decoder_layer"}``: its
operands are the callee's inputs, in order (values of the caller, and the module's weights bound to the
callee's weight parameters at this call site); its results are the callee's outputs. The callee is a
function of the same module (usually private), whose graph takes what a block reads, weights included,
as inputs, so one body serves every call: a decoder layer traced once, called 80 times. State a block
writes (a KV-cache slice) is an input of the body and one of its outputs; the caller's state update
writes the call's result, so the body stays functional.

A call's ``meta`` may hold ``inline``: the names the nodes and values of the body had where the call
stands (``{"nodes": [...], "values": [...]}``, body order), so that inlining gives back exactly the graph
the block was outlined from, and ``module_path``: the module the call stands for (``model.layers.3``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
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


def inline_names(node: Node) -> dict[str, Any] | None:
    """The names the callee's nodes and values had at this call site, when the call keeps them."""
    names = node.meta.get("inline")
    return names if isinstance(names, dict) else None


__all__ = [
    "CALL_OP",
    "call_counts",
    "call_graph",
    "callee_name",
    "calls_in",
    "check_call",
    "find_recursion",
    "inline_names",
    "is_call",
]
