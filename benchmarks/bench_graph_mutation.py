"""Graph mutation at 20,000 nodes: create, replace all uses, erase; torch-ir against torch.fx, same run.

Each test measures the torch-ir operation and a baseline in the same process and records
``extra_info["ratio"]`` (torch-ir seconds / baseline seconds):

- create: ``create_node`` with explicit types (the API before the change), ``create_op`` with inferred
  types (after; its per-signature cache makes repeated layers cheap), and ``torch.fx.Graph.call_function``.
- replace: ``replace_all_uses_with`` of a value read by 20,000 nodes: the new O(uses) edit, the previous
  algorithm (every reader's operands rebuilt through ``set_args``, kept here as ``_replace_by_set_args``),
  and ``torch.fx.Node.replace_all_uses_with``.
- erase: a 20,000-node chain erased from its end, against ``torch.fx.Graph.erase_node``.

Run with ``pytest benchmarks/bench_graph_mutation.py --benchmark-only -o python_files='bench_*.py'``.
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.fx
from conftest import best_seconds

from torch_ir.ir.graph import Graph, Value, _replace_in_arg
from torch_ir.ir.types import TensorType

N = 20_000
T = TensorType((4, 4), "float32")


def _chain_create_node() -> Graph:
    g = Graph()
    v = g.add_input("x", T)
    for _ in range(N):
        v = g.create_node("aten.neg.default", [v], {}, [T]).output
    g.set_outputs([v])
    return g


def _chain_create_op() -> Graph:
    g = Graph()
    v = g.add_input("x", T)
    for _ in range(N):
        v = g.create_op("aten.neg.default", v).output
    g.set_outputs([v])
    return g


def _chain_fx() -> torch.fx.Graph:
    g = torch.fx.Graph()
    v = g.placeholder("x")
    for _ in range(N):
        v = g.call_function(torch.ops.aten.neg.default, (v,))
    g.output(v)
    return g


def _hub() -> tuple[Graph, Value, Value]:
    """``N`` nodes that all read ``x`` (and the previous node), and a second input ``y``."""
    g = Graph()
    x, y = g.add_input("x", T), g.add_input("y", T)
    v = x
    for _ in range(N):
        v = g.create_node("aten.add.Tensor", [x, v], {"alpha": 1}, [T]).output
    g.set_outputs([v])
    return g, x, y


def _hub_fx() -> tuple[torch.fx.Graph, torch.fx.Node, torch.fx.Node]:
    g = torch.fx.Graph()
    x, y = g.placeholder("x"), g.placeholder("y")
    v = x
    for _ in range(N):
        v = g.call_function(torch.ops.aten.add.Tensor, (x, v))
    g.output(v)
    return g, x, y


def _replace_by_set_args(g: Graph, old: Value, new: Value) -> None:
    """The algorithm ``replace_all_uses_with`` used before: rebuild every reader's operands."""
    for user in g.users(old):
        g.set_args(user, [_replace_in_arg(a, old, new) for a in user.args])


def test_create_20k(benchmark: Any) -> None:
    before = best_seconds(_chain_create_node)
    fx = best_seconds(_chain_fx)
    graph = benchmark.pedantic(_chain_create_op, rounds=3, iterations=1)
    after = benchmark.stats.stats.min
    assert len(graph) == N
    benchmark.extra_info.update(
        nodes=N,
        create_node_s=before,
        create_op_s=after,
        fx_call_function_s=fx,
        ratio=after / fx,
        create_op_vs_create_node=after / before,
        create_node_vs_fx=before / fx,
    )


def test_replace_all_uses_20k(benchmark: Any) -> None:
    def old_way() -> float:
        g, x, y = _hub()
        start = time.perf_counter()
        _replace_by_set_args(g, x, y)
        return time.perf_counter() - start

    def fx_way() -> float:
        _graph, x, y = _hub_fx()
        start = time.perf_counter()
        x.replace_all_uses_with(y)
        return time.perf_counter() - start

    before = min(old_way() for _ in range(3))
    fx = min(fx_way() for _ in range(3))
    graphs = iter([_hub() for _ in range(3)])

    def new_way() -> int:
        g, x, y = next(graphs)
        return g.replace_all_uses_with(x, y)

    assert benchmark.pedantic(new_way, rounds=3, iterations=1) == N
    after = benchmark.stats.stats.min
    benchmark.extra_info.update(
        uses=N, new_s=after, set_args_s=before, fx_s=fx, ratio=after / fx, new_vs_set_args=after / before
    )


def test_erase_20k(benchmark: Any) -> None:
    def fx_way() -> float:
        g = _chain_fx()
        nodes = [n for n in g.nodes if n.op == "call_function"]
        out = next(n for n in g.nodes if n.op == "output")
        g.erase_node(out)
        start = time.perf_counter()
        for node in reversed(nodes):
            g.erase_node(node)
        return time.perf_counter() - start

    fx = min(fx_way() for _ in range(3))
    graphs = iter([_chain_create_node() for _ in range(3)])

    def erase_all() -> int:
        g = next(graphs)
        g.set_outputs([])
        for node in reversed(g.nodes):
            g.erase(node)
        return len(g)

    assert benchmark.pedantic(erase_all, rounds=3, iterations=1) == 0
    after = benchmark.stats.stats.min
    benchmark.extra_info.update(nodes=N, torch_ir_s=after, fx_s=fx, ratio=after / fx)
