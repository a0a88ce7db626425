"""docs/operators.md lists exactly the ops the test suite runs through the interpreter."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gen_operators_doc.py"


def test_operators_doc_is_up_to_date() -> None:
    pytest.importorskip("transformers")
    spec = importlib.util.spec_from_file_location("gen_operators_doc", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = module.render(module.collect_op_types())
    current = module.DOC.read_text() if module.DOC.exists() else ""
    assert current == expected, "docs/operators.md is out of date: run python scripts/gen_operators_doc.py"
