"""``summarize(ir)`` / ``IR.summary()``: counts, parameters (tied storages once), stages, passes."""

from __future__ import annotations

import torch

from torch_ir import extract_ir
from torch_ir.analysis.summary import format_bytes, format_count, summarize, weight_totals


class Tied(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(10, 4)
        self.head = torch.nn.Linear(4, 10, bias=False)
        self.head.weight = self.emb.weight
        self.register_buffer("scale", torch.ones(4))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.emb(ids) * self.scale)


def _ir():
    with torch.device("meta"):
        model = Tied().eval()
    return extract_ir(model, (torch.zeros(1, 3, dtype=torch.long, device="meta"),), pipeline="none")


def test_tied_weights_are_counted_once():
    ir = _ir()
    totals = weight_totals(ir.graph)
    assert totals["parameter_count"] == 40 and totals["parameter_bytes"] == 160
    assert totals["buffer_count"] == 4 and totals["tied"] == 1


def test_summary_lists_counts_and_stages():
    ir = _ir()
    ir.pass_log.append({"pass": "cse", "seconds": 0.01, "modified": True, "nodes_before": 5, "nodes_after": 4})
    text = ir.summary()
    assert text == summarize(ir)
    assert "parameters  40 (160 B)" in text
    assert "export" in text and "convert" in text
    assert "cse" in text and "modified" in text
    assert "%ids: i64[1,3]" in text


def test_formatting():
    assert format_count(70_553_706_496) == "70.55G"
    assert format_count(12) == "12"
    assert format_bytes(2048) == "2.0 KiB"
    assert format_bytes(3 * 2**40) == "3.0 TiB"
