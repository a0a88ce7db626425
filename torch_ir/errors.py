"""The errors torch-ir raises: one base class, one subclass per stage."""

from __future__ import annotations


class TorchIRError(Exception):
    """Base class of every error torch-ir raises on purpose.

    Messages say what was wrong, where (node, pass, file, key) and, where it helps, what to do.
    """


class IRError(TorchIRError):
    """An IR object was built or mutated inconsistently (a bad name, a value used before its definition)."""


class VerificationError(TorchIRError):
    """The structural verifier found the graph broken, or a numeric check failed."""


class TextParseError(TorchIRError):
    """The text form of a graph could not be parsed; the message gives line and column."""


class ExportError(TorchIRError):
    """torch.export could not trace the model, or the model or inputs were not usable.

    ``torch_log`` holds everything torch logged, warned or printed to stderr during the failed export
    (the message keeps only a few lines of it; ``torch-ir -v`` prints it in full). ``cause`` says why a trace
    failed: ``inputs``, ``model``, ``unsupported`` or ``dynamic_shapes`` (empty for other errors).
    """

    torch_log: str = ""
    cause: str = ""


class SerializationError(TorchIRError):
    """An IR file is malformed, of an unsupported schema version, or could not be written."""


class PassError(TorchIRError):
    """A pass failed, or left the graph invalid.

    The pass manager fills ``pass_name``, ``passes_before`` and, when it wrote one, ``reproducer``; the
    rewriter fills ``node``, the node a failing pattern was offered (``torch_ir.passes.failure``); ``torch-ir
    opt`` fills ``ir_context``, the IR around that node, which ``-v`` prints after the traceback.
    """

    pass_name: str | None = None
    passes_before: tuple[str, ...] = ()
    reproducer: str | None = None
    node: object | None = None
    ir_context: str = ""


class PipelineSpecError(TorchIRError):
    """A pipeline (text or file) could not be parsed or names something unknown."""


class WeightError(TorchIRError):
    """Weights are missing, unexpected, or of the wrong shape or dtype."""


class InterpreterError(TorchIRError):
    """The reference interpreter could not execute a node."""


class RunLimitError(InterpreterError):
    """A run was refused or stopped by a limit that guards it: an op off the allow-list or with effects outside
    its tensors, the memory budget, the loop limit, the bounds of Python-level ops or of views, a write into
    the caller's tensors, or a hard limit of the worker process (a crash, its memory, CPU time or time limit).
    It says nothing about whether the IR computes what the model computes."""


class InputError(InterpreterError):
    """Inputs do not fit the IR: their number, dtype or shape differ from its inputs', or their values lie
    outside what the IR indexes with them (token ids past the vocabulary)."""


class ModelSpecError(TorchIRError):
    """A model or input spec (zoo:NAME, module:factory, hf:TYPE, 1x128:int64) could not be resolved."""


class TorchIRWarning(UserWarning):
    """Something the IR cannot promise, said at extraction: a constant whose value could not be known."""


__all__ = [
    "ExportError",
    "IRError",
    "InputError",
    "InterpreterError",
    "ModelSpecError",
    "PassError",
    "PipelineSpecError",
    "RunLimitError",
    "SerializationError",
    "TextParseError",
    "TorchIRError",
    "TorchIRWarning",
    "VerificationError",
    "WeightError",
]
