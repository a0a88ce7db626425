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


class PaddedBatch(nn.Module):
    """Pads the last axis of an input whose batch is dynamic: torch's kernel for ``pad`` fixes the batch to
    the example size when it computes the result type, which the recorded symbolic type must survive."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.nn.functional.pad(x, (1, 1)))


register(
    ModelCase(
        name="pad_dynamic_batch",
        category="dynamic",
        build=PaddedBatch,
        inputs=lambda device: ((torch.randn(16, 3, 4, device=device),), {}),
        dynamic_shapes=({0: Dim("batch", min=2, max=64)},),
        description="F.pad on an input with a dynamic batch",
        tags=("dynamic",),
    )
)
