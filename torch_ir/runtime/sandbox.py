"""What an IR from an untrusted file may do when it runs: compute on its tensors, and nothing else.

Loading an IR never runs code; running one executes the ops it names. The interpreter asks this module,
while it builds its plan, whether each op may run:

- ops with effects outside their tensors are refused (file I/O such as ``aten.from_file`` / ``aten.save``,
  printing and warnings, profiler and RNG-state ops, collectives and RPC): a deny list of namespaces and
  names, plus a rule on the schema (an argument that names a file or a path, or a ``Storage``);
- Python-level ops (only those in ``torch_ir.ops.python_ops``) run with bounded arguments, so no node can
  start unbounded big-integer work (``math.factorial(50000000)``, ``2 ** 10 ** 9``);
- every value whose declared type (symbols bound from the inputs) or ``size`` attribute exceeds the memory
  budget is refused before anything runs;
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
from torch_ir.ops.python_ops import PYTHON_NAMESPACES
from torch_ir.runtime.declared_types import SymbolBindings, bind_inputs, declared_nbytes

DEFAULT_MEMORY_BUDGET = 64 << 30
"""Bytes one value may take, by default: 64 GiB, or ``TORCH_IR_MEMORY_BUDGET`` (bytes) when set."""

SIDE_EFFECT_NAMESPACES = frozenset(
    {
        "profiler",
        "c10d",
        "c10d_functional",
        "_c10d_functional",
        "_c10d_functional_autograd",
        "symm_mem",
        "_dtensor",
        "debugprims",
        "debug_mode_ops",
        "prim",
        "rngprims",
        "inductor_prims",
        "_test",
    }
)
"""Op namespaces whose ops reach outside their tensors (profiling, communication, RNG state, debugging)."""

SIDE_EFFECT_OPS = frozenset(
    {
        "from_file",
        "save",
        "load",
        "_print",
        "print",
        "warn",
        "_test_warn_in_autograd",
        "record_stream",
        "wait",
        "seed",
        "manual_seed",
        "initial_seed",
        "set_rng_state",
        "get_rng_state",
        "_record_function_enter",
        "_record_function_enter_new",
        "_record_function_exit",
    }
)
"""Op names (in any namespace) with effects outside their tensors: I/O, printing, RNG state, streams."""

_PATH_WORDS = ("file", "path", "dir")

MAX_INT_BITS = 256
"""The widest integer a Python-level op accepts as an argument."""
MAX_RESULT_BITS = 4096
"""The widest integer a Python-level op may be asked to produce (a power, a shift, a factorial)."""


def default_memory_budget() -> int:
    """``TORCH_IR_MEMORY_BUDGET`` (bytes) when set to a positive integer, else ``DEFAULT_MEMORY_BUDGET``."""
    text = os.environ.get("TORCH_IR_MEMORY_BUDGET", "").strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    return DEFAULT_MEMORY_BUDGET


def side_effect_reason(op_type: str, schema: torch.FunctionSchema | None) -> str:
    """Why running ``op_type`` would reach outside its tensors, or '' when it would not."""
    parts = op_type.split(".")
    namespace = parts[0]
    name = parts[1] if len(parts) > 1 else ""
    if namespace in SIDE_EFFECT_NAMESPACES:
        return f"ops of namespace {namespace!r} act outside their tensors (profiling, communication, RNG, debug)"
    if name in SIDE_EFFECT_OPS or name.removesuffix("_") in SIDE_EFFECT_OPS:
        return f"{name} acts outside its tensors (file I/O, printing, RNG state or streams)"
    if schema is not None:
        for argument in schema.arguments:
            type_text = str(argument.type)
            if "Storage" in type_text:
                return f"argument {argument.name!r} is a Storage, which may map a file"
            if "str" in type_text and any(word in argument.name.lower() for word in _PATH_WORDS):
                return f"argument {argument.name!r} names a file or path"
    return ""


@dataclass(frozen=True)
class ExecutionPolicy:
    """What the interpreter lets an IR do: side effects (off by default) and the memory one value may take."""

    allow_side_effects: bool = False
    memory_budget: int | None = None

    @property
    def budget(self) -> int:
        """The memory budget in bytes (the default when none was given)."""
        return self.memory_budget if self.memory_budget is not None else default_memory_budget()

    def guard(self, node: Node, fn: Callable[..., Any], schema: torch.FunctionSchema | None) -> Callable[..., Any]:
        """The callable the interpreter may run for ``node``: ``fn``, bounded for Python ops; else raise."""
        if not self.allow_side_effects:
            reason = side_effect_reason(node.op_type, schema)
            if reason:
                raise InterpreterError(
                    f"node {node.name} ({node.op_type}) is refused: {reason}. An IR runs with no effect "
                    "outside its tensors; pass allow_side_effects=True to Interpreter (--allow-side-effects on "
                    "the command line) only for an IR you trust"
                )
        self.check_static_memory(node)
        if node.op_type.split(".")[0] in PYTHON_NAMESPACES and schema is None:
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
                    raise _too_big(node, f"result %{value.name} is declared {type_}", nbytes, budget)
        size = node.attrs.get("size")
        if isinstance(size, list) and size and all(isinstance(d, int) and not isinstance(d, bool) for d in size):
            numel = math.prod(max(d, 0) for d in size)
            dtype = node.attrs.get("dtype")
            nbytes = numel * int(ITEMSIZE.get(dtype if isinstance(dtype, str) else "float32", 4))
            if nbytes > budget:
                raise _too_big(node, f"size={size}", nbytes, budget)

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
                    raise _too_big(node, f"result %{value.name} is declared {type_}", nbytes, budget)
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

    def __init__(self, graph: Graph, policy: ExecutionPolicy):
        self.graph = graph
        self.policy = policy
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
        if not self.written & self.input_names:
            return inputs
        names = [v.name for v in self.graph.inputs]
        return [
            v.clone() if name in self.written and isinstance(v, torch.Tensor) else v for name, v in zip(names, inputs)
        ]


def _too_big(node: Node, what: str, nbytes: int, budget: int) -> InterpreterError:
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


def _int_bits(value: Any) -> int:
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return value.bit_length()
    if isinstance(value, (list, tuple)):
        return max((_int_bits(v) for v in value), default=0)
    return 0


def _check_arguments(node: Node, args: Sequence[Any]) -> None:
    for arg in args:
        if isinstance(arg, (str, bytes)):
            kind = type(arg).__name__
            raise InterpreterError(f"node {node.name} ({node.op_type}): Python ops take numbers, not {kind}")
        if isinstance(arg, (list, tuple)):
            if len(arg) > 1 << 16:
                raise InterpreterError(f"node {node.name} ({node.op_type}): a list of {len(arg)} items is too long")
            _check_arguments(node, [a for a in arg if not isinstance(a, torch.Tensor)])
            continue
        if _int_bits(arg) > MAX_INT_BITS:
            raise InterpreterError(
                f"node {node.name} ({node.op_type}): an integer of {_int_bits(arg)} bits is over the "
                f"{MAX_INT_BITS}-bit limit of Python-level ops"
            )


def _result_bits(name: str, args: Sequence[Any]) -> int:
    """An upper bound on the bits of the integer ``name(*args)`` produces (0 when it is small by nature)."""
    ints = [a for a in args if isinstance(a, int) and not isinstance(a, bool)]
    if name in ("pow",) and len(ints) >= 2 and len(args) == 2:
        base, exponent = ints[0], ints[1]
        return 0 if exponent <= 0 or abs(base) <= 1 else exponent * abs(base).bit_length()
    if name == "lshift" and len(ints) == 2:
        return ints[0].bit_length() + max(ints[1], 0)
    if name == "factorial" and ints:
        n = ints[0]
        return 0 if n < 2 else int(n * math.log2(n)) + 1
    if name == "round" and len(args) == 2 and isinstance(args[1], int):
        return 4 * abs(args[1])
    if name in ("mul", "prod") and ints:
        return sum(_int_bits(a) for a in args)
    if name == "prod" and args and isinstance(args[0], (list, tuple)):
        return sum(_int_bits(a) for a in args[0])
    return 0


def _bounded(node: Node, fn: Callable[..., Any]) -> _BoundedOp:
    name = node.op_type.split(".")[-1]

    def check(*args: Any, **kwargs: Any) -> None:
        _check_arguments(node, [*args, *kwargs.values()])
        if name in ("mul", "imul") and any(isinstance(a, (list, tuple)) for a in args):
            raise InterpreterError(f"node {node.name} ({node.op_type}) is refused: it would repeat a sequence")
        bits = _result_bits(name, [*args, *kwargs.values()])
        if bits > MAX_RESULT_BITS:
            raise InterpreterError(
                f"node {node.name} ({node.op_type}) is refused: its result would need about {bits} bits, over "
                f"the {MAX_RESULT_BITS}-bit limit of Python-level ops"
            )

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
    "MAX_INT_BITS",
    "MAX_RESULT_BITS",
    "SIDE_EFFECT_NAMESPACES",
    "SIDE_EFFECT_OPS",
    "ExecutionPolicy",
    "PlanGuard",
    "check_device",
    "default_memory_budget",
    "side_effect_reason",
]
