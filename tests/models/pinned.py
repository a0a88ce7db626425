"""A model whose trace pins a number read from data: it builds a mask of ``offset + n`` positions and adds
it to scores over a fixed window of 8, so it runs only when ``offset + n == 8``."""

from __future__ import annotations

import torch
from torch import nn

from tests.models import ModelCase, register


class FixedWindowMask(nn.Module):
    """Scores over a window of 8 positions, masked from ``offset`` on by a mask of ``offset + n`` positions."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.randn(8))
        self.fc = nn.Linear(4, 8)

    def forward(self, x: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        length = offset.item() + x.shape[0]
        mask = torch.arange(length) >= offset
        return self.fc(x).sum(0) + torch.where(mask, self.bias, 0.0)


register(
    ModelCase(
        name="fixed_window_mask",
        category="pinned",
        build=FixedWindowMask,
        inputs=lambda device: ((torch.randn(5, 4, device=device), torch.tensor(3, device=device)), {}),
        description="a mask of offset + n positions over a window of 8: runs only when offset + n == 8",
    )
)


class ScaleReadFromData(nn.Module):
    """A linear layer scaled by an integer read from data: a number the trace leaves free (every value of it
    runs), whose range is unbounded on both sides."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 8)

    def forward(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * scale.item()


register(
    ModelCase(
        name="scale_read_from_data",
        category="pinned",
        build=ScaleReadFromData,
        inputs=lambda device: ((torch.randn(5, 4, device=device), torch.tensor(3, device=device)), {}),
        description="an integer read with .item(), free to take any value: nothing is pinned",
    )
)
