"""fuse-linear-act: ``aten.linear`` + relu/gelu/silu into one ``torch_ir_examples.linear_act`` op.

A declarative pattern per activation: the linear must have no other reader, gelu must be exact (not tanh).
The op is defined with ``torch.library`` (a kernel and a fake kernel), so annotate-shapes, the interpreter
and ``torch-ir verify`` handle it. On Llama it fuses each MLP's ``gate_proj`` with its SiLU::

    torch-ir opt llama.json -p fuse-linear-act --plugin examples.passes.linear_activation -o fused.json
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from torch_ir import register_pass
from torch_ir.passes.rewrite import Op, PatternRewritePass, RewritePattern, RewriteRule, Var

ACTIVATIONS = {"relu": "aten.relu.default", "gelu": "aten.gelu.default", "silu": "aten.silu.default"}

if not hasattr(torch.ops.torch_ir_examples, "linear_act"):

    @torch.library.custom_op("torch_ir_examples::linear_act", mutates_args=())
    def linear_act(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, activation: str) -> torch.Tensor:
        """``activation(linear(x, weight, bias))`` as one op."""
        return getattr(torch.nn.functional, activation)(torch.nn.functional.linear(x, weight, bias))

    @linear_act.register_fake
    def _(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, activation: str) -> torch.Tensor:
        return x.new_empty((*x.shape[:-1], weight.shape[0]))


def rule(activation: str) -> RewriteRule:
    """linear(x, w, b) -> ``activation`` as one linear_act op (an Op template over the captures)."""
    extra: dict[str, Any] = {"approximate": "none"} if activation == "gelu" else {}
    return RewriteRule(
        Op(ACTIVATIONS[activation], Op("aten.linear.default", Var("x"), Var("w"), Var("b")), **extra),
        Op("torch_ir_examples.linear_act.default", Var("x"), Var("w"), Var("b"), activation),
        name=f"linear-{activation}",
    )


@register_pass
@dataclass(frozen=True)
class FuseLinearActivation(PatternRewritePass):
    """Fuse aten.linear followed by relu/gelu/silu (its only reader) into torch_ir_examples.linear_act."""

    name: ClassVar[str] = "fuse-linear-act"
    activations: tuple[str, ...] = ("relu", "gelu", "silu")
    """The activations to fuse."""

    def patterns(self) -> list[RewritePattern]:
        return [rule(a) for a in self.activations if a in ACTIVATIONS]
