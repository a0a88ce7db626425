"""A dynamic batch dimension."""

from __future__ import annotations

import torch
from torch import nn
from torch.export import Dim

from tests.models import ModelCase, register


class BatchMLP(nn.Module):
    """An MLP whose output reshape depends on the batch size."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(12, 24)
        self.fc2 = nn.Linear(24, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc2(torch.relu(self.fc1(x)))
        return h.reshape(x.shape[0], 3, 4).softmax(dim=-1)


register(
    ModelCase(
        name="dynamic_batch",
        category="dynamic",
        build=BatchMLP,
        inputs=lambda device: ((torch.randn(4, 12, device=device),), {}),
        dynamic_shapes=({0: Dim("batch", min=1, max=64)},),
        description="batch dimension exported as a symbol",
        tags=("dynamic",),
    )
)
