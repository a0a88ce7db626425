"""Transforms built on batching: ``torch.vmap`` over a function and a module, and ``associative_scan``
(built on vmap), which torch.export leaves as functorch calls until functionalization batches them."""

from __future__ import annotations

import torch
from torch import nn
from torch._higher_order_ops.associative_scan import associative_scan

from tests.models import ModelCase, register


class VmappedRows(nn.Module):
    """A per-row projection written with ``torch.vmap`` (a module), and a per-row score (a function)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        projected = torch.vmap(self.proj)(x)
        scores = torch.vmap(lambda row, other: (row.sin() * other).sum())(projected, y)
        return projected, scores


class DecayingScan(nn.Module):
    """A first-order linear recurrence ``h_t = a_t * h_{t-1} + b_t`` as an associative scan of pairs."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        def combine(left: tuple[torch.Tensor, torch.Tensor], right: tuple[torch.Tensor, torch.Tensor]) -> tuple:
            return left[0] * right[0], right[0] * left[1] + right[1]

        return associative_scan(combine, (a, b), dim=0, combine_mode="generic")[1]


register(
    ModelCase(
        name="vmap_rows",
        category="batching",
        build=VmappedRows,
        inputs=lambda device: ((torch.randn(5, 6, device=device), torch.randn(5, 4, device=device)), {}),
        description="torch.vmap over a module and over a function",
    )
)
register(
    ModelCase(
        name="associative_scan_recurrence",
        category="batching",
        build=DecayingScan,
        inputs=lambda device: ((torch.rand(7, 3, device=device), torch.randn(7, 3, device=device)), {}),
        description="a linear recurrence as associative_scan (generic combine mode)",
    )
)
