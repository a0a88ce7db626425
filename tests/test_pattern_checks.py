"""Declarative patterns are checked when built, against the op registry (op types, operand names, arity,
what a replacement reads), and match commutative ops in either operand order, backtracking."""

from __future__ import annotations

import pytest
import torch

from torch_ir import PassError, parse_graph
from torch_ir.passes.rewrite import Op, PatternRewriter, RewriteRule, Var, apply_patterns, match
from torch_ir.runtime.interpreter import run_ir

X, Y = Var("x"), Var("y")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Op("aten.rsqrt", X), r"unknown op type 'aten.rsqrt'; did you mean 'aten.rsqrt.default'"),
        (
            lambda: Op("aten.rsqrtt.default", X),
            r"unknown op type 'aten.rsqrtt.default'; did you mean 'aten.rsqrt.default'",
        ),
        (lambda: Op("aes::rms_norm", X), r"the IR spells torch's 'ns::op' as 'ns.op.default'"),
        (
            lambda: Op("aten.mean.dim", X, keep_dim=True),
            r"aten.mean.dim has no operand 'keep_dim' .*did you mean 'keepdim'",
        ),
        (lambda: Op("aten.neg.default", X, Y), r"2 positional operands, but aten.neg.default takes 1 \(self\)"),
        (lambda: Op("aten.mul.Tensor", X, self=Y), r"operand 'self' of aten.mul.Tensor is given twice"),
        (lambda: Op((), X), r"give an op type"),
        (lambda: Op(("aten.neg.default", "aten.relu"), X), r"unknown op type 'aten.relu'"),
        (lambda: Var(""), r"a capture needs a name"),
        (lambda: RewriteRule(Op("aten.neg.default", X), Var("z")), r"reads Var\('z'\), which the pattern does not"),
        (
            lambda: RewriteRule(Op("aten.neg.default", X), Op("aten.add.Tensor", X)),
            r"misses required operand\(s\) other",
        ),
        (
            lambda: RewriteRule(Op("aten.neg.default", X), Op(("aten.neg.default", "aten.relu.default"), X)),
            r"names one op type",
        ),
        (lambda: RewriteRule(X, X), r"the pattern must be an Op"),
    ],
)
def test_a_misspelled_pattern_raises_when_built(build, message: str) -> None:
    with pytest.raises(PassError, match=message):
        build()


def test_well_formed_patterns_build() -> None:
    Op("aten.mean.dim", X, [-1], keepdim=True)  # positional and named, by schema
    Op("aten.mul.Tensor", self=X, other=Y)  # 'self' by name
    Op("operator.mul", X, Y)  # an allowed Python function: no schema, operands by position
    Op("higher_order.cond", X)  # the IR's structural ops
    Op("func.call", X)
    rule = RewriteRule(Op("aten.neg.default", Op("aten.neg.default", X), capture="outer"), X)
    assert rule.op_types == ("aten.neg.default",)


SWISH = RewriteRule(Op("aten.mul.Tensor", X, Op("aten.sigmoid.default", X)), Op("aten.silu.default", X), name="swish")


@pytest.mark.parametrize("operands", ["%x, %s", "%s, %x"])
def test_a_commutative_op_matches_in_either_operand_order(operands: str) -> None:
    g = parse_graph(f"""graph(%x: f32[2,8]) {{
  %s = aten.sigmoid.default(%x) : (f32[2,8]) -> f32[2,8]
  %m = aten.mul.Tensor({operands}) : (f32[2,8], f32[2,8]) -> f32[2,8]
  return %m
}}""")
    x = torch.randn(2, 8)
    expected = run_ir(g, {}, x)
    assert apply_patterns(g, [SWISH]).counts == {"swish": 1}
    assert [n.op_type for n in g.nodes] == ["aten.silu.default"]
    torch.testing.assert_close(run_ir(g, {}, x), expected)


def test_add_commutes_only_with_alpha_one_and_sub_never() -> None:
    pattern = Op(("aten.add.Tensor", "aten.sub.Tensor"), X, Op("aten.neg.default", Y))
    g = parse_graph("""graph(%a: f32[4], %b: f32[4]) {
  %n = aten.neg.default(%a) : (f32[4]) -> f32[4]
  %s1 = aten.add.Tensor(%n, %b) : (f32[4], f32[4]) -> f32[4]
  %n2 = aten.neg.default(%a) : (f32[4]) -> f32[4]
  %s2 = aten.add.Tensor(%n2, %b) {alpha=2} : (f32[4], f32[4]) -> f32[4]
  %n3 = aten.neg.default(%a) : (f32[4]) -> f32[4]
  %s3 = aten.sub.Tensor(%n3, %b) : (f32[4], f32[4]) -> f32[4]
  return %s1, %s2, %s3
}""")
    found = match(pattern, g.value("s1").producer)
    assert found is not None and found["x"] is g.value("b") and found["y"] is g.value("a")
    assert match(pattern, g.value("s2").producer) is None  # a + 2*b is not b + 2*a
    assert match(pattern, g.value("s3").producer) is None  # a - b is not b - a


def test_matching_backtracks_over_nested_commutative_choices() -> None:
    # mul(mul(x, y), x): the inner mul's first order binds x to %b and fails at the outer second operand
    # (%a); only undoing that choice (x = %a, y = %b) matches.
    pattern = Op("aten.mul.Tensor", Op("aten.mul.Tensor", X, Y), X)
    g = parse_graph("""graph(%a: f32[4], %b: f32[4]) {
  %i = aten.mul.Tensor(%b, %a) : (f32[4], f32[4]) -> f32[4]
  %o = aten.mul.Tensor(%i, %a) : (f32[4], f32[4]) -> f32[4]
  return %o
}""")
    found = match(pattern, g.value("o").producer)
    assert found is not None
    assert found["x"] is g.value("a") and found["y"] is g.value("b")
    assert [n.name for n in found.nodes] == ["o", "i"]
    g2 = parse_graph("""graph(%a: f32[4], %b: f32[4], %c: f32[4]) {
  %i = aten.mul.Tensor(%b, %c) : (f32[4], f32[4]) -> f32[4]
  %o = aten.mul.Tensor(%i, %a) : (f32[4], f32[4]) -> f32[4]
  return %o
}""")
    assert match(pattern, g2.value("o").producer) is None  # no order makes the two x's one value


def test_a_capture_used_twice_is_one_node() -> None:
    square = Op("aten.exp.default", X, capture="e", single_use=False)
    pattern = Op("aten.mul.Tensor", square, square)
    g = parse_graph("""graph(%a: f32[4]) {
  %e = aten.exp.default(%a) : (f32[4]) -> f32[4]
  %f = aten.exp.default(%a) : (f32[4]) -> f32[4]
  %same = aten.mul.Tensor(%e, %e) : (f32[4], f32[4]) -> f32[4]
  %two = aten.mul.Tensor(%e, %f) : (f32[4], f32[4]) -> f32[4]
  return %same, %two
}""")
    found = match(pattern, g.value("same").producer)
    assert found is not None and found["e"] is g.value("e").producer
    assert [n.name for n in found.nodes] == ["same", "e"]
    assert match(pattern, g.value("two").producer) is None  # equal ops, but two nodes


def test_list_operands_hold_patterns() -> None:
    pattern = Op("aten.mean.dim", X, [Var("d")], keepdim=True)
    g = parse_graph("""graph(%a: f32[2,4]) {
  %m = aten.mean.dim(%a) {dim=[-1], keepdim=true} : (f32[2,4]) -> f32[2,1]
  %n = aten.mean.dim(%a) {dim=[0, 1], keepdim=true} : (f32[2,4]) -> f32[1,1]
  return %m, %n
}""")
    found = match(pattern, g.value("m").producer)
    assert found is not None and found["d"] == -1
    assert match(pattern, g.value("n").producer) is None  # two dims: the list is one long


def test_a_replacement_that_fails_halfway_leaves_the_graph_as_it_was() -> None:
    def build_then_fail(found, rewriter: PatternRewriter):
        rewriter.emit("aten.exp.default", found["x"])
        rewriter.emit("aten.sin.default", found["x"])
        rewriter.emit("aten.mm.default", found["x"], found["x"])  # f32[4] @ f32[4]: mm needs matrices
        raise AssertionError("not reached")

    rule = RewriteRule(Op("aten.neg.default", X), build_then_fail, name="half")
    g = parse_graph("""graph(%a: f32[4]) {
  %n = aten.neg.default(%a) : (f32[4]) -> f32[4]
  return %n
}""")
    before = str(g)
    with pytest.raises(PassError, match="pattern half on node n"):
        apply_patterns(g, [rule])
    assert str(g) == before
    g.verify()
