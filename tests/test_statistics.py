"""Statistics against hand-computed figures on small models."""

from __future__ import annotations

import torch
from torch import nn

from tests.models import get_model
from tests.testing.statistics import compute_statistics, conv2d_flops, format_statistics, linear_flops
from torch_ir import Graph, TensorType, extract_ir, parse_graph
from torch_ir.analysis.statistics import (
    call_figures,
    evaluate_bytes,
    format_bytes,
    format_count,
    format_program_statistics,
    live_bytes,
    node_cost,
    node_traffic,
    program_statistics,
)
from torch_ir.ir.text import parse_module
from torch_ir.passes import PassManager


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


def test_report_text_of_a_linear_layer() -> None:
    ir = _extract(nn.Linear(16, 32), torch.zeros(4, 16, device="meta"))
    assert format_statistics(compute_statistics(ir)).splitlines() == [
        "model            Linear",
        "nodes            1 (1 op types), edges 3",
        "inputs/outputs   1 / 1",
        "weights          2 in the graph; the model's own: 2.1 KiB",
        "parameters       544 (2.1 KiB)",
        "buffers          0 (0 B), constants 0 (0 B)",
        "FLOPs / MACs     4.22K / 2.05K",
        "activations      512 B total, 512 B peak live",
        "depth            1",
        "top ops:",
        "       1  aten.linear.default",
    ]


def test_counts_and_bytes_take_the_largest_unit_they_reach() -> None:
    counts = [(999, "999"), (1000, "1.00K"), (4224, "4.22K"), (2_500_000, "2.50M"), (7e9, "7.00G"), (1.5e12, "1.50T")]
    assert [(n, format_count(n)) for n, _ in counts] == counts
    sizes = [(1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"), (3 * 2**30, "3.0 GiB"), (2 * 2**40, "2.0 TiB")]
    assert [(n, format_bytes(n)) for n, _ in sizes] == sizes
    assert format_count(None) == format_bytes(None) == "unknown"


def _chain() -> Graph:
    """relu -> relu -> view (an output) and mul(relu, relu) -> add -> relu (an output): 64 bytes a result."""
    graph = Graph()
    f32 = TensorType((4, 4), "float32")
    x = graph.add_input("x", f32)
    first = graph.create_node("aten.relu.default", [x], {}, [f32]).outputs[0]
    second = graph.create_node("aten.relu.default", [first], {}, [f32]).outputs[0]
    flat = graph.create_node("aten.view.default", [second, [16]], {}, [TensorType((16,), "float32")]).outputs[0]
    square = graph.create_node("aten.mul.Tensor", [first, first], {}, [f32]).outputs[0]
    total = graph.create_node("aten.add.Tensor", [second, square], {}, [f32]).outputs[0]
    last = graph.create_node("aten.relu.default", [total], {}, [f32]).outputs[0]
    graph.set_outputs([last, flat])
    return graph


def test_live_bytes_free_each_value_after_its_last_use_and_keep_what_an_output_views() -> None:
    graph = _chain()
    live = {node.name: size for node, size in live_bytes(graph).items()}
    # relu: 1 result; relu_1: 2; the view adds nothing; mul: 3, then relu's last use frees it;
    # add: 3 (relu_1 is kept: the output views it), then mul is freed; relu_2: 3 again
    assert live == {"relu": 64, "relu_1": 128, "view": 128, "mul": 192, "add": 192, "relu_2": 192}
    assert compute_statistics(graph).peak_activation_bytes == 192


def test_node_traffic_reads_each_operand_once_and_views_move_nothing() -> None:
    traffic = {node.name: node_traffic(node) for node in _chain().nodes}
    assert traffic == {
        "relu": (64, 64),
        "relu_1": (64, 64),
        "view": (0, 0),
        "mul": (64, 64),  # the same operand twice is read once
        "add": (128, 64),
        "relu_2": (64, 64),
    }


def test_figures_of_an_unbound_symbolic_dim_are_unknown_until_bound() -> None:
    graph = Graph()
    x = graph.add_input("x", TensorType(("seq", 4), "float16"))
    node = graph.create_node("aten.relu.default", [x], {}, [TensorType(("seq", 4), "float16")])
    graph.set_outputs(node.outputs)
    assert live_bytes(graph) is None and node_traffic(node) is None
    assert node_traffic(node, {"seq": 3}) == (24, 24)
    assert evaluate_bytes(x.type, {"seq": 3}) == 24 and evaluate_bytes(x.type, {}) is None
    assert evaluate_bytes(None, {"seq": 3}) is None


PROGRAM = """module {
  weight @embed.weight : f32[16,4] parameter
  weight @proj.weight : f32[4,4] parameter
  state @cache : f32[1,8,4] zeros
  func prefill graph(%ids: i64[1,s0]) {
    symbol s0 : 1..8
    %e = aten.embedding.default(@embed.weight, %ids) : (f32[16,4], i64[1,s0]) -> f32[1,s0,4]
    %m = aten.matmul.default(%e, @proj.weight) : (f32[1,s0,4], f32[4,4]) -> f32[1,s0,4]
    return %m
  }
  func decode graph(%ids: i64[1,1], %cache: f32[1,8,4]) {
    %e = aten.embedding.default(@embed.weight, %ids) : (f32[16,4], i64[1,1]) -> f32[1,1,4]
    %m = aten.matmul.default(%e, @proj.weight) : (f32[1,1,4], f32[4,4]) -> f32[1,1,4]
    %s = aten.add.Tensor(%cache, %m) : (f32[1,8,4], f32[1,1,4]) -> f32[1,8,4]
    update %cache = %s
    return %m
  }
}
"""


def test_program_statistics_per_entry_with_weights_once_and_the_state() -> None:
    ir = parse_module(PROGRAM)
    stats = program_statistics(ir)
    assert (stats.state_bytes, stats.weight_bytes) == (8 * 4 * 4, (16 * 4 + 4 * 4) * 4)
    prefill, decode = stats.entries
    # prefill at the largest s0: the matmul is 2 * 8 * 4 * 4 FLOPs; it reads both weights and 8 ids
    assert (prefill.entry, prefill.num_nodes, prefill.flops, prefill.bindings) == ("prefill", 2, 256, {"s0": 8})
    assert prefill.bytes_read == 320 + 8 * 8
    # decode: one row through the matmul (32) and the add over the cache (32); it reads the cache too
    assert (decode.entry, decode.num_nodes, decode.flops, decode.bytes_read) == ("decode", 3, 64, 320 + 8 + 128)
    bound = program_statistics(ir, bindings={"s0": 2}).entries[0]
    assert (bound.flops, bound.bytes_read, bound.bindings) == (64, 320 + 16, {"s0": 2})
    assert format_program_statistics(stats).splitlines() == [
        "program     model: prefill, decode",
        "  prefill   2 nodes, 256 FLOPs per call, 384 B read per call (at s0=8)",
        "  decode    3 nodes, 64 FLOPs per token, 456 B read per token",
        "state       128 B (KV cache at full length)",
        "weights     320 B (read by the entries, counted once)",
    ]


CALLS = """module {
  weight @w : f32[4,4] parameter
  func forward graph(%x: f32[2,4]) {
    %a = func.call(%x, @w) {callee="block"} : (f32[2,4], f32[4,4]) -> f32[2,4]
    %b = func.call(%a, @w) {callee="block"} : (f32[2,4], f32[4,4]) -> f32[2,4]
    return %b
  }
  func private block graph(%h: f32[2,4], %t: f32[4,4]) {
    %m = aten.mm.default(%h, %t) : (f32[2,4], f32[4,4]) -> f32[2,4]
    %r = func.call(%m) {callee="act"} : (f32[2,4]) -> f32[2,4]
    return %r
  }
  func private act graph(%v: f32[2,4]) {
    %s = aten.relu.default(%v) : (f32[2,4]) -> f32[2,4]
    %e = aten.exp.default(%s) : (f32[2,4]) -> f32[2,4]
    return %e
  }
}
"""


def test_a_call_costs_one_run_of_its_callee_and_calls_nest() -> None:
    ir = parse_module(CALLS)
    figures = call_figures(ir)
    # act: relu and exp, 8 elements each; 32 bytes read and written by each; two 32-byte results, one live
    # at a time plus the one being made
    act = figures["act"]
    assert (act.flops, act.macs, act.traffic, act.activation_bytes, act.peak_bytes) == (16, 0, 128, 64, 64)
    # block: mm (2 * 2 * 4 * 4 FLOPs, reads 32 + 64 bytes, writes 32) and one run of act; at the call, m is
    # live beside act's own peak
    block = figures["block"]
    assert (block.flops, block.macs, block.traffic, block.activation_bytes, block.peak_bytes) == (80, 32, 256, 96, 96)
    assert block.flops_by_op == {"aten.mm.default": 64, "aten.relu.default": 8, "aten.exp.default": 8}
    stats = compute_statistics(ir)
    assert (stats.flops, stats.macs, stats.activation_bytes, stats.uncounted_ops) == (160, 64, 192, [])
    assert stats.flops_by_op == {"aten.mm.default": 128, "aten.relu.default": 16, "aten.exp.default": 16}
    # the second call runs while the first one's result is live
    live = {node.name: size for node, size in live_bytes(ir.graph, None, figures).items()}
    assert live == {"a": 96, "b": 32 + 96} and stats.peak_activation_bytes == 128
    assert [node_traffic(node, None, figures) for node in ir.graph.nodes] == [(256, 0), (256, 0)]
    # a graph alone has no callees to cost: its calls are uncounted
    alone = compute_statistics(ir.graph)
    assert (alone.flops, alone.uncounted_ops) == (0, ["func.call"])


def test_calls_cost_what_their_inlined_bodies_cost() -> None:
    ir = parse_module(CALLS)
    with_calls = compute_statistics(ir)
    PassManager("inline").run(ir)
    inlined = compute_statistics(ir)
    assert "func.call" not in inlined.op_histogram
    for field in ("flops", "macs", "flops_by_op", "uncounted_ops", "activation_bytes"):
        assert getattr(with_calls, field) == getattr(inlined, field), field


def test_graph_figures_of_the_hand_built_chain() -> None:
    stats = compute_statistics(_chain())
    # edges: every tensor operand; op edges: those a node made (mul reads relu twice)
    assert (stats.num_edges, stats.num_op_edges, stats.num_inputs, stats.num_outputs) == (8, 7, 1, 2)
    # most frequent first, ties by name
    assert list(stats.op_histogram.items()) == [
        ("aten.relu.default", 3),
        ("aten.add.Tensor", 1),
        ("aten.mul.Tensor", 1),
        ("aten.view.default", 1),
    ]
    assert (stats.model, stats.depth) == ("model", 4)  # relu, relu_1, add, relu_2
    assert stats.flops_by_op == {"aten.relu.default": 48, "aten.mul.Tensor": 16, "aten.add.Tensor": 16}
    assert stats.activation_bytes == 6 * 64  # the total of every result, the view's included


def test_node_cost_of_unbound_dims_and_of_ops_without_a_cost_model() -> None:
    graph = Graph()
    x = graph.add_input("x", TensorType(("n", 4), "float32"))
    relu = graph.create_node("aten.relu.default", [x], {}, [TensorType(("n", 4), "float32")])
    nonzero = graph.create_node("aten.nonzero.default", relu.outputs, {}, [TensorType(("k", 2), "int64")])
    graph.set_outputs(nonzero.outputs)
    assert node_cost(relu) == (None, None, True)  # a cost model, but n is unknown
    assert node_cost(relu, {"n": 3}) == (12, 0, True)
    assert node_cost(nonzero, {"n": 3, "k": 5}) == (0, 0, False)  # no cost model: uncounted
    stats = compute_statistics(graph, bindings={"n": 3, "k": 5})
    assert (stats.flops, stats.uncounted_ops, stats.bindings) == (12, ["aten.nonzero.default"], {"n": 3, "k": 5})
    assert compute_statistics(graph).flops is None


CONTROL_FLOW = """graph(%p: i1[], %xs: f32[3,2], %h0: f32[2]) {
  %r = higher_order.cond(%p, [%h0]) : (i1[], f32[2]) -> f32[2] regions {
    true: graph(%h0: f32[2]) {
      %n = aten.neg.default(%h0) : (f32[2]) -> f32[2]
      return %n
    }
    false: graph(%h0: f32[2]) {
      return %h0
    }
  }
  %h, %ys = higher_order.scan([%r], [%xs], []) : (f32[2], f32[3,2]) -> (f32[2], f32[3,2]) regions {
    combine: graph(%c: f32[2], %x: f32[2]) {
      %s = aten.add.Tensor(%c, %x) : (f32[2], f32[2]) -> f32[2]
      return %s, %s
    }
  }
  return %h, %ys
}"""


def test_control_flow_costs_its_regions_per_iteration_times_the_trip_count() -> None:
    stats = compute_statistics(parse_graph(CONTROL_FLOW))
    # cond: its costlier branch (neg of 2 elements) once; scan: the add of 2 elements for each of 3 rows
    assert stats.region_ops == [
        {"node": "r", "op": "higher_order.cond", "flops_per_iteration": 2, "macs_per_iteration": 0,
         "trip_count": 1, "flops": 2},
        {"node": "h", "op": "higher_order.scan", "flops_per_iteration": 2, "macs_per_iteration": 0,
         "trip_count": 3, "flops": 6},
    ]  # fmt: skip
    assert (stats.flops, stats.flops_by_op) == (8, {"higher_order.scan": 6, "higher_order.cond": 2})
    assert format_statistics(stats).splitlines()[-3:] == [
        "control flow (FLOPs per iteration x trip count):",
        "  r (higher_order.cond): 2 x 1 = 2",
        "  h (higher_order.scan): 2 x 3 = 6",
    ]
