"""Dataflow analyses over a graph's networkx mirror: dominators, reachability, generations, repeated blocks.

Every ``Graph`` keeps a ``networkx.MultiDiGraph`` (one graph node per op, one edge per use); these functions
put it to work, read-only::

    from torch_ir.analysis.dataflow import dominators, reaches, topological_generations, repeated_blocks

    idom = dominators(graph)                   # node -> its immediate dominator (None at the entry)
    reaches(graph, a, b)                       # does a result of a flow into b?
    topological_generations(graph)             # waves of ops that can run in parallel
    repeated_blocks(graph, depth=3)            # ops grouped by the structure around them (32 layers -> 32)
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import networkx as nx

from torch_ir.errors import IRError
from torch_ir.ir.graph import Graph, Node, Value

_ENTRY = "<entry>"


def _check(graph: Graph, *nodes: Node) -> None:
    for node in nodes:
        if node.graph is not graph:
            raise IRError(f"node {node.name} is not in this graph")


def dominators(graph: Graph) -> dict[Node, Node | None]:
    """The immediate dominator of every op: the last op that every path from the graph's inputs and weights
    to it goes through (None when only the entry does, i.e. the op reads inputs or weights directly)."""
    dag = nx.DiGraph(graph.nx)
    roots = [n for n in graph.nodes if dag.in_degree(n) == 0]
    dag.add_node(_ENTRY)
    dag.add_edges_from((_ENTRY, n) for n in roots)
    idom = nx.immediate_dominators(dag, _ENTRY)
    return {n: (None if idom[n] == _ENTRY else idom[n]) for n in graph.nodes if n in idom}


def dominates(graph: Graph, a: Node, b: Node, idom: dict[Node, Node | None] | None = None) -> bool:
    """Whether every path to ``b`` goes through ``a`` (an op dominates itself)."""
    _check(graph, a, b)
    idom = idom if idom is not None else dominators(graph)
    node: Node | None = b
    while node is not None:
        if node is a:
            return True
        node = idom.get(node)
    return False


def reaches(graph: Graph, a: Node, b: Node) -> bool:
    """Whether a result of ``a`` flows (through any chain of ops) into ``b``."""
    _check(graph, a, b)
    return a is not b and nx.has_path(graph.nx, a, b)


def descendants(graph: Graph, node: Node) -> set[Node]:
    """Every op that reads, directly or not, a result of ``node``."""
    _check(graph, node)
    return set(nx.descendants(graph.nx, node))


def ancestors(graph: Graph, node: Node) -> set[Node]:
    """Every op whose results ``node`` reads, directly or not."""
    _check(graph, node)
    return set(nx.ancestors(graph.nx, node))


def topological_generations(graph: Graph) -> list[list[Node]]:
    """Ops in waves: each reads only results of earlier waves (ops of one wave are independent).

    Within a wave, ops keep the graph's order.
    """
    order = {n: i for i, n in enumerate(graph.nodes)}
    return [sorted(gen, key=order.__getitem__) for gen in nx.topological_generations(graph.nx)]


def structural_hashes(graph: Graph, depth: int = 3) -> dict[Node, str]:
    """A hash per op of its structure up to ``depth`` producers back: op types, attributes, operand types.

    Names are left out, so the same op in two copies of a layer gets the same hash (weights count by type
    only). A Weisfeiler-Lehman-style hash over the networkx mirror (edges keep their operand slot);
    ``depth`` 0 hashes the op alone.
    """
    if depth < 0:
        raise IRError(f"structural_hashes: depth must be at least 0, got {depth}")
    labels: dict[Node, str] = {n: _label(n) for n in graph.nodes}
    if depth == 0:
        return labels
    current = dict(labels)
    nxg = graph.nx
    for _ in range(depth):
        nxt = {}
        for node in graph.nodes:
            preds = sorted(f"{d['slot']}:{current[p]}" for p, _, d in nxg.in_edges(node, data=True))
            nxt[node] = _digest(current[node] + "|" + ",".join(preds))
        current = nxt
    return current


def repeated_blocks(graph: Graph, depth: int = 3, min_count: int = 2) -> list[list[Node]]:
    """Groups of ops with the same structural hash, at least ``min_count`` strong, largest first.

    In a transformer, each op of a decoder layer forms a group with its copies in the other layers.
    """
    groups: dict[str, list[Node]] = {}
    for node, h in structural_hashes(graph, depth).items():
        groups.setdefault(h, []).append(node)
    found = [g for g in groups.values() if len(g) >= min_count]
    return sorted(found, key=len, reverse=True)


def _label(node: Node) -> str:
    operands = [_operand_label(v) for v in node.inputs if v.producer is None]
    text = json.dumps(
        [node.op_type, _plain(node.attrs), operands, [str(v.type) for v in node.outputs]], sort_keys=True, default=str
    )
    return _digest(text)


def _operand_label(value: Value) -> str:
    return f"{'@' if hasattr(value, 'kind') else '%'}{value.type}"


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Value):
        return _operand_label(obj)
    return obj


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


__all__ = [
    "ancestors",
    "descendants",
    "dominates",
    "dominators",
    "reaches",
    "repeated_blocks",
    "structural_hashes",
    "topological_generations",
]
