"""Statistics against hand-computed figures on small models."""

from __future__ import annotations

import torch
from torch import nn

from tests.models import get_model
from tests.testing.statistics import compute_statistics, conv2d_flops, linear_flops
from torch_ir import Graph, TensorType, extract_ir


def _extract(model: nn.Module, *args: torch.Tensor, **kwargs):
    return extract_ir(model.to("meta").eval(), args, pipeline="none", **kwargs)


def test_linear_flops_params_and_bytes() -> None:
    ir = _extract(nn.Linear(16, 32), torch.zeros(4, 16, device="meta"))
    stats = compute_statistics(ir)
    assert (stats.flops, stats.macs) == linear_flops(4, 16, 32) == (2 * 4 * 16 * 32 + 4 * 32, 4 * 16 * 32)
    assert stats.parameter_count == 16 * 32 + 32
    assert stats.parameter_bytes == (16 * 32 + 32) * 4
    assert stats.weights_by_dtype == {"float32": {"count": 544, "bytes": 2176}}
    assert stats.op_histogram == {"aten.linear.default": 1}
    assert stats.num_nodes == 1 and stats.depth == 1
    assert stats.activation_bytes == 4 * 32 * 4


def test_conv_flops() -> None:
    conv = nn.Conv2d(3, 8, kernel_size=3, padding=1, stride=2)
    ir = _extract(conv, torch.zeros(2, 3, 16, 16, device="meta"))
    stats = compute_statistics(ir)
    assert (stats.flops, stats.macs) == conv2d_flops(2, 3, 8, (8, 8), (3, 3))
    assert stats.macs == 2 * 8 * 8 * 8 * 3 * 3 * 3
    assert stats.parameter_count == 8 * 3 * 3 * 3 + 8


def test_half_precision_bytes_and_modules() -> None:
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2, bias=False)).half()
    stats = compute_statistics(_extract(model, torch.zeros(1, 8, dtype=torch.float16, device="meta")))
    assert stats.parameter_count == 8 * 8 + 8 + 16
    assert stats.weights_by_dtype == {"float16": {"count": 88, "bytes": 176}}
    assert stats.params_by_top_module == {"0": 72, "2": 16}
    assert stats.params_by_module == {"0": 72, "2": 16}
    assert stats.op_histogram["aten.relu.default"] == 1


def test_tied_weights_count_once() -> None:
    case = get_model("tied_embedding_lm")
    args, _ = case.inputs("meta")
    ir = extract_ir(case.build_meta(), args, pipeline="none")
    stats = compute_statistics(ir)
    assert stats.parameter_count == 50 * 16 + 16 * 16 + 16
    assert ["embed.weight", "lm_head.weight"] in [sorted(t) for t in stats.tied_weights]


def test_symbolic_dims_and_bindings() -> None:
    graph = Graph()
    x = graph.add_input("x", TensorType(("seq", 16), "float32"))
    w = graph.add_weight("fc.weight", TensorType((32, 16), "float32"))
    node = graph.create_node("aten.linear.default", [x, w], {}, [TensorType(("seq", 32), "float32")])
    graph.set_outputs(node.outputs)
    assert compute_statistics(graph).flops is None
    bound = compute_statistics(graph, bindings={"seq": 128})
    assert (bound.flops, bound.macs) == linear_flops(128, 16, 32, bias=False)
    assert bound.activation_bytes == 128 * 32 * 4


def test_sdpa_and_peak_memory() -> None:
    case = get_model("sdpa_attention")
    args, _ = case.inputs("meta")
    stats = compute_statistics(extract_ir(case.build_meta(), args, pipeline="none"))
    # qkv + out linears, and attention 2*(QK^T + AV) + 5 per score
    linears = linear_flops(12, 32, 96)[0] + linear_flops(12, 32, 32)[0]
    attention = 2 * 2 * (2 * 4 * 6 * 6 * 8) + 5 * 2 * 4 * 6 * 6
    assert stats.flops_by_op["aten.scaled_dot_product_attention.default"] == attention
    assert stats.flops_by_op["aten.linear.default"] == linears
    assert 0 < stats.peak_activation_bytes < stats.activation_bytes
    assert stats.to_dict()["num_nodes"] == stats.num_nodes
