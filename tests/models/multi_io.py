"""Several inputs and several outputs."""

from __future__ import annotations

import torch
from torch import nn

from tests.models import ModelCase, register


class TwoTower(nn.Module):
    """Two inputs through separate towers, merged, returned as a tuple of two tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.left = nn.Linear(8, 16)
        self.right = nn.Linear(12, 16)
        self.head = nn.Linear(16, 4)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        merged = torch.relu(self.left(a)) * torch.sigmoid(self.right(b))
        return self.head(merged), merged.sum(dim=-1)


register(
    ModelCase(
        name="two_tower",
        category="multi_io",
        build=TwoTower,
        inputs=lambda device: ((torch.randn(2, 8, device=device), torch.randn(2, 12, device=device)), {}),
        description="two inputs, two outputs",
    )
)
