"""FLOPs of control-flow ops, from the ops in their regions.

- ``cond``: the larger of its two branches (an upper bound: which branch runs depends on the data).
- ``scan`` / ``map``: the region's cost per iteration, times the trip count (the length of dimension 0
  of ``xs``), which is static unless that dimension is a symbol without a binding.
- ``while_loop``: ``cond`` + ``body`` per iteration; its trip count depends on the data, so its total
  (and the model's) is unknown (None), and the per-iteration figure is reported on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch_ir.ir.graph import Graph, Node
from torch_ir.ir.regions import operand_group
from torch_ir.ir.types import TensorType

Cost = tuple[int | None, int | None, bool]
NodeCost = Callable[[Node, Mapping[str, int]], Cost]


def region_op_cost(node: Node, bindings: Mapping[str, int], node_cost: NodeCost) -> Cost:
    """``(flops, macs, known)`` of a region op in total (None where the trip count is not static)."""
    per_iteration, trips = _per_iteration(node, bindings, node_cost)
    flops, macs, known = per_iteration
    if trips is None:
        return None, None, known
    return _times(flops, trips), _times(macs, trips), known


def region_op_figures(graph: Graph, bindings: Mapping[str, int], node_cost: NodeCost) -> list[dict[str, Any]]:
    """One entry per region op at any depth: path, op, FLOPs and MACs per iteration, trip count, totals."""
    entries = []
    for path, node in graph.walk():
        if not node.regions:
            continue
        (flops, macs, _), trips = _per_iteration(node, bindings, node_cost)
        entries.append(
            {
                "node": path + node.name,
                "op": node.op_type,
                "flops_per_iteration": flops,
                "macs_per_iteration": macs,
                "trip_count": trips,
                "flops": None if trips is None else _times(flops, trips),
            }
        )
    return entries


def _per_iteration(node: Node, bindings: Mapping[str, int], node_cost: NodeCost) -> tuple[Cost, int | None]:
    costs = [graph_cost(region, bindings, node_cost) for region in node.regions]
    kind = node.op_type.split(".", 1)[-1]
    if kind == "cond":
        return _larger(costs), 1
    total = _sum(costs)
    if kind in ("scan", "map_impl"):
        return total, _trip_count(node, bindings)
    return total, None


def graph_cost(graph: Graph, bindings: Mapping[str, int], node_cost: NodeCost) -> Cost:
    """``(flops, macs, known)`` of every node of a graph (region ops by ``region_op_cost``)."""
    return _sum([node_cost(node, bindings) for node in graph.nodes])


def _trip_count(node: Node, bindings: Mapping[str, int]) -> int | None:
    xs = operand_group(node, "xs")
    if not xs or not isinstance(xs[0].type, TensorType) or not xs[0].type.shape:
        return 0 if not xs else None
    length = xs[0].type.shape[0]
    if isinstance(length, int):
        return length
    return bindings.get(length)


def _sum(costs: list[Cost]) -> Cost:
    flops: int | None = 0
    macs: int | None = 0
    known = True
    for f, m, k in costs:
        flops = None if flops is None or f is None else flops + f
        macs = None if macs is None or m is None else macs + m
        known = known and k
    return flops, macs, known


def _larger(costs: list[Cost]) -> Cost:
    if any(f is None for f, _, _ in costs):
        return None, None, all(k for _, _, k in costs)
    flops, macs, _ = max(costs, key=lambda c: c[0] or 0)
    return flops, macs, all(k for _, _, k in costs)


def _times(value: int | None, trips: int) -> int | None:
    return None if value is None else value * trips


__all__ = ["graph_cost", "region_op_cost", "region_op_figures"]
