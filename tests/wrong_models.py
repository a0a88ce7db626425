"""Small models that the wrong-IR tests need (``tests.wrong_models:NAME`` works as a ``--model`` spec)."""

from __future__ import annotations

import torch
from torch import nn

from tests.models.control_flow import CondRouter


class TwinHeads(nn.Module):
    """Two outputs of the same shape from two heads."""

    def __init__(self) -> None:
        super().__init__()
        self.left = nn.Linear(8, 4)
        self.right = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.left(x), self.right(x)


class AlwaysTrue(nn.Module):
    """A cond whose predicate holds for every input: its false branch never runs."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def taken(x: torch.Tensor) -> torch.Tensor:
            return self.fc(x)

        def never(x: torch.Tensor) -> torch.Tensor:
            return x * 2.0

        return torch.cond(x.abs().sum() >= 0, taken, never, (x,))


class ReluFirst(nn.Module):
    """A relu on the input itself: an IR without it is right for positive inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(x))


class MaskedMean(nn.Module):
    """Averages the rows a boolean mask keeps."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = mask.unsqueeze(-1).to(x.dtype)
        return (self.fc(x) * keep).sum(1) / keep.sum(1)


def cond_router() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """``CondRouter`` with an input that takes its true branch."""
    return CondRouter(), (torch.rand(2, 8) + 0.1,)


def twin_heads() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """``TwinHeads`` with an example input."""
    return TwinHeads(), (torch.randn(2, 8),)


def always_true() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """``AlwaysTrue`` with an example input."""
    return AlwaysTrue(), (torch.randn(2, 8),)


def masked_mean() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """``MaskedMean`` with an example input and a mask that keeps every row."""
    return MaskedMean(), (torch.randn(2, 5, 8), torch.ones(2, 5, dtype=torch.bool))
