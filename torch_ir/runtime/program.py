"""Running a program: one interpreter per entry over the same weights, and the declared state carried from
call to call (an LLM's KV cache filled by ``prefill`` and read and extended by ``decode``).

The state starts as declared (zeros), each call of an entry reads the current state and leaves its updates
as the new state, whichever entry is called next. The state counts against the memory budget: a program
whose declared state alone is over it is refused before anything is allocated. The runner binds private
copies of the weights (one per name, shared by the entries), so nothing a program does reaches the caller's
tensors. A program read from a file runs its entries in one worker process (``torch_ir.runtime.worker``),
dry-run first; the worker holds its own read-only copies of the weights.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from torch_ir.errors import InterpreterError
from torch_ir.ir.module import IR
from torch_ir.ir.types import ITEMSIZE
from torch_ir.runtime.isolation import PrivateSource, private_source
from torch_ir.runtime.limits import format_bytes
from torch_ir.runtime.weights import ChainSource, MappingSource, as_source
from torch_ir.runtime.worker import Executor


class ProgramRunner:
    """Runs the entries of a program (``runner("prefill", ids, positions)``) with shared weights and state.

    ``weights`` is what ``Interpreter`` binds (a state_dict, a module, a safetensors path); the entries bind
    private copies of them (``weights_copy``, a ``PrivateSource``: ``weights_copy.written()`` names any the
    program wrote into). The declared state never comes from the weights: it starts as declared and is
    then what the entries make of it. ``isolate`` chooses where the entries run (default: in a worker for a
    program read from a file).
    """

    def __init__(
        self,
        ir: IR,
        weights: Any,
        *,
        device: str | torch.device = "cpu",
        strict: bool = True,
        isolate: bool | None = None,
    ):
        self.ir = ir
        self.device = torch.device(device)
        self.executor = Executor.for_ir(ir, device=self.device, isolate=isolate)
        self.strict = strict
        self.state: dict[str, torch.Tensor] = {}
        self.reset()
        self.entries: dict[str, Any] = {
            name: self.executor.interpreter(graph, strict=strict) for name, graph in ir.entries.items()
        }
        self.weights_copy: PrivateSource = self._private(weights)
        source = ChainSource(MappingSource(self.state, "the program's initial state"), self.weights_copy)
        for interp in self.entries.values():
            interp.bind(source, strict=strict)

    def _private(self, weights: Any) -> PrivateSource:
        entry = next(iter(self.entries.values()), None)
        return private_source(entry, as_source(weights), self.device)

    def rebind(self, weights: Any = None) -> None:
        """Bind the entries again: to private copies of ``weights``, or (None) to the current copies with their
        originals copied back first. The state is reset."""
        if weights is None:
            self.weights_copy.restore()
        else:
            self.weights_copy = self._private(weights)
        self.reset()
        source = ChainSource(MappingSource(self.state, "the program's initial state"), self.weights_copy)
        for interp in self.entries.values():
            interp.bind(source, strict=self.strict)

    def written(self) -> list[str]:
        """The weights (by source key) the program wrote into since they were bound: the private copies here
        that differ from their originals, and those a worker reports it holds changed."""
        keys = self.weights_copy.written()
        for interp in self.entries.values():
            for name in getattr(interp, "written", ()):
                keys.extend(n for n in interp.graph.weight(name).names if n in self.weights_copy and n not in keys)
        return keys

    def reset(self) -> None:
        """Put the state back as declared: zeros (refused when it alone is over the memory budget)."""
        total = sum(
            math.prod(int(d) for d in spec.type.shape) * int(ITEMSIZE[spec.type.dtype])
            for spec in self.ir.state.values()
        )
        budget = self.executor.budget
        if total > budget:
            raise InterpreterError(
                f"the program's declared state takes {format_bytes(total)}, over the memory budget of "
                f"{format_bytes(budget)}; raise it with TORCH_IR_MEMORY_BUDGET (or --memory-budget) if it is meant "
                "to be this large"
            )
        for spec in self.ir.state.values():
            shape = [int(d) for d in spec.type.shape]
            self.state[spec.name] = torch.zeros(shape, dtype=getattr(torch, spec.type.dtype), device=self.device)

    def __call__(self, entry: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``entry`` on the current state like the model; its state updates become the state."""
        interp = self.prepared(entry)
        out = interp(*args, **kwargs)
        for name in self.state:
            if name in interp.weights:
                self.state[name] = interp.weights[name]
        return out

    def prepared(self, name: str) -> Any:
        """The interpreter of entry ``name``, holding the current state (to call it, or to walk it node by
        node as the divergence search does)."""
        interp = self.entries.get(name)
        if interp is None:
            raise InterpreterError(f"no entry {name!r} in this program; its entries: {', '.join(self.entries)}")
        interp.assign({state: value for state, value in self.state.items() if state in interp.weights})
        return interp

    def close(self) -> None:
        """Stop the worker the entries run in, if any."""
        self.executor.close()


__all__ = ["ProgramRunner"]
