"""The comprehensive runner: per registered model, extract on meta, save/load, verify with real weights.

Stages, in order (the first failure stops a case and names its stage):
``extract`` (``extract_ir`` on meta, default pipeline), ``save-load`` (JSON round trip gives an equal
IR), ``mermaid`` (the diagram passes the strict grammar check), ``verify``
(``verify_ir_with_state_dict`` with random real weights against eager PyTorch), ``report`` (when an
output folder is given). Used by ``tests/test_comprehensive.py`` and ``python -m tests``.
"""

from __future__ import annotations

import inspect
import tempfile
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.models import MODELS, ModelCase
from tests.testing.mermaid import validate_mermaid
from torch_ir import IR, extract_ir, load_ir
from torch_ir.backends.mermaid import render_mermaid
from torch_ir.runtime.worker import isolation

STAGES = ("extract", "save-load", "mermaid", "verify", "report")


@dataclass
class CaseResult:
    """The outcome of one model: ``ok``, the failing ``stage`` and its ``error``, figures and files."""

    name: str
    category: str
    ok: bool = False
    stage: str = ""
    error: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    nodes: int = 0
    weights: int = 0
    verification: str = ""
    report: Path | None = None
    ir: IR | None = None

    @property
    def test_id(self) -> str:
        """``category/name``, the pytest id of the case."""
        return f"{self.category}/{self.name}"

    def failure(self) -> str:
        """One paragraph saying where and why the case failed."""
        return f"{self.test_id} failed at stage {self.stage!r}: {self.error}"


def all_cases(include_transformers: bool = False) -> list[ModelCase]:
    """The registered test models, plus the tiny transformers models when asked."""
    cases = list(MODELS)
    if include_transformers:
        from tests.testing.transformers_models import TRANSFORMERS_MODELS

        cases += TRANSFORMERS_MODELS
    return cases


def select_cases(
    cases: Sequence[ModelCase],
    names: Iterable[str] = (),
    categories: Iterable[str] = (),
    keyword: str | None = None,
) -> list[ModelCase]:
    """The cases named, in the categories given, and whose ``category/name`` contains ``keyword``."""
    names, categories = set(names), set(categories)
    unknown = names - {c.name for c in cases}
    if unknown:
        raise KeyError(f"no test model {', '.join(sorted(unknown))}; known: {', '.join(c.name for c in cases)}")
    out = []
    for case in cases:
        if names and case.name not in names:
            continue
        if categories and case.category not in categories:
            continue
        if keyword and keyword.lower() not in f"{case.category}/{case.name}".lower():
            continue
        out.append(case)
    return out


def _verify(ir: IR, case: ModelCase) -> tuple[bool, Any]:
    try:
        from torch_ir.runtime.verifier import verify_ir_with_state_dict
    except ImportError as exc:
        raise RuntimeError(
            f"torch_ir.runtime.verifier.verify_ir_with_state_dict is not available ({exc}); the verify stage cannot run"
        ) from exc
    model = case.build_real()
    args, kwargs = case.inputs("cpu")
    options: dict[str, Any] = {}
    params = inspect.signature(verify_ir_with_state_dict).parameters
    if "rtol" in params:
        options["rtol"], options["atol"] = case.rtol, case.atol
    plugins = (type(model).__module__,) if case.allow_ops else ()
    with isolation(allow_ops=case.allow_ops, plugins=plugins):
        return verify_ir_with_state_dict(
            ir=ir, state_dict=model.state_dict(), original_model=model, test_inputs=args, test_kwargs=kwargs, **options
        )


def run_case(case: ModelCase, output_dir: Path | None = None, *, verify: bool = True) -> CaseResult:
    """Run every stage on one case; never raises for a failing model (the result says why)."""
    result = CaseResult(case.name, case.category)
    stage = "extract"
    try:
        start = time.perf_counter()
        args, kwargs = case.inputs("meta")
        ir = extract_ir(
            case.build_meta(), args, example_kwargs=kwargs, dynamic_shapes=case.dynamic_shapes, name=case.name
        )
        result.seconds[stage] = time.perf_counter() - start
        result.nodes, result.weights = len(ir.nodes), len(ir.weights)

        stage = "save-load"
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{case.name}.json"
            ir.save(path)
            loaded = load_ir(str(path))
        if loaded != ir:
            raise AssertionError("the IR loaded back from JSON differs from the saved one")
        loaded.stages, loaded.pass_log = ir.stages, ir.pass_log
        result.seconds[stage] = time.perf_counter() - start
        result.ir = loaded

        stage = "mermaid"
        validate_mermaid(render_mermaid(loaded))

        if verify:
            stage = "verify"
            start = time.perf_counter()
            ok, report = _verify(loaded, case)
            result.seconds[stage] = time.perf_counter() - start
            result.verification = str(report)
            if not ok:
                raise AssertionError(f"outputs differ from eager PyTorch:\n{report}")

        if output_dir is not None:
            stage = "report"
            from tests.testing.report import write_model_report

            result.report = write_model_report(loaded, case, output_dir, result)
        result.ok, result.stage = True, ""
    except Exception as exc:  # a failing model is a result, not a crash of the run
        result.stage = stage
        tb = traceback.format_exception_only(type(exc), exc)
        result.error = "".join(tb).strip()
        if output_dir is not None and result.ir is not None and stage != "report":
            from tests.testing.report import write_model_report

            try:
                result.report = write_model_report(result.ir, case, output_dir, result)
            except Exception as report_exc:  # the first failure is the one to report
                result.error += f"\n(the report could not be written either: {report_exc})"
    return result


def run_cases(
    cases: Sequence[ModelCase], output_dir: Path | None = None, *, verify: bool = True, progress: Any = None
) -> list[CaseResult]:
    """Run ``cases`` in order; with ``output_dir``, also write a report per model and ``index.md``."""
    results = []
    for case in cases:
        result = run_case(case, output_dir, verify=verify)
        results.append(result)
        if progress is not None:
            progress(result)
    if output_dir is not None:
        from tests.testing.report import write_index

        write_index(results, output_dir)
    return results


def format_summary(results: Sequence[CaseResult]) -> str:
    """A text table: one row per model, then failures in full."""
    rows = [f"{'model':<24}{'category':<18}{'result':<8}{'nodes':>7}{'weights':>9}{'time':>9}  stage"]
    for r in results:
        status = "ok" if r.ok else "FAIL"
        rows.append(
            f"{r.name:<24}{r.category:<18} {status:<8}{r.nodes:>7}{r.weights:>9}"
            f"{sum(r.seconds.values()):>8.2f}s  {r.stage}"
        )
    failed = [r for r in results if not r.ok]
    rows.append(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    for r in failed:
        rows.append("")
        rows.append(r.failure())
    return "\n".join(rows)


__all__ = ["STAGES", "CaseResult", "all_cases", "format_summary", "run_case", "run_cases", "select_cases"]
