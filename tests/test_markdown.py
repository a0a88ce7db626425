"""The Markdown backend: sections, capped tables, pass log, stages, inline Mermaid, atomic writes."""

from __future__ import annotations

import re
from pathlib import Path

from tests.models import get_model
from tests.testing.mermaid import validate_mermaid
from torch_ir import extract_ir
from torch_ir.backends.markdown import render_markdown, write_report


def _ir(name: str = "tied_embedding_lm"):
    case = get_model(name)
    args, kwargs = case.inputs("meta")
    return extract_ir(
        case.build_meta(), args, example_kwargs=kwargs, dynamic_shapes=case.dynamic_shapes, pipeline="none", name=name
    )


def test_report_sections_and_mermaid_fence() -> None:
    ir = _ir()
    ir.pass_log = [
        {
            "pass": "dedup-weights",
            "seconds": 0.002,
            "modified": True,
            "nodes_before": 7,
            "nodes_after": 6,
            "weights_before": 4,
            "weights_after": 3,
        }
    ]
    text = render_markdown(ir, notes=[("Extra", "a note")])
    for heading in (
        "# tied_embedding_lm: torch-ir report",
        "## Summary",
        "## Extra",
        "## Statistics",
        "## Weights",
        "## Pipeline",
        "## Extraction stages",
        "## Graph",
    ):
        assert heading in text
    assert "| `dedup-weights` | 2.0 ms | yes | 7 → 6 | 4 → 3 |" in text
    assert "| export |" in text
    assert "`embed.weight` = `lm_head.weight`" in text
    assert "| parameters | 1,072 (4.2 KiB) |" in text
    fence = re.search(r"```mermaid\n(.*?)```", text, re.S)
    assert fence is not None
    validate_mermaid(fence.group(1))


def test_long_tables_are_capped() -> None:
    ir = _ir("residual_mlp")
    text = render_markdown(ir, max_table_rows=3, include_mermaid=False)
    assert f"| ... {len(ir.weights) - 3} more | | | | |" in text
    assert "```mermaid" not in text and "## Pipeline" not in text


def test_write_report_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "r.md"
    write_report(_ir("kwargs_dict"), path)
    assert path.read_text().startswith("# kwargs_dict")
    assert [p.name for p in path.parent.iterdir()] == ["r.md"]


def test_symbolic_model_report() -> None:
    text = render_markdown(_ir("dynamic_batch"))
    assert "symbolic dims `batch`" in text and "unknown (symbolic dims; pass bindings)" in text
