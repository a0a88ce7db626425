"""The documented way to execute an IR: ``torch_ir.run(ir, weights, *inputs)`` and ``Runner``.

A ``Runner`` binds the weights once (running the init graph), holds the module's declared state and calls
its public functions: ``runner(*inputs)`` for a module with one entry, ``runner.call("decode", ...)`` for
a program, whose state (an LLM's KV cache) carries from call to call.

A module read from a file (a path, or what ``torch_ir.load_ir`` returned) runs in a worker process with
hard limits (``torch_ir.runtime.worker``); one built in this process runs here. ``isolate=`` overrides it.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from torch_ir.errors import InterpreterError
from torch_ir.ir.module import Module
from torch_ir.runtime.program import ProgramRunner


class Runner:
    """Runs the public functions of a module with weights bound once and declared state carried between
    calls. ``ir`` is a ``Module`` or the path of a saved one; ``weights`` a state_dict, an ``nn.Module`` or
    a ``.safetensors`` path (see ``torch_ir.runtime.weights``)."""

    def __init__(
        self,
        ir: Module | str | os.PathLike[str],
        weights: Any,
        *,
        device: str | torch.device = "cpu",
        strict: bool = True,
        isolate: bool | None = None,
    ):
        if isinstance(ir, (str, os.PathLike)):
            from torch_ir.serde import load

            ir = load(ir)
        self.module = ir
        self._program = ProgramRunner(ir, weights, device=device, strict=strict, isolate=isolate)

    @property
    def isolated(self) -> bool:
        """Whether the module runs in a worker process."""
        return self._program.executor.isolated

    def close(self) -> None:
        """Stop the worker process, if the module runs in one (also when the runner is garbage)."""
        self._program.close()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def entries(self) -> list[str]:
        """The names of the public functions."""
        return list(self.module.entries)

    @property
    def state(self) -> dict[str, torch.Tensor]:
        """The declared state as it is now (an LLM's KV cache), by name."""
        return self._program.state

    def reset(self) -> None:
        """Put the declared state back as declared (zeros)."""
        self._program.reset()

    def call(self, entry: str, *args: Any, **kwargs: Any) -> Any:
        """Call the public function ``entry`` like the model; its state updates become the state."""
        return self._program(entry, *args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the one public function of the module like the model."""
        entries = self.entries
        if len(entries) != 1:
            raise InterpreterError(
                f"this module has entries {', '.join(entries)}: call one by name, runner.call('{entries[0]}', ...)"
            )
        return self._program(entries[0], *args, **kwargs)


def run(
    ir: Module | str | os.PathLike[str],
    weights: Any,
    *args: Any,
    entry: str | None = None,
    device: str | torch.device = "cpu",
    isolate: bool | None = None,
    **kwargs: Any,
) -> Any:
    """Bind ``weights`` and call ``ir`` once on ``(args, kwargs)``: its one public function, or ``entry``.
    A module read from a file runs in a worker process (``isolate`` overrides it)."""
    with Runner(ir, weights, device=device, isolate=isolate) as runner:
        return runner.call(entry, *args, **kwargs) if entry is not None else runner(*args, **kwargs)


__all__ = ["Runner", "run"]
