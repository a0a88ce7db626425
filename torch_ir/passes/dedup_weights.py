"""dedup-weights: one ``Weight`` per storage, every state_dict name kept as an alias.

Weights whose names or aliases overlap are one storage in the model (GPT-2's ``lm_head.weight`` and
``transformer.wte.weight``): the first in graph order keeps its name, the others become aliases and their
uses read the first. With values at hand (``PassContext.state_dict``), weights with identical contents
(same shape, dtype and ``torch.equal``) are merged too, as are inline constants with equal data. It works
on the module's one weight table (every function reads it), then on the init graph's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from torch_ir.ir.graph import Graph, Weight
from torch_ir.ir.module import Module
from torch_ir.passes.base import Pass, PassContext, PassResult
from torch_ir.passes.registry import register_pass


@register_pass
@dataclass(frozen=True)
class DedupWeights(Pass):
    """Merge weights that share a storage (tied embeddings), or identical contents when values are known."""

    name: ClassVar[str] = "dedup-weights"
    scope: ClassVar[str] = "module"
    regions: ClassVar[str] = "nothing to do inside: regions hold no weights (their operands are rewired with the op's)"

    by_value: bool = True
    """Also merge weights with identical contents (needs a state_dict in the context, or inline data)."""

    def run(self, module: Module, ctx: PassContext) -> PassResult:
        state = ctx.state_dict if self.by_value else None
        graphs = [f.graph for f in module.functions.values()]
        modified = dedup(graphs, state, self.by_value)
        if module.init is not None:
            modified = dedup([module.init], state, self.by_value) or modified
        return PassResult(module, modified)


def dedup(graphs: list[Graph], state_dict: Mapping[str, Any] | None = None, by_value: bool = False) -> bool:
    """Merge the weights of the table ``graphs`` read that share a name or alias (and, if asked, equal
    contents), in every one of them."""
    graph = graphs[0]
    keeper_of: dict[str, Weight] = {}
    merges: list[tuple[Weight, Weight]] = []
    for weight in graph.weights.values():
        keeper = next((keeper_of[n] for n in weight.names if n in keeper_of), None)
        if keeper is None or keeper.kind == "derived" or weight.kind == "derived":
            for n in weight.names:
                keeper_of.setdefault(n, weight)
            continue
        merges.append((weight, keeper))
        for n in weight.names:
            keeper_of.setdefault(n, keeper)
    if by_value:
        merges.extend(_equal_contents(graph, state_dict, {id(w) for w, _ in merges}))
    outputs = {id(v) for g in graphs for v in g.live_values()}
    targets = {u.target for g in graphs for u in g.state_updates if u.kind != "input"}
    for weight, keeper in merges:
        if keeper.type != weight.type or weight.name in targets or keeper.name in targets:
            continue  # state changes between calls: equal now does not mean equal later
        for g in graphs:
            g.replace_all_uses_with(weight, keeper)
        names = [n for n in (*keeper.aliases, *weight.names) if n != keeper.name]
        keeper.aliases = tuple(dict.fromkeys(names))
        if id(weight) not in outputs:
            graph.remove_weight(weight)
    return bool(merges)


def _equal_contents(
    graph: Graph, state_dict: Mapping[str, Any] | None, merged: set[int]
) -> list[tuple[Weight, Weight]]:
    """Pairs (duplicate, keeper) of weights whose known values are equal."""
    import torch

    groups: dict[Any, list[tuple[Weight, Any]]] = {}
    out: list[tuple[Weight, Weight]] = []
    for weight in graph.weights.values():
        if id(weight) in merged or weight.kind == "derived":
            continue
        value = _value_of(weight, state_dict)
        if value is None:
            continue
        key = (weight.type, weight.kind, weight.persistent, isinstance(value, torch.Tensor))
        bucket = groups.setdefault(key, [])
        for keeper, kept in bucket:
            if _equal(kept, value):
                out.append((weight, keeper))
                break
        else:
            bucket.append((weight, value))
    return out


def _value_of(weight: Weight, state_dict: Mapping[str, Any] | None) -> Any:
    import torch

    if state_dict is not None:
        for name in weight.names:
            value = state_dict.get(name)
            if isinstance(value, torch.Tensor) and value.device.type != "meta":
                return value
    if weight.data is not None:
        return weight.data
    return None


def _equal(a: Any, b: Any) -> bool:
    import torch

    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b))
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return False
    return a == b
