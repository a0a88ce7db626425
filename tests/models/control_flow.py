"""Control flow as regions: torch.cond, while_loop, scan and map, nested, and a scan-based state-space model."""

from __future__ import annotations

import torch
from torch import nn
from torch._higher_order_ops.map import map as map_rows
from torch._higher_order_ops.scan import scan
from torch._higher_order_ops.while_loop import while_loop

from tests.models import ModelCase, register


class CondRouter(nn.Module):
    """Routes the batch through an MLP branch or a cheap scaling branch, on a data-dependent predicate."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Linear(8, 16)
        self.down = nn.Linear(16, 8)
        self.scale = nn.Parameter(torch.ones(8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def heavy(x: torch.Tensor) -> torch.Tensor:
            return self.down(torch.relu(self.up(x)))

        def light(x: torch.Tensor) -> torch.Tensor:
            return x * self.scale - 1.0

        return torch.cond(x.sum() > 0, heavy, light, (x,)) + x


def cond_inputs(positive: bool, device: str = "cpu") -> tuple[tuple[torch.Tensor, ...], dict]:
    """An input that takes the true branch (``positive``) or the false one."""
    x = torch.rand(2, 8, device=device) + 0.1
    return ((x if positive else -x),), {}


class DoubleUntil(nn.Module):
    """Doubles a vector (plus a bias) until its norm passes a threshold: the trip count depends on the data."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.full((4,), 0.01))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        def cond_fn(i: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            return v.abs().sum() < 50.0

        def body_fn(i: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return i + 1, v * 2.0 + self.bias

        steps, out = while_loop(cond_fn, body_fn, (x.new_zeros((), dtype=torch.int64), x))
        return steps, out


def while_inputs(scale: float, device: str = "cpu") -> tuple[tuple[torch.Tensor, ...], dict]:
    """A vector whose size sets the number of iterations (a small one loops longer)."""
    return (torch.full((4,), scale, device=device),), {}


class ScanRNN(nn.Module):
    """An Elman RNN written with scan; the recurrent weight and the input projection are captured."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(6, 8)
        self.rec = nn.Parameter(torch.randn(8, 8) * 0.3)

    def forward(self, xs: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        def step(h: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = torch.tanh(self.inp(x) + h @ self.rec)
            return h, h.clone()

        last, ys = scan(step, h0, xs)
        return last, ys


class MapRows(nn.Module):
    """Applies a small MLP to each row with map, adding a value computed outside the body."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 5)

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        offset = xs.mean(dim=0)

        def body(row: torch.Tensor, off: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.fc(row)) + off

        return map_rows(body, xs, offset)


class CondInScan(nn.Module):
    """A scan whose step chooses, per time step and on the data, between two updates (cond in a scan body)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)

    def forward(self, xs: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        def step(h: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            def grow(h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
                return torch.tanh(self.a(x) + h)

            def shrink(h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
                return self.b(h) * 0.5 - x

            h = torch.cond(x.sum() > 0, grow, shrink, (h, x))
            return h, h.clone()

        return scan(step, h0, xs)


class DiagonalSSM(nn.Module):
    """A diagonal linear state-space layer (S4D / Mamba-style recurrence) written with scan.

    ``h_t = exp(dt * A) * h_{t-1} + dt * B x_t``, ``y_t = C h_t + D x_t``, over a (seq, batch, dim) input.
    """

    def __init__(self, dim: int = 6, state: int = 8) -> None:
        super().__init__()
        self.log_a = nn.Parameter(-torch.rand(dim, state))
        self.in_proj = nn.Linear(dim, dim)
        self.b = nn.Linear(dim, state, bias=False)
        self.c = nn.Linear(state, dim, bias=False)
        self.d = nn.Parameter(torch.ones(dim))
        self.log_dt = nn.Parameter(torch.full((dim,), -1.0))

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        u = self.in_proj(xs)
        dt = torch.exp(self.log_dt)
        decay = torch.exp(dt.unsqueeze(-1) * -torch.exp(self.log_a))
        h0 = xs.new_zeros(xs.shape[1], xs.shape[2], self.log_a.shape[1])

        def step(h: torch.Tensor, u_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = decay * h + (dt.unsqueeze(-1) * self.b(u_t).unsqueeze(1))
            y = self.c(h).sum(dim=1) + self.d * u_t
            return h, y

        _, ys = scan(step, h0, u)
        return ys


register(
    ModelCase(
        name="cond_router",
        category="control_flow",
        build=CondRouter,
        inputs=lambda device: cond_inputs(True, device),
        description="torch.cond on a data-dependent predicate; branches read module weights",
    )
)
register(
    ModelCase(
        name="while_double",
        category="control_flow",
        build=DoubleUntil,
        inputs=lambda device: while_inputs(0.5, device),
        description="while_loop with a data-dependent trip count",
    )
)
register(
    ModelCase(
        name="scan_rnn",
        category="control_flow",
        build=ScanRNN,
        inputs=lambda device: ((torch.randn(5, 2, 6, device=device), torch.zeros(2, 8, device=device)), {}),
        description="an RNN as scan, with a weight captured from the module",
    )
)
register(
    ModelCase(
        name="map_rows",
        category="control_flow",
        build=MapRows,
        inputs=lambda device: ((torch.randn(3, 5, device=device),), {}),
        description="map over rows with an outer value and module weights",
    )
)
register(
    ModelCase(
        name="cond_in_scan",
        category="control_flow",
        build=CondInScan,
        inputs=lambda device: ((torch.randn(6, 4, device=device), torch.zeros(4, device=device)), {}),
        description="a cond nested in a scan body",
    )
)
register(
    ModelCase(
        name="diagonal_ssm",
        category="control_flow",
        build=DiagonalSSM,
        inputs=lambda device: ((torch.randn(7, 2, 6, device=device),), {}),
        description="a diagonal state-space layer (S4D/Mamba-style recurrence) written with scan",
    )
)


class CountedDoubling(nn.Module):
    """Doubles a vector three times, adding the iteration number: a ``while_loop`` whose counter is a
    Python int (``(0, x)``), carried as a number and used in tensor arithmetic."""

    def forward(self, x: torch.Tensor) -> tuple[int, torch.Tensor]:
        def cond_fn(i: int, v: torch.Tensor) -> bool:
            return i < 3

        def body_fn(i: int, v: torch.Tensor) -> tuple[int, torch.Tensor]:
            return i + 1, v * 2.0 + i

        return while_loop(cond_fn, body_fn, (0, x))


class RaggedBranches(nn.Module):
    """A ``torch.cond`` whose branches return different lengths (two rows or three): the result's length is
    a size known only at run time (an unbacked symbol)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((4,), 2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cond(x.sum() > 0, lambda x: x[:2] * self.scale, lambda x: x[:3] + 1, (x,))


register(
    ModelCase(
        name="while_int_carry",
        category="control_flow",
        build=CountedDoubling,
        inputs=lambda device: ((torch.randn(4, device=device),), {}),
        description="while_loop carrying a Python int counter next to a tensor",
    )
)
register(
    ModelCase(
        name="cond_ragged",
        category="control_flow",
        build=RaggedBranches,
        inputs=lambda device: ((torch.rand(5, 4, device=device) + 0.1,), {}),
        description="torch.cond whose branches return different lengths",
    )
)
