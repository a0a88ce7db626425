"""fuse-gqa-attention: Llama's grouped-query attention (repeat_kv + SDPA) as one custom op.

transformers repeats each key/value head ``n_rep`` times before ``scaled_dot_product_attention``::

    %u = aten.unsqueeze.default(%k) {dim=2}                       # [b, kv, 1, s, d]
    %e = aten.expand.default(%u) {size=[b, kv, n_rep, s, d]}
    %r = aten.reshape.default(%e) {shape=[b, kv * n_rep, s, d]}   # the same for %v
    %o = aten.scaled_dot_product_attention.default(%q, %r, %r_v, %mask)

A backend with a GQA kernel reads the un-repeated heads; this pass rewrites the four ops into
``torch_ir_examples.gqa_attention.default(%q, %k, %v, %mask)``. The op is defined with ``torch.library``
(a kernel, so the interpreter runs it and ``torch-ir verify`` checks it) and has a shape function
registered with ``torch_ir.ops.register_op`` (so ``create_op`` and annotate-shapes type it without
running anything)::

    torch-ir opt llama.json -p fuse-gqa-attention --plugin examples.passes.gqa_attention -o fused.json
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from torch_ir import Node, TensorType, Value, register_op, register_pass
from torch_ir.ops.registry import get_entry
from torch_ir.passes.rewrite import Match, Op, PatternRewritePass, PatternRewriter, RewritePattern, RewriteRule, Var

OP = "torch_ir_examples::gqa_attention"
SCHEMA = (
    "(Tensor query, Tensor key, Tensor value, Tensor? attn_mask=None, float dropout_p=0.0, bool is_causal=False, "
    "float? scale=None) -> Tensor"
)


def gqa_attention_kernel(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
) -> torch.Tensor:
    """SDPA where each of the ``key``/``value`` heads serves ``query.shape[1] // key.shape[1]`` query heads."""
    n_rep = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(n_rep, dim=1), value.repeat_interleave(n_rep, dim=1)
    return torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale
    )


def gqa_attention_shape(input_types: list[Any], attrs: dict[str, Any]) -> TensorType:
    """The result type: the query's shape and dtype with the value's head size."""
    query, value = input_types[0], input_types[2]
    return TensorType((*query.shape[:-1], value.shape[-1]), query.dtype)


if not hasattr(torch.ops.torch_ir_examples, "gqa_attention"):
    _lib = torch.library.Library("torch_ir_examples", "FRAGMENT")
    _lib.define(f"gqa_attention{SCHEMA}")
    _lib.impl("gqa_attention", gqa_attention_kernel, "CompositeExplicitAutograd")
    torch.library.register_fake(OP)(lambda q, k, v, *rest, **kw: q.new_empty((*q.shape[:-1], v.shape[-1])))
if get_entry(OP) is None:
    register_op(OP, shape_fn=gqa_attention_shape)


def _repeat_kv(name: str) -> Op:
    """unsqueeze(dim=2) -> expand -> reshape/view of the captured ``name`` (the un-repeated heads)."""
    return Op(
        ("aten.reshape.default", "aten.view.default"),
        Op("aten.expand.default", Op("aten.unsqueeze.default", Var(name), dim=2)),
        capture=f"{name}_repeat",
    )


def _is_repeat_kv(heads: Value, repeated: Value) -> bool:
    """Whether ``repeated`` is ``heads`` with each head repeated (shape [b, kv * n, s, d] from [b, kv, s, d])."""
    a, b = heads.shape, repeated.shape
    if a is None or b is None or len(a) != 4 or len(b) != 4 or a[0] != b[0] or a[2:] != b[2:]:
        return False
    return isinstance(a[1], int) and isinstance(b[1], int) and b[1] % a[1] == 0


def fuse(found: Match, rewriter: PatternRewriter) -> Node | None:
    """Build the fused op from a matched repeat_kv + SDPA, or decline (None)."""
    sdpa: Node = found["sdpa"]
    k, v = found["k"], found["v"]
    if not (_is_repeat_kv(k, found["k_repeat"].output) and _is_repeat_kv(v, found["v_repeat"].output)):
        return None
    if sdpa.operand("enable_gqa") or sdpa.operand("dropout_p") != 0.0:
        return None
    return rewriter.create_op(
        f"{OP.replace('::', '.')}.default",
        found["q"],
        k,
        v,
        attn_mask=sdpa.operand("attn_mask"),
        is_causal=sdpa.operand("is_causal"),
        scale=sdpa.operand("scale"),
        name=f"{sdpa.name}_gqa",
    )


GQA_ATTENTION = RewriteRule(
    Op(
        "aten.scaled_dot_product_attention.default",
        Var("q"),
        _repeat_kv("k"),
        _repeat_kv("v"),
        capture="sdpa",
    ),
    fuse,
    name="gqa-attention",
)


@register_pass
@dataclass(frozen=True)
class FuseGQAAttention(PatternRewritePass):
    """Fuse Llama-style repeat_kv + scaled_dot_product_attention into torch_ir_examples.gqa_attention."""

    name: ClassVar[str] = "fuse-gqa-attention"

    def patterns(self) -> list[RewritePattern]:
        return [GQA_ATTENTION]
