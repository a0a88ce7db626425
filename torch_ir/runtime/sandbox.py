"""What an IR from an untrusted file may do when it runs: compute on its tensors, and nothing else.

Loading an IR never runs code; running one executes the ops it names. The interpreter asks this module,
while it builds its plan, whether each op may run:

- ops with effects outside their tensors are refused (file I/O such as ``aten.from_file`` / ``aten.save``,
  printing and warnings, profiler and RNG-state ops, collectives and RPC): the rule is
  the op's ``side_effect_reason`` in the op registry (``torch_ir.ops.op_info``);
- Python-level ops (only those in ``torch_ir.ops.python_ops``) run with bounded arguments
  (``python_call_problem``), so no node can start unbounded big-integer work (``math.factorial(50000000)``);
- attributes of dtype, layout and memory-format type must name such torch objects;
- every value whose declared type (symbols bound from the inputs) or ``size`` attribute exceeds the memory
  budget is refused before anything runs; with a dry run (``torch_ir.runtime.dry_run``) so is every value
  whose true size does, whatever its declared type says;
- inputs and weights an in-place op may write are copied first (``PlanGuard``), so a run never changes
  the caller's tensors.

``allow_side_effects=True`` lifts the first rule for IRs the caller trusts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from torch_ir.errors import InterpreterError
from torch_ir.ir.graph import Graph, Node, Value
from torch_ir.ir.types import ITEMSIZE, TensorType
from torch_ir.ops import op_info
from torch_ir.ops.python_ops import python_call_problem
from torch_ir.runtime.declared_types import SymbolBindings, bind_inputs, declared_nbytes

DEFAULT_MEMORY_BUDGET = 64 << 30
"""Bytes one value may take, by default: 64 GiB, or ``TORCH_IR_MEMORY_BUDGET`` (bytes) when set."""


TORCH_ENUMS: dict[str, type] = {"ScalarType": torch.dtype, "Layout": torch.layout, "MemoryFormat": torch.memory_format}
"""Schema types whose attribute values are names of torch objects (``"float32"``, ``"strided"``)."""


def torch_enum(name: str, type_name: str) -> Any:
    """The torch object ``name`` names (``torch.float32``), checked to be a ``type_name``; else InterpreterError."""
    kind = TORCH_ENUMS[type_name]
    value = getattr(torch, name, None) if name.isidentifier() and not name.startswith("_") else None
    if not isinstance(value, kind):
        raise InterpreterError(f"attribute value {name!r} is not a torch {kind.__name__} ({type_name})")
    return value


def default_memory_budget() -> int:
    """``TORCH_IR_MEMORY_BUDGET`` (bytes) when set to a positive integer, else ``DEFAULT_MEMORY_BUDGET``."""
    text = os.environ.get("TORCH_IR_MEMORY_BUDGET", "").strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    return DEFAULT_MEMORY_BUDGET


@dataclass(frozen=True)
class ExecutionPolicy:
    """What the interpreter lets an IR do: side effects (off by default) and the memory one value may take.

    With ``dry_run`` the plan first runs on fake tensors (``torch_ir.runtime.dry_run``) once per distinct
    input signature, so a value over the budget is refused even when its declared type lies.
    """

    allow_side_effects: bool = False
    memory_budget: int | None = None
    dry_run: bool = False

    @property
    def budget(self) -> int:
        """The memory budget in bytes (the default when none was given)."""
        return self.memory_budget if self.memory_budget is not None else default_memory_budget()

    def guard(self, node: Node, fn: Callable[..., Any], schema: torch.FunctionSchema | None) -> Callable[..., Any]:
        """The callable the interpreter may run for ``node``: ``fn``, bounded for Python ops; else raise."""
        info = op_info(node.op_type)
        if not self.allow_side_effects:
            reason = info.side_effect_reason
            if reason:
                raise InterpreterError(
                    f"node {node.name} ({node.op_type}) is refused: {reason}. An IR runs with no effect "
                    "outside its tensors; pass allow_side_effects=True to Interpreter (--allow-side-effects on "
                    "the command line) only for an IR you trust"
                )
        self.check_static_memory(node)
        if schema is not None:
            _check_enum_attrs(node, schema)
        if info.python_level and schema is None:
            bounded = _bounded(node, fn)
            if not any(
                isinstance(a, Value) or (isinstance(a, list) and any(isinstance(v, Value) for v in a))
                for a in [*node.args, *node.attrs.values()]
            ):
                bounded.check(*node.args, **node.attrs)  # literal operands: refuse while planning
            return bounded
        return fn

    def check_static_memory(self, node: Node) -> None:
        """Refuse ``node`` when a static declared result, or its ``size`` attribute, exceeds the budget."""
        budget = self.budget
        for value in node.outputs:
            type_ = value.type
            if isinstance(type_, TensorType) and type_.is_static:
                nbytes = math.prod(int(d) for d in type_.shape) * int(ITEMSIZE.get(type_.dtype, 8))
                if nbytes > budget:
                    raise budget_error(node, f"result %{value.name} is declared {type_}", nbytes, budget)
        size = node.attrs.get("size")
        if isinstance(size, list) and size and all(isinstance(d, int) and not isinstance(d, bool) for d in size):
            numel = math.prod(max(d, 0) for d in size)
            dtype = node.attrs.get("dtype")
            nbytes = numel * int(ITEMSIZE.get(dtype if isinstance(dtype, str) else "float32", 4))
            if nbytes > budget:
                raise budget_error(node, f"size={size}", nbytes, budget)

    def check_run(
        self, graph: Graph, inputs: Sequence[Any], symbolic: dict[TensorType, tuple[Node, Value]] | None = None
    ) -> SymbolBindings:
        """Before a run: bind symbols from the inputs, refuse any declared value over the budget.

        ``symbolic`` maps each distinct symbolic result type to the first node declaring it (what
        ``PlanGuard`` collects); without it the graph's nodes are walked.
        """
        bindings = bind_inputs([v.type for v in graph.inputs], inputs)
        if symbolic is None:
            symbolic = {}
            for node in graph.nodes:
                for value in node.outputs:
                    if isinstance(value.type, TensorType) and not value.type.is_static:
                        symbolic.setdefault(value.type, (node, value))
        if symbolic:
            budget = self.budget
            for type_, (node, value) in symbolic.items():
                nbytes = declared_nbytes(type_, bindings)
                if nbytes is not None and nbytes > budget:
                    raise budget_error(node, f"result %{value.name} is declared {type_}", nbytes, budget)
        return bindings


class PlanGuard:
    """What the interpreter learns about an IR while it plans, for the checks at bind and run time.

    Fed each node with its schema in topological order, it collects the distinct symbolic result types
    (checked against the memory budget once the inputs bind their symbols) and which graph inputs and
    weights the IR may write in place, so the interpreter can copy them first: an IR that still holds
    in-place ops (``add_``, ``index_copy_``, ``out=``) would otherwise write into the caller's tensors (a
    state_dict, a module's buffers, the inputs). Aliases are followed conservatively: an op whose schema
    writes an argument writes every tensor its operands may alias; an op whose schema returns an alias (a
    view), or a Python op, makes its results alias every operand.
    """

    def __init__(self, graph: Graph, policy: ExecutionPolicy, interpreter: Any = None):
        self.graph = graph
        self.policy = policy
        self.interpreter = interpreter
        self._dry_runs: set[tuple[Any, ...]] = set()
        self._roots: dict[int, frozenset[str]] = {id(v): frozenset({v.name}) for v in graph.inputs}
        self._roots.update((id(w), frozenset({name})) for name, w in graph.weights.items())
        self.input_names = frozenset(v.name for v in graph.inputs)
        self.written: set[str] = set()
        self.symbolic: dict[TensorType, tuple[Node, Value]] = {}

    def see(self, node: Node, schema: torch.FunctionSchema | None) -> None:
        """Account for ``node``: its symbolic result types, what it writes, what its results alias."""
        for value in node.outputs:
            if isinstance(value.type, TensorType) and not value.type.is_static:
                self.symbolic.setdefault(value.type, (node, value))
        operands: set[str] = set()
        for value in node.inputs:
            operands |= self._roots.get(id(value), frozenset())
        if not operands:
            return
        if schema is None:
            aliased = True
        else:
            if any(a.alias_info is not None and a.alias_info.is_write for a in schema.arguments):
                self.written |= operands
            aliased = any(r.alias_info is not None for r in schema.returns)
        if aliased:
            for value in node.outputs:
                self._roots[id(value)] = frozenset(operands)

    def protect(self, tensors: dict[str, Any]) -> dict[str, Any]:
        """``tensors`` (weights by name) with a private copy of each one the IR may write."""
        return {k: (v.clone() if k in self.written and isinstance(v, torch.Tensor) else v) for k, v in tensors.items()}

    def check_inputs(self, inputs: list[Any]) -> list[Any]:
        """Before a run on ``inputs`` (graph input order): the memory budget under their bindings; returns
        them with a private copy of each one the IR may write."""
        self.policy.check_run(self.graph, inputs, self.symbolic)
        if self.policy.dry_run and self.interpreter is not None:
            signature = tuple((tuple(v.shape), v.dtype) if isinstance(v, torch.Tensor) else v for v in inputs)
            if signature not in self._dry_runs:
                from torch_ir.runtime.dry_run import dry_run

                dry_run(self.interpreter, inputs, self.policy.budget)
                self._dry_runs.add(signature)
        if not self.written & self.input_names:
            return inputs
        names = [v.name for v in self.graph.inputs]
        return [
            v.clone() if name in self.written and isinstance(v, torch.Tensor) else v for name, v in zip(names, inputs)
        ]


def _check_enum_attrs(node: Node, schema: torch.FunctionSchema) -> None:
    for argument in schema.arguments:
        raw = node.attrs.get(argument.name)
        type_name = str(argument.real_type).removeprefix("Optional[").removesuffix("]")
        if isinstance(raw, str) and type_name in TORCH_ENUMS:
            try:
                torch_enum(raw, type_name)
            except InterpreterError as exc:
                raise InterpreterError(f"node {node.name} ({node.op_type}): attribute {argument.name}: {exc}") from None


def budget_error(node: Node, what: str, nbytes: int, budget: int) -> InterpreterError:
    """The error that refuses ``node`` because ``what`` takes ``nbytes``, over ``budget``."""
    return InterpreterError(
        f"node {node.name} ({node.op_type}) is refused before running: {what}, {_bytes(nbytes)}, over the "
        f"memory budget of {_bytes(budget)}. Raise it with Interpreter(..., memory_budget=BYTES) or "
        "TORCH_IR_MEMORY_BUDGET if the IR is meant to be this large"
    )


def _bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if value < 1024 or unit == "EiB":
            return f"{value:.3g} {unit}" if value < 1e21 else f"{n:.3e} B"
        value /= 1024
    return f"{n} B"


def _bounded(node: Node, fn: Callable[..., Any]) -> _BoundedOp:
    def check(*args: Any, **kwargs: Any) -> None:
        problem = python_call_problem(node.op_type, args, kwargs)
        if problem:
            raise InterpreterError(f"node {node.name} ({node.op_type}) is refused: {problem}")

    return _BoundedOp(fn, check)


class _BoundedOp:
    """A Python-level op that checks its arguments against the bounds before it runs."""

    def __init__(self, fn: Callable[..., Any], check: Callable[..., None]):
        self.fn = fn
        self.check = check

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.check(*args, **kwargs)
        return self.fn(*args, **kwargs)


def check_device(device: torch.device) -> None:
    """Raise ``InterpreterError`` when this torch cannot run on ``device`` (``cuda`` on a CPU-only build)."""
    kind = device.type
    if kind in ("cpu", "meta"):
        return
    module = getattr(torch, kind, None)
    is_available = getattr(module, "is_available", None)
    if kind == "mps":
        is_available = torch.backends.mps.is_available
    try:
        available = bool(is_available()) if callable(is_available) else False
    except Exception:  # a backend that cannot even answer is not available
        available = False
    if not available:
        raise InterpreterError(
            f"device {device} is not available to this torch ({torch.__version__}): run on 'cpu', or install "
            f"a torch build with {kind} support on a machine that has one"
        )
    device_count = getattr(module, "device_count", None)
    if device.index is not None and callable(device_count):
        count = int(device_count())
        if device.index >= count:
            raise InterpreterError(f"device {device} does not exist: this machine has {count} {kind} device(s)")


__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "TORCH_ENUMS",
    "budget_error",
    "ExecutionPolicy",
    "PlanGuard",
    "check_device",
    "default_memory_budget",
    "torch_enum",
]
