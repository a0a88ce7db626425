"""Residual connections and concatenating skips."""

from __future__ import annotations

import torch
from torch import nn

from tests.models import ModelCase, register


class ResidualMLP(nn.Module):
    """Pre-norm residual blocks with a concatenated skip from the input."""

    def __init__(self, dim: int = 16, blocks: int = 3) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
            for _ in range(blocks)
        )
        self.out = nn.Linear(2 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for block in self.blocks:
            h = h + block(h)
        return self.out(torch.cat([h, x], dim=-1))


register(
    ModelCase(
        name="residual_mlp",
        category="skip_connections",
        build=ResidualMLP,
        inputs=lambda device: ((torch.randn(2, 5, 16, device=device),), {}),
        description="residual blocks and a concatenated skip",
    )
)
