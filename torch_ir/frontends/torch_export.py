"""The torch.export frontend: ``nn.Module`` (on meta or not) -> ``ExportedProgram`` -> ``Graph``.

Nothing here materializes a weight: the model and inputs may live on the ``meta`` device. By default the
trace presents them as CPU tensors (``frontends/fake_device.py``), so the IR computes what the model
computes on the CPU; a graph that writes to a tensor is functionalized with torch's own machinery, and each
write to a buffer, parameter or input becomes an explicit state update of the IR.
"""

from __future__ import annotations

import base64
import contextlib
import inspect
import math
import operator
import os
import re
import site
import sysconfig
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import fx
from torch.export import ExportedProgram
from torch.export.graph_signature import (
    ConstantArgument,
    InputKind,
    OutputKind,
)

from torch_ir.errors import ExportError, IRError, TorchIRWarning
from torch_ir.frontends import control_flow
from torch_ir.frontends.export_failures import InputRecorder, explain
from torch_ir.frontends.fake_device import as_device_inputs, check_device, fake_capable, traced_as
from torch_ir.frontends.functionalize import BeyondFunctionalization, functionalize, has_writes
from torch_ir.frontends.pinned_sizes import warn_pinned_sizes
from torch_ir.frontends.torch_log import TorchLog, capture_torch_log
from torch_ir.ir.graph import Graph, Value
from torch_ir.ir.module import IR
from torch_ir.ir.run_record import StageReport, paused_gc
from torch_ir.ir.structure import spec_to_structure
from torch_ir.ir.types import DTYPES, ScalarType, SymbolRange, TensorType, ValueType

INLINE_CONSTANT_LIMIT = 4096
"""Lifted constants with a known value and at most this many elements are stored inline in the IR as a
JSON list; larger ones as base64 of their bytes (``{"encoding": "base64", "bytes": ...}``)."""

MAX_STORED_CONSTANT_BYTES = 256 * 2**20
"""Constants larger than this are not stored in the IR (a ``TorchIRWarning`` names them; a run needs their
value bound by name)."""

_TORCH_DIR = str(Path(torch.__file__).parent) + os.sep
_LIBRARY_DIRS = tuple(
    sorted(
        {
            str(Path(p)) + os.sep
            for p in (
                *site.getsitepackages(),
                site.getusersitepackages(),
                sysconfig.get_path("stdlib"),
                str(Path(__file__).resolve().parents[2]),  # torch-ir's own folder (a checkout, if editable)
            )
        },
        key=len,
        reverse=True,
    )
)
"""Folders of installed packages, and the one torch-ir is in: source paths inside them are stored relative
(``transformers/...``, ``torch_ir/zoo/gpt.py``) so the same model gives the same IR on every machine."""
_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)\n\s*(.*)')


def capture(
    model: torch.nn.Module,
    example_inputs: Sequence[Any] | Any = (),
    *,
    example_kwargs: Mapping[str, Any] | None = None,
    dynamic_shapes: Any = None,
    decompose: str | Mapping[Any, Callable[..., Any]] | None = None,
    name: str | None = None,
    device: str | torch.device = "cpu",
    functionalization: str = "ir",
) -> IR:
    """The IR of ``model`` called as ``model(*example_inputs, **example_kwargs)``, as traced (no passes run:
    ``torch_ir.extract_ir`` runs the default pipeline on it).

    ``device`` is the device the trace presents the model and inputs as (``"cpu"`` by default, so device
    checks, constants made in forward and CPU-only kernels behave as on the CPU; ``"meta"`` traces on meta
    as is). ``decompose`` is None (the ATen IR torch.export gives), ``"core_aten"``, or a decomposition
    table. Writes to tensors become values and state updates in the IR (``functionalization="ir"``,
    ``torch_ir.frontends.functionalize``), or by a second trace where aliasing is beyond that (and always
    with ``functionalization="torch"``: ``run_decompositions({})``). The model is never changed and no weight
    is materialized. ``ir.stages`` holds per-stage figures. A graph that runs only for one value of a number
    read from data warns (``TorchIRWarning``); one that can never run is an ``ExportError``
    (``frontends/pinned_sizes.py``).
    """
    stages = StageReport()
    program = export_program(
        model,
        example_inputs,
        example_kwargs=example_kwargs,
        dynamic_shapes=dynamic_shapes,
        decompose=decompose,
        stages=stages,
        device=device,
        functionalization=functionalization,
    )
    model_name = name or type(model).__name__
    warn_pinned_sizes(program, symbol_names(program, model, dynamic_shapes), model_name)
    graph = convert_functional(program, model, dynamic_shapes=dynamic_shapes, stages=stages, device=device)
    graph.meta["model"] = model_name
    return IR(graph, stages)


def convert_functional(
    program: ExportedProgram,
    model: torch.nn.Module | None,
    *,
    dynamic_shapes: Any = None,
    stages: StageReport | None = None,
    device: str | torch.device = "cpu",
    inputs_as_outputs: bool = False,
) -> Graph:
    """Convert ``program`` and functionalize its writes in the IR; where that is beyond
    ``torch_ir.frontends.functionalize``, functionalize the program with ``run_decompositions({})`` and
    convert that instead."""
    stages = stages or StageReport()
    with stages.measure("convert"):
        graph = convert_program(program, model, dynamic_shapes=dynamic_shapes)
        if not has_writes(graph):
            return graph
        try:
            functionalize(graph, inputs_as_outputs=inputs_as_outputs)
            return graph
        except BeyondFunctionalization:
            pass
    with stages.measure("functionalize"):
        program = functionalize_program(program, device)
    with stages.measure("convert"):
        return convert_program(program, model, dynamic_shapes=dynamic_shapes)


def functional_program(
    program: ExportedProgram,
    model: torch.nn.Module | None,
    *,
    dynamic_shapes: Any = None,
    device: str | torch.device = "cpu",
    inputs_as_outputs: bool = False,
) -> ExportedProgram:
    """``program`` when it has no writes or ``functionalize`` can rewrite them after conversion (tried on a
    conversion that is thrown away), else ``program`` functionalized by torch."""
    if not _has_mutation(program):
        return program
    try:
        functionalize(
            convert_program(program, model, dynamic_shapes=dynamic_shapes), inputs_as_outputs=inputs_as_outputs
        )
        return program
    except BeyondFunctionalization:
        return functionalize_program(program, device)


def functionalize_program(program: ExportedProgram, device: str | torch.device = "cpu") -> ExportedProgram:
    """``program`` with its writes turned into outputs by torch (``run_decompositions({})``), traced as
    ``device`` as ``export_program`` traces."""
    target = check_device(device)
    fake = target.type != "meta" and fake_capable()
    with traced_as(target) if fake else contextlib.nullcontext(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", r".*isinstance\(treespec, LeafSpec\)", FutureWarning)
        return program.run_decompositions({})


def export_program(
    model: torch.nn.Module,
    example_inputs: Sequence[Any] | Any = (),
    *,
    example_kwargs: Mapping[str, Any] | None = None,
    dynamic_shapes: Any = None,
    decompose: str | Mapping[Any, Callable[..., Any]] | None = None,
    stages: StageReport | None = None,
    device: str | torch.device = "cpu",
    torch_log: TorchLog | None = None,
    inputs_given: bool = True,
    deferred_asserts: bool = False,
    functionalization: str = "torch",
) -> ExportedProgram:
    """Run ``torch.export.export(strict=False)`` as ``device`` with checked arguments, then functionalize.

    Errors become ``ExportError``. With ``functionalization="torch"`` the program returned has no op that writes
    to a tensor: when the exported graph has one, it goes through ``run_decompositions({})`` (and only
    then). With ``"ir"`` the writes stay, for ``torch_ir.frontends.functionalize`` to turn into values and
    state updates after conversion; ``no_grad``/``autocast`` regions still go through ``run_decompositions``.

    What torch logs, warns or prints to stderr meanwhile is recorded (into ``torch_log`` when given)
    instead of printed; a failure's ``ExportError`` summarizes it and keeps it whole in ``torch_log``, shows
    torch's message and where the model's code raised it, and says its cause (``ExportError.cause``, see
    ``frontends/export_failures.py``); ``inputs_given=False`` says the caller built the inputs itself.
    ``deferred_asserts`` keeps conditions on dynamic sizes that torch cannot prove for the whole range as
    runtime assertions of the graph instead of failing (torch's ``prefer_deferred_runtime_asserts_over_guards``).
    """
    stages = stages or StageReport()
    if not isinstance(model, torch.nn.Module):
        raise ExportError(f"extract_ir needs a torch.nn.Module, got {type(model).__name__}")
    target = check_device(device)
    args = _as_args(example_inputs)
    kwargs = dict(example_kwargs or {})
    _check_call(model, args, kwargs)
    fake = target.type != "meta" and fake_capable()
    if fake:
        args, kwargs = as_device_inputs((args, kwargs), target)
    log = torch_log if torch_log is not None else TorchLog()
    recorder = InputRecorder()
    with traced_as(target) if fake else contextlib.nullcontext(), capture_torch_log(log):
        with stages.measure("export"):
            try:
                with recorder.watching(model):
                    program = torch.export.export(
                        model,
                        args,
                        kwargs=kwargs,
                        dynamic_shapes=dynamic_shapes,
                        strict=False,
                        prefer_deferred_runtime_asserts_over_guards=deferred_asserts,
                    )
            except Exception as exc:  # torch raises many types; each becomes one clear ExportError
                failure = explain(exc, recorder, inputs_given)
                error = ExportError(failure.message(type(model).__name__) + _log_note(log))
                error.torch_log = log.text
                error.cause = failure.cause
                raise error from exc
        if decompose is not None:
            with stages.measure("decompose"):
                program = _decompose(program, decompose)
        elif (
            _has_inlinable_regions(program)
            or _has_functorch_transforms(program)
            or (functionalization == "torch" and _has_mutation(program))
        ):
            with stages.measure("functionalize"), warnings.catch_warnings():
                warnings.filterwarnings("ignore", r".*isinstance\(treespec, LeafSpec\)", FutureWarning)
                program = program.run_decompositions({})
    return program


def _log_note(log: TorchLog) -> str:
    """What the error message says of torch's captured log: a few headlines and where the rest is."""
    if not log:
        return ""
    lines = sum(record.count("\n") + 1 for record in log.records)
    shown = "".join(f"\n  torch: {line}" for line in log.summary())
    hidden = f"{lines} line{'s' if lines != 1 else ''} of torch log hidden"
    return f"{shown}\n({hidden}: run with -v to see them, or read ExportError.torch_log)"


INLINED_HIGHER_ORDER_OPS = ("wrap_with_set_grad_enabled", "wrap_with_autocast")
"""Region ops torch.export makes of ``torch.no_grad()`` and ``torch.autocast`` blocks in forward. They are
inlined (an empty decomposition table): the body's ops join the graph, autocast's casts made explicit."""


def _has_inlinable_regions(program: ExportedProgram) -> bool:
    return any(
        node.op == "call_function"
        and isinstance(node.target, torch._ops.HigherOrderOperator)
        and node.target.name() in INLINED_HIGHER_ORDER_OPS
        for node in program.graph.nodes
    )


FUNCTORCH_MODULE = "torch._functorch"
"""Where the calls torch.export leaves for ``torch.vmap`` (and ``associative_scan``, built on it) live:
``_vmap_increment_nesting``, ``_add_batch_dim``, ``_remove_batch_dim`` ... around the per-example ops.
Functionalizing the program applies the batching rules, so the IR holds the batched ATen ops."""


def _has_functorch_transforms(program: ExportedProgram) -> bool:
    return any(_is_functorch_call(node) for node in program.graph.nodes)


def _is_functorch_call(node: fx.Node) -> bool:
    module = getattr(node.target, "__module__", None) or ""
    return node.op == "call_function" and module.startswith(FUNCTORCH_MODULE)


def _has_mutation(program: ExportedProgram) -> bool:
    """Whether an op of the graph writes to one of its arguments (its schema says ``Tensor(a!)``)."""
    return any(
        node.op == "call_function" and isinstance(node.target, torch._ops.OpOverload) and node.target._schema.is_mutable
        for node in program.graph.nodes
    )


def _as_args(example_inputs: Any) -> tuple[Any, ...]:
    if isinstance(example_inputs, tuple):
        return example_inputs
    if isinstance(example_inputs, list):
        return tuple(example_inputs)
    return (example_inputs,)


def _check_call(model: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    try:
        signature = inspect.signature(model.forward)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise ExportError(
            f"example inputs do not match {type(model).__name__}.forward{signature}: {exc}. "
            "Pass positional inputs as a tuple and keyword inputs with example_kwargs="
        ) from None


def _decompose(program: ExportedProgram, decompose: Any) -> ExportedProgram:
    if decompose == "core_aten":
        return program.run_decompositions()
    if isinstance(decompose, Mapping):
        return program.run_decompositions(dict(decompose))
    raise ExportError(f"decompose must be None, 'core_aten' or a decomposition table, got {decompose!r}")


# ------------------------------------------------------------------- converter


def convert_program(
    program: ExportedProgram, model: torch.nn.Module | None = None, *, dynamic_shapes: Any = None
) -> Graph:
    """Build a ``Graph`` from an ``ExportedProgram``; ``model`` supplies tied-weight aliases."""
    with paused_gc():
        return _Converter(program, model, dynamic_shapes).run()


class _Converter:
    """One conversion: walks the FX graph once, node by node."""

    def __init__(self, program: ExportedProgram, model: torch.nn.Module | None, dynamic_shapes: Any):
        self.program = program
        self.model = model
        self.graph = Graph()
        self.env: dict[fx.Node, Any] = {}
        self.symbol_names = symbol_names(program, model, dynamic_shapes)
        self._dim_cache: dict[Any, int | str] = {}
        self.multi_names = self._multi_result_names()
        self._signatures: dict[Any, tuple[str, list[tuple[str, bool, bool, Any]]]] = {}

    def run(self) -> Graph:
        self._add_symbols()
        self._add_placeholders()
        for node in self.program.graph.nodes:
            if node.op == "call_function":
                self._add_call(node)
            elif node.op == "output":
                self._add_outputs(node)
            elif node.op == "get_attr":  # regions of control-flow ops (frontends/control_flow.py)
                self.env[node] = control_flow.fetch_submodule(self.program.graph_module, node)
            elif node.op not in ("placeholder",):
                raise ExportError(
                    f"node {node.name}: unsupported FX node kind {node.op!r} ({node.target}); "
                    "torch-ir takes flat ATen graphs"
                )
        self.graph.meta["device"] = self._device()
        return self.graph

    # -- symbols and types
    def _add_symbols(self) -> None:
        for symbol, vr in self.program.range_constraints.items():
            name = self._dim_name(symbol)
            upper = vr.upper
            high = None if not _finite(upper) else int(upper)
            self.graph.symbols[str(name)] = SymbolRange(int(vr.lower) if _finite(vr.lower) else 0, high)

    def _dim_name(self, expr: Any) -> int | str:
        cached = self._dim_cache.get(expr)
        if cached is not None:
            return cached
        if self.symbol_names and hasattr(expr, "xreplace"):
            text = str(expr.xreplace(self.symbol_names))
        else:
            text = str(expr)
        result: int | str = int(text) if text.lstrip("-").isdigit() else text.replace(" ", "")
        self._dim_cache[expr] = result
        return result

    def _dim(self, dim: Any) -> int | str:
        if isinstance(dim, int):
            return dim
        if isinstance(dim, torch.SymInt):
            node = dim.node
            if node.is_nested_int() if hasattr(node, "is_nested_int") else False:
                return str(dim)
            expr = node.expr
            if getattr(expr, "is_number", False):
                return int(expr)
            return self._dim_name(expr)
        return int(dim)

    def _type_of(self, val: Any, where: str) -> ValueType | None:
        if isinstance(val, torch.Tensor):
            dtype = str(val.dtype).removeprefix("torch.")
            if dtype not in DTYPES:
                raise ExportError(f"{where}: dtype {val.dtype} is not supported by the IR")
            return TensorType(tuple(self._dim(d) for d in val.shape), dtype)
        if isinstance(val, (torch.SymInt, int)) and not isinstance(val, bool):
            return ScalarType("int")
        if isinstance(val, (torch.SymFloat, float)):
            return ScalarType("float")
        if isinstance(val, (torch.SymBool, bool)):
            return ScalarType("bool")
        return None

    # -- placeholders
    def _add_placeholders(self) -> None:
        placeholders = [n for n in self.program.graph.nodes if n.op == "placeholder"]
        specs = self.program.graph_signature.input_specs
        aliases = _alias_table(self.model)
        constants = self.program.constants
        user_leaves: list[dict[str, Any]] = []
        for node, spec in zip(placeholders, specs, strict=True):
            val = node.meta.get("val")
            kind = spec.kind
            if kind == InputKind.USER_INPUT:
                if isinstance(spec.arg, ConstantArgument):
                    user_leaves.append({"kind": "constant", "value": _jsonify(spec.arg.value, node.name)})
                    continue
                type_ = self._type_of(val, f"input {node.name}")
                self.env[node] = self.graph.add_input(node.name, type_)
                user_leaves.append({"kind": "input", "index": len(self.graph.inputs) - 1})
            elif kind in (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR):
                target = str(spec.target)
                type_ = self._type_of(val, f"weight {target}")
                wkind = {InputKind.PARAMETER: "parameter", InputKind.BUFFER: "buffer"}.get(kind, "constant")
                persistent = kind == InputKind.PARAMETER or bool(kind == InputKind.BUFFER and spec.persistent)
                data = None
                if kind == InputKind.CONSTANT_TENSOR:
                    data = stored_value(constants.get(target))
                    if data is None:
                        self._unknown_constant(node, target)
                others = [a for a in aliases.get(target, ()) if a != target]
                self.env[node] = self.graph.add_weight(target, type_, wkind, others, persistent, data)
            else:
                raise ExportError(
                    f"input {node.name}: input kind {kind.name} is not supported "
                    "(script objects and effect tokens cannot be expressed in the IR)"
                )
        in_spec = self.program.call_spec.in_spec
        if in_spec is not None:
            self.graph.input_structure = spec_to_structure(in_spec, iter(user_leaves))

    def _unknown_constant(self, node: fx.Node, target: str) -> None:
        """Mark and report a lifted constant whose value the IR cannot hold."""
        source = next((s for s in (self._meta(u).get("source") for u in node.users) if s), None)
        where = f"{source['file']}:{source['line']} ({source['code']})" if source else "an unknown line"
        self.graph.meta.setdefault("unknown_constants", {})[target] = where
        warnings.warn(
            f"constant {target} made at {where} has no known value in the IR (it was built on the meta "
            f"device, or is over {MAX_STORED_CONSTANT_BYTES // 2**20} MiB); running the IR needs it bound by "
            f"name ({{'{target}': tensor}}). Trace with device='cpu' (the default) to capture a small one",
            TorchIRWarning,
            stacklevel=4,
        )

    # -- calls
    def _multi_result_names(self) -> dict[fx.Node, dict[int, str]]:
        names: dict[fx.Node, dict[int, str]] = {}
        for node in self.program.graph.nodes:
            if node.op == "call_function" and node.target is operator.getitem:
                src, index = node.args
                if isinstance(src, fx.Node) and isinstance(index, int):
                    names.setdefault(src, {})[index] = node.name
        return names

    def _add_call(self, node: fx.Node) -> None:
        target = node.target
        if target is operator.getitem and isinstance(node.args[0], fx.Node):
            source = self.env.get(node.args[0])
            if isinstance(source, list):
                self.env[node] = source[node.args[1]]  # type: ignore[index]
                return
        regions: list[Graph] = []
        if isinstance(target, torch._ops.OpOverload):
            op_type, arguments = self._signature(target)
            args, attrs = self._split_arguments(node, arguments)
        elif (
            isinstance(target, torch._ops.HigherOrderOperator)
            and target.name() in control_flow.CONVERTED_HIGHER_ORDER_OPS
        ):
            op_type, args, attrs, regions = control_flow.convert_region_op(self, node)
        elif isinstance(target, torch._ops.HigherOrderOperator):
            raise ExportError(
                f"node {node.name}: higher-order op {target.name()} is not supported yet; "
                "export without torch.cond/while_loop/checkpointing, or decompose it"
            )
        elif callable(target) and getattr(target, "__module__", None) in _PYTHON_MODULES:
            module = _PYTHON_MODULES[target.__module__]
            op_type = f"{module}.{target.__name__}"
            args = [self._arg(a, node) for a in node.args]
            attrs = {}
        elif _is_functorch_call(node):
            raise ExportError(
                f"node {node.name}: {getattr(target, '__name__', target)} of a torch.vmap (or a transform built on "
                "it, such as associative_scan) is left in the graph after functionalization; torch-ir takes the "
                "batched ops that functionalization makes of it"
            )
        else:
            raise ExportError(f"node {node.name}: unsupported call target {target!r}")

        val = node.meta.get("val")
        multi = isinstance(val, (list, tuple))
        vals = list(val) if isinstance(val, (list, tuple)) else ([] if val is None else [val])
        types = [self._type_of(v, f"result of {node.name}") for v in vals]
        if multi:
            names = self.multi_names.get(node, {})
            out_names = [names.get(i) or self.graph.fresh_name(f"{node.name}#{i}") for i in range(len(vals))]
        else:
            out_names = [node.name] if vals else []
        ir_node = self.graph.create_node(
            op_type, args, attrs, types, name=node.name, output_names=out_names, meta=self._meta(node)
        )
        ir_node.regions = regions
        if multi:
            self.env[node] = list(ir_node.outputs)
        elif ir_node.outputs:
            self.env[node] = ir_node.outputs[0]

    def _signature(self, target: torch._ops.OpOverload) -> tuple[str, list[tuple[str, bool, bool, Any]]]:
        """The op type and (name, kwarg_only, has_default, default) per argument, once per overload."""
        cached = self._signatures.get(target)
        if cached is None:
            arguments = [
                (a.name, a.kwarg_only, a.has_default_value(), a.default_value if a.has_default_value() else None)
                for a in target._schema.arguments
            ]
            cached = self._signatures[target] = (str(target), arguments)
        return cached

    def _split_arguments(
        self, node: fx.Node, arguments: list[tuple[str, bool, bool, Any]]
    ) -> tuple[list[Any], dict[str, Any]]:
        args: list[Any] = []
        attrs: dict[str, Any] = {}
        n_positional = len(node.args)
        for i, (name, kwarg_only, has_default, default) in enumerate(arguments):
            if i < n_positional and not kwarg_only:
                raw = node.args[i]
            elif name in node.kwargs:
                raw = node.kwargs[name]
            elif has_default:
                raw = default
            else:
                continue
            converted = self._arg(raw, node, name)
            if _holds_value(converted):
                args.append(converted)
            else:
                attrs[name] = converted
        return args, attrs

    def _arg(self, raw: Any, node: fx.Node, name: str = "") -> Any:
        if isinstance(raw, fx.Node):
            value = self.env.get(raw)
            if not isinstance(value, Value):
                raise ExportError(f"node {node.name}: argument {name or raw.name} is not a single value")
            return value
        if isinstance(raw, (list, tuple)):
            items = [self._arg(r, node, name) for r in raw]
            if any(isinstance(i, list) for i in items) and any(_holds_value(i) for i in items):
                raise ExportError(f"node {node.name}: nested value lists in argument {name} are not supported")
            return items
        return _jsonify(raw, f"node {node.name}, argument {name}")

    def _meta(self, node: fx.Node) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        stack = node.meta.get("nn_module_stack")
        if stack:
            entries = [[str(path), type_name(cls)] for path, cls in stack.values()]
            entries = [e for e in entries if not e[0].startswith("_empty_nn_module_stack")]
            if entries:
                meta["module_stack"] = entries
        trace = node.meta.get("stack_trace")
        if trace:
            source = _source_of(trace)
            if source:
                meta["source"] = source
        return meta

    # -- outputs
    def _add_outputs(self, node: fx.Node) -> None:
        returned = node.args[0]
        specs = self.program.graph_signature.output_specs
        outputs: list[Value] = []
        leaves: list[dict[str, Any]] = []
        for raw, spec in zip(returned, specs, strict=True):  # type: ignore[arg-type]
            if isinstance(spec.arg, ConstantArgument) or raw is None or not isinstance(raw, fx.Node):
                leaves.append({"kind": "constant", "value": _jsonify(getattr(spec.arg, "value", raw), "output")})
                continue
            value = self.env[raw]
            if spec.kind == OutputKind.USER_OUTPUT:
                leaves.append({"kind": "output", "index": len(outputs)})
                outputs.append(value)
            elif spec.kind in _STATE_KINDS:
                self._add_state_update(_STATE_KINDS[spec.kind], str(spec.target), value, raw)
            else:
                raise ExportError(f"output {raw.name}: output kind {spec.kind.name} is not supported")
        self.graph.set_outputs(outputs)
        out_spec = self.program.call_spec.out_spec
        if out_spec is not None:
            self.graph.output_structure = spec_to_structure(out_spec, iter(leaves))

    def _add_state_update(self, kind: str, target: str, value: Value, raw: fx.Node) -> None:
        if kind != "input" and not self.graph.has_weight(target):
            weight = next((w for w in self.graph.weights.values() if target in w.aliases), None)
            if weight is None:
                raise ExportError(f"output {raw.name}: it updates {target}, which is not a weight of the graph")
            target = weight.name
        if kind != "input":
            kind = self.graph.weight(target).kind
        try:
            self.graph.add_state_update(kind, target, value)
        except IRError as exc:
            raise ExportError(f"output {raw.name}: {exc}") from None

    def _device(self) -> str:
        """The device the trace presented the model as (its parameters' fake device): what the IR computes."""
        for node in self.program.graph.nodes:
            val = node.meta.get("val")
            if isinstance(val, torch.Tensor):
                return str(val.device)
        for value in self.program.state_dict.values():
            return str(value.device)
        return "cpu"


_STATE_KINDS = {
    OutputKind.BUFFER_MUTATION: "buffer",
    OutputKind.PARAMETER_MUTATION: "parameter",
    OutputKind.USER_INPUT_MUTATION: "input",
}
"""Output kinds of a functionalized program that write state, and the state update kind of each."""

_PYTHON_MODULES = {
    "_operator": "operator",
    "operator": "operator",
    "math": "math",
    "builtins": "builtins",
    "torch": "torch",
    "torch.fx.experimental.sym_node": "torch",
}
"""Python modules whose functions torch.export calls on symbolic values, and the op namespace of each."""


def _holds_value(arg: Any) -> bool:
    if isinstance(arg, Value):
        return True
    return isinstance(arg, list) and any(isinstance(a, Value) for a in arg)


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError, OverflowError):
        return False


def type_name(cls: Any) -> str:
    """A class as module stacks name it: ``transformers.models.llama.modeling_llama.LlamaDecoderLayer``."""
    if isinstance(cls, str):
        return cls
    return f"{cls.__module__}.{cls.__qualname__}"


def _source_of(trace: str) -> dict[str, Any] | None:
    frames = [f for f in _FRAME.findall(trace) if not f[0].startswith("<eval_with_key>")]  # generated FX code
    if not frames:
        return None
    user = [f for f in frames if not f[0].startswith(_TORCH_DIR)]
    file, line, function, code = (user or frames)[-1]
    return {"file": _portable_path(file), "line": int(line), "function": function, "code": code.strip()}


def _portable_path(file: str) -> str:
    """``file`` relative to the package folder it is installed in, or as it is when it is the user's own."""
    for folder in _LIBRARY_DIRS:
        if file.startswith(folder):
            return file[len(folder) :]
    return file


def _jsonify(value: Any, where: str) -> Any:
    """Turn a non-tensor argument into a JSON-typed attribute."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, torch.dtype):
        return str(value).removeprefix("torch.")
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, torch.layout):
        return str(value).removeprefix("torch.")
    if isinstance(value, torch.memory_format):
        return str(value).removeprefix("torch.")
    if isinstance(value, (torch.SymInt, torch.SymFloat, torch.SymBool)):
        node = value.node
        if node.is_constant() if hasattr(node, "is_constant") else False:
            return node.constant_value() if hasattr(node, "constant_value") else int(value)
        raise ExportError(f"{where}: symbolic value {value} has no producing node")
    if isinstance(value, (list, tuple)):
        return [_jsonify(v, where) for v in value]
    if isinstance(value, complex):
        return {"real": value.real, "imag": value.imag}
    if isinstance(value, torch.Tensor):
        raise ExportError(f"{where}: a tensor argument was not lifted as a graph value")
    if hasattr(value, "name") and hasattr(value, "value"):  # enums
        return str(value.name)
    raise ExportError(f"{where}: argument of type {type(value).__name__} cannot be stored as a JSON attribute")


def stored_value(tensor: Any) -> Any:
    """How the IR stores a constant's value: a JSON list when small, base64 of its bytes when larger, None
    when it has no value (a meta tensor) or is larger than ``MAX_STORED_CONSTANT_BYTES``."""
    if not isinstance(tensor, torch.Tensor) or tensor.device.type == "meta" or _is_fake_tensor(tensor):
        return None
    data = tensor.detach().cpu()
    if data.numel() <= INLINE_CONSTANT_LIMIT and not data.is_complex():
        if data.dtype.is_floating_point:
            data = data.to(torch.float64)
        return data.tolist()
    nbytes = data.numel() * data.element_size()
    if nbytes > MAX_STORED_CONSTANT_BYTES:
        return None
    raw = data.contiguous().view(torch.uint8).numpy().tobytes()
    return {"encoding": "base64", "bytes": base64.b64encode(raw).decode("ascii")}


def _is_fake_tensor(tensor: torch.Tensor) -> bool:
    from torch._subclasses.fake_tensor import FakeTensor

    return isinstance(tensor, FakeTensor)


def _alias_table(model: torch.nn.Module | None) -> dict[str, list[str]]:
    """Every state_dict name, mapped to all the names of the same tensor (tied weights)."""
    if model is None:
        return {}
    by_tensor: dict[int, list[str]] = {}
    named = list(model.named_parameters(remove_duplicate=False)) + list(model.named_buffers(remove_duplicate=False))
    keep_alive = []
    for name, tensor in named:
        keep_alive.append(tensor)
        by_tensor.setdefault(id(tensor), []).append(name)
    return {name: names for names in by_tensor.values() if len(names) > 1 for name in names}


def symbol_names(program: ExportedProgram, model: torch.nn.Module | None, dynamic_shapes: Any) -> dict[Any, Any]:
    """Map torch's symbols (s0, s70) to the user's ``Dim`` names, where an input dim is a plain symbol."""
    if dynamic_shapes is None or program.call_spec.in_spec is None:
        return {}
    import sympy
    from torch.utils import _pytree as pytree

    args_spec, kwargs_spec = program.call_spec.in_spec.children()
    arg_specs, kwarg_names = args_spec.children(), list(kwargs_spec.context or [])
    if isinstance(dynamic_shapes, Mapping):
        params = list(inspect.signature(model.forward).parameters) if model is not None else []
        top = [dynamic_shapes.get(params[i]) if i < len(params) else None for i in range(len(arg_specs))]
        top += [dynamic_shapes.get(k) for k in kwarg_names]
    else:
        top = list(dynamic_shapes) + [None] * len(kwarg_names)
    leaf_counts = [s.num_leaves for s in arg_specs] + [s.num_leaves for s in kwargs_spec.children()]
    if len(top) != len(leaf_counts):
        return {}

    def is_tensor_spec(x: Any) -> bool:
        return (
            x is None
            or (isinstance(x, Mapping) and all(isinstance(k, int) for k in x))
            or (isinstance(x, (list, tuple)) and all(x_ is None or hasattr(x_, "__name__") for x_ in x))
        )

    per_leaf: list[Any] = []
    for spec, count in zip(top, leaf_counts):
        flat = [spec] if count == 1 else pytree.tree_flatten(spec, is_leaf=is_tensor_spec)[0]
        per_leaf.extend(flat if len(flat) == count else [None] * count)
    user_nodes = [
        n
        for n, s in zip(
            [n for n in program.graph.nodes if n.op == "placeholder"], program.graph_signature.input_specs, strict=True
        )
        if s.kind == InputKind.USER_INPUT
    ]
    mapping: dict[Any, Any] = {}
    for node, spec in zip(user_nodes, per_leaf):
        val = node.meta.get("val")
        if not isinstance(val, torch.Tensor) or not spec:
            continue
        for axis, dim in spec.items() if isinstance(spec, Mapping) else enumerate(spec):
            name = getattr(dim, "__name__", None)
            if not name or axis >= val.dim() or not isinstance(val.shape[axis], torch.SymInt):
                continue
            expr = val.shape[axis].node.expr  # type: ignore[union-attr, attr-defined]
            if isinstance(expr, sympy.Symbol) and re.fullmatch(r"[A-Za-z_]\w*", name):
                if name in {str(v) for k, v in mapping.items() if k != expr}:
                    continue
                mapping[expr] = sympy.Symbol(name, integer=True, positive=True)
    return mapping


__all__ = [
    "capture",
    "convert_functional",
    "convert_program",
    "export_program",
    "functional_program",
    "functionalize_program",
    "symbol_names",
    "type_name",
]
