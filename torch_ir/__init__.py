"""torch-ir: extract a compiler-backend IR from PyTorch models, weight-free.

The public names are exported lazily (PEP 562): ``import torch_ir`` and the modules that only read,
check and print an IR (``torch_ir.backends.json``, ``torch_ir.ir``, ``torch_ir.cli``) do not import
torch; ``extract_ir`` and the verifier import it on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from torch_ir.errors import (
    ExportError,
    InputError,
    InterpreterError,
    IRError,
    ModelSpecError,
    PassError,
    PipelineSpecError,
    SerializationError,
    TextParseError,
    TorchIRError,
    TorchIRWarning,
    VerificationError,
    WeightError,
)

if TYPE_CHECKING:
    from torch_ir.frontends.torch_export import extract_ir
    from torch_ir.ir import (
        IR,
        Graph,
        Node,
        ScalarType,
        StateUpdate,
        SymbolRange,
        TensorType,
        Value,
        Weight,
        parse_graph,
        print_graph,
    )
    from torch_ir.ops.registry import register_op
    from torch_ir.passes import Pass, PassContext, PassManager, PassResult, register_pass
    from torch_ir.runtime.verifier import verify_ir, verify_ir_with_state_dict

__version__ = "0.1.0"

_LAZY = {
    "extract_ir": "torch_ir.frontends.torch_export",
    "IR": "torch_ir.ir",
    "Graph": "torch_ir.ir",
    "Node": "torch_ir.ir",
    "ScalarType": "torch_ir.ir",
    "StateUpdate": "torch_ir.ir",
    "SymbolRange": "torch_ir.ir",
    "TensorType": "torch_ir.ir",
    "Value": "torch_ir.ir",
    "Weight": "torch_ir.ir",
    "parse_graph": "torch_ir.ir",
    "print_graph": "torch_ir.ir",
    "register_op": "torch_ir.ops.registry",
    "Pass": "torch_ir.passes",
    "PassContext": "torch_ir.passes",
    "PassManager": "torch_ir.passes",
    "PassResult": "torch_ir.passes",
    "register_pass": "torch_ir.passes",
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


def extract_llm(model: Any, **options: Any) -> IR:
    """The ``prefill`` + ``decode`` program of a transformers causal LM (see ``torch_ir.frontends.llm``)."""
    from torch_ir.frontends.llm import extract_llm as _extract

    return _extract(model, **options)


def load_ir(path: str) -> IR:
    """Load an IR saved with ``IR.save`` (JSON; no torch needed, no code executed)."""
    from torch_ir.backends.json import load_ir as _load

    return _load(path)


__all__ = [
    "IR",
    "ExportError",
    "Graph",
    "IRError",
    "InputError",
    "InterpreterError",
    "ModelSpecError",
    "Node",
    "Pass",
    "PassContext",
    "PassManager",
    "PassResult",
    "PassError",
    "PipelineSpecError",
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
    "extract_ir",
    "extract_llm",
    "load_ir",
    "parse_graph",
    "print_graph",
    "register_pass",
    "register_op",
    "verify_ir",
    "verify_ir_with_state_dict",
]
