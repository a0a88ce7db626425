"""Statistics for tests: the backend's figures for a registered model, and hand formulas to check them."""

from __future__ import annotations

from torch_ir.analysis.statistics import IRStatistics, compute_statistics, format_statistics

__all__ = ["IRStatistics", "compute_statistics", "conv2d_flops", "format_statistics", "linear_flops"]


def linear_flops(rows: int, in_features: int, out_features: int, bias: bool = True) -> tuple[int, int]:
    """``(flops, macs)`` of ``nn.Linear`` on ``rows`` input rows: 2 FLOPs per MAC, one per bias add."""
    macs = rows * in_features * out_features
    return 2 * macs + (rows * out_features if bias else 0), macs


def conv2d_flops(
    batch: int,
    c_in: int,
    c_out: int,
    out_hw: tuple[int, int],
    kernel: tuple[int, int],
    groups: int = 1,
    bias: bool = True,
) -> tuple[int, int]:
    """``(flops, macs)`` of ``nn.Conv2d`` producing ``out_hw`` maps."""
    outputs = batch * c_out * out_hw[0] * out_hw[1]
    macs = outputs * (c_in // groups) * kernel[0] * kernel[1]
    return 2 * macs + (outputs if bias else 0), macs
