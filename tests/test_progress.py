"""Progress that means something on long work: layers traced out of layers total during export."""

from __future__ import annotations

import io

import torch
from torch import nn

from torch_ir import extract_ir
from torch_ir.progress import Progress, layer_progress, repeated_blocks


class Chain(nn.Module):
    """A stem, six identical blocks in a ModuleList, and a head (four sibling Linears inside each block)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(8, 8)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(8, 8), nn.ReLU()) for _ in range(6))
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def test_repeated_blocks_are_the_longest_same_class_run() -> None:
    names = [name for name, _ in repeated_blocks(Chain())]
    assert names == [f"blocks.{i}" for i in range(6)]
    assert repeated_blocks(nn.Linear(2, 2)) == []


def test_layers_are_counted_during_export_and_hooks_removed() -> None:
    with torch.device("meta"):
        model = Chain()
    stream = io.StringIO()
    progress = Progress(verbose=True, stream=stream)
    with layer_progress(progress, model) as total:
        ir = extract_ir(model, (torch.randn(2, 8, device="meta"),), pipeline="none")
    assert total == 6
    lines = stream.getvalue().splitlines()
    assert "  export: 6/6 Sequential traced" in lines and "  export: 3/6 Sequential traced" in lines
    assert all(not block._forward_hooks for block in model.blocks)
    assert ir == extract_ir(model, (torch.randn(2, 8, device="meta"),), pipeline="none")  # hooks change nothing


def test_quiet_and_piped_progress_print_nothing() -> None:
    with torch.device("meta"):
        model = Chain()
    for progress in (Progress(quiet=True, verbose=False, stream=io.StringIO()), Progress(stream=io.StringIO())):
        with layer_progress(progress, model) as total:
            extract_ir(model, (torch.randn(2, 8, device="meta"),), pipeline="none")
        assert total == 0 and progress.stream.getvalue() == ""
