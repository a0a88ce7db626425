"""``torch.no_grad()`` and ``torch.autocast`` blocks inside forward (region ops that extraction inlines)."""

from __future__ import annotations

import torch
from torch import nn

from tests.models import ModelCase, register


class ContextBlocks(nn.Module):
    """A no_grad block, then a bfloat16 autocast block whose result is cast back to float32."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            h = torch.relu(self.a(x)) * 2
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = self.b(h)
        return y.float() + h


register(
    ModelCase(
        name="context_blocks",
        category="regions",
        build=ContextBlocks,
        inputs=lambda device: ((torch.randn(3, 8, device=device),), {}),
        description="no_grad and bfloat16 autocast blocks in forward",
        rtol=2e-2,
        atol=2e-2,
    )
)
