"""Keeping an IR's run away from the caller's tensors and from what eager PyTorch runs with.

An op whose schema has no alias annotation can still return a view of its operand when it runs
(``aten._unsafe_view``, ``type_as``, ``aten.lift``, detach chains), so an in-place op on its result writes
into a weight or an input that nothing declared written. Verification therefore gives the IR copies:
``PrivateSource`` hands out a private copy of each weight (one per name, shared by the entries of a
program), inputs are cloned, and afterwards ``written_weights`` and ``written_inputs`` say which copies no
longer equal the originals. ``find_writer`` replays the IR node by node on fresh copies to name the op
that wrote. Eager never sees the IR's copies, so nothing the IR does reaches its numbers.

An IR that runs in a worker process (``torch_ir.runtime.worker``: an IR read from a file) gets its copies
there: the weights are mapped into the worker read-only and the inputs are sent over its socket, so the
caller's tensors are out of its reach. ``private_source`` then gives a ``WorkerCopies``, which copies
nothing here; the worker reports what it wrote (a weight it holds that differs from what it was given, an
input it changed), and the caller's view of those values follows (``RemoteInterpreter.run_flat``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from torch_ir.ir.calls import callee_name, is_call
from torch_ir.ir.graph import Node
from torch_ir.runtime.interpreter import Interpreter
from torch_ir.runtime.weights import WeightSource


class PrivateSource(WeightSource):
    """The tensors of ``source``, each read once and copied onto ``device``: what the IR binds is its own.

    ``written()`` names the keys whose copy no longer equals the original; ``restore()`` copies the
    originals back in place (the bound tensors stay the same objects).
    """

    def __init__(self, source: WeightSource, device: str | torch.device = "cpu"):
        self.source = source
        self.device = torch.device(device)
        self.description = source.description
        self.copies: dict[str, torch.Tensor] = {}

    def keys(self) -> list[str]:
        return self.source.keys()

    def __contains__(self, key: object) -> bool:
        return key in self.source

    def info(self, key: str) -> tuple[tuple[int, ...], str]:
        return self.source.info(key)

    def load(self, key: str) -> torch.Tensor:
        copy = self.copies.get(key)
        if copy is None:
            original = self.source.load(key)
            if original.is_meta:
                return original  # resolve_weights refuses it, naming the key
            copy = self.copies[key] = original.detach().to(self.device, copy=True)
        return copy

    def over(self, source: WeightSource) -> PrivateSource:
        """The same kind of source over other originals (the redrawn constants of a later trial)."""
        return type(self)(source, self.device)

    def written(self) -> list[str]:
        """The keys whose private copy differs from the original now."""
        return [key for key, copy in self.copies.items() if not unchanged(copy, self.source.load(key))]

    def restore(self, keys: Sequence[str] | None = None) -> None:
        """Copy the originals of ``keys`` (default: every copy) back into the private copies, in place."""
        with torch.no_grad():
            for key in self.copies if keys is None else keys:
                self.copies[key].copy_(self.source.load(key))


class WorkerCopies(PrivateSource):
    """The weights of an IR that runs in a worker process: the originals, unchanged, since the worker binds
    its own read-only copies of them (what it writes stays there, and comes back as the interpreter's
    ``weights``). ``written`` is empty and ``restore`` has nothing to do: binding again restores the worker's."""

    def load(self, key: str) -> torch.Tensor:
        original = self.copies.get(key)
        if original is None:
            original = self.copies[key] = self.source.load(key)
        return original

    def written(self) -> list[str]:
        """Nothing here is written: the worker never holds the caller's memory."""
        return []

    def restore(self, keys: Sequence[str] | None = None) -> None:
        """Nothing to copy back here (the caller binds again to reset the worker's copies)."""


def private_source(interp: Any, source: WeightSource, device: str | torch.device = "cpu") -> PrivateSource:
    """What ``interp`` should bind for a run that cannot reach ``source``'s tensors: private copies for an
    interpreter in this process, the originals for one in a worker (which gets copies of its own)."""
    return PrivateSource(source, device) if isinstance(interp, Interpreter) else WorkerCopies(source, device)


def unchanged(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether ``a`` still holds ``b``'s values (same shape and dtype; NaN where ``b`` has NaN)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    b = b.to(a.device)
    if torch.equal(a, b):
        return True
    if a.is_floating_point() or a.is_complex():  # NaN equals NaN here: the tensor was not written
        return bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all())
    return False


def written_inputs(copies: Sequence[Any], originals: Sequence[Any], skip: set[int]) -> list[int]:
    """The positions whose tensor in ``copies`` (what the IR ran on) differs from ``originals``."""
    return [
        i
        for i, (copy, original) in enumerate(zip(copies, originals))
        if i not in skip and isinstance(copy, torch.Tensor) and not unchanged(copy, original)
    ]


def find_writers(
    interp: Interpreter,
    inputs: Sequence[Any],
    watched: Sequence[tuple[torch.Tensor, torch.Tensor]],
    positions: Sequence[tuple[int, torch.Tensor]] = (),
) -> list[Node | None]:
    """For each ``(tensor the IR holds, original)`` pair, then each ``(input position, original)`` pair,
    the first node after which the tensor (for an input: the one the run holds, ``Interpreter.run_inputs``,
    a private copy when the IR may write it) differs from the original, running the IR node by node on
    ``inputs`` (each tensor must equal its original before); None where no node changed it."""
    found: list[Node | None] = [None] * (len(watched) + len(positions))
    if not found:
        return found
    for node, _ in interp.iter_values(inputs):
        held = [*watched, *((interp.run_inputs[i], original) for i, original in positions)]
        for index, (tensor, original) in enumerate(held):
            if found[index] is None and not unchanged(tensor, original):
                found[index] = node
        if all(n is not None for n in found):
            break
    return found


def describe_writer(node: Node | None) -> str:
    """``node zero_1 (aten.zero_.default) in module fc`` or a sentence saying it was not found."""
    if node is None:
        return "no single node could be named (the write happened outside the node-by-node replay)"
    where = f" in module {node.module_path}" if node.module_path else ""
    called = f" of {callee_name(node)}" if is_call(node) else ""
    return f"node {node.name} ({node.op_type}{called}){where}"


def clone_inputs(value: Any, clone: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Any:
    """A copy of a call's inputs (tensors cloned, everything else kept)."""
    from torch.utils import _pytree as pytree

    copy = clone or (lambda t: t.clone())
    return pytree.tree_map(lambda x: copy(x) if isinstance(x, torch.Tensor) else x, value)


__all__ = [
    "PrivateSource",
    "WorkerCopies",
    "clone_inputs",
    "describe_writer",
    "find_writers",
    "private_source",
    "unchanged",
    "written_inputs",
]
