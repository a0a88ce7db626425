"""The control-flow shapes the sweep runs: torch.cond, while_loop, scan, map, and what is built on them
(torch.vmap, associative_scan), each a small module with its example inputs.

Each case is ``name -> (build, inputs, dynamic_shapes)``; ``inputs()`` gives CPU tensors (the sweep extracts
on meta copies of them and verifies with these).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch._higher_order_ops.associative_scan import associative_scan
from torch._higher_order_ops.map import map as map_rows
from torch._higher_order_ops.scan import scan
from torch._higher_order_ops.while_loop import while_loop
from torch.export import Dim


@dataclass(frozen=True)
class ControlFlowCase:
    """One shape: the module, its example inputs, its dynamic shapes (or None)."""

    name: str
    build: Callable[[], nn.Module]
    inputs: Callable[[], tuple[Any, ...]]
    dynamic_shapes: Any = None


def _module(forward: Callable[..., Any], **layers: nn.Module) -> Callable[[], nn.Module]:
    """A factory of a module whose ``forward(self, *inputs)`` is ``forward`` and which owns ``layers``."""

    def build() -> nn.Module:
        class Case(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                for name, layer in layers.items():
                    setattr(self, name, _fresh(layer))

        Case.forward = forward  # type: ignore[method-assign]
        return Case()

    return build


def _fresh(layer: nn.Module) -> nn.Module:
    """A new layer like ``layer`` (so meta and real builds each get their own, on the current device)."""
    if isinstance(layer, nn.Linear):
        return nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
    if isinstance(layer, nn.GRUCell):
        return nn.GRUCell(layer.input_size, layer.hidden_size)
    raise TypeError(f"no factory for {type(layer).__name__}")


def _rand(*shape: int) -> torch.Tensor:
    return torch.randn(*shape)


# ------------------------------------------------------------------ cond


def _cond_data(self: Any, x: torch.Tensor) -> torch.Tensor:
    return torch.cond(x.sum() > 0, lambda x: self.fc(x).relu(), lambda x: x * 2.0, (x,))


def _cond_shape(self: Any, x: torch.Tensor) -> torch.Tensor:
    return torch.cond(x.shape[0] > 4, lambda x: x.sum(0, keepdim=True).expand_as(x), lambda x: x.cos(), (x,))


def _cond_multi(self: Any, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    def true(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x + y, x * y

    def false(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x - y, y.abs()

    return torch.cond((x * y).mean() > 0, true, false, (x, y))


def _cond_lengths(self: Any, x: torch.Tensor) -> torch.Tensor:
    return torch.cond(x.sum() > 0, lambda x: x[:2] * 2, lambda x: x[:3] + 1, (x,))


def _cond_nested(self: Any, x: torch.Tensor) -> torch.Tensor:
    def outer_true(x: torch.Tensor) -> torch.Tensor:
        return torch.cond(x.max() > 1.0, lambda x: x.sin(), lambda x: x.cos(), (x,))

    return torch.cond(x.mean() > 0, outer_true, lambda x: self.fc(x), (x,))


def _cond_int_operand(self: Any, x: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    return torch.cond(x.sum() > 0, lambda x, n: x * n, lambda x, n: x - n, (x, n))


def _cond_constant_branch(self: Any, x: torch.Tensor) -> torch.Tensor:
    return torch.cond(x.sum() > 0, lambda x: torch.zeros_like(x), lambda x: x.clone(), (x,))


# ------------------------------------------------------------------ while_loop


def _while_tensor_counter(self: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    def cond(i: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return i < 5

    def body(i: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return i + 1, self.fc(v).tanh()

    return while_loop(cond, body, (torch.zeros((), dtype=torch.int64), x))


def _while_int_carry(self: Any, x: torch.Tensor) -> tuple[Any, torch.Tensor]:
    def cond(i: Any, v: torch.Tensor) -> Any:
        return i < 3

    def body(i: Any, v: torch.Tensor) -> tuple[Any, torch.Tensor]:
        return i + 1, v * 2.0 + i

    return while_loop(cond, body, (0, x))


def _while_data_trips(self: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    def cond(i: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return v.abs().sum() < 100.0

    def body(i: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return i + 1, v * 1.5 + 0.1

    return while_loop(cond, body, (torch.zeros((), dtype=torch.int64), x))


def _while_in_cond(self: Any, x: torch.Tensor) -> torch.Tensor:
    def looping(x: torch.Tensor) -> torch.Tensor:
        def cond(i: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            return i < 3

        def body(i: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return i + 1, v + v.mean()

        return while_loop(cond, body, (torch.zeros((), dtype=torch.int64), x))[1]

    return torch.cond(x.sum() > 0, looping, lambda x: -x, (x,))


def _cond_in_while(self: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    def cond(i: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return i < 4

    def body(i: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = torch.cond(v.sum() > 0, lambda v: v - 1.0, lambda v: v + 2.0, (v,))
        return i + 1, v

    return while_loop(cond, body, (torch.zeros((), dtype=torch.int64), x))


# ------------------------------------------------------------------ scan


def _scan_rnn(self: Any, xs: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    def step(h: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.cell(x, h)
        return h, h.clone()

    return scan(step, h, xs)


def _scan_two_carries(self: Any, xs: torch.Tensor, ys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    def step(carry: tuple[torch.Tensor, torch.Tensor], inputs: tuple[torch.Tensor, torch.Tensor]) -> Any:
        total, count = carry
        x, y = inputs
        total = total + x * y
        return (total, count + 1), total.sum()

    (total, count), sums = scan(step, (torch.zeros(xs.shape[1]), torch.zeros((), dtype=torch.int64)), (xs, ys))
    return total, count, sums


def _scan_reverse(self: Any, xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    def step(c: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = c * 0.9 + x
        return c, c.clone()

    return scan(step, torch.zeros(xs.shape[1]), xs, reverse=True)


def _scan_dim1(self: Any, xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    def step(c: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return c + x, c * x

    return scan(step, torch.zeros(xs.shape[0]), xs, dim=1)


def _scan_dynamic(self: Any, xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    def step(c: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.fc(x) + c
        return c, c.clone()

    return scan(step, torch.zeros(xs.shape[1], 4), xs)


def _scan_nested(self: Any, xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    def inner(c: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return c + x, c.clone()

    def outer(c: torch.Tensor, row: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        last, _ = scan(inner, torch.zeros(()), row)
        return c + last, last.clone()

    return scan(outer, torch.zeros(()), xs)


# ------------------------------------------------------------------ map


def _map_rows(self: Any, xs: torch.Tensor) -> torch.Tensor:
    offset = xs.mean(0)
    return map_rows(lambda row, off: self.fc(row).sigmoid() + off, xs, offset)


def _map_two_inputs(self: Any, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    return map_rows(lambda x, y: x @ y, xs, ys)


def _map_two_outputs(self: Any, xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return map_rows(lambda x: (x.softmax(-1), x.max()), xs)


def _map_in_scan(self: Any, xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    def step(c: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = map_rows(lambda r: r * 2.0 + c.sum(), x)
        return c + y.sum(0), y

    return scan(step, torch.zeros(xs.shape[2]), xs)


# ------------------------------------------------------------------ built on them


def _vmap_function(self: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.vmap(lambda r, s: (r.sin() * s).sum())(x, y)


def _vmap_module(self: Any, x: torch.Tensor) -> torch.Tensor:
    return torch.vmap(self.fc)(x)


def _vmap_in_dims(self: Any, x: torch.Tensor) -> torch.Tensor:
    return torch.vmap(lambda r: r.cos() * 2, in_dims=1, out_dims=1)(x)


def _vmap_nested(self: Any, x: torch.Tensor) -> torch.Tensor:
    return torch.vmap(torch.vmap(lambda r: r.exp()))(x)


def _associative_scan_generic(self: Any, x: torch.Tensor) -> torch.Tensor:
    return associative_scan(lambda a, b: a * b + b, x, dim=1, combine_mode="generic")


def _associative_scan_pointwise(self: Any, x: torch.Tensor) -> torch.Tensor:
    return associative_scan(lambda a, b: a + b, x, dim=0)


_FC = nn.Linear(6, 6)
_FC4 = nn.Linear(6, 4)
_CELL = nn.GRUCell(6, 8)
_BATCH = Dim("batch", min=2, max=32)
_STEPS = Dim("steps", min=2, max=32)

CASES: list[ControlFlowCase] = [
    ControlFlowCase("cond: data predicate, weight in a branch", _module(_cond_data, fc=_FC), lambda: (_rand(3, 6),)),
    ControlFlowCase("cond: predicate on a dynamic size", _module(_cond_shape), lambda: (_rand(6, 3),), ({0: _BATCH},)),
    ControlFlowCase("cond: two operands, two results", _module(_cond_multi), lambda: (_rand(4), _rand(4))),
    ControlFlowCase("cond: branches of different lengths", _module(_cond_lengths), lambda: (_rand(5, 4),)),
    ControlFlowCase("cond: nested in a branch", _module(_cond_nested, fc=_FC), lambda: (_rand(2, 6),)),
    ControlFlowCase("cond: an int operand", _module(_cond_int_operand), lambda: (_rand(3, 2),)),
    ControlFlowCase("cond: a branch of constants", _module(_cond_constant_branch), lambda: (_rand(3),)),
    ControlFlowCase("cond: dynamic batch operand", _module(_cond_data, fc=_FC), lambda: (_rand(4, 6),), ({0: _BATCH},)),
    ControlFlowCase("while_loop: tensor counter", _module(_while_tensor_counter, fc=_FC), lambda: (_rand(6),)),
    ControlFlowCase("while_loop: Python-int carry", _module(_while_int_carry), lambda: (_rand(4),)),
    ControlFlowCase("while_loop: data-dependent trips", _module(_while_data_trips), lambda: (_rand(3) * 0.1,)),
    ControlFlowCase("while_loop: inside a cond branch", _module(_while_in_cond), lambda: (_rand(3).abs(),)),
    ControlFlowCase("while_loop: a cond in its body", _module(_cond_in_while), lambda: (_rand(3),)),
    ControlFlowCase("scan: GRU cell", _module(_scan_rnn, cell=_CELL), lambda: (_rand(5, 2, 6), torch.zeros(2, 8))),
    ControlFlowCase("scan: two carries, two inputs", _module(_scan_two_carries), lambda: (_rand(5, 3), _rand(5, 3))),
    ControlFlowCase("scan: reverse", _module(_scan_reverse), lambda: (_rand(5, 3),)),
    ControlFlowCase("scan: along dim 1", _module(_scan_dim1), lambda: (_rand(3, 5),)),
    ControlFlowCase("scan: dynamic length", _module(_scan_dynamic, fc=_FC4), lambda: (_rand(5, 2, 6),), ({0: _STEPS},)),
    ControlFlowCase("scan: nested scan", _module(_scan_nested), lambda: (_rand(4, 3),)),
    ControlFlowCase("map: rows with an outer value", _module(_map_rows, fc=_FC), lambda: (_rand(4, 6),)),
    ControlFlowCase("map: two inputs", _module(_map_two_inputs), lambda: (_rand(3, 2, 4), _rand(3, 4, 2))),
    ControlFlowCase("map: two results", _module(_map_two_outputs), lambda: (_rand(3, 5),)),
    ControlFlowCase("map: dynamic length", _module(_map_rows, fc=_FC), lambda: (_rand(4, 6),), ({0: _STEPS},)),
    ControlFlowCase("map: inside a scan", _module(_map_in_scan), lambda: (_rand(3, 2, 4),)),
    ControlFlowCase("vmap: a function", _module(_vmap_function), lambda: (_rand(5, 4), _rand(5, 4))),
    ControlFlowCase("vmap: a module", _module(_vmap_module, fc=_FC), lambda: (_rand(5, 6),)),
    ControlFlowCase("vmap: in_dims=1", _module(_vmap_in_dims), lambda: (_rand(3, 4),)),
    ControlFlowCase("vmap: nested", _module(_vmap_nested), lambda: (_rand(2, 3, 4),)),
    ControlFlowCase("associative_scan: generic", _module(_associative_scan_generic), lambda: (_rand(2, 7, 3),)),
    ControlFlowCase("associative_scan: pointwise", _module(_associative_scan_pointwise), lambda: (_rand(6),)),
]
"""Every control-flow shape of the sweep, in table order."""
