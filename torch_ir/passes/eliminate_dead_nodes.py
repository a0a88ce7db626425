"""eliminate-dead-nodes (dce): remove nodes whose results nothing reads, then weights nothing reads.

Nodes are visited once, in reverse order, so a chain of dead nodes goes in one walk (erasing a node
lowers the use counts of its operands). Side-effecting nodes (asserts, in-place and ``out=`` ops, ops
with mutable schemas, ops torch-ir cannot resolve) and nodes without results stay; graph inputs and
outputs are never removed. Weights go when no function of the module reads them. The pass manager runs it
on every graph: inside regions (control-flow bodies and branches) dead nodes go too, innermost region
first, while a region's inputs and outputs stay as its op's contract needs; a region op whose results
nothing reads goes when no node in its regions has side effects. The init graph comes last: its results
that no derived weight of the module needs any more go first, and an init graph left empty is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch_ir.ir.graph import Graph
from torch_ir.ir.regions import has_nested_side_effects
from torch_ir.ir.types import TensorType
from torch_ir.ops import op_info
from torch_ir.passes.base import Pass, PassContext, PassResult
from torch_ir.passes.registry import register_pass


@register_pass
@dataclass(frozen=True)
class EliminateDeadNodes(Pass):
    """Remove unused side-effect-free nodes, then weights nothing reads."""

    name: ClassVar[str] = "eliminate-dead-nodes"
    uses_torch: ClassVar[bool] = False
    aliases: ClassVar[tuple[str, ...]] = ("dce",)
    regions: ClassVar[str] = (
        "every region: removes dead nodes inside regions (inputs and outputs stay); "
        "removes an unused region op whose regions have no side effects"
    )

    remove_weights: bool = True
    """Also remove weights that no node and no output reads."""

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        if ctx.region:  # a region keeps its inputs and outputs, and holds no weights
            return PassResult(graph, eliminate(graph, False))
        if not ctx.in_init:
            modified = eliminate(graph, self.remove_weights)
            if modified and ctx.module is not None:  # every function of the module shares the record
                for function in ctx.module.functions.values():
                    _record(function.graph, graph.meta.get("unused_weights", []), graph.meta.get("unused_weight_types"))
            return PassResult(graph, modified)
        module = ctx.module
        table = module.table if module is not None else None
        modified = False
        if table is not None:
            wanted = {w.name for w in table.weights.values() if w.kind == "derived"}
            outputs = [v for v in graph.outputs if v.name in wanted]
            if len(outputs) != len(graph.outputs):
                graph.set_outputs(outputs)
                modified = True
        modified = eliminate(graph, True) or modified
        if table is not None and not graph.outputs and not len(graph) and table.init is graph:
            table.init = None
            modified = True
        return PassResult(graph, modified)


def eliminate(graph: Graph, remove_weights: bool = True) -> bool:
    """Remove dead nodes (and, if asked, unread weights) from ``graph``; say whether anything went."""
    outputs = {id(v) for v in graph.live_values()}
    effects: dict[str, bool] = {}
    modified = False
    for node in reversed(graph.nodes):
        if not node.outputs:
            continue
        if any(id(v) in outputs or graph.num_uses(v) for v in node.outputs):
            continue
        effect = effects.get(node.op_type)
        if node.regions:  # a region op is dead when nothing in its regions has side effects
            effect = has_nested_side_effects(node, _has_side_effects)
        elif effect is None:
            effect = effects[node.op_type] = op_info(node.op_type).has_side_effects
        if effect:
            continue
        graph.erase(node)
        modified = True
    if remove_weights:
        removed: list[str] = []
        types: dict[str, Any] = dict(graph.meta.get("unused_weight_types") or {})
        for weight in graph.weights.values():
            if id(weight) in outputs or graph.num_uses(weight) or graph.is_state_target(weight.name):
                continue
            if graph.table.reader(weight, graph):  # another function of the module reads it
                continue
            graph.remove_weight(weight)
            if weight.kind != "derived":
                removed.extend(weight.names)
                if isinstance(weight.type, TensorType):
                    types[weight.name] = {
                        "kind": weight.kind,
                        "shape": list(weight.type.shape),
                        "dtype": weight.type.dtype,
                        "aliases": list(weight.aliases),
                    }
            modified = True
        if removed:
            _record(graph, removed, types)
    return modified


def _record(graph: Graph, removed: list[str], types: dict[str, Any] | None) -> None:
    """Note in ``graph.meta`` the state_dict names and types of weights removed because nothing read them."""
    if not removed:
        return
    graph.meta["unused_weights"] = sorted({*graph.meta.get("unused_weights", []), *removed})
    merged = {**(graph.meta.get("unused_weight_types") or {}), **(types or {})}
    graph.meta["unused_weight_types"] = dict(sorted(merged.items()))


def _has_side_effects(op_type: str) -> bool:
    return op_info(op_type).has_side_effects
