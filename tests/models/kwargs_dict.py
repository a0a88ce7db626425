"""Keyword inputs (with a constant flag) and a nested dict output."""

from __future__ import annotations

import torch
from torch import nn

from tests.models import ModelCase, register


class KwargsDict(nn.Module):
    """Takes ``x`` and an optional ``mask`` by keyword, returns ``{"logits": ..., "aux": (..., ...)}``."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 6)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, scale: float = 2.0, return_aux: bool = True
    ) -> dict:
        h = self.fc(x) * scale
        if mask is not None:
            h = h.masked_fill(~mask, 0.0)
        out: dict = {"logits": h}
        if return_aux:
            out["aux"] = (h.mean(dim=-1), x.amax(dim=-1))
        return out


register(
    ModelCase(
        name="kwargs_dict",
        category="kwargs",
        build=KwargsDict,
        inputs=lambda device: (
            (torch.randn(2, 6, device=device),),
            {"mask": torch.rand(2, 6).gt(0.3).to(device), "return_aux": True},
        ),
        description="keyword inputs and a nested dict output",
    )
)
