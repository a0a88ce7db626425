"""Patterns that tracing on meta used to get wrong: data made in forward, device branches, in-place ops,
state written in forward, views of permuted values, data-dependent checks, tied weights traced fake."""

from __future__ import annotations

import torch
from torch import nn

from tests.models import ModelCase, register


class MadeInForward(nn.Module):
    """An index list and a scalar tensor built from Python data inside forward."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        picked = self.fc(x)[..., [-1, 0, 2]]
        offset = torch.tensor(0.25, device=x.device)
        return picked + offset


class DeviceBranch(nn.Module):
    """Branches on ``x.device.type`` as transformers' MoE experts do: the CPU branch must be what runs."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        if x.device.type == "cpu":
            return h * 2.0
        return h - 100.0


class CloneInPlace(nn.Module):
    """A clone updated in place and an indexed assignment: the caller's input must stay as it was."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        y.add_(1.0)
        y[:, 0] = 0.0
        return y * x


class BufferCounter(nn.Module):
    """Counts its calls in a buffer and keeps a running sum: two state updates per call."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))
        self.register_buffer("total", torch.zeros(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.count.add_(1)
        self.total.add_(x.sum(0))
        return self.total / self.count


class LazyRescale(nn.Module):
    """Rescales its weight in place on the first call (a parameter mutation), as some models do lazily."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            self.fc.weight.mul_(0.5)
        return self.fc(x)


class InputWriter(nn.Module):
    """Writes to its own input, as an in-place activation on the caller's tensor does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x.mul_(2.0)
        return x + 1.0


class PermuteView(nn.Module):
    """``permute().contiguous().view()``: a view of a value whose eager strides are not contiguous."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        h = self.proj(x).view(b, s, 2, d // 2).permute(0, 2, 1, 3).contiguous()
        return h.view(b, 2 * s, d // 2).transpose(1, 2).contiguous().view(b, -1)


class DataDependentCheck(nn.Module):
    """A size that comes from data, checked and used to pick a value: torch.export emits sym ops for it."""

    def forward(self, x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        k = n.item()
        torch._check(k >= 1)
        torch._check(k <= x.shape[0])
        scale = torch.sym_ite(torch.sym_not(k <= 2), 2.0, 0.5)
        shift = torch.sym_float(torch.sym_min(k, 4)) / torch.sym_int(torch.sym_float(torch.sym_max(k, 3)))
        return x[:k].sum(0) * scale + shift


class TiedHead(nn.Module):
    """An embedding and an output head that share one parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(16, 8)
        self.head = nn.Linear(8, 16, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.embed(ids)))


for case in (
    ModelCase(
        "made_in_forward",
        "faithful",
        MadeInForward,
        lambda device: ((torch.randn(2, 6, device=device),), {}),
        "an index list and a scalar tensor made from Python data in forward",
        tags=("constants",),
    ),
    ModelCase(
        "device_branch",
        "faithful",
        DeviceBranch,
        lambda device: ((torch.randn(2, 4, device=device),), {}),
        "a branch on x.device.type",
    ),
    ModelCase(
        "clone_inplace",
        "faithful",
        CloneInPlace,
        lambda device: ((torch.randn(3, 4, device=device),), {}),
        "clone, then add_ and an indexed assignment",
        tags=("inplace",),
    ),
    ModelCase(
        "buffer_counter",
        "faithful",
        BufferCounter,
        lambda device: ((torch.randn(2, 4, device=device),), {}),
        "a call counter and a running sum in buffers (state updates)",
        tags=("state",),
    ),
    ModelCase(
        "lazy_rescale",
        "faithful",
        LazyRescale,
        lambda device: ((torch.randn(2, 4, device=device),), {}),
        "a parameter rescaled in place in forward",
        tags=("state",),
    ),
    ModelCase(
        "input_writer",
        "faithful",
        InputWriter,
        lambda device: ((torch.randn(2, 4, device=device),), {}),
        "forward writes to its input",
        tags=("state", "writes_input"),
    ),
    ModelCase(
        "permute_view",
        "faithful",
        PermuteView,
        lambda device: ((torch.randn(2, 6, 8, device=device),), {}),
        "permute().contiguous().view(), as in dozens of attention implementations",
    ),
    ModelCase(
        "data_dependent_check",
        "faithful",
        DataDependentCheck,
        lambda device: ((torch.randn(5, 3, device=device), torch.tensor(4, device=device)), {}),
        "a size read from data, checked with torch._check, and torch's sym_* functions on it",
        tags=("sym",),
    ),
    ModelCase(
        "tied_head",
        "faithful",
        TiedHead,
        lambda device: ((torch.randint(0, 16, (2, 5), device=device),), {}),
        "an embedding tied to the output head",
        tags=("tied",),
    ),
):
    register(case)
