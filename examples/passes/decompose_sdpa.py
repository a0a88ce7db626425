"""decompose-sdpa: ``scaled_dot_product_attention`` as matmul, scale, mask, softmax, matmul.

For backends without an attention kernel. Each SDPA without dropout, ``is_causal`` or ``enable_gqa``
becomes ``softmax(q @ k^T * scale + mask) @ v`` in plain ATen ops (a boolean mask is applied with
``masked_fill``, a float mask is added), so the result runs and verifies without any plugin op::

    torch-ir opt llama.json -p decompose-sdpa --plugin examples.passes.decompose_sdpa -o explicit.json
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from torch_ir import Node, register_pass
from torch_ir.passes.rewrite import PatternRewritePass, PatternRewriter, RewritePattern

MASKED = -3.4028234663852886e38
"""The float32 minimum, written where a boolean mask is False (finite, so the JSON stays standard)."""


class DecomposeSDPA(RewritePattern):
    """One SDPA node into explicit ops (a hand-written pattern: it reads operands by name)."""

    op_types: ClassVar[tuple[str, ...]] = ("aten.scaled_dot_product_attention.default",)

    def match_and_rewrite(self, node: Node, rewriter: PatternRewriter) -> None:
        q, k, v = node.operand("query"), node.operand("key"), node.operand("value")
        mask = node.operand("attn_mask")
        if node.operand("dropout_p") != 0.0 or node.operand("is_causal") or node.operand("enable_gqa"):
            return
        if q.shape is None or not isinstance(q.shape[-1], int):
            return
        scale = node.operand("scale")
        scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
        op = rewriter.emit
        scores = op("aten.mul.Tensor", op("aten.matmul.default", q, op("aten.transpose.int", k, -2, -1)), scale)
        if mask is not None and mask.dtype == "bool":
            scores = op("aten.masked_fill.Scalar", scores, op("aten.logical_not.default", mask), MASKED)
        elif mask is not None:
            scores = op("aten.add.Tensor", scores, mask)
        probs = op("aten.softmax.int", scores, -1)
        rewriter.replace_matched_op(op("aten.matmul.default", probs, v))


@register_pass
@dataclass(frozen=True)
class DecomposeSDPAPass(PatternRewritePass):
    """Replace scaled_dot_product_attention by matmul, softmax and matmul (backends without attention)."""

    name: ClassVar[str] = "decompose-sdpa"

    def patterns(self) -> list[RewritePattern]:
        return [DecomposeSDPA()]
