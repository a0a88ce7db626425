"""Unit tests of the built-in passes on small graphs written in the text form."""

# ruff: noqa: E501  (graphs in the text form have long lines)
from __future__ import annotations

import pytest
import torch

from torch_ir import PassContext, PassError, parse_graph
from torch_ir.passes.annotate_shapes import AnnotateShapes
from torch_ir.passes.canonicalize import Canonicalize
from torch_ir.passes.cse import CSE
from torch_ir.passes.dedup_weights import DedupWeights
from torch_ir.passes.eliminate_dead_nodes import EliminateDeadNodes
from torch_ir.passes.hoist_weights import HoistWeights


def ops(graph):
    return [n.op_type for n in graph.nodes]


# ------------------------------------------------------------------ annotate-shapes


def test_annotate_fills_missing_types_and_keeps_correct_ones():
    g = parse_graph("""graph(%x: f32[2,16]) {
  weight @w : f32[8,16] parameter
  %y = aten.linear.default(%x, @w) {bias=null} : (f32[2,16], f32[8,16]) -> ?
  %t = aten.transpose.int(%y) {dim0=0, dim1=1} : (?) -> f32[8,2]
  %c = aten.to.dtype(%t) {dtype="float16", non_blocking=false, copy=false, memory_format=null} : (f32[8,2]) -> ?
  return %c
}""")
    result = AnnotateShapes()(g)
    assert result.modified
    assert str(g.value("y").type) == "f32[2,8]" and str(g.value("c").type) == "f16[8,2]"
    g.verify()
    assert not AnnotateShapes()(g).modified


def test_annotate_mismatch_names_the_node():
    g = parse_graph("""graph(%x: f32[2,16]) {
  %r = aten.relu.default(%x) : (f32[2,16]) -> f32[2,17]
  return %r
}""")
    with pytest.raises(PassError, match="node r .*f32\\[2,17\\].*f32\\[2,16\\]"):
        AnnotateShapes()(g)
    assert not AnnotateShapes(strict=False)(g).graph.value("r").type.shape == (2, 17)


def test_annotate_symbolic_dims_propagate():
    g = parse_graph("""graph(%x: f32[1,seq,8]) {
  symbol seq : 2..64
  %n = aten.sym_size.int(%x) {dim=1} : (f32[1,seq,8]) -> int
  %m = operator.mul(%n, 2) : (int) -> int
  %c = aten.cat.default([%x, %x]) {dim=1} : (f32[1,seq,8], f32[1,seq,8]) -> ?
  %v = aten.view.default(%c, [1, %m, 8]) : (?, int) -> ?
  %a = aten.arange.default(%n) {dtype=null, layout=null, device="cpu", pin_memory=false} : (int) -> ?
  return %v, %a
}""")
    AnnotateShapes()(g)
    assert g.value("c").type.shape == (1, "2*seq", 8)
    assert g.value("v").type.shape == (1, "2*seq", 8)
    assert g.value("a").type.shape == ("seq",) and g.value("a").type.dtype == "int64"


def test_annotate_multi_result_and_unknown_op():
    g = parse_graph("""graph(%x: f32[4,6]) {
  %a, %b = aten.split.Tensor(%x) {split_size=3, dim=1} : (f32[4,6]) -> (?, ?)
  %u = mylib.unknown.default(%a) : (?) -> f32[4,3]
  return %b, %u
}""")
    AnnotateShapes()(g)
    assert str(g.value("a").type) == "f32[4,3]" and str(g.value("b").type) == "f32[4,3]"
    with pytest.raises(PassError, match="unknown"):
        AnnotateShapes(fallback=False)(g)


def test_annotate_uses_registered_shape_function():
    from torch_ir import TensorType
    from torch_ir.ops import registry

    registry.register_op(
        "testlib::double_cols",
        shape_fn=lambda types, attrs: TensorType((types[0].shape[0], types[0].shape[1] * 2), types[0].dtype),
        replace=True,
    )
    try:
        g = parse_graph("""graph(%x: f32[4,6]) {
  %y = testlib.double_cols.default(%x) : (f32[4,6]) -> ?
  return %y
}""")
        AnnotateShapes()(g)
        assert str(g.value("y").type) == "f32[4,12]"
    finally:
        registry.unregister_op("testlib::double_cols")


# --------------------------------------------------------------------- canonicalize

CANON = """graph(%x: f32[2,4]) {
  aten._assert_tensor_metadata.default(%x) {size=null, stride=null, dtype="float32", device="meta", layout="strided"} : (f32[2,4]) -> () loc(assert_0)
  %d = aten.dropout.default(%x) {p=0.1, train=false} : (f32[2,4]) -> f32[2,4]
  %t = aten.to.dtype(%d) {dtype="float32", non_blocking=false, copy=false, memory_format=null} : (f32[2,4]) -> f32[2,4]
  %a = aten.alias.default(%t) : (f32[2,4]) -> f32[2,4]
  %c = aten.clone.default(%a) {memory_format=null} : (f32[2,4]) -> f32[2,4]
  %k = aten.contiguous.default(%c) {memory_format="contiguous_format"} : (f32[2,4]) -> f32[2,4]
  %v = aten.view.default(%k) {size=[2, 4]} : (f32[2,4]) -> f32[2,4]
  %h = aten.to.dtype(%v) {dtype="float16", non_blocking=false, copy=false, memory_format=null} : (f32[2,4]) -> f16[2,4]
  %r = aten.reshape.default(%h) {shape=[8]} : (f16[2,4]) -> f16[8]
  %tr = aten.dropout.default(%r) {p=0.5, train=true} : (f16[8]) -> f16[8]
  return %tr
}"""


def test_canonicalize_removes_export_leftovers():
    g = parse_graph(CANON)
    assert Canonicalize()(g).modified
    assert ops(g) == ["aten.to.dtype", "aten.reshape.default", "aten.dropout.default"]
    assert g.value("h").producer.args[0] is g.inputs[0]
    g.verify()
    assert not Canonicalize()(g).modified


# ------------------------------------------------------------------------------ cse


def test_cse_merges_pure_duplicates_only():
    g = parse_graph("""graph(%x: f32[2,4]) {
  %a = aten.relu.default(%x) : (f32[2,4]) -> f32[2,4]
  %b = aten.relu.default(%x) : (f32[2,4]) -> f32[2,4]
  %c = aten.add.Tensor(%a, %b) {alpha=1} : (f32[2,4], f32[2,4]) -> f32[2,4]
  %d = aten.add.Tensor(%b, %a) {alpha=1} : (f32[2,4], f32[2,4]) -> f32[2,4]
  %r1 = aten.rand_like.default(%x) {dtype=null, layout=null, device=null, pin_memory=null, memory_format=null} : (f32[2,4]) -> f32[2,4]
  %r2 = aten.rand_like.default(%x) {dtype=null, layout=null, device=null, pin_memory=null, memory_format=null} : (f32[2,4]) -> f32[2,4]
  %s = aten.mul.Tensor(%c, 2.0) : (f32[2,4]) -> f32[2,4]
  %t = aten.mul.Tensor(%d, 3.0) : (f32[2,4]) -> f32[2,4]
  return %s, %t, %r1, %r2
}""")
    assert CSE()(g).modified
    assert ops(g).count("aten.relu.default") == 1
    assert ops(g).count("aten.add.Tensor") == 1
    assert ops(g).count("aten.rand_like.default") == 2
    assert ops(g).count("aten.mul.Tensor") == 2
    g.verify()


# -------------------------------------------------------------------------- dce


def test_dce_removes_dead_chains_and_weights_but_keeps_effects():
    g = parse_graph("""graph(%x: f32[2,4], %unused: f32[1]) {
  weight @w : f32[4,4] parameter
  weight @dead : f32[4] parameter
  %t = aten.t.default(@w) : (f32[4,4]) -> f32[4,4]
  %u = aten.relu.default(%t) : (f32[4,4]) -> f32[4,4]
  aten._assert_tensor_metadata.default(%x) {dtype="float32"} : (f32[2,4]) -> () loc(keep_me)
  %cp = aten.add_.Tensor(%x, %x) {alpha=1} : (f32[2,4], f32[2,4]) -> f32[2,4]
  %y = aten.neg.default(%x) : (f32[2,4]) -> f32[2,4]
  return %y
}""")
    assert EliminateDeadNodes()(g).modified
    assert ops(g) == ["aten._assert_tensor_metadata.default", "aten.add_.Tensor", "aten.neg.default"]
    assert list(g.weights) == [] and [v.name for v in g.inputs] == ["x", "unused"]
    g.verify()


# ------------------------------------------------------------------- dedup-weights

TIED = """graph(%ids: i64[1,4]) {
  weight @transformer.wte.weight : f32[16,8] parameter aliases(@lm_head.weight)
  weight @lm_head.weight : f32[16,8] parameter aliases(@transformer.wte.weight)
  weight @b1 : f32[8] parameter
  weight @b2 : f32[8] parameter
  %e = aten.embedding.default(@transformer.wte.weight, %ids) : (f32[16,8], i64[1,4]) -> f32[1,4,8]
  %s = aten.add.Tensor(%e, @b1) {alpha=1} : (f32[1,4,8], f32[8]) -> f32[1,4,8]
  %s2 = aten.add.Tensor(%s, @b2) {alpha=1} : (f32[1,4,8], f32[8]) -> f32[1,4,8]
  %l = aten.linear.default(%s2, @lm_head.weight) {bias=null} : (f32[1,4,8], f32[16,8]) -> f32[1,4,16]
  return %l
}"""


def test_dedup_merges_tied_weights():
    g = parse_graph(TIED)
    assert DedupWeights()(g).modified
    assert list(g.weights) == ["transformer.wte.weight", "b1", "b2"]
    assert g.weight("transformer.wte.weight").aliases == ("lm_head.weight",)
    assert g.value("l").producer.args[1] is g.weight("transformer.wte.weight")
    g.verify()
    assert not DedupWeights()(g).modified


def test_dedup_by_value_with_state_dict():
    g = parse_graph(TIED)
    state = {"transformer.wte.weight": torch.ones(16, 8), "b1": torch.zeros(8), "b2": torch.zeros(8)}
    DedupWeights()(g, PassContext(state_dict=state))
    assert list(g.weights) == ["transformer.wte.weight", "b1"]
    assert g.weight("b1").aliases == ("b2",)
    g2 = parse_graph(TIED)
    DedupWeights(by_value=False)(g2, PassContext(state_dict=state))
    assert list(g2.weights) == ["transformer.wte.weight", "b1", "b2"]


# -------------------------------------------------------------------- hoist-weights

HOIST = """graph(%x: f32[2,4]) {
  weight @w : f32[8,4] parameter
  weight @s : f32[8] parameter
  %t = aten.t.default(@w) : (f32[8,4]) -> f32[4,8]
  %h = aten.to.dtype(%t) {dtype="float16", non_blocking=false, copy=false, memory_format=null} : (f32[4,8]) -> f16[4,8]
  %f = aten.to.dtype(%h) {dtype="float32", non_blocking=false, copy=false, memory_format=null} : (f16[4,8]) -> f32[4,8]
  %m = aten.mm.default(%x, %f) : (f32[2,4], f32[4,8]) -> f32[2,8]
  %a = aten.add.Tensor(%m, @s) {alpha=1} : (f32[2,8], f32[8]) -> f32[2,8]
  %n = aten.neg.default(@s) : (f32[8]) -> f32[8]
  %o = aten.add.Tensor(%a, %n) {alpha=1} : (f32[2,8], f32[8]) -> f32[2,8]
  return %o
}"""


def test_hoist_moves_weight_only_chains_into_init():
    g = parse_graph(HOIST)
    assert HoistWeights()(g).modified
    g.verify()
    assert ops(g) == ["aten.mm.default", "aten.add.Tensor", "aten.add.Tensor"]
    assert ops(g.init) == ["aten.t.default", "aten.to.dtype", "aten.to.dtype", "aten.neg.default"]
    derived = [w for w in g.weights.values() if w.kind == "derived"]
    assert [w.name for w in derived] == ["w.t.to.to", "s.neg"]
    assert "w" not in g.weights and "s" in g.weights  # @s is still read by the main graph
    assert list(g.init.weights) == ["w", "s"]
    assert [v.name for v in g.init.outputs] == ["w.t.to.to", "s.neg"]
    assert not HoistWeights()(g).modified


def test_hoist_min_numel_and_numerics():
    from torch_ir.runtime.interpreter import Interpreter

    small = parse_graph(HOIST)
    HoistWeights(min_numel=16)(small)
    assert [w.name for w in small.weights.values() if w.kind == "derived"] == ["w.t.to.to"]
    before, after = parse_graph(HOIST), parse_graph(HOIST)
    HoistWeights()(after)
    weights = {"w": torch.randn(8, 4), "s": torch.randn(8)}
    x = torch.randn(2, 4)
    expected = Interpreter(before, weights)(x)
    got = Interpreter(after, weights)(x)
    torch.testing.assert_close(got, expected)


def test_dedup_runs_inside_init_graph():
    text = TIED.replace(
        "%l = aten.linear.default(%s2, @lm_head.weight) {bias=null} : (f32[1,4,8], f32[16,8])",
        "%tt = aten.t.default(@lm_head.weight) : (f32[16,8]) -> f32[8,16]\n"
        "  %l = aten.matmul.default(%s2, %tt) : (f32[1,4,8], f32[8,16])",
    )
    g = parse_graph(text)
    HoistWeights()(g)
    g.init.add_weight("transformer.wte.weight", g.weight("transformer.wte.weight").type, aliases=("lm_head.weight",))
    DedupWeights()(g)
    assert list(g.init.weights) == ["lm_head.weight"]
    g.verify()
