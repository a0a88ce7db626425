"""Running a program: one interpreter per entry over the same weights, and the declared state carried from
call to call (an LLM's KV cache filled by ``prefill`` and read and extended by ``decode``).

The state starts as declared (zeros), each call of an entry reads the current state and leaves its updates
as the new state, whichever entry is called next.
"""

from __future__ import annotations

from typing import Any

import torch

from torch_ir.errors import InterpreterError
from torch_ir.ir.module import IR
from torch_ir.runtime.interpreter import Interpreter
from torch_ir.runtime.weights import ChainSource, MappingSource, as_source


class ProgramRunner:
    """Runs the entries of a program (``runner("prefill", ids, positions)``) with shared weights and state.

    ``weights`` is what ``Interpreter`` binds (a state_dict, a module, a safetensors path); the declared
    state never comes from it: it starts as declared and is then what the entries make of it.
    """

    def __init__(self, ir: IR, weights: Any, *, device: str | torch.device = "cpu", strict: bool = True):
        self.ir = ir
        self.device = torch.device(device)
        self.state: dict[str, torch.Tensor] = {}
        self.reset()
        source = ChainSource(MappingSource(self.state, "the program's initial state"), as_source(weights))
        self.entries: dict[str, Interpreter] = {
            name: Interpreter(graph, source, device=self.device, strict=strict, module=ir)
            for name, graph in ir.entries.items()
        }

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
