"""Unit tests of the built-in passes on small graphs written in the text form."""

# ruff: noqa: E501  (graphs in the text form have long lines)
from __future__ import annotations

import re

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


def test_annotate_tells_signatures_apart_by_literal_operands_and_attributes():
    g = parse_graph("""graph(%x: f32[2,16]) {
  %a = aten.sum.dim_IntList(%x, [0]) : (f32[2,16]) -> ?
  %b = aten.sum.dim_IntList(%x, [1]) : (f32[2,16]) -> ?
  %c = aten.to.dtype(%x) {dtype="float16", non_blocking=false, copy=false, memory_format=null} : (f32[2,16]) -> ?
  %d = aten.to.dtype(%x) {dtype="int32", non_blocking=false, copy=false, memory_format=null} : (f32[2,16]) -> ?
  return %a, %b, %c, %d
}""")
    assert AnnotateShapes()(g).modified
    assert [str(g.value(name).type) for name in "abcd"] == ["f32[16]", "f32[2]", "f16[2,16]", "i32[2,16]"]


def test_annotate_names_why_it_could_not_compute_a_type_even_for_a_signature_seen_before():
    g = parse_graph("""graph(%x: f32[4,6]) {
  %u = mylib.unknown.default(%x) : (f32[4,6]) -> f32[4,6]
  %r = aten.relu.default(%u) : (f32[4,6]) -> ?
  %q = mylib.unknown.default(%r) : (f32[4,6]) -> ?
  return %q
}""")
    # u's type is recorded and stands; q has u's signature, and no recorded type
    with pytest.raises(
        PassError,
        match=r"^graph: node q: cannot compute the result types of mylib.unknown.default \(the op is not known to "
        r"torch \(is its library imported\?\)\), and they are not recorded; import the library",
    ):
        AnnotateShapes()(g)
    assert str(g.value("r").type) == "f32[4,6]"


def test_annotate_replaces_a_wrong_recorded_type_when_not_strict():
    g = parse_graph("""graph(%x: f32[2,16]) {
  %r = aten.relu.default(%x) : (f32[2,16]) -> f32[2,17]
  return %r
}""")
    result = AnnotateShapes(strict=False)(g)
    assert result.modified and str(g.value("r").type) == "f32[2,16]"
    assert not AnnotateShapes()(g).modified


SPECIALIZING_PAD = """graph(%x: f32[batch,3,4]) {
  symbol batch : 2..64
  %p = aten.pad.default(%x) {pad=[1, 1], mode="constant", value=null} : (f32[batch,3,4]) -> RECORDED
  %q = aten.pad.default(%x) {pad=[1, 1], mode="constant", value=null} : (f32[batch,3,4]) -> RECORDED
  %n = aten.add.Tensor(%p, %q) : (RECORDED, RECORDED) -> ?
  return %n
}"""


def test_annotate_keeps_the_recorded_symbolic_type_where_a_kernel_specializes_and_checks_the_rest():
    # constant pad's kernel guards batch to its example size: the recorded symbolic type stands, for the
    # second pad too (a signature seen before), and the add that reads them is typed from it
    g = parse_graph(SPECIALIZING_PAD.replace("RECORDED", "f32[batch,3,6]"))
    assert AnnotateShapes()(g).modified
    assert [str(g.value(name).type) for name in "pqn"] == ["f32[batch,3,6]"] * 3
    for recorded, found in [("f32[batch,3,7]", "f32[batch,3,7]"), ("f16[batch,3,6]", "f16[batch,3,6]")]:
        wrong = parse_graph(SPECIALIZING_PAD.replace("RECORDED", recorded))
        with pytest.raises(
            PassError,
            match=rf"^graph: node p \(aten.pad.default\): result %p is recorded as {re.escape(found)} but the "
            r"kernel computes f32\[17,3,6\] \(with batch specialized to the example size\)",
        ):
            AnnotateShapes()(wrong)
        AnnotateShapes(strict=False)(wrong)  # not strict: the recorded type stands
        assert str(wrong.value("q").type) == found
    untyped = parse_graph(SPECIALIZING_PAD.replace("RECORDED", "?"))
    with pytest.raises(PassError, match="node p: cannot compute the type of %p .* specializes batch to the example"):
        AnnotateShapes()(untyped)


BATCH_NORM = """graph(%x: f32[2,3,4,4]) {
  weight @w : f32[3] parameter
  weight @b : f32[3] parameter
  weight @m : f32[3] buffer
  weight @v : f32[3] buffer
  %o, %sm, %si = aten._native_batch_norm_legit_no_training.default(%x, @w, @b, @m, @v, 0.1, 1e-05) : (f32[2,3,4,4], f32[3], f32[3], f32[3], f32[3]) -> (f32[2,3,4,4], f32[0], f32[0])
  return %o
}"""


def test_annotate_keeps_a_type_the_kernel_gives_on_the_trace_device():
    # on CPU this op returns empty saved statistics, on meta statistics of 3: a model traced on CPU keeps its types
    traced_on_cpu = parse_graph(BATCH_NORM)
    traced_on_cpu.meta["device"] = "cpu"
    assert not AnnotateShapes()(traced_on_cpu).modified
    assert [str(v.type) for v in traced_on_cpu.value("o").producer.outputs] == ["f32[2,3,4,4]", "f32[0]", "f32[0]"]
    with pytest.raises(
        PassError, match=r"node o .*: result %sm is recorded as f32\[0\] but the kernel computes f32\[3\]"
    ):
        AnnotateShapes()(parse_graph(BATCH_NORM))  # traced on meta: the recorded type is wrong


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


NO_OPS_AND_LOOKALIKES = """graph(%x: f32[2,4], %s: f32[n,4]) {
  symbol n : 1..8
  %d0 = aten.dropout.default(%x) {p=0, train=true} : (f32[2,4]) -> f32[2,4]
  %d1 = aten.dropout.default(%d0) {p=0.0, train=true} : (f32[2,4]) -> f32[2,4]
  %d2 = aten.dropout.default(%d1) {train=true} : (f32[2,4]) -> f32[2,4]
  %d3 = aten.dropout.default(%d2) {train=false} : (f32[2,4]) -> f32[2,4]
  %o1, %m1 = aten.native_dropout.default(%d3, 0.5, false) : (f32[2,4]) -> (f32[2,4], i1[2,4])
  %o2, %m2 = aten.native_dropout.default(%o1, 0.5, false) : (f32[2,4]) -> (f32[2,4], i1[2,4])
  %u = aten.logical_not.default(%m2) : (i1[2,4]) -> i1[2,4]
  %o3, %m3 = aten.native_dropout.default(%o2, 0.5, false) : (f32[2,4]) -> (f32[2,4], i1[2,4])
  %c1 = aten.clone.default(%o3) {memory_format="preserve_format"} : (f32[2,4]) -> f32[2,4]
  %c2 = aten.clone.default(%c1) : (f32[2,4]) -> f32[2,4]
  %c3 = aten.clone.default(%c2) {memory_format="channels_last"} : (f32[2,4]) -> f32[2,4]
  %v1 = aten.view.default(%c3, [2, 4]) : (f32[2,4]) -> f32[2,4]
  %v2 = aten.view.default(%s, [-1, 4]) : (f32[n,4]) -> f32[n,4]
  return %v1, %u, %m3, %v2
}"""


def test_canonicalize_removes_only_what_is_a_no_op_whether_operands_are_attributes_or_arguments():
    g = parse_graph(NO_OPS_AND_LOOKALIKES)
    assert Canonicalize()(g).modified
    kept = [n.name for n in g.nodes]
    # removed: dropout with p 0 (int or float) or in eval mode (train=false, as an attribute or by position,
    # its mask unread), clones that keep the memory format, a view of a static shape to itself
    # kept: dropout without p in training (p defaults to 1), dropout whose mask is read or returned, a clone
    # to channels_last, a view of a symbolic shape
    assert kept == ["d2", "o2", "u", "o3", "c3", "v2"]
    assert g.value("o2").producer.inputs[0] is g.value("d2") and g.outputs[0] is g.value("c3")


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


@pytest.mark.parametrize(
    "b2",
    [
        torch.ones(8),
        torch.zeros(8).index_fill(0, torch.tensor([7]), 1e-6),
        torch.zeros(8).index_fill(0, torch.tensor([0]), -3.0),
    ],
    ids=["all-different", "one-element-off-by-1e-6", "first-element-differs"],
)
def test_dedup_by_value_keeps_weights_of_one_type_whose_values_differ(b2: torch.Tensor) -> None:
    from torch_ir.runtime.interpreter import Interpreter

    state = {"transformer.wte.weight": torch.randn(16, 8), "b1": torch.zeros(8), "b2": b2}
    g = parse_graph(TIED)
    DedupWeights()(g, PassContext(state_dict=state))
    assert list(g.weights) == ["transformer.wte.weight", "b1", "b2"]  # only the tied pair merged
    assert g.weight("b1").aliases == () and g.weight("b2").aliases == ()
    ids = torch.tensor([[0, 3, 5, 15]])
    expected = Interpreter(parse_graph(TIED), state)(ids)
    torch.testing.assert_close(Interpreter(g, state)(ids), expected, rtol=0, atol=0)


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


def test_hoist_min_numel_is_a_lower_bound_on_the_result_elements():
    def derived(min_numel: int) -> list[str]:
        g = parse_graph(HOIST)
        HoistWeights(min_numel=min_numel)(g)
        return [w.name for w in g.weights.values() if w.kind == "derived"]

    # w.t and its casts have 32 elements, s.neg has 8
    assert derived(1) == derived(8) == ["w.t.to.to", "s.neg"]
    assert derived(9) == derived(32) == ["w.t.to.to"]
    assert derived(33) == []


HOIST_MODULE = """module {
  weight @w : f32[8,4] parameter
  weight @w.t : f32[3] parameter
  weight @b : f32[4] buffer non-persistent
  func first graph(%x: f32[2,4]) {
    %t = aten.t.default(@w) : (f32[8,4]) -> f32[4,8]
    %m = aten.mm.default(%x, %t) : (f32[2,4], f32[4,8]) -> f32[2,8]
    %h = aten.to.dtype(@b) {dtype="float16", non_blocking=false, copy=false, memory_format=null} : (f32[4]) -> f16[4]
    %n = aten.sym_size.int(@w, 0) : (f32[8,4]) -> int
    return %m, %h, %n, @w.t
  }
  func second graph(%x: f32[2,4]) {
    %t = aten.t.default(@w) : (f32[8,4]) -> f32[4,8]
    %m = aten.mm.default(%x, %t) : (f32[2,4], f32[4,8]) -> f32[2,8]
    %h = aten.to.dtype(@b) {dtype="int32", non_blocking=false, copy=false, memory_format=null} : (f32[4]) -> i32[4]
    return %m, %h
  }
}
"""


def test_hoist_shares_one_derived_weight_between_functions_and_tells_attributes_apart():
    from torch_ir.ir.text import parse_module
    from torch_ir.runtime.program import ProgramRunner

    ir = parse_module(HOIST_MODULE)
    weights = {"w": torch.randn(8, 4), "w.t": torch.randn(3), "b": torch.randn(4)}
    x = torch.randn(2, 4)
    runner = ProgramRunner(parse_module(HOIST_MODULE), weights)
    before = {name: runner(name, x) for name in ("first", "second")}
    assert HoistWeights()(ir).modified
    ir.verify()
    # one t(@w) for both functions, named apart from the weight already called w.t; one cast per dtype; the
    # non-persistent buffer keeps its kind in the init graph; sym_size (an int) is not hoisted and keeps @w
    assert ir.to_text().splitlines()[:16] == [
        "module {",
        "  weight @w : f32[8,4] parameter",
        "  weight @w.t : f32[3] parameter",
        "  weight @w.t_1 : f32[4,8] derived",
        "  weight @b.to : f16[4] derived",
        "  weight @b.to_1 : i32[4] derived",
        "  init graph() {",
        "    weight @w : f32[8,4] parameter",
        "    weight @b : f32[4] buffer non-persistent",
        "    %w.t_1 = aten.t.default(@w) : (f32[8,4]) -> f32[4,8]",
        '    %b.to = aten.to.dtype(@b) {dtype="float16", non_blocking=false, copy=false, memory_format=null} : (f32[4]) -> f16[4]',
        '    %b.to_1 = aten.to.dtype(@b) {dtype="int32", non_blocking=false, copy=false, memory_format=null} : (f32[4]) -> i32[4]',
        "    return %w.t_1, %b.to, %b.to_1",
        "  }",
        "  func first graph(%x: f32[2,4]) {",
        "    %m = aten.mm.default(%x, @w.t_1) : (f32[2,4], f32[4,8]) -> f32[2,8]",
    ]
    assert [n.op_type for n in ir.function("second").graph.nodes] == ["aten.mm.default"]
    runner = ProgramRunner(ir, weights)
    for name, expected in before.items():
        for a, b in zip(runner(name, x), expected):
            assert torch.equal(torch.as_tensor(a), torch.as_tensor(b))
    assert not HoistWeights()(ir).modified


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


# ------------------------------------------------------------- what mutation testing found untested


def test_dedup_follows_a_chain_of_tied_names_to_one_weight() -> None:
    g = parse_graph("""graph(%x: f32[2,4]) {
  weight @a : f32[4,4] parameter aliases(@b)
  weight @b : f32[4,4] parameter aliases(@c)
  weight @c : f32[4,4] parameter
  %p = aten.mm.default(%x, @a) : (f32[2,4], f32[4,4]) -> f32[2,4]
  %q = aten.mm.default(%p, @b) : (f32[2,4], f32[4,4]) -> f32[2,4]
  %r = aten.mm.default(%q, @c) : (f32[2,4], f32[4,4]) -> f32[2,4]
  return %r
}""")
    assert DedupWeights(by_value=False)(g).modified
    assert list(g.weights) == ["a"] and g.weight("a").aliases == ("b", "c")
    assert all(n.args[1] is g.weight("a") for n in g.nodes)
    g.verify()


def test_dedup_keeps_a_merged_weight_the_graph_returns() -> None:
    g = parse_graph("""graph(%x: f32[4]) {
  weight @a : f32[4] parameter aliases(@b)
  weight @b : f32[4] parameter
  %s = aten.add.Tensor(%x, @a) {alpha=1} : (f32[4], f32[4]) -> f32[4]
  return %s, @b
}""")
    DedupWeights()(g)
    assert list(g.weights) == ["a", "b"]  # @b is an output: it stays, its uses read @a
    assert g.value("s").producer.args[1] is g.weight("a")
    g.verify()


def test_dedup_by_value_skips_state_and_other_kinds_but_merges_the_rest() -> None:
    g = parse_graph("""graph(%x: f32[4]) {
  weight @none : f32[4] parameter
  weight @count : f32[4] buffer
  weight @count2 : f32[4] buffer
  weight @p : f32[4] parameter
  weight @q : f32[4] parameter
  weight @buf : f32[4] buffer
  %a = aten.add.Tensor(%x, @count) {alpha=1} : (f32[4], f32[4]) -> f32[4]
  %b = aten.add.Tensor(%a, @count2) {alpha=1} : (f32[4], f32[4]) -> f32[4]
  %c = aten.add.Tensor(%b, @p) {alpha=1} : (f32[4], f32[4]) -> f32[4]
  %d = aten.add.Tensor(%c, @q) {alpha=1} : (f32[4], f32[4]) -> f32[4]
  %e = aten.add.Tensor(%d, @buf) {alpha=1} : (f32[4], f32[4]) -> f32[4]
  %f = aten.add.Tensor(%e, @none) {alpha=1} : (f32[4], f32[4]) -> f32[4]
  %n = aten.add.Tensor(@count, 1.0) {alpha=1} : (f32[4]) -> f32[4]
  update @count = %n
  return %f
}""")
    zeros = torch.zeros(4)
    state = {"none": torch.empty(4, device="meta"), "count": zeros, "count2": zeros, "p": zeros, "q": zeros}
    state["buf"] = zeros
    DedupWeights()(g, PassContext(state_dict=state))
    # @none has no value; @count changes between calls; @buf is a buffer, not a parameter like @p
    assert list(g.weights) == ["none", "count", "count2", "p", "buf"]
    assert g.weight("p").aliases == ("q",) and g.weight("count").aliases == ()
    g.verify()


def test_dedup_compares_inline_constants_by_their_data() -> None:
    g = parse_graph("""graph(%x: f32[2]) {
  weight @c1 : f32[2] constant data=[1.5, -2.0]
  weight @c2 : f32[2] constant data=[1.5, -2.0]
  weight @c3 : f32[2] constant data=[1.5, 2.0]
  %a = aten.add.Tensor(%x, @c1) {alpha=1} : (f32[2], f32[2]) -> f32[2]
  %b = aten.add.Tensor(%a, @c2) {alpha=1} : (f32[2], f32[2]) -> f32[2]
  %c = aten.add.Tensor(%b, @c3) {alpha=1} : (f32[2], f32[2]) -> f32[2]
  return %c
}""")
    DedupWeights()(g, PassContext(state_dict={"c2": "not a tensor", "c3": 7}))  # non-tensors are not values
    assert list(g.weights) == ["c1", "c3"] and g.weight("c1").aliases == ("c2",)


def test_dead_node_elimination_reports_only_what_it_removed() -> None:
    g = parse_graph("graph(%x: f32[4]) {\n  %y = aten.relu.default(%x) : (f32[4]) -> f32[4]\n  return %y\n}")
    assert not EliminateDeadNodes()(g).modified
    assert not CSE()(g).modified


def test_dead_node_elimination_records_the_weights_it_removes() -> None:
    text = """graph(%x: f32[4]) {
  weight @w : f32[4] parameter aliases(@w_tied)
  weight @b : f32[4] buffer
  %dead = aten.add.Tensor(%x, @w) {alpha=1} : (f32[4], f32[4]) -> f32[4]
  %y = aten.mul.Tensor(%x, @b) : (f32[4], f32[4]) -> f32[4]
  return %y
}"""
    g = parse_graph(text)
    g.meta["unused_weights"] = ["older"]
    assert EliminateDeadNodes()(g).modified
    assert list(g.weights) == ["b"]
    assert g.meta["unused_weights"] == ["older", "w", "w_tied"]  # every state_dict name it had
    assert g.meta["unused_weight_types"] == {
        "w": {"kind": "parameter", "shape": [4], "dtype": "float32", "aliases": ["w_tied"]}
    }
    kept = parse_graph(text)
    EliminateDeadNodes(remove_weights=False)(kept)
    assert list(kept.weights) == ["w", "b"] and "unused_weights" not in kept.meta


def test_dead_node_elimination_prunes_the_init_graph_and_drops_it_when_empty() -> None:
    g = parse_graph(HOIST)
    HoistWeights()(g)
    assert [v.name for v in g.init.outputs] == ["w.t.to.to", "s.neg"]
    # the main graph stops reading the negated @s: its init computation and output go
    g.replace_all_uses_with(g.value("o"), g.value("a"))
    assert EliminateDeadNodes()(g).modified
    assert [v.name for v in g.init.outputs] == ["w.t.to.to"] and "s.neg" not in g.weights
    assert ops(g.init) == ["aten.t.default", "aten.to.dtype", "aten.to.dtype"]
    g.verify()
    mm = g.value("m").producer
    g.set_outputs([g.inputs[0]])
    assert EliminateDeadNodes()(g).modified
    assert g.init is None and len(g) == 0 and mm.name not in {n.name for n in g.nodes}


def test_cse_tells_list_operands_apart_and_ignores_attribute_order() -> None:
    g = parse_graph("""graph(%x: f32[2,3], %y: f32[2,3], %z: f32[2,3]) {
  %c1 = aten.cat.default([%x, %y]) {dim=0} : (f32[2,3], f32[2,3]) -> f32[4,3]
  %c2 = aten.cat.default([%x, %z]) {dim=0} : (f32[2,3], f32[2,3]) -> f32[4,3]
  %r = aten.rand.default([2]) {dtype="float32"} : () -> f32[2]
  %s1 = aten.sum.dim_IntList(%x, [1]) {keepdim=true, dtype=null} : (f32[2,3]) -> f32[2,1]
  %s2 = aten.sum.dim_IntList(%x, [1]) {dtype=null, keepdim=true} : (f32[2,3]) -> f32[2,1]
  return %c1, %c2, %r, %s1, %s2
}""")
    assert CSE()(g).modified
    assert [n.name for n in g.nodes] == ["c1", "c2", "r", "s1"]  # rand is not pure; s2 is s1
    assert g.outputs[4] is g.value("s1")
