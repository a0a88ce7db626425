"""Why torch.export failed, said in the user's terms: torch's own message, where it was raised, and a cause.

A failed export has one of four causes, and each sends the user somewhere else:

- ``inputs``: the first operation on an example input fails (a wrong shape or dtype for ``forward``);
- ``model``: the model's code, or a library it calls (transformers), raises on values the model itself
  computes: an error in the model, its config or that library, which the same call hits without torch.export;
- ``unsupported``: torch.export cannot trace a construct the model uses (a branch on tensor data, an op
  without a fake kernel, a rule of ``torch.cond``), or its own machinery refuses the traced program;
- ``dynamic_shapes``: the ``dynamic_shapes`` spec does not fit the model.

The cause is read from the exception's type and its traceback (the frames that ran the model's code), and
for ``inputs`` from which tensors the failing line of code reads: those ``forward`` received are the inputs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import torch

CAUSES = ("inputs", "model", "unsupported", "dynamic_shapes")
"""What ``ExportError.cause`` may say of a failed export."""

_TORCH_DIR = str(Path(torch.__file__).parent) + os.sep
_TORCH_IR_DIR = str(Path(__file__).resolve().parent.parent) + os.sep
_NAME = re.compile(r"[A-Za-z_]\w*")


@dataclass(frozen=True)
class Frame:
    """One frame of the traceback: where, and the line of code."""

    file: str
    line: int
    function: str
    code: str

    def __str__(self) -> str:
        code = f": `{self.code}`" if self.code else ""
        return f"{self.file}:{self.line} ({self.function}){code}"


@dataclass(frozen=True)
class ExportFailure:
    """A failed export, explained: ``cause`` (one of ``CAUSES``), torch's ``reason``, the frame of the model's
    code it came from (``at``), and ``advice``."""

    cause: str
    reason: str
    at: Frame | None
    advice: str

    def message(self, model_name: str) -> str:
        """The text of the ``ExportError``."""
        where = f"\n  at {self.at}" if self.at is not None else ""
        return f"torch.export could not trace {model_name}: {self.reason}{where}\nCause ({self.cause}): {self.advice}"


class InputRecorder:
    """Remembers the tensors the model's ``forward`` receives during a trace (a pre-hook, removed after)."""

    def __init__(self) -> None:
        self.tensors: dict[int, tuple[str, torch.Tensor]] = {}

    @contextmanager
    def watching(self, model: torch.nn.Module) -> Iterator[None]:
        """Record ``model``'s inputs for the duration of the block."""
        import inspect

        try:
            params = list(inspect.signature(model.forward).parameters)
        except (TypeError, ValueError):
            params = []

        def record(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if self.tensors:
                return  # only the outermost call: a recursive forward sees its own values
            named = [(params[i] if i < len(params) else f"input {i}", a) for i, a in enumerate(args)]
            for name, value in [*named, *kwargs.items()]:
                for leaf in _tensors(value):
                    self.tensors[id(leaf)] = (name, leaf)

        handle = model.register_forward_pre_hook(record, with_kwargs=True)
        try:
            yield
        finally:
            handle.remove()

    def name_of(self, value: Any) -> str | None:
        """The input name of ``value`` when it is (a view of) a tensor ``forward`` received."""
        if not isinstance(value, torch.Tensor):
            return None
        for candidate in (value, getattr(value, "_base", None)):
            if candidate is not None and id(candidate) in self.tensors and self.tensors[id(candidate)][1] is candidate:
                return self.tensors[id(candidate)][0]
        return None


def explain(exc: BaseException, inputs: InputRecorder | None = None, inputs_given: bool = True) -> ExportFailure:
    """The cause of the export failure ``exc``; ``inputs`` has the tensors ``forward`` got; ``inputs_given``
    says whether the caller chose them (``extract_llm`` builds its own, so they are never the cause)."""
    reason = f"{type(exc).__name__}: {torch_reason(exc)}"
    frames = _model_frames(exc.__traceback__)
    at = frames[-1] if frames else None
    if _is_dynamic_shapes_error(exc, reason):
        return ExportFailure(
            "dynamic_shapes",
            reason,
            at,
            "the dynamic_shapes spec does not fit the model; use the suggested fixes above",
        )
    if "aliasing" in reason.lower():  # torch's rule for what control-flow regions return
        return ExportFailure("unsupported", reason, at, _unsupported_advice(reason, frames))
    refusing = _torch_refusal(exc.__traceback__)
    if refusing is not None:
        return ExportFailure(
            "unsupported",
            reason,
            at,
            f"torch's {refusing.function} ({refusing.file}) refuses what the model asks of it when traced as "
            "this device: a construct torch.export cannot capture here",
        )
    if _is_unsupported(exc, reason) or not frames:
        return ExportFailure("unsupported", reason, at, _unsupported_advice(reason, frames))
    if inputs is not None and inputs_given:
        name = _input_read_at(exc.__traceback__, inputs)
        if name is not None:
            return ExportFailure(
                "inputs",
                reason,
                at,
                f"the example inputs: the first operation on input `{name}` fails; check that the example inputs "
                "match forward() in number, shape and dtype",
            )
    owner = _owner(at.file) if at is not None else None
    culprit = f"the model, its config or {owner}" if owner else "the model"
    inputs_text = "the example inputs" if inputs_given else "the inputs torch-ir built"
    return ExportFailure(
        "model",
        reason,
        at,
        f"{owner or 'the model'}'s code raises this on values the model computes itself, so the same call fails "
        f"without torch.export: an error in {culprit}, not in {inputs_text} nor in tracing",
    )


_TORCH_NOISE = ("Developer debug context", "from user code:", "Set TORCHDYNAMO_VERBOSE", "For more details about")


def torch_reason(exc: BaseException, limit: int = 1500) -> str:
    """The part of a torch exception's message that says why: its first paragraph, and the paragraphs it
    introduces (one ending in ':' such as "Got graph break/error:"), without torch's debug context."""
    paragraphs = [p.strip() for p in str(exc).strip().split("\n\n") if p.strip()]
    kept: list[str] = []
    for paragraph in paragraphs:
        if paragraph.startswith(_TORCH_NOISE):
            continue
        lines = [line for line in paragraph.splitlines() if not line.strip().startswith(_TORCH_NOISE)]
        kept.append("\n".join(lines))
        if not kept[-1].endswith(":"):
            break
    reason = "\n".join(kept) or type(exc).__name__
    return reason if len(reason) <= limit else reason[: limit - 3] + "..."


def _is_dynamic_shapes_error(exc: BaseException, reason: str) -> bool:
    from torch.fx.experimental.symbolic_shapes import ConstraintViolationError

    kind = getattr(getattr(exc, "error_type", None), "name", "")
    return (
        isinstance(exc, ConstraintViolationError)
        or kind == "CONSTRAINT_VIOLATION"
        or "Constraints violated" in reason
        or ("dynamic" in reason.lower() and "Dim" in reason)
    )


def _is_unsupported(exc: BaseException, reason: str) -> bool:
    """Whether torch.export itself refuses what it traces (not the model's code raising)."""
    from torch._dynamo import exc as dynamo_exc
    from torch._subclasses import fake_tensor
    from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode

    refused = (
        dynamo_exc.Unsupported,
        dynamo_exc.UserError,
        dynamo_exc.UncapturedHigherOrderOpError,
        GuardOnDataDependentSymNode,
        fake_tensor.DataDependentOutputException,
        fake_tensor.DynamicOutputShapeException,
        fake_tensor.UnsupportedOperatorException,
        fake_tensor.UnsupportedFakeTensorException,
    )
    lowered = reason.lower()
    return isinstance(exc, refused) or "data-dependent" in lowered or "could not find kernel" in lowered


def _unsupported_advice(reason: str, frames: list[Frame]) -> str:
    lowered = reason.lower()
    if "data-dependent" in lowered or "data dependent" in lowered:
        return (
            "a construct torch.export cannot trace: the model branches on tensor values (data-dependent control "
            "flow); rewrite the branch with torch.cond, compute the condition from shapes, or mark the value "
            "with torch._check"
        )
    if "aliasing" in lowered:
        return (
            "a construct torch.export cannot trace: a branch or body of a control-flow op (torch.cond, while_loop, "
            "scan, map) returns an input as is or a view of it; return input.clone() instead"
        )
    if not frames:
        return "torch.export's own machinery refused the traced program (no code of the model raised it)"
    return "a construct torch.export cannot trace (torch refuses it while tracing, the model's code does not raise)"


TRACING_PACKAGES = ("_higher_order_ops", "_functorch", "export", "_export", "_dynamo")
"""torch's packages of tracing machinery: a Python ``raise`` in them is torch refusing a construct."""


def _torch_refusal(tb: TracebackType | None) -> Frame | None:
    """The torch function the model called, when torch's tracing machinery raised inside it (a Python
    ``raise``, not a kernel failing on its arguments); None when no code of the model is on the stack."""
    frames = _walk(tb)
    model_index = None
    inside = False
    for index, (frame, _) in enumerate(frames):
        file = frame.f_code.co_filename
        if file.startswith(_TORCH_DIR):
            inside = True
        elif inside and not file.startswith(_TORCH_IR_DIR) and not file.startswith("<"):
            model_index = index
    if model_index is None or model_index + 1 >= len(frames):
        return None
    below = [frame.f_code.co_filename for frame, _ in frames[model_index + 1 :]]
    innermost = below[-1]
    if innermost[len(_TORCH_DIR) :].split(os.sep, 1)[0] not in TRACING_PACKAGES or not innermost.startswith(_TORCH_DIR):
        return None
    if any(f.startswith(_TORCH_DIR + "_subclasses") for f in below):
        return None  # a kernel run on fake tensors failed: the op's arguments are the story, not the machinery
    called, line = frames[model_index + 1]
    return Frame(_portable(called.f_code.co_filename), line, called.f_code.co_name, "")


def _walk(tb: TracebackType | None) -> list[tuple[FrameType, int]]:
    frames = []
    while tb is not None:
        frames.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    return frames


def _model_frames(tb: TracebackType | None) -> list[Frame]:
    """The frames that ran the model's (or its libraries') code below torch.export, outermost first: every
    frame after the first one in torch that is neither torch's nor torch-ir's."""
    import linecache

    frames: list[Frame] = []
    inside = False
    for frame, line in _walk(tb):
        file = frame.f_code.co_filename
        if file.startswith(_TORCH_DIR):
            inside = True
            continue
        if not inside or file.startswith(_TORCH_IR_DIR) or file.startswith("<"):
            continue
        code = linecache.getline(file, line).strip()
        frames.append(Frame(_portable(file), line, frame.f_code.co_name, code))
    return frames


def _input_read_at(tb: TracebackType | None, inputs: InputRecorder) -> str | None:
    """The input that the innermost line of the model's code reads, if it reads one ``forward`` received."""
    import linecache

    innermost: tuple[FrameType, int] | None = None
    inside = False
    for frame, line in _walk(tb):
        file = frame.f_code.co_filename
        if file.startswith(_TORCH_DIR):
            inside = True
        elif inside and not file.startswith(_TORCH_IR_DIR) and not file.startswith("<"):
            innermost = (frame, line)
    if innermost is None:
        return None
    frame, line = innermost
    code = linecache.getline(frame.f_code.co_filename, line)
    local = frame.f_locals
    for name in dict.fromkeys(_NAME.findall(code)):
        found = inputs.name_of(local.get(name))
        if found is not None:
            return found
    return None


def _owner(file: str) -> str | None:
    """The installed package whose code is at ``file`` (a portable path), None for the model's own file."""
    first = file.split("/", 1)[0]
    if "/" in file and not os.path.isabs(file) and first.isidentifier():
        return first
    return None


def _portable(file: str) -> str:
    from torch_ir.frontends.torch_export import _portable_path

    return _portable_path(file)


def _tensors(value: Any) -> list[torch.Tensor]:
    from torch.utils import _pytree as pytree

    return [leaf for leaf in pytree.tree_leaves(value) if isinstance(leaf, torch.Tensor)]


__all__ = ["CAUSES", "ExportFailure", "Frame", "InputRecorder", "explain", "torch_reason"]
