"""A convolutional network: conv, batch norm, pooling, a residual block, a classifier."""

from __future__ import annotations

import torch
from torch import nn

from tests.models import ModelCase, register


class SmallCNN(nn.Module):
    """conv-bn-relu, max pool, a residual conv block, adaptive average pool, linear."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2))
        self.block = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        h = h + self.block(h)
        return self.fc(torch.flatten(self.pool(h), 1))


register(
    ModelCase(
        name="small_cnn",
        category="cnn",
        build=SmallCNN,
        inputs=lambda device: ((torch.randn(2, 3, 16, 16, device=device),), {}),
        description="conv / batchnorm / pool CNN with a residual block",
    )
)
