"""torch-ir: extract a compiler-backend IR from PyTorch models, weight-free.

The public names are exported lazily (PEP 562): ``import torch_ir`` and the modules that only read,
check and print an IR (``torch_ir.serde``, ``torch_ir.ir``, ``torch_ir.cli``) do not import
torch; ``extract_ir`` and the verifier import it on first use.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from torch_ir.errors import (
    ExportError,
    InputError,
    InterpreterError,
    IRError,
    ModelSpecError,
    PassError,
    PipelineSpecError,
    RunLimitError,
    SerializationError,
    TextParseError,
    TorchIRError,
    TorchIRWarning,
    VerificationError,
    WeightError,
)

if TYPE_CHECKING:
    from torch_ir.extraction import extract_ir, extract_llm
    from torch_ir.ir import (
        IR,
        Function,
        Graph,
        Module,
        Node,
        ScalarType,
        StateUpdate,
        SymbolRange,
        TensorType,
        Value,
        Weight,
        parse_graph,
        parse_module,
        print_graph,
    )
    from torch_ir.ops.custom import define_op
    from torch_ir.ops.registry import register_op
    from torch_ir.passes import Pass, PassContext, PassManager, PassResult, register_pass
    from torch_ir.runtime.runner import Runner, run
    from torch_ir.runtime.verifier import verify_ir, verify_ir_with_state_dict

from torch_ir.version import __version__

_LAZY = {
    "extract_ir": "torch_ir.extraction",
    "extract_llm": "torch_ir.extraction",
    "IR": "torch_ir.ir",
    "Module": "torch_ir.ir",
    "Function": "torch_ir.ir",
    "Graph": "torch_ir.ir",
    "Node": "torch_ir.ir",
    "ScalarType": "torch_ir.ir",
    "StateUpdate": "torch_ir.ir",
    "SymbolRange": "torch_ir.ir",
    "TensorType": "torch_ir.ir",
    "Value": "torch_ir.ir",
    "Weight": "torch_ir.ir",
    "parse_graph": "torch_ir.ir",
    "parse_module": "torch_ir.ir",
    "print_graph": "torch_ir.ir",
    "register_op": "torch_ir.ops.registry",
    "define_op": "torch_ir.ops.custom",
    "Pass": "torch_ir.passes",
    "PassContext": "torch_ir.passes",
    "PassManager": "torch_ir.passes",
    "PassResult": "torch_ir.passes",
    "register_pass": "torch_ir.passes",
    "run": "torch_ir.runtime.runner",
    "Runner": "torch_ir.runtime.runner",
    "verify_ir": "torch_ir.runtime.verifier",
    "verify_ir_with_state_dict": "torch_ir.runtime.verifier",
}
"""Public name -> the module that defines it; imported on first attribute access."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'torch_ir' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def load_ir(path: str | os.PathLike[str]) -> Module:
    """Load an IR saved with ``save`` (JSON; no torch needed, no code executed)."""
    from torch_ir.serde import load

    return load(path)


def save(ir: Module, path: str | os.PathLike[str], *, run_record: bool = False) -> None:
    """Write ``ir`` as versioned JSON, atomically (``torch_ir.serde.save``; ``ir.save(path)`` is the same):
    the same model, options and versions always give the same bytes. ``run_record=True`` adds the time and
    memory of each stage and pass (which differ from run to run)."""
    from torch_ir.serde import save as _save

    _save(ir, path, run_record=run_record)


def _summary(ir: Module) -> str:
    from torch_ir.analysis.summary import summarize

    return summarize(ir)


def _register_providers() -> None:
    """Give ``Module.save`` / ``load`` / ``summary`` what they call, without importing those layers now."""
    from torch_ir.ir import module as _module

    _module.provide("save", save)
    _module.provide("load", load_ir)
    _module.provide("summary", _summary)


_register_providers()


__all__ = [
    "IR",
    "ExportError",
    "Function",
    "Graph",
    "IRError",
    "InputError",
    "InterpreterError",
    "RunLimitError",
    "ModelSpecError",
    "Module",
    "Node",
    "Pass",
    "PassContext",
    "PassManager",
    "PassResult",
    "PassError",
    "PipelineSpecError",
    "Runner",
    "ScalarType",
    "SerializationError",
    "StateUpdate",
    "SymbolRange",
    "TensorType",
    "TextParseError",
    "TorchIRError",
    "TorchIRWarning",
    "Value",
    "VerificationError",
    "Weight",
    "WeightError",
    "__version__",
    "define_op",
    "extract_ir",
    "extract_llm",
    "load_ir",
    "parse_graph",
    "parse_module",
    "print_graph",
    "register_pass",
    "register_op",
    "run",
    "save",
    "verify_ir",
    "verify_ir_with_state_dict",
]
