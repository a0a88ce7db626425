"""A dry run: the interpreter's plan executed on fake tensors, to learn each value's true size first.

Declared types can lie: a file may declare ``f32[2]`` for a broadcast that makes ``f32[100000,100000]``,
or call ``aten.arange`` with a huge ``end``. Under ``FakeTensorMode`` every ATen op computes the shapes of
its results and allocates nothing, so running the plan once that way (per distinct input signature),
freeing each value after its last use as the real run does, finds the first node where the values live at
once would pass the memory budget, before the real run allocates anything.

A node the fake run cannot execute (data-dependent sizes, ``.item()``, a kernel without a fake
implementation) takes its declared type instead, and so does every node that reads what such a node
made: these are *uncertain*. The real run sizes each uncertain node on meta tensors from its real operands
just before it runs (``predicted_bytes``: ``ones(size=[n])`` once ``n = x.item()`` is known), and ops whose
result size depends on their operands' values carry a rule of their own (``torch_ir.ops.bounds``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import torch

from torch_ir.ir.types import TensorType
from torch_ir.runtime.declared_types import bind_inputs
from torch_ir.runtime.limits import format_bytes
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


def _nbytes(tensor: torch.Tensor) -> int:
    return math.prod(int(d) for d in tensor.shape) * tensor.element_size()


def dry_run(interp: Any, inputs: Sequence[Any], budget: int) -> set[int]:
    """Run ``interp``'s plan on fake copies of its bound weights and ``inputs``; raise ``InterpreterError``
    naming the first node whose result, or the values live at once with it, would exceed ``budget`` bytes
    (what the interpreter holds itself counted in). Returns the indices of the uncertain steps."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    graph = interp.graph
    bindings = bind_inputs([v.type for v in graph.inputs], inputs)
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    quiet = _Quiet("torch._subclasses.fake_tensor")  # an op failing on fakes is expected, not news
    uncertain: set[int] = set()
    unsure_slots: set[int] = set()
    live: dict[int, int] = {}
    held = int(getattr(interp, "_held_bytes", 0))
    with quiet, mode, torch.no_grad():
        env: list[Any] = [_fake_like(v) for v in interp._base_env]
        for s, value in zip(interp._input_slots, inputs):
            env[s] = _fake_like(value)
        for step in interp._steps:
            node = step.node
            reads = {s for s, _ in step.fills} | {s for _, _, inner in step.list_fills for _, s in inner}
            reads |= {s for _, s in step.kw_fills} | {s for _, _, inner in step.kw_list_fills for _, s in inner}
            try:
                values = interp._execute(step, env)
                guessed = bool(reads & unsure_slots)
            except Exception:  # the fake run cannot tell: the declared types stand in
                values = []
                for value, s in zip(node.outputs, step.outs):
                    env[s] = _declared(value.type, bindings)
                guessed = True
            if guessed:
                uncertain.add(step.index)
                unsure_slots.update(step.outs)
            for value, result, s in zip(node.outputs, values, step.outs):
                size = 0
                for tensor in _tensors(result):
                    nbytes = _nbytes(tensor)
                    if nbytes > budget:
                        dtype = str(tensor.dtype).removeprefix("torch.")
                        what = f"result %{value.name} would be {dtype}{list(tensor.shape)}"
                        raise budget_error(node, what, nbytes, budget)
                    size += nbytes
                if not _aliases_operand(result, env, step):
                    live[s] = size
            total = held + sum(live.values())
            if total > budget:
                raise budget_error(
                    node,
                    f"with its results, the values live at once would take {format_bytes(total)} "
                    f"({format_bytes(held)} of them held by the interpreter: derived weights, state, copies)",
                    total,
                    budget,
                )
            for s in step.frees:
                live.pop(s, None)
                env[s] = None
    return uncertain


def _aliases_operand(result: Any, env: list[Any], step: Any) -> bool:
    """Whether ``result`` shares the storage of one of the step's operands (a view adds no memory)."""
    tensors = _tensors(result)
    if not tensors:
        return True
    keys = set()
    for s, _ in step.fills:
        for tensor in _tensors(env[s]):
            keys.add(tensor.untyped_storage()._cdata)
    return all(t.untyped_storage()._cdata in keys for t in tensors)


def predicted_bytes(fn: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> int | None:
    """The bytes ``fn(*args, **kwargs)`` would allocate, computed on meta tensors of the real operands' shapes
    (scalars as they are); None when ``fn`` is not a torch op or cannot run on meta tensors."""
    if not isinstance(fn, torch._ops.OpOverload):
        return None

    def meta(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return torch.empty(tuple(value.shape), dtype=value.dtype, device="meta")
        if isinstance(value, (list, tuple)):
            return type(value)(meta(v) for v in value)
        if isinstance(value, torch.device):
            return torch.device("meta")
        return value

    meta_args = [meta(a) for a in args]
    meta_kwargs = {k: meta(v) for k, v in kwargs.items()}
    if "device" in meta_kwargs or any(a.name == "device" for a in fn._schema.arguments):
        meta_kwargs["device"] = torch.device("meta")
    try:
        with torch.no_grad():
            result = fn(*meta_args, **meta_kwargs)
    except Exception:  # data-dependent, or no meta kernel: the size cannot be told before running
        return None
    return sum(_nbytes(t) for t in _tensors(result))


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


__all__ = ["dry_run", "predicted_bytes"]
