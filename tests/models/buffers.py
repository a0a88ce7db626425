"""Persistent and non-persistent buffers."""

from __future__ import annotations

import torch
from torch import nn

from tests.models import ModelCase, register


class Buffered(nn.Module):
    """Normalizes with persistent mean/std buffers and scales by a non-persistent rotary-like table."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.register_buffer("mean", torch.randn(dim))
        self.register_buffer("std", torch.rand(dim) + 0.5)
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim)), persistent=False)
        self.fc = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = (x - self.mean) / self.std
        angles = torch.arange(x.shape[1], device=x.device, dtype=torch.float32)[:, None] * self.inv_freq[None, :]
        rot = torch.cat([angles.sin(), angles.cos()], dim=-1)
        return self.fc(h * rot)


register(
    ModelCase(
        name="buffers",
        category="buffers",
        build=Buffered,
        inputs=lambda device: ((torch.randn(2, 5, 8, device=device),), {}),
        description="persistent buffers and a non-persistent one (not in the state_dict)",
        tags=("non_persistent",),
    )
)
