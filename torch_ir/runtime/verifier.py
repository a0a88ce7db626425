"""Numeric verification: run the IR with real weights through the interpreter and compare with eager PyTorch.

When an output differs, the report names the first node (in the IR's topological order) whose value
differs from eager PyTorch: the real model is re-exported with torch.export and its graph run with
``torch.fx.Interpreter`` side by side with the IR, comparing values by name as they are produced.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils import _pytree as pytree

from torch_ir.errors import RunLimitError, TorchIRError, VerificationError, WeightError
from torch_ir.ir.graph import Graph, Value
from torch_ir.ir.module import IR
from torch_ir.ir.types import TensorType
from torch_ir.ops import op_info
from torch_ir.runtime.declared_types import bind_inputs
from torch_ir.runtime.interpreter import Interpreter
from torch_ir.runtime.weights import ChainSource, MappingSource, WeightSource, as_source, required_weights
from torch_ir.runtime.worker import open_interpreter

TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-9),
    "float32": (1e-4, 1e-5),
    "float16": (1e-2, 1e-3),
    "bfloat16": (1.6e-2, 1e-2),
    "complex64": (1e-4, 1e-5),
    "complex128": (1e-7, 1e-9),
}
"""Default ``(rtol, atol)`` by dtype; other dtypes (ints, bool, float8) must match exactly or use the fp8 row."""

_FP8 = (1.25e-1, 1e-1)


def tolerance(dtype: str, rtol: float | None = None, atol: float | None = None) -> tuple[float, float]:
    """The ``(rtol, atol)`` used for ``dtype``, overridden by the given values."""
    default = TOLERANCES.get(dtype, _FP8 if dtype.startswith("float8") else (0.0, 0.0))
    return (default[0] if rtol is None else rtol, default[1] if atol is None else atol)


@dataclass
class Comparison:
    """How far one tensor is from its expected value."""

    shape: tuple[int, ...]
    dtype: str
    max_abs: float
    max_rel: float
    rtol: float
    atol: float
    passed: bool
    problem: str = ""


def compare_tensors(got: Any, expected: Any, rtol: float | None = None, atol: float | None = None) -> Comparison:
    """Compare two values (tensors or scalars) with tolerances chosen by dtype: ``|g-e| <= atol + rtol*|e|``."""
    if not isinstance(expected, torch.Tensor):
        expected = torch.as_tensor(expected)
    if not isinstance(got, torch.Tensor):
        got = torch.as_tensor(got)
    dtype = str(expected.dtype).removeprefix("torch.")
    r, a = tolerance(dtype, rtol, atol)
    shape = tuple(expected.shape)
    if tuple(got.shape) != shape:
        return Comparison(
            tuple(got.shape), dtype, math.inf, math.inf, r, a, False, f"shape {list(got.shape)} != {list(shape)}"
        )
    got_dtype = str(got.dtype).removeprefix("torch.")
    if got_dtype != dtype:
        return Comparison(shape, got_dtype, math.inf, math.inf, r, a, False, f"dtype {got_dtype} != {dtype}")
    if got.numel() == 0:
        return Comparison(shape, dtype, 0.0, 0.0, r, a, True)
    g = got.detach().to("cpu", torch.float64 if not got.is_complex() else torch.complex128)
    e = expected.detach().to("cpu", g.dtype)
    nan_g, nan_e = torch.isnan(g), torch.isnan(e)
    if not torch.equal(nan_g, nan_e):
        return Comparison(shape, dtype, math.nan, math.nan, r, a, False, "NaN in different places")
    finite = torch.isfinite(e) & torch.isfinite(g)
    same_inf = (g == e) | nan_e
    if not bool((finite | same_inf).all()):
        return Comparison(shape, dtype, math.inf, math.inf, r, a, False, "inf in different places")
    diff = torch.where(finite, (g - e).abs(), torch.zeros((), dtype=torch.float64))
    scale = e.abs().where(finite, torch.zeros((), dtype=torch.float64))
    max_abs = float(diff.max())
    max_rel = relative_error(diff, scale)
    passed = bool((diff <= a + r * scale).all())
    return Comparison(shape, dtype, max_abs, max_rel, r, a, passed)


def relative_error(diff: torch.Tensor, scale: torch.Tensor) -> float:
    """The largest ``|got - expected| / |expected|`` over the elements whose reference is not 0.

    Where the reference is 0 a relative error means nothing (only the absolute one counts there). When
    every differing element has a zero reference the answer is ``inf``; when nothing differs it is 0.
    """
    nonzero = scale > 0
    if bool(nonzero.any()):
        rel = float((diff[nonzero] / scale[nonzero]).max())
    else:
        rel = 0.0
    if rel == 0.0 and bool((diff > 0).any()):
        return math.inf
    return rel


@dataclass
class OutputCheck:
    """One model output: where it is in the output structure, and how it compared."""

    name: str
    comparison: Comparison | None
    passed: bool
    problem: str = ""

    @property
    def shape(self) -> tuple[int, ...] | None:
        """The output's shape."""
        return None if self.comparison is None else self.comparison.shape

    @property
    def dtype(self) -> str | None:
        """The output's dtype."""
        return None if self.comparison is None else self.comparison.dtype

    @property
    def max_abs(self) -> float | None:
        """The largest absolute error."""
        return None if self.comparison is None else self.comparison.max_abs

    @property
    def max_rel(self) -> float | None:
        """The largest relative error."""
        return None if self.comparison is None else self.comparison.max_rel


@dataclass
class Divergence:
    """The first node (in topological order) whose value differs from eager PyTorch."""

    node: str
    op_type: str
    value: str
    module_path: str
    source: dict[str, Any] | None
    comparison: Comparison
    index: int
    region: str = ""
    """The regions that hold the node (``scan/combine/``), '' for a node of the top-level graph."""

    @property
    def location(self) -> str:
        """``file:line (code)`` of the node's source, or ''."""
        if not self.source:
            return ""
        text = f"{self.source.get('file')}:{self.source.get('line')}"
        code = self.source.get("code")
        return f"{text}  {code}" if code else text


@dataclass
class TypeMismatch:
    """A value whose shape or dtype at run time is not the type the IR declares for it."""

    node: str
    op_type: str
    value: str
    problem: str

    def __str__(self) -> str:
        return f"node {self.node} ({self.op_type}), value %{self.value}: {self.problem}"


@dataclass
class VerificationReport:
    """The result of a numeric verification: per-output checks, the first divergence, and any error."""

    model: str
    passed: bool
    outputs: list[OutputCheck] = field(default_factory=list)
    divergence: Divergence | None = None
    error: str = ""
    notes: list[str] = field(default_factory=list)
    weight_sources: dict[str, str] = field(default_factory=dict)
    type_mismatches: list[TypeMismatch] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.passed

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data."""
        return {
            "model": self.model,
            "passed": self.passed,
            "error": self.error,
            "outputs": [
                {
                    "name": o.name,
                    "passed": o.passed,
                    "problem": o.problem,
                    "shape": list(o.shape) if o.shape is not None else None,
                    "dtype": o.dtype,
                    "max_abs": o.max_abs,
                    "max_rel": o.max_rel,
                    "rtol": o.comparison.rtol if o.comparison else None,
                    "atol": o.comparison.atol if o.comparison else None,
                }
                for o in self.outputs
            ],
            "divergence": None
            if self.divergence is None
            else {
                "node": self.divergence.node,
                "region": self.divergence.region,
                "op_type": self.divergence.op_type,
                "value": self.divergence.value,
                "module_path": self.divergence.module_path,
                "source": self.divergence.source,
                "max_abs": self.divergence.comparison.max_abs,
                "max_rel": self.divergence.comparison.max_rel,
            },
            "notes": list(self.notes),
            "weight_sources": dict(self.weight_sources),
            "type_mismatches": [
                {"node": m.node, "op_type": m.op_type, "value": m.value, "problem": m.problem}
                for m in self.type_mismatches
            ],
        }

    def __str__(self) -> str:
        status = "PASSED" if self.passed else "FAILED"
        lines = [f"verification of {self.model}: {status}"]
        if self.error:
            lines.append(f"  error: {self.error}")
        if self.outputs:
            width = max(len(o.name) for o in self.outputs)
            lines.append(
                f"  {'output'.ljust(width)}  {'shape':<18} {'dtype':<9} {'max abs':>10} {'max rel':>10}  result"
            )
            for o in self.outputs:
                c = o.comparison
                shape = str(list(c.shape)) if c else "-"
                dtype = c.dtype if c else "-"
                mabs = _num(c.max_abs) if c else "-"
                mrel = _num(c.max_rel) if c else "-"
                verdict = "ok" if o.passed else "FAIL"
                tol = f" (rtol={c.rtol:g}, atol={c.atol:g})" if c else ""
                extra = f": {o.problem}" if o.problem else ""
                lines.append(
                    f"  {o.name.ljust(width)}  {shape:<18} {dtype:<9} {mabs:>10} {mrel:>10}  {verdict}{tol}{extra}"
                )
        d = self.divergence
        if d is not None:
            lines.append(f"  first divergence: node {d.node} ({d.op_type}), value %{d.value}")
            if d.module_path:
                lines.append(f"    module: {d.module_path}")
            if d.location:
                lines.append(f"    source: {d.location}")
            lines.append(
                f"    {d.comparison.dtype}{list(d.comparison.shape)}: max abs error {_num(d.comparison.max_abs)}, "
                f"max rel error {_num(d.comparison.max_rel)}"
                + (f" ({d.comparison.problem})" if d.comparison.problem else "")
            )
        for mismatch in self.type_mismatches[:10]:
            lines.append(f"  type mismatch: {mismatch}")
        if len(self.type_mismatches) > 10:
            lines.append(f"  ... and {len(self.type_mismatches) - 10} more type mismatch(es)")
        if self.weight_sources:
            lines.append(f"  weights not from the given weights ({len(self.weight_sources)}):")
            for name, where in self.weight_sources.items():
                lines.append(f"    {name}: {where}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)


def _num(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else str(x)


def verify_ir_with_state_dict(
    ir: IR | Graph,
    state_dict: Mapping[str, Any] | WeightSource | Any,
    original_model: torch.nn.Module | None = None,
    test_inputs: Sequence[Any] | Any = (),
    test_kwargs: Mapping[str, Any] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    *,
    device: str | torch.device = "cpu",
    localize: bool = True,
    strict: bool = True,
    fill_missing_from_model: bool = False,
    check_types: bool = False,
    allow_side_effects: bool = False,
    dry_run: bool = False,
) -> tuple[bool, VerificationReport]:
    """Run ``ir`` with ``state_dict`` and compare with ``original_model(*test_inputs, **test_kwargs)``.

    Parameters and persistent buffers must come from ``state_dict``: any that is missing raises a
    ``WeightError`` listing every missing name, unless ``fill_missing_from_model=True`` takes them from
    ``original_model``. Non-persistent buffers and constants (never in a state_dict) are taken from
    ``original_model``. ``report.weight_sources`` names every weight that did not come from
    ``state_dict`` and where it came from. Every output's shape and dtype is compared with the type the
    IR declares (with ``check_types=True``, every intermediate's too); a mismatch fails the verification
    and names the node. ``allow_side_effects`` and ``dry_run`` go to the ``Interpreter`` (the command line
    dry-runs, as the IR comes from a file). Returns ``(is_valid, report)``; ``str(report)`` prints a table,
    ``report.to_dict()`` gives plain data. Weights of the wrong shape or dtype, and keys the IR does not
    know, raise ``WeightError``. Weights a pass removed because nothing read them
    (``graph.meta["unused_weights"]``, e.g. BatchNorm's ``num_batches_tracked``) are expected and
    ignored; ``strict=False`` also accepts any other extra key, listing it in the report's notes.
    """
    if original_model is None:
        raise VerificationError("verify_ir_with_state_dict needs original_model= to compute the expected outputs")
    graph = ir.graph if isinstance(ir, IR) else ir
    args = tuple(test_inputs) if isinstance(test_inputs, (tuple, list)) else (test_inputs,)
    kwargs = dict(test_kwargs or {})
    source = as_source(state_dict)
    report = VerificationReport(str(graph.meta.get("model", type(original_model).__name__)), False)
    extra, report.weight_sources = _weights_from_model(graph, source, original_model, fill_missing_from_model)
    if extra:
        source = ChainSource(source, MappingSource(extra, f"module {type(original_model).__name__}"))
    interp = open_interpreter(  # an IR read from a file runs in a worker process (torch_ir.runtime.worker)
        ir, source, device=device, strict=strict, allow_side_effects=allow_side_effects, dry_run=dry_run or None
    )
    known = {n for w in required_weights(graph) for n in w.names}
    unused = [k for k in source.keys() if k not in known]
    if unused:
        shown = ", ".join(unused[:8]) + (", ..." if len(unused) > 8 else "")
        report.notes.append(f"{len(unused)} weight(s) the IR does not read were ignored: {shown}")
    interp.check_inputs(interp.flatten_inputs(args, kwargs))  # inputs the IR cannot take raise here, named
    ir_args, ir_kwargs = _cloned((args, kwargs))
    flat_inputs = interp.flatten_inputs(ir_args, ir_kwargs)
    bound_before = {name: t.clone() for name, t in interp.weights.items() if graph.is_state_target(name)}
    with torch.no_grad(), _restored_state(original_model):
        try:
            got = interp.run_flat(flat_inputs)
        except RunLimitError:
            raise  # refused or stopped by a limit: no verdict on the IR (exit 2 on the command line)
        except TorchIRError as exc:
            report.error = str(exc)
            return False, report
        eager_args, eager_kwargs = _cloned((args, kwargs))
        try:
            expected = original_model(*eager_args, **eager_kwargs)
        except Exception as exc:
            raise VerificationError(
                f"{type(original_model).__name__} itself failed on the test inputs: {type(exc).__name__}: {exc}"
            ) from exc
        state_checks = _compare_state(interp, original_model, flat_inputs, eager_args, eager_kwargs, rtol, atol)
    report.type_mismatches = check_declared_types(interp, flat_inputs, got, intermediates=check_types)
    interp.set_weights({**interp.weights, **bound_before})
    report.outputs = _compare_outputs(graph, got, expected, rtol, atol) + state_checks
    report.passed = bool(report.outputs) and all(o.passed for o in report.outputs) and not report.type_mismatches
    if not report.outputs:
        report.error = "the IR has no outputs to compare"
    elif report.type_mismatches and not report.error:
        first = report.type_mismatches[0]
        report.error = f"a value does not have the type the IR declares: {first}"
    if not report.passed and localize:
        try:
            with _restored_state(original_model):
                report.divergence = find_divergence(interp, original_model, args, kwargs, rtol, atol)
            if report.divergence is None:
                report.notes.append("no intermediate value differs beyond tolerance; only the outputs do")
        except Exception as exc:  # localization is best effort: the verdict stands without it
            report.notes.append(f"could not localize the divergence: {type(exc).__name__}: {exc}")
    return report.passed, report


def verify_ir(
    ir: IR | Graph,
    model: torch.nn.Module,
    inputs: Sequence[Any] | Any = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    device: str | torch.device = "cpu",
    localize: bool = True,
    check_types: bool = False,
) -> tuple[bool, VerificationReport]:
    """Verify ``ir`` against ``model`` with the model's own weights (non-persistent buffers included)."""
    return verify_ir_with_state_dict(
        ir,
        model,
        original_model=model,
        test_inputs=inputs,
        test_kwargs=kwargs,
        rtol=rtol,
        atol=atol,
        device=device,
        localize=localize,
        check_types=check_types,
    )


def _weights_from_model(
    graph: Graph, source: WeightSource, model: torch.nn.Module, fill: bool
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors taken from ``model`` for weights ``source`` lacks, and where each came from.

    Non-persistent buffers and constants may come from the model; parameters and persistent buffers only
    when ``fill``; otherwise their absence is a ``WeightError`` naming all of them.
    """
    named = dict(model.named_buffers(remove_duplicate=False))
    named.update(model.named_parameters(remove_duplicate=False))
    model_name = type(model).__name__
    out: dict[str, torch.Tensor] = {}
    sources: dict[str, str] = {}
    required: list[str] = []
    for weight in required_weights(graph):
        if weight.data is not None or any(n in source for n in weight.names):
            continue
        must_be_given = weight.kind == "parameter" or (weight.kind == "buffer" and weight.persistent)
        if must_be_given and not fill:
            required.append(weight.name)
            continue
        for name in weight.names:
            if name in named:
                out[name] = named[name]
                why = (
                    f"{weight.kind} filled in from the model (fill_missing_from_model)"
                    if must_be_given
                    else ("non-persistent buffer" if weight.kind == "buffer" or not weight.persistent else weight.kind)
                )
                sources[weight.name] = f"module {model_name}: {why}"
                break
    if required:
        raise WeightError(
            f"the given weights ({source.description}) lack {len(required)} parameter(s) or persistent "
            f"buffer(s) the IR reads: {', '.join(required)}. Verification compares the IR run with these "
            "weights, so they must be given; pass fill_missing_from_model=True (--fill-from-model) to take "
            "them from the model instead"
        )
    return out, sources


def check_declared_types(
    interp: Interpreter, inputs: Sequence[Any], outputs: Sequence[Any], *, intermediates: bool = False
) -> list[TypeMismatch]:
    """Every value whose run-time shape or dtype differs from its declared type, symbols bound consistently.

    Outputs are checked from ``outputs`` (the results of a run on ``inputs``); with ``intermediates``
    the IR runs once more node by node and every node result is checked as it is produced.
    """
    graph = interp.graph
    bindings = bind_inputs([v.type for v in graph.inputs], inputs)
    mismatches: list[TypeMismatch] = []

    def check(value: Value, result: Any) -> None:
        if not isinstance(value.type, TensorType):
            return
        problem = bindings.mismatch(value.type, result)
        if problem:
            node = value.producer
            mismatches.append(
                TypeMismatch(
                    node.name if node is not None else value.name,
                    node.op_type if node is not None else "input",
                    value.name,
                    problem,
                )
            )

    if intermediates:
        seen: set[str] = set()
        for node, results in interp.iter_values(inputs):
            for value, result in zip(node.outputs, results):
                seen.add(value.name)
                check(value, result)
        for value, result in zip(graph.outputs, outputs):
            if value.name not in seen:
                check(value, result)
    else:
        for value, result in zip(graph.outputs, outputs):
            check(value, result)
    return mismatches


def _leaf_paths(structure: dict[str, Any] | None, count: int) -> list[tuple[str, dict[str, Any]]]:
    if structure is None:
        return [(f"output[{i}]", {"kind": "output", "index": i}) for i in range(count)]
    out: list[tuple[str, dict[str, Any]]] = []

    def walk(node: dict[str, Any], path: str) -> None:
        kind = node["kind"]
        if kind in ("output", "constant"):
            out.append((path or "output", node))
            return
        keys = node.get("keys")
        for i, item in enumerate(node["items"]):
            key = keys[i] if keys is not None and i < len(keys) else i
            part = f".{key}" if isinstance(key, str) else f"[{key}]"
            walk(item, f"{path}{part}" if path else (str(key) if isinstance(key, str) else f"output[{key}]"))

    walk(structure, "")
    return out


def _compare_outputs(
    graph: Graph, got: list[Any], expected: Any, rtol: float | None, atol: float | None
) -> list[OutputCheck]:
    leaves = _leaf_paths(graph.output_structure, len(got))
    eager = pytree.tree_leaves(expected)
    if len(eager) != len(leaves):
        tensor_leaves = [(p, n) for p, n in leaves if n["kind"] == "output"]
        eager_tensors = [e for e in eager if isinstance(e, torch.Tensor)]
        if len(eager_tensors) != len(tensor_leaves):
            return [
                OutputCheck(
                    "outputs",
                    None,
                    False,
                    f"the model returns {len(eager_tensors)} tensors, the IR {len(tensor_leaves)}",
                )
            ]
        leaves, eager = tensor_leaves, eager_tensors
    checks: list[OutputCheck] = []
    for (path, leaf), exp in zip(leaves, eager):
        if leaf["kind"] == "constant":
            same = leaf.get("value") == exp
            checks.append(OutputCheck(path, None, same, "" if same else f"constant {leaf.get('value')!r} != {exp!r}"))
            continue
        value = got[leaf["index"]]
        cmp = compare_tensors(value, exp, rtol, atol)
        checks.append(OutputCheck(path, cmp, cmp.passed, cmp.problem))
    return checks


def _cloned(value: Any) -> Any:
    """A copy of a call's inputs, so that a model that writes to its inputs cannot change the caller's."""
    return pytree.tree_map(lambda x: x.clone() if isinstance(x, torch.Tensor) else x, value)


@contextlib.contextmanager
def _restored_state(model: torch.nn.Module) -> Iterator[None]:
    """Put the model's parameters and buffers back as they were: verifying a model does not change it."""
    named = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    saved = {name: t.detach().clone() for name, t in named.items() if t.device.type != "meta"}
    try:
        yield
    finally:
        with torch.no_grad():
            for name, tensor in saved.items():
                named[name].copy_(tensor)


def _compare_state(
    interp: Interpreter,
    model: torch.nn.Module,
    ir_inputs: list[Any],
    eager_args: tuple[Any, ...],
    eager_kwargs: dict[str, Any],
    rtol: float | None,
    atol: float | None,
) -> list[OutputCheck]:
    """Each state update of the IR against eager's state after the call: buffers, parameters, inputs."""
    graph = interp.graph
    if not graph.state_updates:
        return []
    named = {
        **dict(model.named_parameters(remove_duplicate=False)),
        **dict(model.named_buffers(remove_duplicate=False)),
    }
    eager_inputs = interp.flatten_inputs(eager_args, eager_kwargs)
    index = {v.name: i for i, v in enumerate(graph.inputs)}
    checks: list[OutputCheck] = []
    for update in graph.state_updates:
        label = f"state {update.target_ref}"
        if update.kind == "input":
            got, expected = ir_inputs[index[update.target]], eager_inputs[index[update.target]]
        else:
            weight = graph.weight(update.target)
            key = next((n for n in weight.names if n in named), None)
            if key is None:
                checks.append(OutputCheck(label, None, False, f"the model has no parameter or buffer {update.target}"))
                continue
            got, expected = interp.weights[update.target], named[key]
        cmp = compare_tensors(got, expected, rtol, atol)
        checks.append(OutputCheck(label, cmp, cmp.passed, cmp.problem))
    return checks


def _eager_values(model: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Re-export the real model as extraction does (functionalized when it writes to tensors, so node names
    line up with the IR's) and run its FX graph, yielding ``(node name, value)`` as they are produced."""
    from torch_ir.frontends.torch_export import export_program

    program = export_program(model, args, example_kwargs=kwargs)
    gm = program.graph_module
    in_spec = program.call_spec.in_spec
    try:
        from torch.export._tree_utils import reorder_kwargs

        kwargs = reorder_kwargs(kwargs, in_spec) if in_spec is not None else kwargs
    except Exception:  # older torch: keep the call's order
        pass
    flat_user = pytree.tree_leaves((args, kwargs))
    specs = program.graph_signature.input_specs
    state = program.state_dict
    constants = program.constants
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    user_iter = iter(flat_user)
    from torch.export.graph_signature import ConstantArgument, InputKind

    feeds: list[Any] = []
    for spec in specs:
        if spec.kind == InputKind.USER_INPUT:
            given = next(user_iter, None)
            feeds.append(spec.arg.value if isinstance(spec.arg, ConstantArgument) else given)
        elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER):
            feeds.append(state[spec.target] if spec.target in state else constants[spec.target])
        else:
            feeds.append(constants[spec.target])
    if len(feeds) != len(placeholders):
        raise VerificationError("the re-exported model's inputs do not line up with its placeholders")

    interp = torch.fx.Interpreter(gm)
    env: dict[torch.fx.Node, Any] = {}
    users_left = {n: len(n.users) for n in gm.graph.nodes}
    feed_iter = iter(feeds)
    with torch.no_grad():
        for node in gm.graph.nodes:
            if node.op == "placeholder":
                env[node] = next(feed_iter)
                continue
            if node.op == "output":
                break
            args_, kwargs_ = _fetch(node, env)
            value = getattr(interp, node.op)(node.target, args_, kwargs_)
            env[node] = value
            yield node.name, value
            for inp in node.all_input_nodes:
                users_left[inp] -= 1
                if users_left[inp] == 0:
                    env.pop(inp, None)
            if users_left[node] == 0:
                env.pop(node, None)


def _fetch(node: torch.fx.Node, env: dict[torch.fx.Node, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    def load(n: torch.fx.Node) -> Any:
        return env[n]

    args = torch.fx.node.map_arg(node.args, load)
    kwargs = torch.fx.node.map_arg(node.kwargs, load)
    return args, kwargs  # type: ignore[return-value]


def find_divergence(
    interp: Interpreter,
    model: torch.nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    rtol: float | None = None,
    atol: float | None = None,
) -> Divergence | None:
    """The first IR node whose value differs from eager PyTorch, comparing values by name as both sides run.

    Values only one side has (renamed or removed by passes) and values of different shapes are skipped;
    each value is dropped as soon as it has been compared, so memory stays bounded.
    """
    grad_enabled = torch.is_grad_enabled()
    try:
        return _find_divergence(interp, model, args, kwargs, rtol, atol)
    finally:  # both value streams suspend inside no_grad blocks; finishing them out of order leaks the mode
        torch.set_grad_enabled(grad_enabled)


def _find_divergence(
    interp: Interpreter,
    model: torch.nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    rtol: float | None,
    atol: float | None,
) -> Divergence | None:
    graph = interp.graph
    ir_names: dict[str, int] = {}
    for index, node in enumerate(graph.nodes):
        if op_info(node.op_type).nondeterministic:
            continue
        for value in node.outputs:
            ir_names[value.name] = index
    ir_iter = interp.iter_values(interp.flatten_inputs(args, kwargs))
    eager_iter = _eager_values(model, args, kwargs)
    eager_names: set[str] = set()
    pending_ir: dict[str, Any] = {}
    pending_eager: dict[str, Any] = {}
    best: Divergence | None = None
    ir_done = eager_done = False
    while not (ir_done and eager_done):
        if not ir_done:
            try:
                node, values = next(ir_iter)
                for value, result in zip(node.outputs, values):
                    if value.name not in ir_names:
                        continue
                    if value.name in pending_eager:
                        best = _check(
                            best, graph, value.name, result, pending_eager.pop(value.name), ir_names, rtol, atol
                        )
                    elif value.name not in eager_names:
                        pending_ir[value.name] = result
            except StopIteration:
                ir_done = True
        if not eager_done:
            try:
                name, result = next(eager_iter)
                if name in ir_names:
                    eager_names.add(name)
                    if name in pending_ir:
                        best = _check(best, graph, name, pending_ir.pop(name), result, ir_names, rtol, atol)
                    else:
                        pending_eager[name] = result
                elif isinstance(result, (tuple, list)):
                    pass
            except StopIteration:
                eager_done = True
        if ir_done:
            pending_eager.clear()
        if eager_done:
            pending_ir.clear()
    if best is not None:  # a region op: look for the first differing value inside its regions
        best = _inside_regions(best, interp, model, args, kwargs, rtol, atol)
    return best


def _inside_regions(
    best: Divergence,
    interp: Interpreter,
    model: torch.nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    rtol: float | None,
    atol: float | None,
) -> Divergence:
    node = interp.graph.value(best.value).producer
    if node is None or not node.regions:
        return best
    from torch_ir.runtime.region_divergence import locate_in_model

    found = locate_in_model(node, interp, model, args, kwargs, lambda a, b: compare_tensors(a, b, rtol, atol))
    if found is None:
        return best
    path, value, cmp = found
    inner = value.producer
    assert inner is not None
    source = inner.meta.get("source") if isinstance(inner.meta.get("source"), dict) else None
    return Divergence(
        path + inner.name, inner.op_type, path + value.name, inner.module_path, source, cmp, best.index, path
    )


def _check(
    best: Divergence | None,
    graph: Graph,
    name: str,
    got: Any,
    expected: Any,
    order: dict[str, int],
    rtol: float | None,
    atol: float | None,
) -> Divergence | None:
    index = order[name]
    if best is not None and best.index <= index:
        return best
    if not isinstance(got, torch.Tensor) or not isinstance(expected, torch.Tensor):
        return best
    if got.shape != expected.shape or got.dtype != expected.dtype:
        return best
    cmp = compare_tensors(got, expected, rtol, atol)
    if cmp.passed:
        return best
    value = graph.value(name)
    node = value.producer
    assert node is not None
    source = node.meta.get("source") if isinstance(node.meta.get("source"), dict) else None
    return Divergence(node.name, node.op_type, name, node.module_path, source, cmp, index)


__all__ = [
    "TOLERANCES",
    "Comparison",
    "TypeMismatch",
    "check_declared_types",
    "relative_error",
    "Divergence",
    "OutputCheck",
    "VerificationReport",
    "compare_tensors",
    "find_divergence",
    "tolerance",
    "verify_ir",
    "verify_ir_with_state_dict",
]
