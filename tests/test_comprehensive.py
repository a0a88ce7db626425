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
