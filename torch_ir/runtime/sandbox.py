"""What an IR may do when it runs: compute on its tensors, within limits, and nothing else.

Loading an IR never runs code; running one executes the ops it names. The interpreter asks this module,
while it builds its plan, whether each op may run and how it must be called:

- an IR read from a file (``untrusted``) runs only ops of the allow-list (``OpInfo.untrusted_ok``:
  ``torch_ir.ops.runnable``), or ops the caller names (``allow_ops``, ``--allow-op NS::op``);
- ops with effects outside their tensors are refused (file I/O such as ``aten.from_file`` / ``aten.save``,
  printing and warnings, profiler and RNG-state ops, collectives and RPC): the rule is the op's
  ``side_effect_reason`` in the op registry; ``allow_side_effects=True`` lifts it for an IR the caller trusts;
- Python-level ops (only those in ``torch_ir.ops.python_ops``) run with bounded arguments
  (``python_call_problem``), so no node can start unbounded big-integer work (``math.factorial(50000000)``);
- attributes of dtype, layout and memory-format type must name such torch objects;
- views with explicit sizes, strides and offset (``as_strided``) are bounds-checked against their operand's
  storage on their real arguments, before they run (``torch_ir.ops.bounds``);
- every value whose declared type (symbols bound from the inputs) or ``size`` attribute exceeds the memory
  budget is refused before anything runs; with a dry run (``torch_ir.runtime.dry_run``) so is every point
  of the plan where the values live at once would, and ops whose result size depends on their operands'
  values (``bincount``, ``repeat_interleave``) are sized from their real operands before they allocate;
  during a run, the bytes live at once count against the budget (``torch_ir.runtime.limits``);
- inputs and weights an in-place op may write are copied first (``PlanGuard``), aliasing taken from the op
  registry (``OpInfo.may_alias``), so a run never changes the caller's tensors; a write that would still
  reach one is refused when it is about to happen.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from torch_ir.errors import InterpreterError, RunLimitError
from torch_ir.ir.calls import callee_name, is_call
from torch_ir.ir.graph import Graph, Node, Value
from torch_ir.ir.types import ITEMSIZE, TensorType
from torch_ir.ops import op_info
from torch_ir.ops.bounds import RESULT_ELEMENTS, is_strided_view, result_elements, strided_view_problem
from torch_ir.ops.names import op_name, op_namespace
from torch_ir.ops.python_ops import python_call_problem
from torch_ir.ops.runnable import is_allowed_by_name
from torch_ir.runtime.declared_types import SymbolBindings, bind_inputs, declared_nbytes
from torch_ir.runtime.limits import active_limits, format_bytes

DEFAULT_MEMORY_BUDGET = 64 << 30
"""Bytes a run may hold live at once, by default: 64 GiB or the machine's physical memory, whichever is
less; ``TORCH_IR_MEMORY_BUDGET`` (bytes) when set."""


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
    """``TORCH_IR_MEMORY_BUDGET`` (bytes) when set to a positive integer, else ``DEFAULT_MEMORY_BUDGET`` or
    the machine's physical memory, whichever is less."""
    text = os.environ.get("TORCH_IR_MEMORY_BUDGET", "").strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    return min(DEFAULT_MEMORY_BUDGET, physical_memory() or DEFAULT_MEMORY_BUDGET)


def physical_memory() -> int | None:
    """The machine's physical memory in bytes, when the system says."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


@dataclass(frozen=True)
class ExecutionPolicy:
    """What the interpreter lets an IR do: which ops (all torch knows for a trusted IR; the allow-list for an
    ``untrusted`` one, read from a file, plus ``allow_ops``), side effects (off by default), and the bytes a
    run may hold live at once (``memory_budget``).

    With ``dry_run`` the plan first runs on fake tensors (``torch_ir.runtime.dry_run``) once per distinct
    input signature, so a value over the budget is refused even when its declared type lies.
    """

    allow_side_effects: bool = False
    memory_budget: int | None = None
    dry_run: bool = False
    untrusted: bool = False
    allow_ops: frozenset[tuple[str, str, str | None]] = field(default_factory=frozenset)
    """``(namespace, op, overload)`` names the caller allows beyond the allow-list (``--allow-op``)."""

    @property
    def budget(self) -> int:
        """The memory budget in bytes (the default when none was given)."""
        return self.memory_budget if self.memory_budget is not None else default_memory_budget()

    def admit(self, node: Node) -> None:
        """Refuse ``node`` when the IR came from a file and its op is neither on the allow-list nor named by
        the caller: checked before the op is even looked up, so an unknown namespace is refused the same way."""
        if self.untrusted and not (node.regions or is_call(node)) and not op_info(node.op_type).untrusted_ok:
            if not is_allowed_by_name(node.op_type, self.allow_ops):
                raise RunLimitError(_refusal(node))

    def guard(self, node: Node, fn: Callable[..., Any], schema: torch.FunctionSchema | None) -> Callable[..., Any]:
        """The callable the interpreter may run for ``node``: ``fn``, wrapped in the checks its arguments
        need when they are known (Python ops, strided views, data-dependent sizes); else raise."""
        info = op_info(node.op_type)
        self.admit(node)
        if not self.allow_side_effects:
            reason = info.side_effect_reason
            if reason:
                raise RunLimitError(
                    f"node {node.name} ({node.op_type}) is refused: {reason}. An IR runs with no effect "
                    "outside its tensors; pass allow_side_effects=True to Interpreter (--allow-side-effects on "
                    "the command line) only for an IR you trust"
                )
        self.check_static_memory(node)
        if schema is not None:
            _check_enum_attrs(node, schema)
            if is_strided_view(node.op_type):
                return _Checked(fn, _strided_check(node, schema))
            if (op_namespace(node.op_type), op_name(node.op_type)) in RESULT_ELEMENTS:
                return _Checked(fn, _size_check(node, schema, self.budget))
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
    view), or a Python op, makes its results alias every operand; a call writes the operands its callee
    may write (the callee's interpreter, planned first, says which).
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
        self.uncertain: set[int] = set()
        """Steps the dry run could not size (data-dependent), which the real run sizes before they run."""

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
        if schema is None or node.regions or is_call(node):
            aliased = True
            for value in self.call_writes(node):
                self.written |= self._roots.get(id(value), frozenset())
        else:
            info = op_info(node.op_type)
            if info.mutates:
                self.written |= operands
            aliased = info.may_alias
        if aliased:
            for value in node.outputs:
                self._roots[id(value)] = frozenset(operands)

    def call_writes(self, node: Node) -> list[Value]:
        """The operands of call ``node`` its callee may write in place (none when it is not a call)."""
        callees = getattr(self.interpreter, "_callees", {})
        callee = callees.get(callee_name(node)) if is_call(node) else None
        if callee is None:
            return []
        written = callee._guard.written
        return [value for value, param in zip(node.inputs, callee.graph.inputs) if param.name in written]

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

                self.uncertain |= dry_run(self.interpreter, inputs, self.policy.budget)
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
    return RunLimitError(
        f"node {node.name} ({node.op_type}) is refused before running: {what}, {format_bytes(nbytes)}, over the "
        f"memory budget of {format_bytes(budget)}. Raise it with Interpreter(..., memory_budget=BYTES) or "
        "TORCH_IR_MEMORY_BUDGET if the IR is meant to be this large"
    )


def _refusal(node: Node) -> str:
    namespace, _, rest = node.op_type.partition(".")
    name = f"{namespace}::{rest.split('.')[0]}" if rest else node.op_type
    return (
        f"node {node.name} ({node.op_type}) is refused: an IR read from a file runs only ops of torch-ir's "
        "allow-list (the Core ATen opset and the ATen ops its tests check, torch_ir.ops.runnable). If you trust "
        f"this op, name it with --allow-op {name} (allow_ops=['{name}']) or register it with "
        f"torch_ir.register_op('{name}', kernel=...)"
    )


def call_arguments(schema: torch.FunctionSchema, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """A call's arguments by schema name, as the interpreter passes them (positional ones first, in order)."""
    positional = [a.name for a in schema.arguments if not a.kwarg_only]
    named = dict(zip(positional, args))
    named.update(kwargs)
    return named


def _strided_check(node: Node, schema: torch.FunctionSchema) -> Callable[..., None]:
    def check(*args: Any, **kwargs: Any) -> None:
        problem = strided_view_problem(node.op_type, call_arguments(schema, args, kwargs))
        if problem:
            raise RunLimitError(
                f"node {node.name} ({node.op_type}) is refused: it would address memory outside its operand's "
                f"storage: {problem}"
            )

    return check


def _size_check(node: Node, schema: torch.FunctionSchema, budget: int) -> Callable[..., None]:
    def check(*args: Any, **kwargs: Any) -> None:
        elements = result_elements(node.op_type, call_arguments(schema, args, kwargs)) or 0
        nbytes = elements * 8  # the widest element these ops make (int64 counts, float64 weights)
        limits = active_limits()
        where = f"node {node.name} ({node.op_type}), whose result would hold {elements} elements,"
        if limits is not None:
            limits.check(nbytes, where)
        elif nbytes > budget:
            raise budget_error(node, f"its result would hold {elements} elements", nbytes, budget)

    return check


class _Checked:
    """An op that checks its real arguments before it runs."""

    def __init__(self, fn: Callable[..., Any], check: Callable[..., None]):
        self.fn = fn
        self.check = check

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.check(*args, **kwargs)
        return self.fn(*args, **kwargs)


def _bounded(node: Node, fn: Callable[..., Any]) -> _Checked:
    def check(*args: Any, **kwargs: Any) -> None:
        problem = python_call_problem(node.op_type, args, kwargs)
        if problem:
            raise RunLimitError(f"node {node.name} ({node.op_type}) is refused: {problem}")

    return _Checked(fn, check)


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
    "call_arguments",
    "physical_memory",
    "ExecutionPolicy",
    "PlanGuard",
    "check_device",
    "default_memory_budget",
    "torch_enum",
]
