"""A dry run: the interpreter's plan executed on fake tensors, to learn each value's true size first.

Declared types can lie: a file may declare ``f32[2]`` for a broadcast that makes ``f32[100000,100000]``,
or call ``aten.arange`` with a huge ``end``. Under ``FakeTensorMode`` every ATen op computes the shapes of
its results and allocates nothing, so running the plan once that way (per distinct input signature)
finds any value over the memory budget before the real run allocates it. A node the fake run cannot
execute (data-dependent shapes, ``.item()``, a kernel without a fake implementation) takes its declared
type instead, so the dry run never refuses more than the declared-type check would, except values truly
over the budget.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import torch

from torch_ir.ir.types import TensorType
from torch_ir.runtime.declared_types import bind_inputs
from torch_ir.runtime.sandbox import budget_error


def _fake_like(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return torch.empty(tuple(value.shape), dtype=value.dtype)
    return value


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def dry_run(interp: Any, inputs: Sequence[Any], budget: int) -> None:
    """Run ``interp``'s plan on fake copies of its bound weights and ``inputs``; raise ``InterpreterError``
    naming the first node whose result would exceed ``budget`` bytes."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    graph = interp.graph
    bindings = bind_inputs([v.type for v in graph.inputs], inputs)
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    quiet = _Quiet("torch._subclasses.fake_tensor")  # an op failing on fakes is expected, not news
    with quiet, mode, torch.no_grad():
        env: list[Any] = [_fake_like(v) for v in interp._base_env]
        for s, value in zip(interp._input_slots, inputs):
            env[s] = _fake_like(value)
        for step in interp._steps:
            node = step.node
            try:
                values = interp._execute(step, env)
            except Exception:  # the fake run cannot tell: the declared types stand in
                for value, s in zip(node.outputs, step.outs):
                    env[s] = _declared(value.type, bindings)
                continue
            for value, result in zip(node.outputs, values):
                for tensor in _tensors(result):
                    nbytes = math.prod(int(d) for d in tensor.shape) * tensor.element_size()
                    if nbytes > budget:
                        dtype = str(tensor.dtype).removeprefix("torch.")
                        what = f"result %{value.name} would be {dtype}{list(tensor.shape)}"
                        raise budget_error(node, what, nbytes, budget)


class _Quiet:
    """Raise a logger's level for the duration of a ``with`` block."""

    def __init__(self, name: str):
        self.logger = logging.getLogger(name)
        self.level = self.logger.level

    def __enter__(self) -> None:
        self.level = self.logger.level
        self.logger.setLevel(logging.CRITICAL)

    def __exit__(self, *exc: object) -> None:
        self.logger.setLevel(self.level)


def _declared(type_: Any, bindings: Any) -> Any:
    if not isinstance(type_, TensorType):
        return None
    dims = bindings.shape(type_)
    if any(d is None or d < 0 for d in dims):
        return None
    try:
        return torch.empty(tuple(int(d) for d in dims), dtype=getattr(torch, type_.dtype))
    except (RuntimeError, TypeError, AttributeError):
        return None


__all__ = ["dry_run"]
