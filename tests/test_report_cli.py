"""``torch-ir report``: Markdown, Mermaid and statistics of a saved IR."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.models import get_model
from tests.testing.mermaid import validate_mermaid
from torch_ir import extract_ir
from torch_ir.cli import main


@pytest.fixture(scope="module")
def ir_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    case = get_model("sdpa_attention")
    args, _ = case.inputs("meta")
    path = tmp_path_factory.mktemp("ir") / "attn.json"
    extract_ir(case.build_meta(), args, name="attn").save(path)
    return path


def test_markdown_report(ir_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "attn.md"
    assert main(["report", str(ir_file), "-o", str(out)]) == 0
    assert "```mermaid" in out.read_text()


def test_mermaid_only(ir_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(ir_file), "--mermaid-only", "--depth", "0"]) == 0
    validate_mermaid(capsys.readouterr().out)


def test_stats_json(ir_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(ir_file), "--stats", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["parameter_count"] == 32 * 96 + 96 + 32 * 32 + 32 + 2 * 32


def test_bad_binding_is_a_clear_error(ir_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(ir_file), "--stats", "--bind", "seq"]) == 2
    assert "expected SYMBOL=INTEGER" in capsys.readouterr().err
