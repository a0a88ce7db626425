"""Self-attention, through scaled_dot_product_attention and written out by hand."""

from __future__ import annotations

import math

import torch
from torch import nn

from tests.models import ModelCase, register


class SelfAttention(nn.Module):
    """Multi-head self-attention; ``manual`` writes softmax(QK^T/sqrt(d))V out instead of SDPA."""

    def __init__(self, dim: int = 32, heads: int = 4, manual: bool = False) -> None:
        super().__init__()
        self.heads = heads
        self.manual = manual
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=-1)
        q, k, v = (y.view(b, t, self.heads, d // self.heads).transpose(1, 2) for y in (q, k, v))
        if self.manual:
            scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)
            mask = torch.triu(torch.ones(t, t, dtype=torch.bool, device=x.device), diagonal=1)
            scores = scores.masked_fill(mask, float("-inf"))
            y = torch.softmax(scores, dim=-1) @ v
        else:
            y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return x + self.out(y.transpose(1, 2).reshape(b, t, d))


register(
    ModelCase(
        name="sdpa_attention",
        category="attention",
        build=SelfAttention,
        inputs=lambda device: ((torch.randn(2, 6, 32, device=device),), {}),
        description="causal multi-head attention via scaled_dot_product_attention",
    )
)
register(
    ModelCase(
        name="manual_attention",
        category="attention",
        build=lambda: SelfAttention(manual=True),
        inputs=lambda device: ((torch.randn(2, 6, 32, device=device),), {}),
        description="causal attention written with matmul, masked_fill and softmax",
    )
)
