"""fold-batchnorm: an eval-mode batch norm folded into the convolution before it, through the init graph.

``batch_norm(conv(x, W, b), gamma, beta, mean, var, training=False, eps)`` equals ``conv(x, W', b')`` with
``s = gamma / sqrt(var + eps)``, ``W' = W * s`` (per output channel) and ``b' = (b - mean) * s + beta``.
The pattern writes those weight computations as ops next to the conv; then hoist-weights moves them into
the init graph, so ``W'`` and ``b'`` are derived weights computed once when weights are bound, and the
main graph has one conv where it had two ops::

    torch-ir opt resnet.json -p fold-batchnorm --plugin examples.passes.fold_batchnorm -o folded.json
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch_ir import Graph, Node, PassContext, PassResult, Value, Weight, register_pass
from torch_ir.passes.hoist_weights import HoistWeights
from torch_ir.passes.rewrite import Match, Op, PatternRewritePass, PatternRewriter, RewritePattern, RewriteRule, Var

CONVS = ("aten.conv1d.default", "aten.conv2d.default", "aten.conv3d.default", "aten.convolution.default")
BATCH_NORMS = ("aten.batch_norm.default", "aten._native_batch_norm_legit_no_training.default")
"""``batch_norm(..., training=False)``, and its core-ATen form (``--decompose core_aten``) with three results."""


def _weight(value: Any) -> bool:
    return isinstance(value, Weight)


def _weight_or_none(value: Any) -> bool:
    return value is None or isinstance(value, Weight)


def fold(found: Match, rewriter: PatternRewriter) -> list[Value | None] | None:
    """The conv with folded weight and bias (its weight computations are ops the init graph takes over)."""
    conv: Node = found["conv"]
    bn: Node = found["bn"]
    w, bias = found["w"], conv.operand("bias")
    gamma, beta, mean, var = found["gamma"], found["beta"], found["mean"], found["var"]
    if w.shape is None or not _weight_or_none(bias):
        return None
    graph = rewriter.graph
    if any(graph.num_uses(v) or graph.is_output(v) for v in bn.outputs[1:]):
        return None  # the saved mean / invstd results of the core-ATen form are read
    op = rewriter.emit
    scale = op("aten.rsqrt.default", op("aten.add.Tensor", var, bn.operand("eps")))
    if gamma is not None:
        scale = op("aten.mul.Tensor", scale, gamma)
    new_w = op("aten.mul.Tensor", w, op("aten.reshape.default", scale, [-1] + [1] * (len(w.shape) - 1)))
    centered = op("aten.sub.Tensor", bias, mean) if bias is not None else op("aten.neg.default", mean)
    new_b = op("aten.mul.Tensor", centered, scale)
    if beta is not None:
        new_b = op("aten.add.Tensor", new_b, beta)
    operands = {**conv.operands, "weight": new_w, "bias": new_b}
    folded = rewriter.create_op(conv.op_type, name=f"{conv.name}_folded", **operands)
    return [folded.output] + [None] * (len(bn.outputs) - 1)


def _not_transposed(node: Node) -> bool:
    return not node.operand("transposed", default=False)


def _rule(conv_type: str, bn_type: str) -> RewriteRule:
    conv = Op(conv_type, Var("x"), Var("w", _weight), capture="conv", where=_not_transposed)
    eval_mode: dict[str, Any] = {"training": False} if bn_type == "aten.batch_norm.default" else {}
    bn = Op(
        bn_type,
        conv,
        Var("gamma", _weight_or_none),
        Var("beta", _weight_or_none),
        Var("mean", _weight),
        Var("var", _weight),
        capture="bn",
        **eval_mode,
    )
    return RewriteRule(bn, fold, name=f"fold-batchnorm-{conv_type.split('.')[1]}")


@register_pass
@dataclass(frozen=True)
class FoldBatchNorm(PatternRewritePass):
    """Fold eval-mode batch norms into the conv before them (weights computed in the init graph)."""

    name: ClassVar[str] = "fold-batchnorm"
    rewrite_init: ClassVar[bool] = False  # the init graph computes weights; it has no conv + batch norm

    def patterns(self) -> list[RewritePattern]:
        return [_rule(c, b) for c in CONVS for b in BATCH_NORMS]

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        result = super().run(graph, ctx)
        if result.modified:
            HoistWeights().run(graph, ctx)  # the function's new weight computations, into the module's init graph
        return result
