"""Reports of a test run: ``NAME.md`` (the Markdown backend's report) and ``NAME.mmd`` per model, and
``index.md`` linking them with one row per model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tests.models import ModelCase
from torch_ir import IR
from torch_ir.analysis.statistics import compute_statistics, format_bytes, format_count
from torch_ir.backends.markdown import write_report
from torch_ir.backends.mermaid import render_mermaid
from torch_ir.serde.files import atomic_write_text

if TYPE_CHECKING:
    from tests.testing.runner import CaseResult


def write_model_report(ir: IR, case: ModelCase, output_dir: Path, result: CaseResult | None = None) -> Path:
    """Write ``output_dir/NAME.md`` and ``NAME.mmd``; return the report's path."""
    output_dir = Path(output_dir)
    notes = [("Test case", f"`{case.name}` ({case.category}): {case.description or 'no description'}")]
    if result is not None and not result.ok and result.stage:
        notes.append(("Test failure", f"Stage `{result.stage}` failed:\n\n```\n{result.error}\n```"))
    if result is not None and result.verification:
        notes.append(("Verification (real weights vs eager PyTorch)", f"```\n{result.verification}\n```"))
    path = output_dir / f"{case.name}.md"
    write_report(ir, path, notes=notes)
    atomic_write_text(output_dir / f"{case.name}.mmd", render_mermaid(ir))
    return path


def write_index(results: Sequence[CaseResult], output_dir: Path) -> Path:
    """Write ``output_dir/index.md``: one row per model with its result and main figures."""
    rows = [
        "# torch-ir test reports",
        "",
        "| model | category | result | ops | parameters | FLOPs | stage failed |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for r in results:
        link = f"[{r.name}]({r.report.name})" if r.report is not None else r.name
        params = flops = ""
        if r.ir is not None:
            stats = compute_statistics(r.ir)
            params = f"{stats.parameter_count:,} ({format_bytes(stats.parameter_bytes)})"
            flops = format_count(stats.flops)
        rows.append(
            f"| {link} | {r.category} | {'ok' if r.ok else '**FAIL**'} | {r.nodes} | {params} | {flops} | {r.stage} |"
        )
    failed = sum(1 for r in results if not r.ok)
    rows += ["", f"{len(results) - failed} passed, {failed} failed.", ""]
    path = Path(output_dir) / "index.md"
    atomic_write_text(path, "\n".join(rows))
    return path


__all__ = ["write_index", "write_model_report"]
