"""canonicalize: remove what torch.export leaves in but a backend never wants.

Removed: ``aten._assert_tensor_metadata``; dropout in eval mode (or with p=0); ``alias``,
``lift_fresh_copy``, ``contiguous`` and ``clone`` without a memory-format change; ``to`` / ``_to_copy``
whose result type equals the input type (devices are not compared: meta and cpu count as the same);
``view`` / ``reshape`` / ``expand`` / ``_unsafe_view`` to the same static shape. Uses are redirected to
the operand, then the node is erased. The pass manager runs it on every graph: functions, the regions
inside them (control-flow bodies and branches) and the init graph. Which
ops are which no-op is each op's canonicalization class in the op registry (``torch_ir.ops.canonical``;
``register_op(..., canonical=...)`` for a custom op).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch_ir.ir.graph import Graph, Node, Value
from torch_ir.ir.types import TensorType
from torch_ir.ops import op_info
from torch_ir.ops.canonical import ASSERT, COPY, DROPOUT, IDENTITY, SAME_SHAPE, SAME_TYPE
from torch_ir.passes.base import Pass, PassContext, PassResult
from torch_ir.passes.registry import register_pass


@register_pass
@dataclass(frozen=True)
class Canonicalize(Pass):
    """Remove export leftovers: metadata asserts, eval-mode dropout, no-op alias/clone/to/view."""

    name: ClassVar[str] = "canonicalize"
    uses_torch: ClassVar[bool] = False
    regions: ClassVar[str] = "every region: simplifies inside each one"

    remove_asserts: bool = True
    """Remove ``aten._assert_tensor_metadata`` nodes."""

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        modified = False
        for node in graph.nodes:
            if self.simplify(graph, node):
                modified = True
        return PassResult(graph, modified)

    def simplify(self, graph: Graph, node: Node) -> bool:
        """Remove or bypass ``node`` when it is one of the no-ops this pass knows; True when it did."""
        kind = op_info(node.op_type).canonical
        if kind is None:
            return False
        if kind == ASSERT:
            if self.remove_asserts:
                graph.erase(node)
                return True
            return False
        source = _first_tensor(node)
        if source is None or not node.outputs:
            return False
        if kind == DROPOUT:
            p = node.operand("p", 1.0)  # by schema name: an attribute, or an argument a file gives by position
            if node.operand("train", None) is not False and p not in (0, 0.0):
                return False
            extra = node.outputs[1:]
            if any(graph.users(v) or graph.is_live(v) for v in extra):
                return False
            return _forward(graph, node, source)
        if kind == IDENTITY:
            return _forward(graph, node, source)
        if kind == COPY:
            if node.operand("memory_format", None) in (None, "preserve_format"):
                return _forward(graph, node, source)
            return False
        if kind == SAME_TYPE:
            return _forward(graph, node, source)
        if kind == SAME_SHAPE:
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
