"""PyTorch's OpInfo database as a test suite, as the ONNX exporter tests itself.

Each OpInfo of ``torch.testing._internal.common_methods_invocations.op_db`` (needs ``expecttest``) becomes
a small module from its first float32 CPU sample: the sample's tensors are forward's inputs, everything
else is baked in, and forward calls ``op.op(input, *args, **kwargs)``. Two paths are checked against
eager PyTorch on the real CPU tensors:

* the baseline: ``torch.export.export(strict=False)`` on the real tensors, run with ``ep.module()``;
* torch-ir: ``extract_ir`` on meta inputs, ``ir.save`` + ``load_ir``, run by the ``Interpreter``.

An op's category is ``pass``, ``export-fails`` (the baseline fails: not torch-ir's problem),
``extract-fails``, ``run-fails``, ``mismatch`` (torch-ir's), or ``skipped`` (no float32 CPU sample, or
eager itself fails). Outputs are compared, and so are the inputs after the call (an op that writes to
its inputs must do so in torch-ir too). Random and uninitialized results compare shape and dtype only.

``check_op`` runs one op in this process (the fast test subset); ``run_sweep`` runs many, each in a
worker subprocess with a timeout, so that an op that hangs or crashes costs only itself.
"""

from __future__ import annotations

import inspect
import itertools
import math
import re
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils._pytree import tree_flatten, tree_leaves, tree_unflatten

CATEGORIES = ("pass", "export-fails", "extract-fails", "run-fails", "mismatch", "skipped")
"""Every category an op can end in, in the order reports list them."""

RTOL = 1e-4
ATOL = 1e-5
"""float32 tolerances: both paths run the same ATen kernels, so only reassociation may differ."""

RANDOM_NAME_WORDS = frozenset(
    {
        "bernoulli",
        "cauchy",
        "exponential",
        "fractional",
        "geometric",
        "lowrank",
        "multinomial",
        "normal",
        "resize",
        "rrelu",
        "uniform",
    }
)
RANDOM_NAME_PREFIXES = ("rand", "dropout", "empty")
"""Words of OpInfo names (split at ``.`` and ``_``) whose results are random or uninitialized memory:
a word in ``RANDOM_NAME_WORDS`` or starting with one of ``RANDOM_NAME_PREFIXES`` (``log_normal``,
``randn_like``, ``dropout2d``; not ``normalize``)."""

RANDOM_OPS = frozenset(
    {
        "alpha_dropout",
        "cauchy",
        "dropout",
        "feature_alpha_dropout",
        "feature_dropout",
        "fractional_max_pool2d",
        "fractional_max_pool3d",
        "geometric",
        "log_normal",
        "poisson",
        "random",
        "rrelu_with_noise",
    }
)
"""ATen ops with random results besides the op registry's ``NONDETERMINISTIC_OPS`` (``torch_ir.ops.effects``)."""

Progress = Callable[[str, dict[str, str] | None], None]


@dataclass
class OpResult:
    """The outcome of one OpInfo: its category, and what the baseline and torch-ir each did.

    ``baseline`` and ``torch_ir`` use the category names for their own path alone (``pass``,
    ``export-fails`` / ``extract-fails``, ``run-fails``, ``mismatch``, or ``not-run``). ``stage`` and
    ``reason`` say where torch-ir failed and its error class and first line (``baseline_reason`` the same for
    the baseline), whatever the category.
    """

    op: str
    category: str
    baseline: str = "not-run"
    torch_ir: str = "not-run"
    stage: str = ""
    reason: str = ""
    baseline_reason: str = ""
    compare: str = "values"
    seconds: float = field(default=0.0, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The result as JSON-typed fields (timing left out: it is not reproducible)."""
        data = asdict(self)
        data.pop("seconds")
        return data


# ------------------------------------------------------------------ op database


def op_id(op: Any) -> str:
    """The OpInfo's name, with its variant after a dot (``nn.functional.pad.reflect``)."""
    return f"{op.name}.{op.variant_test_name}" if op.variant_test_name else op.name


def load_op_db() -> dict[str, Any]:
    """Every OpInfo of PyTorch's op database by ``op_id`` (first wins on a duplicate id)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.testing._internal.common_methods_invocations import op_db
    ops: dict[str, Any] = {}
    for op in op_db:
        ops.setdefault(op_id(op), op)
    return ops


def first_sample(op: Any, index: int = 0) -> Any | None:
    """The op's float32 CPU sample at ``index`` (default the first), seeded, so the same every run; None
    when there is none."""
    if torch.float32 not in op.supported_dtypes("cpu"):
        return None
    torch.manual_seed(0)
    # sample_inputs_func, not sample_inputs: the latter's wrapper keeps the generator in a reference
    # cycle, and the collector then finalizes it later inside some other op's trace (where its no_grad()
    # records into that graph). Closed here, it is finished before any trace starts.
    samples = iter(op.sample_inputs_func(op, "cpu", torch.float32, False))
    try:
        return next(itertools.islice(samples, index, None), None)
    finally:
        close = getattr(samples, "close", None)
        if close is not None:
            close()


def split_name(name: str) -> tuple[str, int]:
    """``"add#3"`` -> ``("add", 3)``: an OpInfo id, and which of its samples (default the first)."""
    op, _, index = name.partition("#")
    return op, int(index) if index else 0


class OpModule(torch.nn.Module):
    """One OpInfo sample as a module: the sample's tensors are forward's inputs, the rest is baked in."""

    def __init__(self, op: Any, sample: Any):
        super().__init__()
        leaves, spec = tree_flatten((sample.input, tuple(sample.args), dict(sample.kwargs)))
        self.fn = op.op
        self.spec = spec
        self.slots = [i for i, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)]
        self.template = [None if isinstance(leaf, torch.Tensor) else leaf for leaf in leaves]
        self.example_inputs: tuple[torch.Tensor, ...] = tuple(leaves[i] for i in self.slots)

    def forward(self, *tensors: torch.Tensor) -> Any:
        leaves = list(self.template)
        for index, tensor in zip(self.slots, tensors):
            leaves[index] = tensor
        input, args, kwargs = tree_unflatten(leaves, self.spec)
        return self.fn(input, *args, **kwargs)


def fresh(tensors: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """Copies of the inputs, so an op that writes to its inputs leaves the sample unchanged."""
    return tuple(t.detach().clone() for t in tensors)


def to_meta(tensors: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """The inputs as meta tensors of the same shapes, dtypes and strides."""
    return tuple(t.detach().to("meta") for t in tensors)


# ------------------------------------------------------------------ comparison


def is_random_name(name: str) -> bool:
    """Whether the OpInfo's name says its results are random or uninitialized."""
    if name.startswith(("signal.windows.", "__")) or name.endswith("_backward"):
        return False
    words = re.split(r"[._]", name)
    return any(w in RANDOM_NAME_WORDS or w.startswith(RANDOM_NAME_PREFIXES) for w in words)


def is_random_op(op_name: str) -> bool:
    """Whether an ATen op (by name, ``exponential_`` or ``exponential``) has random or uninitialized results."""
    from torch_ir.ops.effects import NONDETERMINISTIC_OPS

    base = op_name.rstrip("_")
    return base in NONDETERMINISTIC_OPS or base in RANDOM_OPS


def program_is_random(ep: Any) -> bool:
    """Whether an ExportedProgram calls a random or uninitialized-memory op."""
    for node in ep.graph.nodes:
        packet = getattr(node.target, "_overloadpacket", None)
        if node.op == "call_function" and packet is not None and is_random_op(packet.__name__):
            return True
    return False


def ir_is_random(ir: Any) -> bool:
    """Whether an IR calls a random or uninitialized-memory op."""
    return any(is_random_op(node.op_type.split(".")[1]) for node in ir.graph.nodes if "." in node.op_type)


def difference(actual: Any, expected: Any, *, shape_only: bool, what: str = "output") -> str | None:
    """None when ``actual`` matches ``expected`` (same structure, close values), else what differs.

    ``what`` names the leaves in the message (``output 0``, ``input 1 after the call``).
    """
    got, want = tree_leaves(actual), tree_leaves(expected)
    if len(got) != len(want):
        return f"{len(got)} {what}(s), eager gives {len(want)}"
    for index, (a, e) in enumerate(zip(got, want)):
        where = f"{what} {index}" if what == "output" else f"{what} {index} after the call"
        if isinstance(e, torch.Tensor) != isinstance(a, torch.Tensor):
            return f"{where}: {type(a).__name__}, eager gives {type(e).__name__}"
        if isinstance(e, torch.Tensor):
            if tuple(a.shape) != tuple(e.shape) or a.dtype != e.dtype:
                return f"{where}: {_describe(a)}, eager gives {_describe(e)}"
            if shape_only:
                continue
            try:
                torch.testing.assert_close(
                    a, e, rtol=RTOL, atol=ATOL, equal_nan=True, check_device=False, check_layout=False
                )
            except AssertionError as exc:
                return f"{where}: {_assert_text(exc)}"
        elif not shape_only and not _same_scalar(a, e):
            return f"{where}: {a!r}, eager gives {e!r}"
    return None


def _same_scalar(a: Any, e: Any) -> bool:
    if isinstance(a, float) and isinstance(e, float) and math.isnan(a) and math.isnan(e):
        return True
    if isinstance(a, (int, float, complex)) and isinstance(e, (int, float, complex)):
        return math.isclose(complex(a).real, complex(e).real, rel_tol=RTOL, abs_tol=ATOL) and math.isclose(
            complex(a).imag, complex(e).imag, rel_tol=RTOL, abs_tol=ATOL
        )
    return bool(a == e)


def _describe(t: torch.Tensor) -> str:
    return f"{str(t.dtype).removeprefix('torch.')}{list(t.shape)}"


def _assert_text(exc: AssertionError) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    keep = [lines[0]] + [line for line in lines[1:] if line.startswith(("Mismatched", "Greatest absolute"))]
    return " ".join(keep)


# ------------------------------------------------------------------ one op

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
_TMP = re.compile(r"/tmp/[^\s'\"]*")
_LOCATION = re.compile(r" at /\S+:\d+")


def error_text(exc: BaseException) -> str:
    """``ErrorClass: first line`` (and the second, when the first ends in a colon), with addresses,
    temporary paths and source locations masked (reproducible)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    first = lines[0] if lines else ""
    if first.endswith(":") and len(lines) > 1:
        first = f"{first} {lines[1]}"
    first = _LOCATION.sub("", _TMP.sub("<tmp>", _ADDRESS.sub("0x…", first)))
    if len(first) > 300:
        first = first[:297] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _extract_kwargs(device: str | None) -> dict[str, Any]:
    from torch_ir import extract_ir

    if device is not None and "device" in inspect.signature(extract_ir).parameters:
        return {"device": device}
    return {}


Run = tuple[Any, tuple[torch.Tensor, ...]]
"""What one call gives: its outputs, and its inputs after the call (an op may write to them)."""


def call(fn: Callable[..., Any], module: OpModule) -> Run:
    """Call ``fn`` on fresh copies of the module's inputs, seeded; outputs and the inputs after the call."""
    inputs = fresh(module.example_inputs)
    torch.manual_seed(0)
    return fn(*inputs), inputs


def run_difference(actual: Run, expected: Run, *, shape_only: bool) -> str | None:
    """``difference`` of the outputs, then of the inputs after the call (state updates of inputs)."""
    problem = difference(actual[0], expected[0], shape_only=shape_only)
    if problem is None:
        problem = difference(actual[1], expected[1], shape_only=shape_only, what="input")
    return problem


def check_op(
    op: Any,
    *,
    sample_index: int = 0,
    device: str | None = None,
    workdir: str | Path | None = None,
    progress: Progress | None = None,
) -> OpResult:
    """Run one OpInfo through eager, the torch.export baseline and torch-ir; never raises.

    ``device`` is passed to ``extract_ir(device=...)`` when extract_ir has that keyword (default: what
    extract_ir does). ``progress(stage, info)`` is told each stage before it starts.
    """
    started = time.perf_counter()
    name = op_id(op) + (f"#{sample_index}" if sample_index else "")

    def stage(label: str, info: dict[str, str] | None = None) -> None:
        if progress is not None:
            progress(label, info)

    def done(result: OpResult) -> OpResult:
        result.seconds = time.perf_counter() - started
        return result

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stage("sample")
        try:
            sample = first_sample(op, sample_index)
        except Exception as exc:
            return done(OpResult(name, "skipped", stage="sample", reason=error_text(exc)))
        if sample is None:
            reason = f"no float32 CPU sample {sample_index}" if sample_index else "no float32 CPU sample"
            return done(OpResult(name, "skipped", stage="sample", reason=reason))
        try:
            module = OpModule(op, sample).eval()
            stage("eager")
            expected = call(module, module)
            again = call(module, module)
        except Exception as exc:
            return done(OpResult(name, "skipped", stage="eager", reason=error_text(exc)))
        shape_only = is_random_name(name) or run_difference(again, expected, shape_only=False) is not None

        stage("export")
        baseline, baseline_reason, ep = _baseline(module, expected, shape_only, stage)
        if ep is not None and not shape_only and program_is_random(ep):
            shape_only = True
            baseline, baseline_reason, ep = _baseline(module, expected, shape_only, stage)
        stage("baseline", {"baseline": baseline, "baseline_reason": baseline_reason})

        outcome, where, reason, shape_only = _torch_ir(module, expected, shape_only, device, workdir, stage)
        compare = "shape-dtype" if shape_only else "values"
        category = outcome if baseline == "pass" else "export-fails"
        return done(OpResult(name, category, baseline, outcome, where, reason, baseline_reason, compare))


def _baseline(module: OpModule, expected: Run, shape_only: bool, stage: Callable[[str], None]) -> tuple[str, str, Any]:
    try:
        ep = torch.export.export(module, fresh(module.example_inputs), strict=False)
    except Exception as exc:
        return "export-fails", f"export: {error_text(exc)}", None
    stage("export-run")
    try:
        actual = call(ep.module(), module)
    except Exception as exc:
        return "run-fails", f"ep.module(): {error_text(exc)}", ep
    problem = run_difference(actual, expected, shape_only=shape_only)
    if problem is not None:
        return "mismatch", f"ep.module(): {problem}", ep
    return "pass", "", ep


def _torch_ir(
    module: OpModule,
    expected: Run,
    shape_only: bool,
    device: str | None,
    workdir: str | Path | None,
    stage: Callable[[str], None],
) -> tuple[str, str, str, bool]:
    from torch_ir import extract_ir, load_ir
    from torch_ir.runtime.interpreter import Interpreter

    stage("extract")
    try:
        ir = extract_ir(module, to_meta(module.example_inputs), **_extract_kwargs(device))
    except Exception as exc:
        return "extract-fails", "extract", error_text(exc), shape_only
    shape_only = shape_only or ir_is_random(ir)
    stage("save")
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        path = Path(folder) / "op.json"
        try:
            ir.save(path)
        except Exception as exc:
            return "extract-fails", "save", error_text(exc), shape_only
        stage("load")
        try:
            loaded = load_ir(str(path))
        except Exception as exc:
            return "extract-fails", "load", error_text(exc), shape_only
    stage("interpreter")
    try:
        interpreter = Interpreter(loaded, {})
    except Exception as exc:
        return "run-fails", "interpreter", error_text(exc), shape_only
    stage("run")
    try:
        actual = call(interpreter, module)
    except Exception as exc:
        return "run-fails", "run", error_text(exc), shape_only
    problem = run_difference(actual, expected, shape_only=shape_only)
    if problem is not None:
        return "mismatch", "compare", problem, shape_only
    return "pass", "", "", shape_only


# ------------------------------------------------------------------ the sweep

_TIMEOUT_CATEGORY = {
    "sample": "skipped",
    "eager": "skipped",
    "export": "export-fails",
    "export-run": "export-fails",
    "extract": "extract-fails",
    "save": "extract-fails",
    "load": "extract-fails",
    "interpreter": "run-fails",
    "run": "run-fails",
}


def _worker(connection: Any, device: str | None) -> None:
    """Worker subprocess: loads the op database once, then checks the ops it is sent until it gets None."""
    import logging

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    ops = load_op_db()
    connection.send(("ready", None))
    with tempfile.TemporaryDirectory(prefix="torch-ir-opinfo-") as workdir:
        while True:
            name = connection.recv()
            if name is None:
                return

            def progress(label: str, info: dict[str, str] | None) -> None:
                connection.send(("stage", (label, info)))

            op, index = split_name(name)
            try:
                result = check_op(ops[op], sample_index=index, device=device, workdir=workdir, progress=progress)
            except BaseException as exc:  # check_op catches Exception; this is the last line of defence
                result = OpResult(name, "skipped", stage="harness", reason=error_text(exc))
                traceback.print_exc()
            connection.send(("result", result))


class _Worker:
    """One worker subprocess and its end of the pipe."""

    def __init__(self, device: str | None, start_timeout: float):
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_worker, args=(child, device), daemon=True)
        self.process.start()
        child.close()
        if not self.connection.poll(start_timeout):
            self.stop()
            raise RuntimeError(f"the OpInfo worker did not start within {start_timeout:.0f} s")
        self.connection.recv()

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.connection.close()

    def close(self) -> None:
        try:
            self.connection.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(10)
        self.stop()


def run_sweep(
    names: Iterable[str],
    *,
    timeout: float = 120.0,
    device: str | None = None,
    on_result: Callable[[OpResult], None] | None = None,
) -> list[OpResult]:
    """Check each named OpInfo (``"op"``, or ``"op#3"`` for its fourth sample) in a worker subprocess.

    An op over ``timeout`` seconds, or one that crashes the worker, gets the category of the stage it was
    in, and a fresh worker takes the next op.
    """
    results: list[OpResult] = []
    worker: _Worker | None = None
    try:
        for name in names:
            if worker is None:
                worker = _Worker(device, start_timeout=max(timeout, 300.0))
            result, healthy = _run_one(worker, name, timeout)
            if not healthy:
                worker.stop()
                worker = None
            results.append(result)
            if on_result is not None:
                on_result(result)
    finally:
        if worker is not None:
            worker.close()
    return results


def _run_one(worker: _Worker, name: str, timeout: float) -> tuple[OpResult, bool]:
    started = time.perf_counter()
    worker.connection.send(name)
    stage, baseline, baseline_reason = "sample", "not-run", ""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        try:
            ready = remaining > 0 and worker.connection.poll(remaining)
            message = worker.connection.recv() if ready else None
        except (EOFError, OSError):
            message, ready = None, False
            problem = f"worker crashed (exit code {worker.process.exitcode}) in stage {stage}"
        else:
            problem = f"timeout after {timeout:g} s in stage {stage}"
        if not ready or message is None:
            break
        kind, payload = message
        if kind == "result":
            return payload, True
        stage, info = payload
        if info:
            baseline, baseline_reason = info["baseline"], info["baseline_reason"]
    stage_category = _TIMEOUT_CATEGORY.get(stage, "skipped")
    reason = problem
    if stage in ("export", "export-run"):
        baseline = "export-fails" if stage == "export" else "run-fails"
        baseline_reason, outcome, reason = problem, "not-run", ""
    else:
        outcome = stage_category if stage_category != "skipped" else "not-run"
    if stage_category == "skipped":
        category = "skipped"
    else:
        category = outcome if baseline == "pass" else "export-fails"
    result = OpResult(name, category, baseline, outcome, stage, reason, baseline_reason)
    result.seconds = time.perf_counter() - started
    return result, False


def summarize(results: Iterable[OpResult]) -> dict[str, int]:
    """Count per category, every category present (zero when none)."""
    counts = dict.fromkeys(CATEGORIES, 0)
    for result in results:
        counts[result.category] = counts.get(result.category, 0) + 1
    return counts


def iter_results(data: dict[str, Any]) -> Iterator[OpResult]:
    """The results of a results JSON document (``sweep_json``)."""
    for entry in data["results"]:
        yield OpResult(**entry)


def sweep_json(results: Iterable[OpResult], *, device: str | None) -> dict[str, Any]:
    """The results as a JSON document, sorted by op (same results, same bytes)."""
    ordered = sorted(results, key=lambda r: r.op)
    return {
        "torch": torch.__version__.split("+")[0],
        "device": device or "default",
        "counts": summarize(ordered),
        "results": [r.to_json() for r in ordered],
    }


__all__ = [
    "CATEGORIES",
    "OpModule",
    "OpResult",
    "check_op",
    "first_sample",
    "iter_results",
    "load_op_db",
    "op_id",
    "run_sweep",
    "summarize",
    "sweep_json",
]
