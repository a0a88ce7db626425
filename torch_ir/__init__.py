"""torch-ir: extract a compiler-backend IR from PyTorch models, weight-free."""

from typing import Any

from torch_ir.errors import (
    ExportError,
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
