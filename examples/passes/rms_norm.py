"""fuse-rms-norm: RMSNorm, written as the eager code that computes it, into one ``torch_ir_examples.rms_norm`` op.

The rule is traced from two functions (``rule_from_functions``): the pattern is what ``rms_norm`` computes
(Llama's RMSNorm, once ``canonicalize`` dropped its same-dtype casts), the rewrite what the fused op computes.
It matches whatever the epsilon (a scalar parameter is a capture) and in either operand order of each
``mul`` (commutative in the op registry). ``define_op`` defines the fused op with torch and registers it
with torch-ir, so annotate-shapes, the interpreter and ``torch-ir verify`` run it::

    torch-ir opt llama.json -p canonicalize,fuse-rms-norm --plugin examples.passes.rms_norm -o fused.json
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

import torch

from torch_ir import define_op, register_pass
from torch_ir.passes.rewrite import PatternRewritePass, RewriteRule
from torch_ir.passes.traced_patterns import rule_from_functions


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm as the eager code computes it."""
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


fused_rms_norm = define_op("torch_ir_examples::rms_norm", rms_norm)


@functools.cache
def rule() -> RewriteRule:
    """The rule, traced once (on first use, not on import)."""
    return rule_from_functions(rms_norm, fused_rms_norm, (torch.randn(2, 8), torch.randn(8), 1e-6), name="rms-norm")


@register_pass
@dataclass(frozen=True)
class FuseRMSNorm(PatternRewritePass):
    """Fuse RMSNorm (x * rsqrt(mean(x^2) + eps) * weight) into torch_ir_examples.rms_norm."""

    name: ClassVar[str] = "fuse-rms-norm"

    def patterns(self) -> list[RewriteRule]:
        return [rule()]
