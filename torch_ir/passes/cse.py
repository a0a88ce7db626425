"""cse: common-subexpression elimination of pure ops, in one linear walk.

Two nodes are the same when they have the same op type, read the same values (by identity) in the same
slots and have equal attributes. Side-effecting and random ops (rand*, dropout, bernoulli, empty*, ops
tagged nondeterministic_seeded) are never merged. Each region (control-flow body or branch) is a scope
of its own: nodes merge within it, never across regions or with the enclosing graph; region ops
themselves are not merged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from torch_ir.ir.graph import Graph, Value
from torch_ir.ops import op_info
from torch_ir.passes.base import Pass, PassContext, PassResult
from torch_ir.passes.registry import register_pass


@register_pass
@dataclass(frozen=True)
class CSE(Pass):
    """Merge pure nodes with the same op, operands and attributes into one."""

    name: ClassVar[str] = "cse"
    regions: ClassVar[str] = "every region: merges within each region, never across regions or with the enclosing graph"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        return PassResult(graph, cse(graph))


def cse(graph: Graph) -> bool:
    """Merge the duplicate pure nodes of ``graph`` (not of its regions); say whether any went."""
    seen: dict[Any, Any] = {}
    pure: dict[str, bool] = {}
    modified = False
    for node in graph.nodes:
        if not node.outputs:
            continue
        ok = pure.get(node.op_type)
        if ok is None:
            ok = pure[node.op_type] = op_info(node.op_type).pure
        if not ok:
            continue
        try:
            key = (node.op_type, tuple(_arg_key(a) for a in node.args), _attrs_key(node.attrs))
        except TypeError:
            continue
        first = seen.get(key)
        if first is None:
            seen[key] = node
            continue
        if [v.type for v in first.outputs] != [v.type for v in node.outputs]:
            continue
        for old, new in zip(node.outputs, first.outputs):
            graph.replace_all_uses_with(old, new)
        graph.erase(node)
        modified = True
    return modified


def _arg_key(arg: Any) -> Any:
    if isinstance(arg, Value):
        return ("%", id(arg))
    if isinstance(arg, list):
        return tuple(_arg_key(a) for a in arg)
    return ("=", json.dumps(arg))


def _attrs_key(attrs: dict[str, Any]) -> str:
    return json.dumps(attrs, sort_keys=True) if attrs else ""
