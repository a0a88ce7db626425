"""Statistics count the model's own weights whatever passes ran; what the init graph derives is apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from torch_ir import extract_ir, parse_graph
from torch_ir.analysis.statistics import compute_statistics, format_statistics
from torch_ir.analysis.summary import weight_totals
from torch_ir.cli import main

HOISTED = (
    "graph(%x: f32[2,3]) {\n"
    "  weight @w.t : f32[3,4] derived\n"
    "  weight @b : f32[4] parameter\n"
    "  init\n  graph() {\n    weight @w : f32[4,3] parameter\n"
    "    %w.t = aten.t.default(@w) : (f32[4,3]) -> f32[3,4]\n    return %w.t\n  }\n"
    "  %y = aten.mm.default(%x, @w.t) : (f32[2,3], f32[3,4]) -> f32[2,4]\n"
    "  %z = aten.add.Tensor(%y, @b) : (f32[2,4], f32[4]) -> f32[2,4]\n"
    "  return %z\n}"
)


def test_init_graph_originals_are_parameters_and_derived_tensors_are_apart() -> None:
    stats = compute_statistics(parse_graph(HOISTED))
    assert stats.parameter_count == 12 + 4 and stats.constant_count == 0
    assert stats.parameter_bytes == 64 and stats.weight_bytes == 64
    assert stats.derived_count == 12 and stats.derived_bytes == 48
    assert stats.held_bytes == 48 + 16  # @w is no longer read: the backend holds w.t and b
    assert "derived 12 (48 B); a backend holds 64 B" in format_statistics(stats)
    totals = weight_totals(parse_graph(HOISTED))
    assert totals["parameter_count"] == 16 and totals["derived_count"] == 12 and totals["held_bytes"] == 64


@pytest.fixture(scope="module")
def deepseek() -> tuple[torch.nn.Module, object]:
    from tests.transformers_models import build_causal_lm, causal_lm_inputs

    real = build_causal_lm("deepseek_v3", device="cpu")
    args, kwargs = causal_lm_inputs()
    ir = extract_ir(build_causal_lm("deepseek_v3"), args, example_kwargs=kwargs)
    return real, ir


def test_deepseek_v3_statistics_count_every_parameter(deepseek, tmp_path: Path, capsys) -> None:
    real, ir = deepseek
    expected = sum(p.numel() for p in real.parameters())
    assert ir.graph.init is not None and any(w.kind == "derived" for w in ir.weights.values())
    stats = compute_statistics(ir)
    assert stats.parameter_count == expected
    assert stats.parameter_bytes == expected * 4
    assert stats.constant_count == 0
    assert stats.derived_count > 0 and stats.held_bytes > 0
    assert weight_totals(ir.graph)["parameter_count"] == expected
    assert f"parameters  {expected / 1e3:.2f}K" in ir.summary() and "a backend holds" in ir.summary()
    ir.save(tmp_path / "ds.json")
    assert main(["report", str(tmp_path / "ds.json"), "--stats", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["parameter_count"] == expected and data["derived_count"] == stats.derived_count
    assert main(["report", str(tmp_path / "ds.json"), "-o", str(tmp_path / "ds.md")]) == 0
    report = (tmp_path / "ds.md").read_text()
    assert f"{expected:,}" in report and "after the init graph" in report


class _Unused(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.used = torch.nn.Linear(4, 4)
        self.unused = torch.nn.Linear(4, 8)
        self.norm = torch.nn.BatchNorm1d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.used(x))


def test_weights_nothing_reads_still_count_after_save_and_load(tmp_path: Path) -> None:
    from torch_ir import load_ir

    with torch.device("meta"):
        meta = _Unused().eval()
    ir = extract_ir(meta, (torch.randn(2, 4, device="meta"),))
    assert "unused.weight" in ir.graph.meta["unused_weights"] and "unused.weight" not in ir.weights
    ir.save(tmp_path / "u.json")
    stats = compute_statistics(load_ir(tmp_path / "u.json"))
    model = _Unused()
    assert stats.parameter_count == sum(p.numel() for p in model.parameters())
    assert stats.buffer_count == sum(b.numel() for b in model.buffers())  # num_batches_tracked too
    assert stats.held_bytes < stats.weight_bytes  # a backend does not hold what nothing reads
