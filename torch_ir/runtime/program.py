"""Running a program: one interpreter per entry over the same weights, and the declared state carried from
call to call (an LLM's KV cache filled by ``prefill`` and read and extended by ``decode``).

The state starts as declared (zeros), each call of an entry reads the current state and leaves its updates
as the new state, whichever entry is called next. The runner binds private copies of the weights (one per
name, shared by the entries), so nothing a program does reaches the caller's tensors.
"""

from __future__ import annotations

from typing import Any

import torch

from torch_ir.errors import InterpreterError
from torch_ir.ir.module import IR
from torch_ir.runtime.interpreter import Interpreter
from torch_ir.runtime.isolation import PrivateSource
from torch_ir.runtime.weights import ChainSource, MappingSource, as_source


class ProgramRunner:
    """Runs the entries of a program (``runner("prefill", ids, positions)``) with shared weights and state.

    ``weights`` is what ``Interpreter`` binds (a state_dict, a module, a safetensors path); the entries bind
    private copies of them (``weights_copy``, a ``PrivateSource``: ``weights_copy.written()`` names any the
    program wrote into). The declared state never comes from the weights: it starts as declared and is
    then what the entries make of it.
    """

    def __init__(self, ir: IR, weights: Any, *, device: str | torch.device = "cpu", strict: bool = True):
        self.ir = ir
        self.device = torch.device(device)
        self.strict = strict
        self.state: dict[str, torch.Tensor] = {}
        self.reset()
        self.weights_copy = PrivateSource(as_source(weights), self.device)
        source = ChainSource(MappingSource(self.state, "the program's initial state"), self.weights_copy)
        self.entries: dict[str, Interpreter] = {
            name: Interpreter(graph, source, device=self.device, strict=strict, module=ir)
            for name, graph in ir.entries.items()
        }

    def rebind(self, weights: Any = None) -> None:
        """Bind the entries again: to private copies of ``weights``, or (None) to the current copies with their
        originals copied back first. The state is reset."""
        if weights is None:
            self.weights_copy.restore()
        else:
            self.weights_copy = PrivateSource(as_source(weights), self.device)
        self.reset()
        source = ChainSource(MappingSource(self.state, "the program's initial state"), self.weights_copy)
        for interp in self.entries.values():
            interp.bind(source, strict=self.strict)

    def reset(self) -> None:
        """Put the state back as declared: zeros."""
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

    def prepared(self, name: str) -> Interpreter:
        """The interpreter of entry ``name``, holding the current state (to call it, or to walk it node by
        node as the divergence search does)."""
        interp = self.entries.get(name)
        if interp is None:
            raise InterpreterError(f"no entry {name!r} in this program; its entries: {', '.join(self.entries)}")
        interp.assign({state: value for state, value in self.state.items() if state in interp.weights})
        return interp


__all__ = ["ProgramRunner"]
