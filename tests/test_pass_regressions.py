"""Mistakes a pass can make that nothing else would catch: merging by op alone, skipping the init graph,
hoisting impure ops, and a comparison that ignores rtol."""

from __future__ import annotations

import pytest
import torch

from torch_ir.ir import Graph, parse_graph
from torch_ir.passes.registry import get_pass
from torch_ir.runtime.verifier import compare_tensors, tolerance


def test_cse_keeps_nodes_that_differ_only_in_attributes() -> None:
    g = parse_graph(
        """
graph(%x: f32[2,4]) {
  %a = aten.sum.dim_IntList(%x) {dim=[0], keepdim=true, dtype=null} : (f32[2,4]) -> f32[1,4]
  %b = aten.sum.dim_IntList(%x) {dim=[0], keepdim=true, dtype=null} : (f32[2,4]) -> f32[1,4]
  %c = aten.mul.Tensor(%x) {other=2.0} : (f32[2,4]) -> f32[2,4]
  %d = aten.mul.Tensor(%x) {other=3.0} : (f32[2,4]) -> f32[2,4]
  %e = aten.leaky_relu.default(%x) {negative_slope=0.1} : (f32[2,4]) -> f32[2,4]
  %f = aten.leaky_relu.default(%x) {negative_slope=0.2} : (f32[2,4]) -> f32[2,4]
  return %a, %b, %c, %d, %e, %f
}
"""
    )
    get_pass("cse")()(g)
    assert [n.name for n in g.nodes] == ["a", "c", "d", "e", "f"]  # only the true duplicate goes
    assert [v.name for v in g.outputs] == ["a", "a", "c", "d", "e", "f"]


def _with_init(init_body: str) -> Graph:
    """A main graph reading derived weight @d, computed by an init graph whose body is ``init_body``."""
    g = parse_graph(
        """
graph(%x: f32[4]) {
  weight @d : f32[4] derived
  %y = aten.add.Tensor(%x, @d) {alpha=1} : (f32[4], f32[4]) -> f32[4]
  return %y
}
"""
    )
    g.init = parse_graph(f"graph() {{\n  weight @w : f32[4] parameter\n{init_body}\n  return %d\n}}")
    return g


INIT_CASES = {
    "canonicalize": (
        "  %a = aten.alias.default(@w) : (f32[4]) -> f32[4]\n  %d = aten.neg.default(%a) : (f32[4]) -> f32[4]"
    ),
    "cse": (
        "  %a = aten.neg.default(@w) : (f32[4]) -> f32[4]\n  %b = aten.neg.default(@w) : (f32[4]) -> f32[4]\n"
        "  %d = aten.add.Tensor(%a, %b) {alpha=1} : (f32[4], f32[4]) -> f32[4]"
    ),
    "eliminate-dead-nodes": (
        "  %a = aten.exp.default(@w) : (f32[4]) -> f32[4]\n  %d = aten.neg.default(@w) : (f32[4]) -> f32[4]"
    ),
}


@pytest.mark.parametrize("name", sorted(INIT_CASES))
def test_passes_rewrite_the_init_graph_too(name: str) -> None:
    g = _with_init(INIT_CASES[name])
    assert g.init is not None
    before = len(g.init)
    result = get_pass(name)()(g)
    assert result.modified
    assert len(g.init) == before - 1, f"{name} left the init graph alone"
    g.verify()
    g.init.verify()


def test_hoist_weights_does_not_hoist_impure_ops() -> None:
    g = parse_graph(
        """
graph(%x: f32[4]) {
  weight @w : f32[4] parameter
  %n = aten.rand_like.default(@w) : (f32[4]) -> f32[4]
  %p = aten.dropout.default(@w) {p=0.5, train=true} : (f32[4]) -> f32[4]
  %e = aten.exp.default(@w) : (f32[4]) -> f32[4]
  %s = aten.add.Tensor(%n, %p) {alpha=1} : (f32[4], f32[4]) -> f32[4]
  %t = aten.add.Tensor(%s, %e) {alpha=1} : (f32[4], f32[4]) -> f32[4]
  %y = aten.add.Tensor(%x, %t) {alpha=1} : (f32[4], f32[4]) -> f32[4]
  return %y
}
"""
    )
    get_pass("hoist-weights")()(g)
    assert [n.name for n in g.nodes] == ["n", "p", "s", "t", "y"]  # only exp (pure) moved
    assert g.init is not None and [n.op_type for n in g.init.nodes] == ["aten.exp.default"]
    g.verify()


def test_comparison_uses_rtol_for_large_values() -> None:
    expected = torch.full((3,), 1000.0)
    got = expected + 0.05  # |diff| = 0.05: far above atol 1e-5, within rtol 1e-4 * 1000 = 0.1
    assert tolerance("float32") == (1e-4, 1e-5)
    cmp = compare_tensors(got, expected)
    assert cmp.passed and cmp.max_abs == pytest.approx(0.05, rel=1e-3) and cmp.max_rel == pytest.approx(5e-5, rel=1e-2)
    assert not compare_tensors(got, expected, rtol=0.0).passed
    assert not compare_tensors(got, expected, rtol=1e-5).passed
    assert compare_tensors(got, expected, rtol=0.0, atol=0.06).passed
    small = torch.full((3,), 1e-3)
    assert not compare_tensors(small + 0.05, small).passed  # rtol scales by |expected|, not |got|
