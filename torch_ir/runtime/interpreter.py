"""The reference interpreter: executes an IR node by node with ``torch.ops``, weights bound by name.

It needs only the IR (in memory or loaded from JSON): no ExportedProgram and no torch.fx at run time.
A plan is built once per IR (resolved op, argument builders rebuilt from the op schema, last-use lists),
so a call is a tight loop over it; each intermediate is freed after its last use.

It is the executable definition of the IR's value semantics: values have no strides and never alias, so
``view`` / ``_unsafe_view`` / ``as_strided`` read their operand as if it were contiguous (a view of a
permuted value works as a reshape), and after a call each state update is applied: a buffer or parameter
gets its new value for the next call, and an input the model writes to is written in the caller's tensor.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from torch_ir.errors import InterpreterError, IRError, RunLimitError
from torch_ir.ir.calls import CALL_OP, callee_name, check_call, is_call
from torch_ir.ir.graph import Graph, Node, Value
from torch_ir.ir.module import IR
from torch_ir.ir.structure import flatten_inputs, rebuild
from torch_ir.ir.symbolic import SymExpr
from torch_ir.ir.types import TensorType
from torch_ir.ops import op_info
from torch_ir.ops.runnable import allowed_op_names
from torch_ir.runtime.coverage import calling
from torch_ir.runtime.limits import (
    RunLimits,
    StorageMeter,
    active_limits,
    max_loop_iterations,
    run_limits,
    storage_key,
    using_limits,
)
from torch_ir.runtime.sandbox import TORCH_ENUMS, ExecutionPolicy, PlanGuard, check_device, torch_enum

_NON_FINITE = {
    "inf": math.inf,
    "+inf": math.inf,
    "-inf": -math.inf,
    "nan": math.nan,
    "Infinity": math.inf,
    "-Infinity": -math.inf,
    "NaN": math.nan,
}
_NO_VALUE_TYPES = frozenset({"ScalarType", "Layout", "Device", "MemoryFormat", "str", "bool"})


@dataclass
class _Step:
    """One node of the plan: the callable, its argument builders, where results go, what to free after it."""

    node: Node
    fn: Callable[..., Any]
    args: list[Any]
    fills: list[tuple[int, int]]
    list_fills: list[tuple[int, list[Any], list[tuple[int, int]]]]
    kwargs: dict[str, Any]
    kw_fills: list[tuple[str, int]]
    outs: list[int]
    unpack: bool | None
    frees: list[int]
    keep: list[tuple[str, int]]
    kw_list_fills: list[tuple[str, list[Any], list[tuple[int, int]]]]
    contiguous_first: bool
    index: int = 0
    writes: tuple[int | str, ...] = ()
    """The operands the op writes, by position in ``args`` or keyword (checked against the caller's tensors)."""


def resolve_op(op_type: str) -> tuple[Callable[..., Any], torch.FunctionSchema | None]:
    """The callable for ``op_type`` and its torch schema (None when torch does not know the op).

    Registered kernels (``torch_ir.register_op``) win, then ``torch.ops.<ns>.<op>.<overload>``, then
    ``operator.*`` / ``math.*`` / ``builtins.*``. Raises ``InterpreterError`` when none fits.
    """
    info = op_info(op_type)
    if info.kernel is not None:
        return info.kernel, info.schema
    namespace = op_type.split(".")[0]
    op_name = op_type.split(".")[1] if "." in op_type else op_type
    raise InterpreterError(
        f"no kernel for op {op_type}: torch does not know it and none is registered. Register one with "
        f"torch_ir.register_op('{namespace}::{op_name}', kernel=fn) (or define it with torch.library and "
        "import the module that does so before running the IR)"
    )


def _base_type(argument: Any) -> str:
    text = str(argument.real_type)
    while text.startswith("Optional[") and text.endswith("]"):
        text = text[9:-1]
    return text


def _literal(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"real", "imag"}:
        return complex(value["real"], value["imag"])
    if isinstance(value, list):
        return [_literal(v) for v in value]
    return value


def convert_attr(value: Any, type_name: str, device: torch.device) -> Any:
    """Turn a JSON-typed attribute into what the op takes, by its schema type."""
    if value is None:
        return None
    if type_name in TORCH_ENUMS and isinstance(value, str):
        return torch_enum(value, type_name)
    if type_name == "Device":
        return device
    if type_name in ("float", "number", "Scalar") and isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    if type_name.startswith("List[") and isinstance(value, list):
        inner = type_name[5:-1]
        return [convert_attr(v, inner, device) for v in value]
    return _literal(value)


def checked_inputs(graph: Graph, inputs: Sequence[Any], device: torch.device) -> list[Any]:
    """The flat inputs of ``graph`` checked for count, dtype and shape against its declared input types and
    moved to ``device``; ``InterpreterError`` naming the input that does not fit."""
    if len(inputs) != len(graph.inputs):
        names = ", ".join(v.name for v in graph.inputs)
        raise InterpreterError(f"the IR takes {len(graph.inputs)} input(s) ({names}), got {len(inputs)}")
    symbols: dict[str, int] = {}
    out = []
    for value, given in zip(graph.inputs, inputs):
        type_ = value.type
        if isinstance(type_, TensorType):
            if not isinstance(given, torch.Tensor):
                raise InterpreterError(f"input {value.name}: expected a tensor {type_}, got {type(given).__name__}")
            shape = tuple(given.shape)
            if len(shape) != len(type_.shape):
                raise InterpreterError(
                    f"input {value.name}: expected shape {_shape_text(type_.shape)}, got {list(shape)}"
                )
            for axis, (want, got) in enumerate(zip(type_.shape, shape)):
                if isinstance(want, int) and want != got:
                    raise InterpreterError(
                        f"input {value.name}: expected shape {_shape_text(type_.shape)}, got {list(shape)} "
                        f"(dimension {axis})"
                    )
                if isinstance(want, SymExpr) and want.is_symbol:
                    if symbols.setdefault(want, got) != got:
                        raise InterpreterError(
                            f"input {value.name}: dimension {axis} is {got}, but symbol {want} is {symbols[want]}"
                        )
                    rng = graph.symbols.get(want)
                    if rng is not None and (got < rng.min or (rng.max is not None and got > rng.max)):
                        raise InterpreterError(
                            f"input {value.name}: dimension {axis} = {got} is outside {want} in {rng}"
                        )
            dtype = str(given.dtype).removeprefix("torch.")
            if dtype != type_.dtype:
                raise InterpreterError(f"input {value.name}: expected dtype {type_.dtype}, got {dtype}")
            if given.device != device:
                given = given.to(device)
        out.append(given)
    return out


class CallStructure:
    """How a call's ``(args, kwargs)`` map onto a graph's inputs and its outputs back into the model's
    structure: what an interpreter knows without running anything (``graph`` and ``run_flat`` come from the
    class that uses it)."""

    graph: Graph

    def run_flat(self, inputs: Sequence[Any]) -> list[Any]:
        """Run on the flat graph inputs; return the flat graph outputs (the subclass runs them)."""
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the IR like the model: same ``(args, kwargs)``, results in the model's output structure."""
        return self.run(*args, **kwargs)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Run the IR like the model: same ``(args, kwargs)``, results in the model's output structure."""
        flat = self.flatten_inputs(args, kwargs)
        outputs = self.run_flat(flat)
        return self.structure_outputs(outputs)

    def flatten_inputs(self, args: Sequence[Any], kwargs: dict[str, Any] | None = None) -> list[Any]:
        """The graph inputs, in order, picked out of a call's ``args`` and ``kwargs``."""
        try:
            return flatten_inputs(self.graph.input_structure, args, dict(kwargs or {}))
        except IRError as exc:
            raise InterpreterError(f"the call's inputs do not match the IR: {exc}") from None

    def structure_outputs(self, outputs: Sequence[Any]) -> Any:
        """Rebuild the model's output structure from the flat graph outputs."""
        structure = self.graph.output_structure
        if structure is None:
            return outputs[0] if len(outputs) == 1 else tuple(outputs)
        try:
            return rebuild(structure, outputs)
        except (IRError, IndexError, KeyError, TypeError, ValueError) as exc:
            raise InterpreterError(f"the IR's output structure does not fit its outputs: {exc}") from None


class Interpreter(CallStructure):
    """Executes an IR (``IR``, ``Graph``, or the path of a saved IR) with weights bound by name, in this
    process.

    ``weights`` is a state_dict, a module, a ``.safetensors`` path (see ``torch_ir.runtime.weights``);
    the init graph runs once when they are bound. ``keep=[names]`` / ``keep_all=True`` keep those
    intermediates in ``kept`` after each call. Call it like the model: ``interp(*args, **kwargs)``.
    Ops with effects outside their tensors are refused unless ``allow_side_effects=True``, and a run may
    hold at most ``memory_budget`` bytes live at once (see ``torch_ir.runtime.sandbox`` and
    ``torch_ir.runtime.limits``). An IR read from a file (given as a path, or a module ``load_ir`` read:
    ``untrusted``) runs only allow-listed ops, plus those ``allow_ops`` names (``"inductor::op"``), and
    is dry-run first on fake tensors, so a value truly over the budget is refused even when its declared
    type lies. This class runs in the calling process, with software checks only; ``torch_ir.run``,
    ``Runner`` and the verifier run an IR read from a file in a worker process with hard limits
    (``torch_ir.runtime.worker``).
    """

    def __init__(
        self,
        ir: IR | Graph | str | os.PathLike[str],
        weights: Any = None,
        *,
        device: str | torch.device = "cpu",
        keep: Sequence[str] = (),
        keep_all: bool = False,
        strict: bool = True,
        allow_side_effects: bool = False,
        memory_budget: int | None = None,
        dry_run: bool | None = None,
        untrusted: bool | None = None,
        allow_ops: Iterable[str] = (),
        module: IR | None = None,
        policy: ExecutionPolicy | None = None,
    ):
        if isinstance(ir, (str, os.PathLike)):
            from torch_ir.serde import load

            ir = load(ir)
        self.graph: Graph = ir.graph if isinstance(ir, IR) else ir
        self.module: IR | None = ir if isinstance(ir, IR) else module
        """The module whose functions calls run (None for a graph given alone: it may not call)."""
        self._callees: dict[str, Interpreter] = {}
        if policy is None:
            from_file = untrusted if untrusted is not None else self.graph.table.loaded_from is not None
            policy = ExecutionPolicy(
                allow_side_effects=allow_side_effects,
                memory_budget=memory_budget,
                dry_run=from_file if dry_run is None else dry_run,
                untrusted=from_file,
                allow_ops=allowed_op_names(allow_ops),
            )
        self.policy = policy
        self.device = _device(device)
        self.keep_all = keep_all
        self.keep_names = set(keep)
        self.kept: dict[str, Any] = {}
        self.weights: dict[str, torch.Tensor] = {}
        self._copied: dict[str, torch.Tensor] = {}
        self.run_inputs: list[Any] = []
        """The flat inputs the last run (``run_flat``, ``iter_values``) ran on: the caller's tensors, or the
        private copies made of those the IR may write; compare them with the caller's to see what it wrote."""
        self._held_bytes = 0
        self._weight_storages: set[int] = set()
        self._caller_storages: dict[int, str] = {}
        self._build_plan()
        if weights is not None:
            self.bind(weights, strict=strict)

    def open(self, graph: Graph, *, keep: Sequence[str] = (), keep_all: bool = False) -> Interpreter:
        """An interpreter of another graph of the same module (a region, the same function with other values
        kept), under the same policy, with the same weights bound where that graph reads them."""
        other = Interpreter(
            graph,
            device=self.device,
            keep=keep,
            keep_all=keep_all,
            module=self.module,
            policy=replace(self.policy, dry_run=False),
        )
        if other._weight_slots:
            other.set_weights({name: self.weights[name] for name in other._weight_slots})
        return other

    # ----------------------------------------------------------------- plan

    def _build_plan(self) -> None:
        graph = self.graph
        slots: dict[int, int] = {}

        def slot(value: Value) -> int:
            return slots.setdefault(id(value), len(slots))

        self._guard = PlanGuard(graph, self.policy, self)
        self._input_slots = [slot(v) for v in graph.inputs]
        self._weight_slots = {name: slot(w) for name, w in graph.weights.items()}
        nodes = graph.nodes
        known = {n for n in self.keep_names}
        all_values = {v.name for v in graph.values()}
        unknown = sorted(known - all_values)
        if unknown:
            raise InterpreterError(f"keep= names values the graph does not have: {', '.join(unknown)}")
        steps: list[_Step] = []
        last_use: dict[int, int] = {}
        for index, node in enumerate(nodes):
            step = self._plan_node(node, slot)
            step.index = index
            for value in node.inputs:
                last_use[slots[id(value)]] = index
            for value in node.outputs:
                last_use.setdefault(slot(value), index)
            steps.append(step)
        pinned = {slots[id(v)] for v in graph.live_values()} | set(self._weight_slots.values())
        by_step: dict[int, list[int]] = {}
        for s, index in last_use.items():
            if s not in pinned:
                by_step.setdefault(index, []).append(s)
        for index, step in enumerate(steps):
            step.frees = by_step.get(index, [])
        self._steps = steps
        self._output_slots = [slots[id(v)] for v in graph.outputs]
        input_index = {v.name: i for i, v in enumerate(graph.inputs)}
        self._input_updates = [
            (input_index[u.target], slots[id(u.value)]) for u in graph.state_updates if u.kind == "input"
        ]
        self._weight_updates = [(u.target, slots[id(u.value)]) for u in graph.state_updates if u.kind != "input"]
        self._num_slots = len(slots)
        self._base_env: list[Any] = [None] * self._num_slots
        self._writes = any(step.writes for step in steps)

    def _plan_node(self, node: Node, slot: Callable[[Value], int]) -> _Step:
        if node.regions:  # region ops run their nested graphs (runtime/control_flow.py)
            from torch_ir.runtime.control_flow import region_kernel

            fn, schema = region_kernel(node, self.device, self.module, replace(self.policy, dry_run=False)), None
        elif is_call(node):
            fn, schema = self._call_kernel(node), None
        else:
            self.policy.admit(node)
            fn, schema = resolve_op(node.op_type)
        fn = self.policy.guard(node, fn, schema)
        self._guard.see(node, schema)
        args: list[Any] = []
        fills: list[tuple[int, int]] = []
        list_fills: list[tuple[int, list[Any], list[tuple[int, int]]]] = []
        kwargs: dict[str, Any] = {}
        kw_fills: list[tuple[str, int]] = []
        kw_list_fills: list[tuple[str, list[Any], list[tuple[int, int]]]] = []

        positions: dict[str, int | str] = {}

        def put(raw: Any, keyword: str | None, type_name: str, name: str = "") -> None:
            if name:
                positions[name] = keyword if keyword is not None else len(args)
            if isinstance(raw, Value):
                if keyword is None:
                    fills.append((len(args), slot(raw)))
                    args.append(None)
                else:
                    kw_fills.append((keyword, slot(raw)))
                    kwargs[keyword] = None
                return
            if isinstance(raw, list) and any(isinstance(r, Value) for r in raw):
                template = [None if isinstance(r, Value) else _literal(r) for r in raw]
                inner = [(i, slot(r)) for i, r in enumerate(raw) if isinstance(r, Value)]
                if keyword is None:
                    list_fills.append((len(args), template, inner))
                    args.append(None)
                else:
                    kw_list_fills.append((keyword, template, inner))
                    kwargs[keyword] = None
                return
            converted = convert_attr(raw, type_name, self.device)
            if keyword is None:
                args.append(converted)
            else:
                kwargs[keyword] = converted

        if schema is None:
            for operand in node.args:
                put(operand, None, "")
            for name, attr in node.attrs.items():
                put(attr, name, "")
            unpack = None
        else:
            operands: list[Any] = list(node.args)
            gap = False
            for argument in schema.arguments:
                type_name = _base_type(argument)
                if argument.name in node.attrs:
                    raw = node.attrs[argument.name]
                elif operands and type_name not in _NO_VALUE_TYPES:
                    raw = operands.pop(0)
                else:
                    gap = True
                    continue
                put(raw, argument.name if (argument.kwarg_only or gap) else None, type_name, argument.name)
            if operands:
                raise InterpreterError(
                    f"node {node.name} ({node.op_type}): {len(operands)} operand(s) left over after matching "
                    f"the op schema {schema}"
                )
            returns = schema.returns
            unpack = len(returns) > 1 or (len(returns) == 1 and str(returns[0].type).startswith("List["))
        outs = [slot(v) for v in node.outputs]
        keep = [(v.name, slot(v)) for v in node.outputs if self.keep_all or v.name in self.keep_names]
        info = op_info(node.op_type)
        writes = tuple(positions[name] for name in info.mutates if name in positions) if schema is not None else ()
        return _Step(
            node,
            fn,
            args,
            fills,
            list_fills,
            kwargs,
            kw_fills,
            outs,
            unpack,
            [],
            keep,
            kw_list_fills,
            info.reads_strides,
            writes=writes,
        )

    def _call_kernel(self, node: Node) -> Callable[..., list[Any]]:
        """The callable that runs the function ``node`` calls on its operands (one interpreter per callee)."""
        name = callee_name(node)
        if self.module is None:
            raise InterpreterError(
                f"node {node.name} calls {name!r}, but the interpreter runs a graph without its module"
            )
        functions = {n: f.graph for n, f in self.module.functions.items()}
        problem = check_call(node, functions)
        if problem:
            raise InterpreterError(f"node {node.name} ({CALL_OP}): {problem}")
        callee = self._callees.get(name)
        if callee is None:
            callee = Interpreter(
                functions[name], device=self.device, module=self.module, policy=replace(self.policy, dry_run=False)
            )
            self._callees[name] = callee
        reads = set(callee._weight_slots)
        writes = [i for i, v in enumerate(callee.graph.inputs) if v.name in callee._guard.written]

        def call(*operands: Any, **_attrs: Any) -> list[Any]:  # the callee attribute arrives as a keyword
            if reads and any(callee.weights.get(w) is not self.weights[w] for w in reads):
                callee.set_weights({w: self.weights[w] for w in reads})  # a body reading the module's weights
            try:
                with calling(name, operands):
                    results = callee.run_called(list(operands))
            except InterpreterError as exc:
                raise InterpreterError(f"in {name}, called by node {node.name}: {exc}") from exc
            for i in writes:  # the body wrote into its copy of an operand: the call writes the operand itself,
                given, held = operands[i], callee.run_inputs[i]  # which this plan copied first (call_writes)
                if isinstance(given, torch.Tensor) and isinstance(held, torch.Tensor) and held is not given:
                    given.copy_(held)
            return results

        return call

    # -------------------------------------------------------------- weights

    def bind(self, weights: Any, *, strict: bool = True) -> None:
        """Bind weights (state_dict, module, safetensors path or source); runs the init graph once."""
        from torch_ir.runtime.weights import bind_weights

        self.set_weights(bind_weights(self.graph, weights, device=self.device, strict=strict, policy=self.policy))

    def set_weights(self, tensors: dict[str, torch.Tensor]) -> None:
        """Bind already resolved tensors by IR name, unchecked (``bind`` checks)."""
        missing = [name for name in self._weight_slots if name not in tensors]
        if missing:
            from torch_ir.errors import WeightError

            raise WeightError(f"no tensor for weight(s): {', '.join(missing)}")
        bound = {name: tensors[name] for name in self._weight_slots}
        self.weights = self._guard.protect(bound)
        self._copied = {name: bound[name] for name, tensor in self.weights.items() if tensor is not bound[name]}
        base: list[Any] = [None] * self._num_slots
        for name, s in self._weight_slots.items():
            base[s] = self.weights[name]
        self._base_env = base
        self._account(self.weights)

    def assign(self, tensors: dict[str, torch.Tensor]) -> None:
        """Replace some bound weights by name (a program's state before a call), without rebinding."""
        for name, tensor in tensors.items():
            slot = self._weight_slots.get(name)
            if slot is None:
                raise InterpreterError(f"cannot assign @{name}: the IR has no weight of that name")
            self.weights[name] = tensor
            self._base_env[slot] = tensor
            self._copied.pop(name, None)
        self._account(self.weights)

    @property
    def written(self) -> list[str]:
        """The bound weights the IR wrote into without a state update: the private copies made of those it
        may write (``PlanGuard.protect``) that no longer hold what was bound."""
        from torch_ir.runtime.isolation import unchanged

        return [
            name
            for name, original in self._copied.items()
            if not self.graph.is_state_target(name) and not unchanged(self.weights[name], original)
        ]

    def _account(self, tensors: dict[str, Any]) -> None:
        """Sort the bound tensors: those the run holds on its own (derived weights, the declared state, private
        copies: they count against the memory budget) and the caller's (never counted, never written)."""
        owned: dict[int, int] = {}
        given: dict[int, str] = {}
        graph = self.graph
        state = set(self.module.state) if self.module is not None else set()
        for name, tensor in tensors.items():
            if not isinstance(tensor, torch.Tensor) or tensor.layout != torch.strided:
                continue
            key, nbytes = storage_key(tensor)
            weight = graph.weights.get(name)
            mine = (
                name in self._guard.written
                or name in state
                or graph.is_state_target(name)
                or (weight is not None and weight.kind == "derived")
            )
            if mine:
                owned[key] = nbytes
            else:
                given.setdefault(key, name)
        self._held_bytes = sum(owned.values())
        self._weight_storages = set(owned) | set(given)
        self._caller_storages = {key: f"weight @{name}" for key, name in given.items() if key not in owned}

    # ------------------------------------------------------------------ run

    def check_inputs(self, inputs: Sequence[Any]) -> list[Any]:
        """Check count, dtype and shape of the flat inputs; return them on the execution device."""
        return self._guard.check_inputs(checked_inputs(self.graph, inputs, self.device))

    def run_flat(self, inputs: Sequence[Any]) -> list[Any]:
        """Run on the flat graph inputs; return the flat graph outputs. State updates are applied after
        the call: bound buffers and parameters take their new values, inputs are written in place."""
        if self._weight_slots and not self.weights:
            raise InterpreterError("no weights are bound: pass weights= or call bind() first")
        callers = list(inputs)  # the caller's tensors: input updates are written here, not into copies
        return self._run(self.check_inputs(inputs), callers)

    def run_called(self, operands: list[Any]) -> list[Any]:
        """Run a function body on a call's operands: values the caller's interpreter computed (or bound), of
        the types the verified call gives them, so their shapes are not checked again as a caller's inputs
        are; the memory budget, the write guard and the copies of operands the body writes still apply."""
        if self.keep_all or self.keep_names:
            return self.run_flat(operands)
        callers = list(operands)
        return self._run(self._guard.check_inputs(list(operands)), callers)

    def _run(self, inputs: list[Any], callers: list[Any]) -> list[Any]:
        """Run on checked flat inputs (``callers``: the tensors the caller gave, which input updates write)."""
        self.run_inputs = inputs
        env = self._base_env.copy()
        for s, value in zip(self._input_slots, inputs):
            env[s] = value
        kept = self.kept = {}
        if self.keep_all or self.keep_names:
            for value, given_value in zip(self.graph.inputs, inputs):
                if self.keep_all or value.name in self.keep_names:
                    kept[value.name] = given_value
        outermost = active_limits() is None
        with torch.no_grad(), run_limits(self.policy.budget) as limits:
            if outermost and self._held_bytes:
                limits.allocate(self._held_bytes, "binding the weights the IR computes, its state and private copies")
            meter, protected = self._run_guards(limits, inputs, callers)
            try:
                for step in self._steps:
                    self._execute(step, env, meter, protected)
                    for name, s in step.keep:
                        kept[name] = env[s]
                    for s in step.frees:
                        meter.drop(env[s])
                        env[s] = None
            finally:
                meter.close()
        outputs = [env[s] for s in self._output_slots]
        self._apply_state_updates(env, callers)
        return outputs

    def _run_guards(
        self, limits: RunLimits, inputs: Sequence[Any], given: Sequence[Any]
    ) -> tuple[StorageMeter, dict[int, str] | None]:
        """The storage meter of one run, and (when the plan writes in place) the storages no op may write:
        the caller's weights and the inputs the run was given, by storage key."""
        external = set(self._weight_storages)
        protected: dict[int, str] | None = dict(self._caller_storages) if self._writes else None
        for value, tensor, original in zip(self.graph.inputs, inputs, given):
            if isinstance(tensor, torch.Tensor) and tensor.layout == torch.strided:
                key = storage_key(tensor)[0]
                external.add(key)
                if protected is not None and tensor is original:
                    protected.setdefault(key, f"input %{value.name}")
        return StorageMeter(limits, external), protected

    def iter_values(self, inputs: Sequence[Any]) -> Iterator[tuple[Node, list[Any]]]:
        """Run on flat inputs node by node, yielding ``(node, results)``; intermediates are freed as usual."""
        for node, values, _ in self.iter_call_values(inputs, into_calls=False):
            yield node, values

    def iter_call_values(
        self, inputs: Sequence[Any], *, into_calls: bool = True
    ) -> Iterator[tuple[Node, list[Any], Node | None]]:
        """As ``iter_values``, yielding ``(node, results, call)``; with ``into_calls``, a call's own results
        come after those of its callee's nodes (the body run again on the call's operands), each yielded
        with the call (``call`` is None for a node of this graph)."""
        given = list(inputs)
        inputs = self.run_inputs = self.check_inputs(inputs)
        env = self._base_env.copy()
        for s, value in zip(self._input_slots, inputs):
            env[s] = value
        limits = active_limits() or RunLimits(self.policy.budget, max_loop_iterations())
        with using_limits(limits):
            limits.allocate(self._held_bytes, "binding the weights the IR computes, its state and private copies")
            meter, protected = self._run_guards(limits, inputs, given)
        try:
            for step in self._steps:
                call = into_calls and step.node.op_type == CALL_OP
                operands = [env[s] for _, s in sorted(step.fills)] if call else []
                if call and self._guard.call_writes(step.node):  # the replay starts from what the call was given
                    operands = [v.clone() if isinstance(v, torch.Tensor) else v for v in operands]
                with torch.no_grad(), using_limits(limits):
                    values = self._execute(step, env, meter, protected)
                if call:
                    callee = self._callees[callee_name(step.node)]
                    for inner, inner_values in callee.iter_values(operands):
                        yield inner, inner_values, step.node
                yield step.node, values, None
                for s in step.frees:
                    meter.drop(env[s])
                    env[s] = None
        finally:
            meter.close()
            limits.release(self._held_bytes)

    def _execute(
        self, step: _Step, env: list[Any], meter: StorageMeter | None = None, protected: dict[int, str] | None = None
    ) -> list[Any]:
        """Call one node's op with its operands taken from ``env``, store its results there, return them.

        With a ``meter`` (a real run) the results count against the memory budget, and a node the dry run
        could not size is sized first on meta tensors from its real operands; ``protected`` storages (the
        caller's) may not be written."""
        args = step.args.copy()
        for i, s in step.fills:
            args[i] = env[s]
        for i, template, inner in step.list_fills:
            args[i] = _filled(template, inner, env)
        kwargs = step.kwargs
        if step.kw_fills or step.kw_list_fills:
            kwargs = dict(kwargs)
            for k, s in step.kw_fills:
                kwargs[k] = env[s]
            for k, template, inner in step.kw_list_fills:
                kwargs[k] = _filled(template, inner, env)
        if step.contiguous_first and args and isinstance(args[0], torch.Tensor):
            args[0] = args[0].contiguous()
        if protected and step.writes:
            self._check_writes(step, args, kwargs, protected)
        if meter is not None and step.index in self._guard.uncertain:
            self._check_size(step, args, kwargs, meter)
        try:
            result = step.fn(*args, **kwargs)
        except InterpreterError:
            raise
        except Exception as exc:
            raise self._node_error(step, args, kwargs, exc) from exc
        outs = step.outs
        if not outs:
            return []
        if len(outs) == 1 and not step.unpack and not (step.unpack is None and isinstance(result, (tuple, list))):
            values = [result]
        else:
            values = list(result)[: len(outs)]
        for s, r in zip(outs, values):
            env[s] = r
        if meter is not None:
            where = f"node {step.node.name} ({step.node.op_type})"
            for r in values:
                meter.hold(r, where)
        return values

    def _check_writes(self, step: _Step, args: list[Any], kwargs: dict[str, Any], protected: dict[int, str]) -> None:
        """Refuse a node about to write into a storage of the caller's (a weight, an input), which it reached
        through an alias the op registry does not describe."""
        for where in step.writes:
            tensor = args[where] if isinstance(where, int) else kwargs.get(where)
            if isinstance(tensor, torch.Tensor) and tensor.layout == torch.strided:
                owner = protected.get(storage_key(tensor)[0])
                if owner is not None:
                    node = step.node
                    raise RunLimitError(
                        f"node {node.name} ({node.op_type}) is refused: it would write into {owner}, which "
                        "belongs to the caller (reached through a view or alias)"
                    )

    def _check_size(self, step: _Step, args: list[Any], kwargs: dict[str, Any], meter: StorageMeter) -> None:
        """Size a node the dry run could not (its operands came from data-dependent values) on meta tensors
        from its real operands, and refuse it before it allocates past the memory budget."""
        from torch_ir.runtime.dry_run import predicted_bytes

        nbytes = predicted_bytes(step.fn, args, kwargs)
        if nbytes:
            meter.limits.check(nbytes, f"node {step.node.name} ({step.node.op_type})")

    def _apply_state_updates(self, env: list[Any], given: list[Any]) -> None:
        """Write each state update's value: into the bound weight, or into the caller's input tensor."""
        for index, s in self._input_updates:
            destination = given[index]
            if isinstance(destination, torch.Tensor):
                with torch.no_grad():
                    destination.copy_(env[s])
        for name, s in self._weight_updates:
            self.weights[name] = env[s]
            self._base_env[self._weight_slots[name]] = env[s]

    def _node_error(self, step: _Step, args: list[Any], kwargs: dict[str, Any], exc: Exception) -> InterpreterError:
        node = step.node
        where = f"node {node.name} ({node.op_type})"
        if node.module_path:
            where += f" in module {node.module_path}"
        source = node.meta.get("source")
        if isinstance(source, dict) and source.get("file"):
            where += f" at {source['file']}:{source.get('line')}"
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, NotImplementedError) or "Could not run" in text or "no kernel" in text.lower():
            namespace, _, rest = node.op_type.partition(".")
            return InterpreterError(
                f"{where}: op {node.op_type} has no kernel for device {self.device.type} ({text}). Register one "
                f"with torch_ir.register_op('{namespace}::{rest.split('.')[0]}', kernel=fn)"
            )
        operands = ", ".join(_describe(a) for a in args)
        return InterpreterError(f"{where} failed on ({operands}): {type(exc).__name__}: {text}")


def _device(device: str | torch.device) -> torch.device:
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise InterpreterError(f"device {device!r} is not a device torch knows: {exc}") from None
    check_device(resolved)
    return resolved


def _filled(template: list[Any], inner: list[tuple[int, int]], env: list[Any]) -> list[Any]:
    """A list operand: its literals from ``template``, its values from ``env`` at their positions."""
    items = template.copy()
    for j, s in inner:
        items[j] = env[s]
    return items


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"{str(value.dtype).removeprefix('torch.')}{list(value.shape)}"
    if isinstance(value, list):
        return "[" + ", ".join(_describe(v) for v in value) + "]"
    return repr(value)


def _shape_text(shape: Sequence[Any]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def run_init_graph(
    init: Graph,
    tensors: dict[str, torch.Tensor],
    *,
    device: str | torch.device = "cpu",
    policy: ExecutionPolicy | None = None,
) -> dict[str, Any]:
    """Run an init graph on resolved weights; return its results by name (the derived weights)."""
    interp = Interpreter(init, device=device, policy=policy or ExecutionPolicy())
    interp.set_weights({name: tensors[name] for name in init.weights})
    results = interp.run_flat([])
    return {value.name: result for value, result in zip(init.outputs, results)}


def run_ir(ir: IR | Graph, weights: Any, *args: Any, device: str = "cpu", **kwargs: Any) -> Any:
    """One-shot: bind ``weights`` and run ``ir`` on ``(args, kwargs)``."""
    return Interpreter(ir, weights, device=device)(*args, **kwargs)


__all__ = ["CallStructure", "Interpreter", "convert_attr", "resolve_op", "run_init_graph", "run_ir"]
