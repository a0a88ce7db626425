"""canonicalize: remove what torch.export leaves in but a backend never wants.

Removed: ``aten._assert_tensor_metadata``; dropout in eval mode (or with p=0); ``alias``,
``lift_fresh_copy``, ``contiguous`` and ``clone`` without a memory-format change; ``to`` / ``_to_copy``
whose result type equals the input type (devices are not compared: meta and cpu count as the same);
``view`` / ``reshape`` / ``expand`` / ``_unsafe_view`` to the same static shape. Uses are redirected to
the operand, then the node is erased. Runs inside regions too (control-flow bodies and branches).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch_ir.ir.graph import Graph, Node, Value
from torch_ir.ir.regions import nested_regions
from torch_ir.ir.types import TensorType
from torch_ir.passes.base import Pass, PassContext, PassResult
from torch_ir.passes.registry import register_pass

ASSERTS = ("aten._assert_tensor_metadata.default",)

IDENTITIES = (
    "aten.alias.default",
    "aten.lift_fresh_copy.default",
    "aten.contiguous.default",
    "aten.detach.default",
    "aten.lift_fresh.default",
)

SAME_TYPE_NOOPS = (
    "aten.to.dtype",
    "aten.to.dtype_layout",
    "aten.to.device",
    "aten.to.other",
    "aten._to_copy.default",
    "aten.type_as.default",
)

SAME_SHAPE_NOOPS = (
    "aten.view.default",
    "aten.reshape.default",
    "aten.expand.default",
    "aten._unsafe_view.default",
    "aten.expand_as.default",
    "aten.view_as.default",
    "aten.reshape_as.default",
)

DROPOUTS = (
    "aten.dropout.default",
    "aten.feature_dropout.default",
    "aten.alpha_dropout.default",
    "aten.native_dropout.default",
)


@register_pass
@dataclass(frozen=True)
class Canonicalize(Pass):
    """Remove export leftovers: metadata asserts, eval-mode dropout, no-op alias/clone/to/view."""

    name: ClassVar[str] = "canonicalize"
    uses_torch: ClassVar[bool] = False
    regions: ClassVar[str] = "recurses: simplifies inside every region"

    remove_asserts: bool = True
    """Remove ``aten._assert_tensor_metadata`` nodes."""

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        modified = False
        for g in (graph, graph.init, *(region for _, region in nested_regions(graph))):
            if g is None:
                continue
            for node in g.nodes:
                if self.simplify(g, node):
                    modified = True
        return PassResult(graph, modified)

    def simplify(self, graph: Graph, node: Node) -> bool:
        """Remove or bypass ``node`` when it is one of the no-ops this pass knows; True when it did."""
        op = node.op_type
        if op in ASSERTS:
            if self.remove_asserts:
                graph.erase(node)
                return True
            return False
        source = _first_tensor(node)
        if source is None or not node.outputs:
            return False
        if op in DROPOUTS:
            p = node.attrs.get("p", 1.0)
            if node.attrs.get("train") is not False and p not in (0, 0.0):
                return False
            extra = node.outputs[1:]
            if any(graph.users(v) or graph.is_live(v) for v in extra):
                return False
            return _forward(graph, node, source)
        if op in IDENTITIES:
            return _forward(graph, node, source)
        if op == "aten.clone.default":
            if node.attrs.get("memory_format") in (None, "preserve_format"):
                return _forward(graph, node, source)
            return False
        if op in SAME_TYPE_NOOPS:
            return _forward(graph, node, source)
        if op in SAME_SHAPE_NOOPS:
            t = source.type
            if isinstance(t, TensorType) and t.is_static:
                return _forward(graph, node, source)
        return False


def _first_tensor(node: Node) -> Value | None:
    for arg in node.args:
        if isinstance(arg, Value):
            return arg if isinstance(arg.type, TensorType) else None
        return None
    return None


def _forward(graph: Graph, node: Node, source: Value) -> bool:
    """Make the users of ``node``'s first result read ``source`` when the types agree; erase the node."""
    result = node.outputs[0]
    if result.type != source.type or result.type is None:
        return False
    graph.replace_all_uses_with(result, source)
    graph.erase(node)
    return True
