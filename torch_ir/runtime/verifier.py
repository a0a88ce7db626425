"""Numeric verification: run the IR with real weights through the interpreter and compare with eager PyTorch.

A verification runs trials: the given inputs, then informative ones drawn with their own seeds
(``torch_ir.runtime.trial_inputs``), with the model's constant weights redrawn from the second on
(``torch_ir.runtime.informative_weights``). The IR runs on private copies of weights and inputs
(``torch_ir.runtime.isolation``), its weights come from the given ones by the rule of
``torch_ir.runtime.given_weights``, and the regions each trial ran are counted (``torch_ir.runtime.coverage``).
Outputs are compared element by element with tolerances scaled by dtype and magnitude.

When an output differs, the report names the first node (in the IR's topological order) whose value
differs from eager PyTorch: the real model is re-exported with torch.export and its graph run with
``torch.fx.Interpreter`` side by side with the IR, comparing values by name as they are produced.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch.utils import _pytree as pytree

from torch_ir.errors import InputError, InterpreterError, RunLimitError, TorchIRError, VerificationError
from torch_ir.ir.graph import Graph, Value
from torch_ir.ir.module import IR
from torch_ir.ir.types import TensorType
from torch_ir.ops import op_info
from torch_ir.runtime.call_sites import CallSite, flat_interpreter
from torch_ir.runtime.coverage import RegionCoverage, coverage_warnings, region_paths
from torch_ir.runtime.declared_types import bind_inputs
from torch_ir.runtime.given_weights import verification_source
from torch_ir.runtime.informative_weights import redrawn_weights
from torch_ir.runtime.interpreter import Interpreter
from torch_ir.runtime.isolation import (
    PrivateSource,
    clone_inputs,
    describe_writer,
    find_writers,
    private_source,
    unchanged,
    written_inputs,
)
from torch_ir.runtime.node_errors import NodeError, record_node_error
from torch_ir.runtime.trial_inputs import TrialInputs
from torch_ir.runtime.weights import ChainSource, MappingSource, WeightSource, as_source, required_weights
from torch_ir.runtime.worker import open_interpreter

TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-9),
    "float32": (1e-4, 1e-5),
    "float16": (1e-2, 1e-2),
    "bfloat16": (1.6e-2, 5e-2),
    "complex64": (1e-4, 1e-5),
    "complex128": (1e-7, 1e-9),
}
"""Default ``(rtol, atol)`` by dtype; other dtypes (ints, bool, float8) must match exactly or use the fp8 row.

A default ``atol`` is relative to the magnitude of the reference: an element passes when
``|got - expected| <= rtol * |expected| + atol * rms(expected)`` (with a floor of ``atol * 1e-3``), so small
outputs are held to their own scale and large ones do not fail on rounding next to their zeros. An
``atol`` the caller gives is absolute."""

_FP8 = (1.25e-1, 1e-1)
ATOL_FLOOR = 1e-3
"""The floor of a default ``atol``, as a fraction of it (for a reference that is all zeros)."""


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
    """Compare two values (tensors or scalars) element by element: ``|g-e| <= atol + rtol*|e|``, with the
    dtype's tolerances; a default ``atol`` scales with the magnitude (root mean square) of ``expected``."""
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
    if atol is None and a > 0:
        a = a * max(float(scale.square().mean().sqrt()), ATOL_FLOOR)
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
    site: CallSite | None = None
    """The call that put the node there, for a node of a function's body (``runtime/call_sites.py``)."""

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
class Trial:
    """One run of a verification: its seed, what it ran on, with which weights, and whether it matched."""

    index: int
    seed: int
    inputs: str
    weights: str
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        """The trial as plain data."""
        return {
            "trial": self.index,
            "seed": self.seed,
            "inputs": self.inputs,
            "weights": self.weights,
            "passed": self.passed,
        }


@dataclass
class VerificationReport:
    """The result of a numeric verification: per-output checks (the failing trial's, or the largest errors
    over the trials), the first divergence, any error, the trials, and the regions each reached."""

    model: str
    passed: bool
    outputs: list[OutputCheck] = field(default_factory=list)
    divergence: Divergence | None = None
    error: str = ""
    notes: list[str] = field(default_factory=list)
    weight_sources: dict[str, str] = field(default_factory=dict)
    type_mismatches: list[TypeMismatch] = field(default_factory=list)
    node_errors: list[NodeError] = field(default_factory=list)
    """Every value the divergence search compared, with its error (``runtime/node_errors.py``)."""
    trials: list[Trial] = field(default_factory=list)
    coverage: dict[str, int] = field(default_factory=dict)
    """Each region of the IR (``cond_1/true``) and in how many trials it ran."""
    warnings: list[str] = field(default_factory=list)
    """What the trials could not show: regions never reached, outputs no input reaches."""

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
                **(self.divergence.site.to_dict() if self.divergence.site else {}),
            },
            "notes": list(self.notes),
            "weight_sources": dict(self.weight_sources),
            "type_mismatches": [
                {"node": m.node, "op_type": m.op_type, "value": m.value, "problem": m.problem}
                for m in self.type_mismatches
            ],
            "node_errors": [e.to_dict() for e in self.node_errors],
            "trials": [t.to_dict() for t in self.trials],
            "coverage": dict(self.coverage),
            "warnings": list(self.warnings),
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
            if d.site is not None:
                lines.append(f"    in call {d.site.call} of function {d.site.function} (its node {d.site.node})")
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
        lines.extend(trial_lines(self.trials, self.coverage))
        for warning in self.warnings:
            lines.append(f"  warning: {warning}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)


def trial_lines(trials: Sequence[Trial], coverage: Mapping[str, int]) -> list[str]:
    """The report lines of the trials (one each) and of the regions they reached."""
    lines = []
    for t in trials:
        lines.append(
            f"  trial {t.index} (seed {t.seed}): {'ok' if t.passed else 'FAIL'}: {t.inputs}; weights {t.weights}"
        )
    if coverage:
        reached = ", ".join(f"{path} {count}/{len(trials)}" for path, count in coverage.items())
        lines.append(f"  regions run (trials): {reached}")
    return lines


def _num(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else str(x)


DEFAULT_TRIALS = 3
"""How many trials a verification runs by default: the given inputs, then inputs drawn with two more seeds."""

WRITES_SHOWN = 8
"""How many weights and inputs the IR wrote into are named one by one (with the node that wrote)."""


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
    trials: int = DEFAULT_TRIALS,
    seed: int = 0,
    input_ranges: Mapping[str, tuple[float, float]] | None = None,
    example_inputs: bool = False,
    redraw_constants: bool = True,
) -> tuple[bool, VerificationReport]:
    """Run ``ir`` with ``state_dict`` and compare with ``original_model(*test_inputs, **test_kwargs)``, in
    ``trials`` trials.

    Trial 0 runs on the given inputs (with ``example_inputs=True`` they only give shapes and dtypes, and
    trial 0 draws its values too); trial ``t`` draws informative inputs with seed ``seed + t`` (token ids
    inside the vocabulary the IR's embedding has, or ``input_ranges[name] = (low, high)``; new sizes for
    symbolic dimensions), and from trial 1 on, with ``redraw_constants``, every constant floating parameter
    and persistent buffer (a norm's weight 1, bias 0, BatchNorm's statistics) is redrawn on both sides
    (``torch_ir.runtime.informative_weights``), so no layer is an identity in every trial. An output whose
    value the IR keeps while the model's changes fails; outputs no trial changes are reported; regions no
    trial ran are named in ``report.warnings``.

    The IR runs on private copies of the weights and inputs; eager never sees them. A copy the IR wrote
    into (through ops that alias without saying so) fails the verification, naming the node. A buffer or
    input eager writes must have a state update in the IR, and each state update is compared with eager's.

    Parameters and persistent buffers must come from ``state_dict``, whatever the IR calls them: any that
    is missing raises a ``WeightError`` listing every missing name, unless ``fill_missing_from_model=True``
    takes them from ``original_model``. Non-persistent buffers and constants (never in a state_dict) are
    taken from ``original_model``; ``report.weight_sources`` names every weight that did not come from
    ``state_dict`` and where it came from. Every output's shape and dtype is compared with the type the IR
    declares (with ``check_types=True``, every intermediate's too). Inputs that do not fit the IR (count,
    dtype, shape, ids past an embedding) raise ``InputError``. ``allow_side_effects`` and ``dry_run`` go to
    the ``Interpreter``. Returns ``(is_valid, report)``; ``str(report)`` prints a table, ``report.to_dict()``
    gives plain data. Weights of the wrong shape or dtype, and keys the IR does not know, raise
    ``WeightError``; weights a pass removed because nothing read them (``graph.meta["unused_weights"]``)
    are expected; ``strict=False`` also accepts any other extra key, listing it in the report's notes.
    """
    if original_model is None:
        raise VerificationError("verify_ir_with_state_dict needs original_model= to compute the expected outputs")
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise VerificationError(f"trials must be a positive integer, got {trials!r}")
    graph = ir.graph if isinstance(ir, IR) else ir
    args = tuple(test_inputs) if isinstance(test_inputs, (tuple, list)) else (test_inputs,)
    kwargs = dict(test_kwargs or {})
    given = as_source(state_dict)
    report = VerificationReport(str(graph.meta.get("model", type(original_model).__name__)), False)
    source, report.weight_sources = verification_source([graph], given, original_model, fill=fill_missing_from_model)
    interp = open_interpreter(  # an IR read from a file runs in a worker process (torch_ir.runtime.worker)
        ir,
        None,
        device=device,
        allow_side_effects=allow_side_effects,
        dry_run=dry_run or None,
    )
    private = private_source(interp, source, device)
    interp.bind(private, strict=strict)
    known = {n for w in required_weights(graph) for n in w.names}
    unused = [k for k in given.keys() if k not in known]
    if unused:
        shown = ", ".join(unused[:8]) + (", ..." if len(unused) > 8 else "")
        report.notes.append(f"{len(unused)} weight(s) the IR does not read were ignored: {shown}")
    with torch.no_grad(), _restored_state(original_model) as saved:
        try:  # drawing inputs may run the model once (its embeddings' sizes): it starts the trials as it was
            plan = TrialInputs(
                graph,
                args,
                kwargs,
                interp.flatten_inputs,
                seed=seed,
                ranges=input_ranges,
                example=example_inputs,
                model=original_model if trials > 1 or example_inputs else None,
                functions=_function_graphs(interp.module),
            )
        except InterpreterError as exc:
            raise InputError(f"the test inputs do not fit the IR: {exc}") from None
        finally:
            _put_back(original_model, saved)
        report.notes.extend(plan.notes)
        run = _TrialLoop(graph, interp, private, original_model, plan, report, rtol, atol, check_types, strict)
        run.run(trials, saved, redraw_constants, localize)
    return report.passed, report


class _TrialLoop:
    """The trials of one verification: each runs eager and the IR on its inputs, compares, and checks that
    the IR wrote nothing it should not; the first failing trial is localized and ends the loop."""

    def __init__(
        self,
        graph: Graph,
        interp: Interpreter,
        private: PrivateSource,
        model: torch.nn.Module,
        plan: TrialInputs,
        report: VerificationReport,
        rtol: float | None,
        atol: float | None,
        check_types: bool,
        strict: bool,
    ):
        self.graph, self.interp, self.private, self.model = graph, interp, private, model
        self.plan, self.report = plan, report
        self.rtol, self.atol, self.check_types, self.strict = rtol, atol, check_types, strict
        self.named = {
            **dict(model.named_parameters(remove_duplicate=False)),
            **dict(model.named_buffers(remove_duplicate=False)),
        }
        self.start_state: dict[str, torch.Tensor] = {}
        """The IR's state (the weights its state updates write) at the start of the current trial."""
        self.eager_state: dict[str, torch.Tensor] = {}
        """What eager wrote into the model's parameters and buffers in the current trial, by name."""
        self._eager_inputs: tuple[tuple[Any, ...], dict[str, Any]] = ((), {})
        """The copy of the trial's inputs eager ran on (what it wrote into them included)."""
        self.reached: Counter[str] = Counter()
        self.sensitivity = _Sensitivity()

    def _state_targets(self) -> dict[str, torch.Tensor]:
        return {name: t for name, t in self.interp.weights.items() if self.graph.is_state_target(name)}

    def run(self, trials: int, saved: dict[str, torch.Tensor], redraw: bool, localize: bool) -> None:
        report = self.report
        baseline = dict(saved)
        weights = "given"
        checks_by_trial: list[list[OutputCheck]] = []
        for index in range(trials):
            if index == 1 and redraw:
                weights = self._redraw(baseline) or weights
            self.start_state = self._state_targets()
            args, kwargs, expected = self._eager(index, baseline)
            seed = self.plan.seed + index
            trial = Trial(index, seed, self.plan.describe(args, kwargs), weights, False)
            report.trials.append(trial)
            checks, got, error = self._ir(args, kwargs, expected, baseline)
            if error:
                report.error = f"trial {index}: {error}" if index else error
                break
            checks_by_trial.append(checks)
            trial.passed = all(c.passed for c in checks) and not report.type_mismatches
            if not trial.passed:
                report.outputs = checks
                if localize:
                    self._localize(args, kwargs)
                break
            self.sensitivity.add(_output_pairs(self.graph, got, expected))
            self._carry_state(baseline)
        else:
            report.outputs = _largest(checks_by_trial)
            for check in report.outputs:
                problem = self.sensitivity.ir_constant(check.name)
                if problem:
                    check.passed, check.problem = False, problem
            report.warnings.extend(self.sensitivity.warnings(bool(self.plan.ranges)))
            insensitive = self.sensitivity.model_insensitive(bool(self.plan.ranges))
            if insensitive and not report.error:
                report.error = insensitive
        self._coverage(len(report.trials))
        report.passed = (
            bool(report.outputs)
            and all(o.passed for o in report.outputs)
            and not report.type_mismatches
            and not report.error
        )
        if not report.outputs and not report.error:
            report.error = "the IR has no outputs to compare"
        elif report.type_mismatches and not report.error:
            report.error = f"a value does not have the type the IR declares: {report.type_mismatches[0]}"

    def _redraw(self, baseline: dict[str, torch.Tensor]) -> str:
        """Redraw the model's constant weights (on both sides) for the trials from 1 on; the weights' label."""
        new = redrawn_weights(self.model, torch.Generator().manual_seed(self.plan.seed))
        if not new:
            return ""
        for name, value in new.items():
            self.named[name].copy_(value)
            baseline[name] = value
        source = self.private.source
        ours = {name: value for name, value in new.items() if name in source}
        carried = {
            name: t for name, t in self._state_targets().items() if not set(self.graph.weight(name).names) & set(new)
        }
        self.private = self.private.over(ChainSource(MappingSource(ours, "redrawn constants"), source))
        self.interp.bind(self.private, strict=self.strict)
        self.interp.assign(carried)  # the state the trials reached, except what was redrawn on both sides
        count = len({id(v) for v in new.values()})
        return f"given, {count} constant tensor(s) redrawn"

    def _eager(self, index: int, baseline: dict[str, torch.Tensor]) -> tuple[tuple[Any, ...], dict[str, Any], Any]:
        """The trial's inputs and eager's outputs on a copy of them. A drawn trial the model cannot take is
        drawn again with the given sizes and float values in the given range."""
        attempts = [{"vary_shapes": True, "like_given": False}, {"vary_shapes": False, "like_given": True}]
        for attempt, options in enumerate(attempts if index > 0 else attempts[:1]):
            args, kwargs = self.plan.inputs(index, **options)
            self.plan.check(args, kwargs, self.interp.check_inputs, index)
            eager_args, eager_kwargs = clone_inputs((args, kwargs))
            try:
                expected = self.model(*eager_args, **eager_kwargs)
            except Exception as exc:
                self._restore_model(baseline, self._eager_writes(baseline))
                if index > 0 and attempt == 0:
                    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    self.report.notes.append(
                        f"trial {index}: the model failed on the drawn inputs ({type(exc).__name__}: {reason}); "
                        "drawn again with the given sizes and float values in the given range"
                    )
                    continue
                raise VerificationError(
                    f"{type(self.model).__name__} itself failed on the test inputs: {type(exc).__name__}: {exc}"
                ) from exc
            self._eager_inputs = eager_args, eager_kwargs
            return args, kwargs, expected
        raise AssertionError("unreachable")

    def _ir(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], expected: Any, baseline: dict[str, torch.Tensor]
    ) -> tuple[list[OutputCheck], list[Any], str]:
        """Run the IR on its own copy of the inputs; the checks of outputs, state and writes."""
        interp, graph = self.interp, self.graph
        originals = interp.flatten_inputs(args, kwargs)
        ir_args, ir_kwargs = clone_inputs((args, kwargs))
        flat = interp.flatten_inputs(ir_args, ir_kwargs)
        coverage = RegionCoverage()
        try:
            with coverage.recording():
                got = interp.run_flat(flat)
        except RunLimitError:
            self._restore_model(baseline, self._eager_writes(baseline))
            raise  # refused or stopped by a limit: no verdict on the IR (exit 2 on the command line)
        except TorchIRError as exc:
            self._restore_model(baseline, self._eager_writes(baseline))
            return [], [], str(exc)
        self.reached.update(coverage.counts.keys())
        eager_args, eager_kwargs = self._eager_inputs
        checks = _compare_outputs(graph, got, expected, self.rtol, self.atol)
        checks += _compare_state(interp, self.model, flat, eager_args, eager_kwargs, self.rtol, self.atol)
        changed = self._eager_writes(baseline)
        checks += self._undeclared_state(originals, interp.flatten_inputs(eager_args, eager_kwargs), changed)
        self.eager_state = {name: self.named[name].detach().clone() for name in changed}
        self._restore_model(baseline, changed)  # the IR's copies are compared with the weights as they were
        checks += self._writes(args, kwargs, flat, originals)
        self.report.type_mismatches = check_declared_types(interp, flat, got, intermediates=self.check_types)
        return checks, got, ""

    def _eager_writes(self, baseline: dict[str, torch.Tensor]) -> list[str]:
        """The parameters and buffers of the model whose values eager changed."""
        return [
            name
            for name, before in baseline.items()
            if (tensor := self.named.get(name)) is not None and not unchanged(tensor, before)
        ]

    def _undeclared_state(self, originals: list[Any], eager_inputs: list[Any], changed: list[str]) -> list[OutputCheck]:
        """A failing check for each buffer, parameter (of ``changed``, what eager wrote) or input eager wrote
        that no state update of the IR writes."""
        graph = self.graph
        targets = {u.target for u in graph.state_updates if u.kind != "input"}
        covered = {n for t in targets if graph.has_weight(t) for n in graph.weight(t).names} | targets
        checks = []
        for name in changed:
            if name in covered or any(n in covered for n in _aliases(self.named, name)):
                continue
            checks.append(
                OutputCheck(f"state @{name}", None, False, "the model writes it; the IR has no state update for it")
            )
        written = {i for i, u in enumerate(graph.inputs) if graph.is_state_target(u.name, "input")}
        for index in written_inputs(eager_inputs, originals, written):
            name = graph.inputs[index].name
            checks.append(OutputCheck(f"state %{name}", None, False, "the model writes this input; the IR does not"))
        return checks

    def _writes(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], flat: list[Any], originals: list[Any]
    ) -> list[OutputCheck]:
        """A failing check for each weight or input copy the IR wrote into without a state update, naming the node."""
        graph, interp = self.graph, self.interp
        keys = self.private.written()
        weights = [name for name in graph.weights if any(n in keys for n in graph.weight(name).names)]
        for name, tensor in interp.weights.items():  # copies the interpreter made for ops that declare writes
            weight = graph.weight(name)
            key = next((n for n in weight.names if n in self.private.copies), None)
            if (
                key is None
                or graph.is_state_target(name)
                or name in weights
                or _same_storage(tensor, self.private.copies[key])
            ):
                continue
            if not unchanged(tensor, self.private.source.load(key)):
                weights.append(name)
        skip = {i for i, v in enumerate(graph.inputs) if graph.is_state_target(v.name, "input")}
        inputs = written_inputs(interp.run_inputs, originals, skip)  # the IR's copies, where it made them
        if not weights and not keys and not inputs:
            return []
        labels = [f"weight @{n}" for n in weights] or [f"weight {k}" for k in keys]
        labels += [f"input %{graph.inputs[i].name}" for i in inputs]
        writers = self._writers(args, kwargs, weights or keys, bool(weights), inputs)
        checks = [
            OutputCheck(label, None, False, f"the IR wrote into it: {writer}")
            for label, writer in zip(labels[:WRITES_SHOWN], writers)
        ]
        if len(labels) > WRITES_SHOWN:
            more = f"{len(labels) - WRITES_SHOWN} more weight(s) and input(s)"
            checks.append(OutputCheck(more, None, False, "the IR wrote into them too"))
        return checks

    def _writers(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], names: list[str], by_weight: bool, inputs: list[int]
    ) -> list[str]:
        """Which node wrote into each weight (by IR name, or source key) and input: the IR replayed node by
        node on fresh copies."""
        self._rebind()
        fresh_args, fresh_kwargs = clone_inputs((args, kwargs))
        fresh = self.interp.flatten_inputs(fresh_args, fresh_kwargs)
        originals = self.interp.flatten_inputs(args, kwargs)
        watched = []
        for name in names[:WRITES_SHOWN]:
            if by_weight:
                key = next(n for n in self.graph.weight(name).names if n in self.private)
                watched.append((self.interp.weights[name], self.private.source.load(key)))
            else:
                watched.append((self.private.copies[name], self.private.source.load(name)))
        positions = [(i, originals[i]) for i in inputs]
        try:
            if not isinstance(self.interp, Interpreter):  # the copies live in the worker
                nodes = self.interp.writers(fresh, names[:WRITES_SHOWN] if by_weight else [], inputs)
                return [describe_writer(node) for node in nodes]
            return [describe_writer(node) for node in find_writers(self.interp, fresh, watched, positions)]
        except TorchIRError as exc:
            return [f"the replay failed ({exc})"] * len(watched)
        finally:
            self._rebind()

    def _carry_state(self, baseline: dict[str, torch.Tensor]) -> None:
        """After a trial that passed, the next one starts from the state this one left: eager's writes stay in
        the model (and become its baseline), the IR keeps its state updates. A state update that is right only
        from the initial state (a counter set to 1) fails then."""
        for name, value in self.eager_state.items():
            self.named[name].copy_(value)
            baseline[name] = value
        # where the IR's weights come from the model itself, its copies follow (the IR's state does not read them)
        self.private.restore([name for name in self.eager_state if name in self.private.copies])

    def _rebind(self) -> None:
        """The IR's copies as the trial started: originals copied back, the state as it was."""
        self.private.restore()
        self.interp.bind(self.private, strict=self.strict)
        self.interp.assign(self.start_state)

    def _restore_model(self, baseline: dict[str, torch.Tensor], names: list[str]) -> None:
        """Put back the parameters and buffers ``names`` that eager wrote."""
        for name in names:
            self.named[name].copy_(baseline[name])

    def _localize(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        report = self.report
        try:
            self._rebind()
            args, kwargs = clone_inputs((args, kwargs))  # both sides run again: on copies of the inputs
            report.divergence = find_divergence(
                self.interp, self.model, args, kwargs, self.rtol, self.atol, errors=report.node_errors
            )
            if report.divergence is None:
                report.notes.append("no intermediate value differs beyond tolerance; only the outputs do")
        except Exception as exc:  # localization is best effort: the verdict stands without it
            report.notes.append(f"could not localize the divergence: {type(exc).__name__}: {exc}")

    def _coverage(self, trials: int) -> None:
        module = self.interp.module
        paths = [path for path, _, _ in region_paths(self.graph, module=module)]
        self.report.coverage = {path: self.reached.get(path, 0) for path in paths}
        if trials:
            self.report.warnings.extend(coverage_warnings(self.graph, self.report.coverage, module))


class _Sensitivity:
    """Whether outputs change from one trial to the next: the model's (beyond the dtype's tolerance) and the
    IR's (at all). An IR output that stays while the model's changes is a constant where a computation is."""

    def __init__(self) -> None:
        self.previous: dict[str, tuple[Any, Any]] = {}
        self.eager_changed: dict[str, bool] = {}
        self.ir_constant_while_eager_changed: dict[str, bool] = {}
        self.trials = 0

    def add(self, pairs: list[tuple[str, Any, Any]]) -> None:
        self.trials += 1
        for name, got, expected in pairs:
            previous = self.previous.get(name)
            self.previous[name] = (got, expected)
            if previous is None:
                self.eager_changed.setdefault(name, False)
                self.ir_constant_while_eager_changed.setdefault(name, False)
                continue
            changed = not compare_tensors(expected, previous[1]).passed
            self.eager_changed[name] |= changed
            if changed and _unchanged_value(got, previous[0]):
                self.ir_constant_while_eager_changed[name] = True

    def ir_constant(self, name: str) -> str:
        """The problem of an output the IR keeps while the model's changes, or ''."""
        if self.ir_constant_while_eager_changed.get(name):
            return "the IR's value stays the same from one trial to the next while the model's changes"
        return ""

    def warnings(self, has_inputs: bool) -> list[str]:
        if self.trials < 2 or not has_inputs or not any(self.eager_changed.values()):
            return []
        return [
            f"output {name} is the same in every trial: no input reaches it, so a constant IR would pass there"
            for name, changed in self.eager_changed.items()
            if not changed
        ]

    def model_insensitive(self, has_inputs: bool) -> str:
        if self.trials < 2 or not has_inputs or not self.eager_changed or any(self.eager_changed.values()):
            return ""
        return (
            f"the model's outputs are the same in all {self.trials} trials: the test inputs do not reach them, so "
            "an IR that returns constants would pass; give inputs that change them (ranges for integer inputs), "
            "or verify with trials=1 (--trials 1) to compare one input only"
        )


def _output_pairs(graph: Graph, got: list[Any], expected: Any) -> list[tuple[str, Any, Any]]:
    """``(output path, IR value, eager value)`` of each tensor output."""
    pairs, _ = _paired_leaves(graph, got, expected)
    return [
        (path, got[leaf["index"]], exp)
        for path, leaf, exp in pairs
        if leaf["kind"] == "output" and isinstance(exp, torch.Tensor)
    ]


def _largest(checks_by_trial: list[list[OutputCheck]]) -> list[OutputCheck]:
    """Per output, the check of the trial with the largest absolute error."""
    if not checks_by_trial:
        return []
    best: dict[str, OutputCheck] = {}
    for checks in checks_by_trial:
        for check in checks:
            current = best.get(check.name)
            if current is None or (check.max_abs or 0.0) > (current.max_abs or 0.0):
                best[check.name] = check
    return list(best.values())


def _unchanged_value(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return unchanged(a, b)
    return bool(a == b)


def _same_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def _function_graphs(module: IR | None) -> dict[str, Graph]:
    """The graphs of ``module``'s functions by name (none for a graph verified without its module)."""
    return {} if module is None else {name: f.graph for name, f in module.functions.items()}


def _aliases(named: dict[str, torch.Tensor], name: str) -> list[str]:
    tensor = named[name]
    return [n for n, t in named.items() if t is tensor]


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
    trials: int = DEFAULT_TRIALS,
    seed: int = 0,
    input_ranges: Mapping[str, tuple[float, float]] | None = None,
) -> tuple[bool, VerificationReport]:
    """Verify ``ir`` against ``model`` with the model's own weights (non-persistent buffers included), in
    ``trials`` trials (see ``verify_ir_with_state_dict``)."""
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
        trials=trials,
        seed=seed,
        input_ranges=input_ranges,
    )


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


def _paired_leaves(graph: Graph, got: list[Any], expected: Any) -> tuple[list[tuple[str, dict[str, Any], Any]], str]:
    """Each output leaf of the IR (path, leaf) with eager's value at the same place, or a problem when the
    two output structures do not line up (then only their tensors are paired, when they have as many)."""
    leaves = _leaf_paths(graph.output_structure, len(got))
    eager = pytree.tree_leaves(expected)
    if len(eager) != len(leaves):
        tensor_leaves = [(p, n) for p, n in leaves if n["kind"] == "output"]
        eager_tensors = [e for e in eager if isinstance(e, torch.Tensor)]
        if len(eager_tensors) != len(tensor_leaves):
            return [], f"the model returns {len(eager_tensors)} tensors, the IR {len(tensor_leaves)}"
        leaves, eager = tensor_leaves, eager_tensors
    return [(path, leaf, exp) for (path, leaf), exp in zip(leaves, eager)], ""


def _compare_outputs(
    graph: Graph, got: list[Any], expected: Any, rtol: float | None, atol: float | None
) -> list[OutputCheck]:
    pairs, problem = _paired_leaves(graph, got, expected)
    if problem:
        return [OutputCheck("outputs", None, False, problem)]
    checks: list[OutputCheck] = []
    for path, leaf, exp in pairs:
        if leaf["kind"] == "constant":
            same = leaf.get("value") == exp
            checks.append(OutputCheck(path, None, same, "" if same else f"constant {leaf.get('value')!r} != {exp!r}"))
            continue
        value = got[leaf["index"]]
        cmp = compare_tensors(value, exp, rtol, atol)
        checks.append(OutputCheck(path, cmp, cmp.passed, cmp.problem))
    return checks


@contextlib.contextmanager
def _restored_state(model: torch.nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """Put the model's parameters and buffers back as they were: verifying a model does not change it.
    Yields the saved copies by name."""
    named = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    saved = {name: t.detach().clone() for name, t in named.items() if t.device.type != "meta"}
    try:
        yield saved
    finally:
        _put_back(model, saved)


def _put_back(model: torch.nn.Module, saved: dict[str, torch.Tensor]) -> None:
    """Copy ``saved`` (by name) back into the model's parameters and buffers."""
    named = {**dict(model.named_parameters()), **dict(model.named_buffers())}
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
    """Re-export the real model as extraction does (its writes kept where extraction functionalizes them in
    the IR, functionalized by torch where it does not, so node names line up with the IR's) and run its FX
    graph, yielding ``(node name, value)`` as they are produced (a copy where the graph writes to tensors:
    a value written later must be compared as it was)."""
    from torch_ir.frontends.torch_export import export_program, functional_program

    program = export_program(model, args, example_kwargs=kwargs, functionalization="ir")
    program = functional_program(program, model)
    writes = any(
        isinstance(n.target, torch._ops.OpOverload) and n.target._schema.is_mutable for n in program.graph.nodes
    )
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
    if writes:  # the graph writes in place: to copies, never to the caller's inputs or the model's weights
        feeds = [f.clone() if isinstance(f, torch.Tensor) else f for f in feeds]

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
            yield node.name, (value.clone() if writes and isinstance(value, torch.Tensor) else value)
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
    *,
    errors: list[NodeError] | None = None,
) -> Divergence | None:
    """The first IR node whose value differs from eager PyTorch, comparing values by name as both sides run.

    Values only one side has (renamed or removed by passes) and values of different shapes are skipped;
    each value is dropped as soon as it has been compared, so memory stays bounded. ``errors``, when given,
    receives a ``NodeError`` for every value compared. A graph that calls functions of its module is
    searched with its calls inlined, so the values of each call's body meet eager's; the divergence and the
    errors there name their call site (``Divergence.site``, ``NodeError.site``).
    """
    grad_enabled = torch.is_grad_enabled()
    flat = flat_interpreter(interp)
    start = len(errors) if errors is not None else 0
    try:
        found = _find_divergence(interp if flat is None else flat[0], model, args, kwargs, rtol, atol, errors)
    finally:  # both value streams suspend inside no_grad blocks; finishing them out of order leaks the mode
        torch.set_grad_enabled(grad_enabled)
    if flat is None:
        return found
    sites = flat[1]
    if errors is not None:
        errors[start:] = [replace(e, site=sites.get(_top_level_name(e.node, e.region))) for e in errors[start:]]
    if found is not None:
        found = replace(found, site=sites.get(_top_level_name(found.node, found.region)))
    return found


def _top_level_name(node: str, region: str) -> str:
    """The node of the top-level graph that holds ``node``: itself, or the region op its region path starts at."""
    return region.split("/", 1)[0] if region else node


def _find_divergence(
    interp: Interpreter,
    model: torch.nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    rtol: float | None,
    atol: float | None,
    errors: list[NodeError] | None = None,
) -> Divergence | None:
    graph = interp.graph
    ir_names: dict[str, int] = {}
    for index, node in enumerate(graph.nodes):
        if op_info(node.op_type).nondeterministic:
            continue
        for value in node.outputs:
            ir_names[value.name] = index
    ir_iter = interp.iter_values(interp.flatten_inputs(*clone_inputs((args, kwargs))))  # its own copy
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
                            best, graph, value.name, result, pending_eager.pop(value.name), ir_names, rtol, atol, errors
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
                        best = _check(best, graph, name, pending_ir.pop(name), result, ir_names, rtol, atol, errors)
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
        best = _inside_regions(best, interp, model, args, kwargs, rtol, atol, errors)
    return best


def _inside_regions(
    best: Divergence,
    interp: Interpreter,
    model: torch.nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    rtol: float | None,
    atol: float | None,
    errors: list[NodeError] | None = None,
) -> Divergence:
    node = interp.graph.value(best.value).producer
    if node is None or not node.regions:
        return best
    from torch_ir.runtime.region_divergence import locate_in_model

    found = locate_in_model(
        node, interp, model, args, kwargs, lambda a, b: compare_tensors(a, b, rtol, atol), errors=errors
    )
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
    errors: list[NodeError] | None = None,
) -> Divergence | None:
    index = order[name]
    if best is not None and best.index <= index:
        return best
    if not isinstance(got, torch.Tensor) or not isinstance(expected, torch.Tensor):
        return best
    if got.shape != expected.shape or got.dtype != expected.dtype:
        return best
    cmp = compare_tensors(got, expected, rtol, atol)
    value = graph.value(name)
    node = value.producer
    assert node is not None
    record_node_error(errors, node, value, cmp)
    if cmp.passed:
        return best
    source = node.meta.get("source") if isinstance(node.meta.get("source"), dict) else None
    return Divergence(node.name, node.op_type, name, node.module_path, source, cmp, index)


__all__ = [
    "DEFAULT_TRIALS",
    "TOLERANCES",
    "Trial",
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
