"""Numbers read from data: a model whose trace pins one (a mask of ``offset + n`` positions added to scores
over a fixed window of 8, so it runs only when ``offset + n == 8``), one that leaves it free, and tokens
split among experts by counts read from data (sizes the trace names, and a kernel can only name afresh)."""

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


class SplitByCounts(nn.Module):
    """Rows routed to three experts as a mixture of experts does: the count of rows per expert is read from
    data (``item``), the rows are split by those counts, and each part goes through its expert."""

    def __init__(self) -> None:
        super().__init__()
        self.experts = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))

    def forward(self, x: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        sizes = [c.item() for c in counts]
        for size in sizes:
            torch._check(size >= 0)
            torch._check(size <= x.shape[0])
        rows = torch.cat([x[:size] for size in sizes])  # each expert's rows, gathered: u0+u1+u2 of them
        parts = rows.split(sizes)
        return torch.cat([expert(part) for expert, part in zip(self.experts, parts)])


register(
    ModelCase(
        name="split_by_counts",
        category="pinned",
        build=SplitByCounts,
        inputs=lambda device: ((torch.randn(6, 4, device=device), torch.tensor([1, 3, 2], device=device)), {}),
        description="rows split among three experts by counts read from data (item), as in a mixture of experts",
    )
)
