"""Every registered test model: extract on meta (default pipeline), save/load, Mermaid, verify with real weights.

``pytest tests/test_comprehensive.py --generate-reports --output reports/`` also writes a report per model
and ``index.md``; ids are ``category/name``, so ``-k attention`` selects by either.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.models import MODELS, ModelCase
from tests.testing.report import write_index
from tests.testing.runner import CaseResult, run_case

_RESULTS: list[CaseResult] = []


@pytest.fixture(scope="module")
def results(report_dir: Path | None):
    """Collects the results of this module; writes the index at the end when reports are on."""
    yield _RESULTS
    if report_dir is not None and _RESULTS:
        write_index(_RESULTS, report_dir)


@pytest.mark.parametrize("case", MODELS, ids=[f"{m.category}/{m.name}" for m in MODELS])
def test_model(case: ModelCase, results: list[CaseResult], report_dir: Path | None) -> None:
    result = run_case(case, report_dir)
    results.append(result)
    assert result.ok, result.failure()
    if report_dir is not None:
        assert result.report is not None and result.report.exists()


@pytest.mark.parametrize("name", ["gpt2_tiny", "llama_tiny"])
def test_transformers_report_renders_and_verifies(name: str, tmp_path: Path) -> None:
    """transformers GPT-2 and Llama: extracted, verified, and a report whose Mermaid parses."""
    from tests.testing.mermaid import check_mermaid
    from tests.testing.transformers_models import TRANSFORMERS_MODELS

    pytest.importorskip("transformers")
    case = next(c for c in TRANSFORMERS_MODELS if c.name == name)
    result = run_case(case, tmp_path)
    assert result.ok, result.failure()
    text = result.report.read_text()
    assert "```mermaid" in text and "## Weights" in text
    diagram = text.split("```mermaid", 1)[1].split("```", 1)[0]
    check_mermaid(diagram)
