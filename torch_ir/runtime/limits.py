"""Limits that add up over one call: the bytes live at once, and loop iterations, across nesting.

A call of an IR reaches other interpreters: the regions of its control-flow ops and the functions it
calls, each with a plan of its own. A limit per interpreter (or per loop) would let a crafted IR multiply
it: a ``while_loop`` inside a ``while_loop``, a ``scan`` per iteration of a ``map``. So the outermost call
opens one ``RunLimits`` and every interpreter it reaches, at any depth, counts against it:

- memory: each storage a run holds is counted once, from the result that allocates it until the last
  slot that holds it is freed (a view of it adds nothing; the caller's weights and inputs count nothing),
  on top of what the interpreter itself holds (derived weights, the declared state, private copies);
- loops: every iteration of a ``while_loop``, ``scan`` or ``map`` anywhere in the call; a ``scan`` or
  ``map`` whose length would pass the limit is refused before its first iteration.

``TORCH_IR_MEMORY_BUDGET`` (bytes) and ``TORCH_IR_MAX_LOOP_ITERATIONS`` set the defaults.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from torch_ir.errors import InterpreterError, RunLimitError

MAX_LOOP_ITERATIONS = 1_000_000
"""How many loop iterations one call may run in all, at every depth, by default."""


def max_loop_iterations() -> int:
    """The iteration limit in force: ``TORCH_IR_MAX_LOOP_ITERATIONS`` when set to a positive integer."""
    text = os.environ.get("TORCH_IR_MAX_LOOP_ITERATIONS", "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else MAX_LOOP_ITERATIONS


def format_bytes(n: int) -> str:
    """``n`` bytes in binary units (``1.5 GiB``)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if value < 1024 or unit == "EiB":
            return f"{value:.3g} {unit}" if value < 1e21 else f"{n:.3e} B"
        value /= 1024
    return f"{n} B"


class RunLimits:
    """What one call may use, shared by every interpreter it reaches: ``budget`` bytes live at once and
    ``max_iterations`` loop iterations in all."""

    def __init__(self, budget: int, max_iterations: int):
        self.budget = budget
        self.max_iterations = max_iterations
        self.live = 0
        self.peak = 0
        self.iterations = 0

    def allocate(self, nbytes: int, where: str) -> None:
        """Count ``nbytes`` more as live; ``InterpreterError`` naming ``where`` when that passes the budget."""
        self.live += nbytes
        self.peak = max(self.peak, self.live)
        if self.live > self.budget:
            raise self.over_budget(where, 0)

    def over_budget(self, where: str, more: int) -> InterpreterError:
        """The error for ``where`` taking ``more`` bytes on top of what is live."""
        total = self.live + more
        what = f"{format_bytes(more)} more on top of {format_bytes(self.live)}" if more else format_bytes(total)
        return RunLimitError(
            f"{where} is refused: the run would hold {what} live at once, over the memory budget of "
            f"{format_bytes(self.budget)}. Raise it with memory_budget=BYTES, --memory-budget or "
            "TORCH_IR_MEMORY_BUDGET if the IR is meant to be this large"
        )

    def check(self, nbytes: int, where: str) -> None:
        """Refuse ``where`` before it allocates ``nbytes`` when that would pass the budget."""
        if self.live + nbytes > self.budget:
            raise self.over_budget(where, nbytes)

    def release(self, nbytes: int) -> None:
        """Count ``nbytes`` as freed."""
        self.live -= nbytes

    def iterate(self, count: int, where: str) -> None:
        """Count ``count`` loop iterations; ``InterpreterError`` when the call would pass its limit."""
        if self.iterations + count > self.max_iterations:
            raise RunLimitError(
                f"{where}: {count} more iteration(s) would pass the limit of {self.max_iterations} loop "
                f"iterations per call, all loops at every depth together ({self.iterations} run so far); set "
                "TORCH_IR_MAX_LOOP_ITERATIONS higher for an IR you trust"
            )
        self.iterations += count


_ACTIVE: ContextVar[RunLimits | None] = ContextVar("torch_ir_run_limits", default=None)


def active_limits() -> RunLimits | None:
    """The limits of the call in progress (None outside one)."""
    return _ACTIVE.get()


@contextmanager
def run_limits(budget: int) -> Iterator[RunLimits]:
    """The limits of the call in progress, or new ones (``budget`` bytes) for an outermost call."""
    current = _ACTIVE.get()
    if current is not None:
        yield current
        return
    limits = RunLimits(budget, max_loop_iterations())
    token = _ACTIVE.set(limits)
    try:
        yield limits
    finally:
        _ACTIVE.reset(token)


@contextmanager
def using_limits(limits: RunLimits) -> Iterator[RunLimits]:
    """Make ``limits`` the limits of the call in progress for the ``with`` block (a call that runs step by
    step, such as ``Interpreter.iter_values``, activates them around each step)."""
    token = _ACTIVE.set(limits)
    try:
        yield limits
    finally:
        _ACTIVE.reset(token)


def storage_key(tensor: Any) -> tuple[int, int]:
    """Which storage a tensor's data lives in, and its size in bytes (views of one storage share the key)."""
    storage = tensor.untyped_storage()
    return storage._cdata, int(storage.nbytes())


class StorageMeter:
    """The storages one run of one interpreter holds, each counted once in the call's ``RunLimits``.

    ``external`` are storages the run was given (weights, inputs): never counted. ``hold`` a value when a
    slot takes it, ``drop`` it when the slot is freed, ``close`` at the end of the run.
    """

    def __init__(self, limits: RunLimits, external: set[int]):
        self.limits = limits
        self.external = external
        self.holders: dict[int, int] = {}
        self.sizes: dict[int, int] = {}

    def hold(self, value: Any, where: str) -> None:
        """Count the storages of ``value`` (a tensor, or a list of them) as held once more."""
        for tensor in _tensors(value):
            key, nbytes = storage_key(tensor)
            if key in self.external:
                continue
            held = self.holders.get(key, 0)
            self.holders[key] = held + 1
            if not held:
                self.sizes[key] = nbytes
                self.limits.allocate(nbytes, where)

    def drop(self, value: Any) -> None:
        """A slot holding ``value`` is freed: release each storage nothing else holds."""
        for tensor in _tensors(value):
            key = storage_key(tensor)[0]
            held = self.holders.get(key)
            if held is None:
                continue
            if held > 1:
                self.holders[key] = held - 1
            else:
                del self.holders[key]
                self.limits.release(self.sizes.pop(key))

    def close(self) -> None:
        """The run is over: release everything it still holds (its results now belong to its caller)."""
        self.limits.release(sum(self.sizes.values()))
        self.holders.clear()
        self.sizes.clear()


def _tensors(value: Any) -> list[Any]:
    if hasattr(value, "untyped_storage"):
        return [value] if getattr(value, "layout", None) is _strided() else []
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def _strided() -> Any:
    import torch

    return torch.strided


__all__ = [
    "MAX_LOOP_ITERATIONS",
    "RunLimits",
    "StorageMeter",
    "active_limits",
    "format_bytes",
    "max_loop_iterations",
    "run_limits",
    "storage_key",
    "using_limits",
]
