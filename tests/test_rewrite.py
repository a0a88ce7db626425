"""The pattern rewriter: patterns, the rewriter's builders, the greedy driver, the pass base and contract."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

from torch_ir import Graph, IRError, Node, PassContext, PassError, PassManager, PassResult, register_pass
from torch_ir.ir import parse_graph
from torch_ir.passes.registry import unregister_pass
from torch_ir.passes.rewrite import (
    Op,
    PatternRewritePass,
    PatternRewriter,
    RewritePattern,
    RewriteRule,
    Var,
    apply_patterns,
    match,
)
from torch_ir.runtime.interpreter import run_ir

NEGS = """
graph(%x: f32[2,4]) {
  %a = aten.neg.default(%x) : (f32[2,4]) -> f32[2,4]
  %b = aten.neg.default(%a) : (f32[2,4]) -> f32[2,4]
  %c = aten.neg.default(%b) : (f32[2,4]) -> f32[2,4]
  %d = aten.neg.default(%c) : (f32[2,4]) -> f32[2,4]
  %e = aten.relu.default(%d) : (f32[2,4]) -> f32[2,4]
  return %e
}
"""

X = Var("x")
DOUBLE_NEG = RewriteRule(Op("aten.neg.default", Op("aten.neg.default", X)), X, name="double-neg")


def _run(g: Graph, x: torch.Tensor) -> torch.Tensor:
    out = run_ir(g, {}, x)
    return out[0] if isinstance(out, (list, tuple)) else out


def test_declarative_rule_reaches_a_fixed_point() -> None:
    g = parse_graph(NEGS)
    x = torch.randn(2, 4)
    expected = _run(g, x)
    result = apply_patterns(g, [DOUBLE_NEG])
    assert [n.op_type for n in g.nodes] == ["aten.relu.default"]
    assert g.value("e").producer.operand("self") is g.inputs[0]
    assert result.converged and result.modified and result.rewrites == 2 and result.erased == 4
    assert result.counts == {"double-neg": 2}
    assert torch.equal(_run(g, x), expected)
    g.verify()


def test_inner_ops_must_have_one_use() -> None:
    g = parse_graph(NEGS.replace("return %e", "return %e, %a"))
    apply_patterns(g, [DOUBLE_NEG])
    # %c = neg(neg(%a)) folds to %a; then %d = neg(%a), and %a (an output) cannot be folded away
    assert [n.name for n in g.nodes] == ["a", "d", "e"]
    g.verify()


class Flip(RewritePattern):
    """relu <-> sigmoid forever: a pattern set with no fixed point."""

    op_types: ClassVar[tuple[str, ...]] = ("aten.relu.default", "aten.sigmoid.default")

    def match_and_rewrite(self, node: Node, rewriter: PatternRewriter) -> None:
        other = "aten.sigmoid.default" if node.op_type == "aten.relu.default" else "aten.relu.default"
        rewriter.replace_matched_op(rewriter.create_op(other, node.operand("self")))


def test_max_iterations_and_max_rewrites_bound_a_pattern_set_without_fixed_point() -> None:
    g = parse_graph(NEGS)
    result = apply_patterns(g, [Flip()], max_iterations=3, max_rewrites=5)
    assert not result.converged and result.iterations == 3 and result.rewrites == 15
    g.verify()
    with pytest.raises(PassError, match="max_iterations"):
        apply_patterns(g, [Flip()], max_iterations=0)


def test_rewrites_requeue_so_one_sweep_is_enough() -> None:
    g = parse_graph(NEGS)
    result = apply_patterns(g, [DOUBLE_NEG], max_iterations=1)
    assert result.rewrites == 2 and len(g) == 1
    assert not result.converged  # one sweep did not prove the fixed point


IMPURE = """
graph(%x: f32[2,4]) {
  %r = aten.rand_like.default(%x) : (f32[2,4]) -> f32[2,4]
  %m = aten.mul.Tensor(%x, %r) : (f32[2,4], f32[2,4]) -> f32[2,4]
  %t = aten.tanh.default(%x) : (f32[2,4]) -> f32[2,4]
  %s = aten.mul.Tensor(%t, %m) : (f32[2,4], f32[2,4]) -> f32[2,4]
  return %s
}
"""


class DropMul(RewritePattern):
    """mul(a, b) -> a (wrong, but it leaves b's producers dead)."""

    op_types: ClassVar[tuple[str, ...]] = ("aten.mul.Tensor",)

    def match_and_rewrite(self, node: Node, rewriter: PatternRewriter) -> None:
        if node.name == "s":
            rewriter.replace_matched_op(node.operand("self"))


def test_dead_producers_are_erased_but_impure_ones_stay() -> None:
    g = parse_graph(IMPURE)
    result = apply_patterns(g, [DropMul()])
    assert [n.name for n in g.nodes] == ["r", "t"]  # m erased (pure, dead); rand_like stays
    assert result.erased == 2
    g.verify()


def test_created_ops_carry_the_matched_node_meta_and_go_before_it() -> None:
    g = parse_graph(NEGS)
    g.value("d").producer.meta.update(module_stack=[["layers.0", "Block"]], stack_trace="model.py:3")

    class NegToMul(RewritePattern):
        op_types: ClassVar[tuple[str, ...]] = ("aten.neg.default",)

        def match_and_rewrite(self, node: Node, rewriter: PatternRewriter) -> None:
            if node.name == "d":
                rewriter.replace_matched_op(rewriter.emit("aten.mul.Tensor", node.operand("self"), -1.0))

    apply_patterns(g, [NegToMul()])
    mul = g.value("e").producer.operand("self").producer
    assert mul.op_type == "aten.mul.Tensor" and mul.output.type == g.value("c").type
    assert mul.meta["module_stack"] == [["layers.0", "Block"]] and mul.meta["stack_trace"] == "model.py:3"
    assert [n.name for n in g.nodes][-2:] == [mul.name, "e"]


def test_a_failing_pattern_is_named() -> None:
    class Broken(RewritePattern):
        def match_and_rewrite(self, node: Node, rewriter: PatternRewriter) -> None:
            raise KeyError("oops")

    with pytest.raises(PassError, match=r"pattern Broken on node a \(aten.neg.default\) failed: KeyError"):
        apply_patterns(parse_graph(NEGS), [Broken()])


def test_replace_op_checks_result_count_before_changing_anything() -> None:
    g = parse_graph(NEGS)
    rewriter = PatternRewriter(g, g.value("a").producer)
    with pytest.raises(Exception, match="has 1 results, given 2"):
        rewriter.replace_matched_op([g.inputs[0], g.inputs[0]])
    assert len(g) == 5


def test_match_binds_vars_consistently_and_checks_literals() -> None:
    g = parse_graph(
        """
graph(%x: f32[2,4], %y: f32[2,4]) {
  %a = aten.add.Tensor(%x, %x) {alpha=1} : (f32[2,4], f32[2,4]) -> f32[2,4]
  %b = aten.add.Tensor(%x, %y) {alpha=1} : (f32[2,4], f32[2,4]) -> f32[2,4]
  %c = aten.add.Tensor(%x, %x) {alpha=2} : (f32[2,4], f32[2,4]) -> f32[2,4]
  return %a, %b, %c
}
"""
    )
    same = Op("aten.add.Tensor", X, X, alpha=1)
    assert match(same, g.value("a").producer) is not None
    assert match(same, g.value("b").producer) is None
    assert match(same, g.value("c").producer) is None
    found = match(Op("aten.add.Tensor", Var("_"), Var("y"), capture="add"), g.value("b").producer)
    assert found is not None and found["y"] is g.inputs[1] and found["add"] is g.value("b").producer


def test_op_template_replacement_builds_with_inferred_types() -> None:
    g = parse_graph(NEGS)
    rule = RewriteRule(Op("aten.relu.default", X), Op("aten.clamp_min.default", X, 0.0))
    apply_patterns(g, [rule])
    e = g.outputs[0].producer
    assert e.op_type == "aten.clamp_min.default" and e.operand("min") == 0.0 and e.output.type == g.value("d").type


@dataclass(frozen=True)
class FoldDoubleNeg(PatternRewritePass):
    """neg(neg(x)) -> x."""

    name: ClassVar[str] = "test-fold-double-neg"

    def patterns(self) -> list[RewritePattern]:
        return [DOUBLE_NEG]


@pytest.fixture(autouse=True, scope="module")
def _fold_double_neg() -> Iterator[None]:
    register_pass(FoldDoubleNeg)  # registered per run of the module, so it can run twice in one process
    yield
    unregister_pass("test-fold-double-neg")


def test_pattern_pass_runs_from_pipeline_text_on_both_graphs() -> None:
    g = parse_graph(NEGS)
    init = parse_graph(NEGS)
    g.init = init
    out = PassManager("test-fold-double-neg{max-iterations=4}").run(g)
    assert out is g and len(g) == 1 and len(init) == 1  # the init graph is rewritten by default


@dataclass(frozen=True)
class ReturnsCopy(PatternRewritePass):
    name: ClassVar[str] = "test-returns-copy"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        return PassResult(graph.clone(), True)


@dataclass(frozen=True)
class FunctionalInPlace(PatternRewritePass):
    name: ClassVar[str] = "test-functional-in-place"
    in_place: ClassVar[bool] = False

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        return PassResult(graph, False)


@dataclass(frozen=True)
class Functional(PatternRewritePass):
    name: ClassVar[str] = "test-functional"
    in_place: ClassVar[bool] = False

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        return PassResult(graph.clone(), True)


def test_the_manager_checks_the_declared_contract() -> None:
    g = parse_graph(NEGS)
    with pytest.raises(PassError, match="declared in place .* but returned a new graph"):
        PassManager([ReturnsCopy()]).run(g)
    with pytest.raises(PassError, match="declared functional .* returned the graph it was given"):
        PassManager([FunctionalInPlace()]).run(g)
    with pytest.raises(PassError, match="declared functional"):
        FunctionalInPlace()(g)
    out = PassManager([Functional()]).run(g)
    assert out is not g and out == g


def test_reproducer_plugins_include_the_modules_that_define_the_passes() -> None:
    manager = PassManager("canonicalize,test-fold-double-neg", plugins=["my_pkg.extra"])
    assert manager.plugins == ["my_pkg.extra", __name__]


def test_replace_op_takes_none_for_unread_results_only() -> None:
    g = parse_graph(
        """
graph(%x: f32[4,2]) {
  %a, %b = aten.split.Tensor(%x) {split_size=2, dim=0} : (f32[4,2]) -> (f32[2,2], f32[2,2])
  %c = aten.neg.default(%a) : (f32[2,2]) -> f32[2,2]
  return %c
}
"""
    )
    split = g.value("a").producer
    rewriter = PatternRewriter(g, split)
    with pytest.raises(IRError, match="its result %a is read"):
        rewriter.replace_matched_op([None, None])
    first = rewriter.create_op("aten.slice.Tensor", g.inputs[0], 0, 0, 2)
    rewriter.replace_matched_op([first.output, None])
    assert [n.op_type for n in g.nodes] == ["aten.slice.Tensor", "aten.neg.default"]
    g.verify()


def test_replace_op_refuses_a_foreign_value_before_changing_anything() -> None:
    g, other = parse_graph(NEGS), parse_graph(NEGS)
    rewriter = PatternRewriter(g, g.value("b").producer)
    before = g.signature()
    with pytest.raises(IRError, match="not a value of this graph"):
        rewriter.replace_matched_op(other.value("a"))
    assert g.signature() == before and not rewriter.changed


def test_a_reader_that_becomes_the_only_one_is_revisited_in_the_same_sweep() -> None:
    g = parse_graph(
        """
graph(%x: f32[2,4]) {
  %a = aten.neg.default(%x) : (f32[2,4]) -> f32[2,4]
  %b = aten.neg.default(%a) : (f32[2,4]) -> f32[2,4]
  %c = aten.abs.default(%a) : (f32[2,4]) -> f32[2,4]
  %d = aten.add.Tensor(%b, %c) {alpha=1} : (f32[2,4], f32[2,4]) -> f32[2,4]
  return %d
}
"""
    )
    y = Var("y")
    abs_of_neg = RewriteRule(
        Op("aten.abs.default", Op("aten.neg.default", y, single_use=False)), Op("aten.abs.default", y)
    )
    # at %b, %a has two readers; once abs(neg(x)) becomes abs(x), %b is the only one and is revisited
    result = apply_patterns(g, [DOUBLE_NEG, abs_of_neg], max_iterations=1)
    assert result.rewrites == 2
    assert [n.op_type for n in g.nodes] == ["aten.abs.default", "aten.add.Tensor"]
    assert g.outputs[0].producer.operand("self") is g.inputs[0]


ARITH = """
graph(%x: f32[2,4], %y: f32[2,4], %z: f32[2,4]) {
  %m = aten.mul.Tensor(%x, %y) : (f32[2,4], f32[2,4]) -> f32[2,4]
  %a = aten.add.Tensor(%z, %m) {alpha=1} : (f32[2,4], f32[2,4]) -> f32[2,4]
  %n = aten.neg.default(%x) : (f32[2,4]) -> f32[2,4]
  %p = aten.mul.Tensor(%y, %n) : (f32[2,4], f32[2,4]) -> f32[2,4]
  %m2 = aten.mul.Tensor(%x, %y) : (f32[2,4], f32[2,4]) -> f32[2,4]
  %s = aten.sub.Tensor(%z, %m2) : (f32[2,4], f32[2,4]) -> f32[2,4]
  %m3 = aten.mul.Tensor(%x, %y) : (f32[2,4], f32[2,4]) -> f32[2,4]
  %a2 = aten.add.Tensor(%z, %m3) {alpha=2} : (f32[2,4], f32[2,4]) -> f32[2,4]
  return %a, %p, %s, %a2
}
"""


def test_commutative_ops_match_their_first_two_operands_in_either_order() -> None:
    g = parse_graph(ARITH)
    y, z = Var("y"), Var("z")
    fma = Op("aten.add.Tensor", Op("aten.mul.Tensor", X, y), z)
    found = match(fma, g.value("a").producer)  # add(z, mul(x, y)): the mul is the second operand
    assert found is not None and (found["x"], found["y"], found["z"]) == tuple(g.inputs)
    assert found.nodes == [g.value("a").producer, g.value("m").producer]
    # a pattern that names the first operand only matches a node whose second operand fits it
    neg_first = match(Op("aten.mul.Tensor", Op("aten.neg.default", X)), g.value("p").producer)
    assert neg_first is not None and neg_first["x"] is g.inputs[0]
    # sub does not commute, nor does add with alpha 2: the operands stay in their order
    assert match(Op("aten.sub.Tensor", Op("aten.mul.Tensor", X, y), z), g.value("s").producer) is None
    assert match(fma, g.value("a2").producer) is None
    assert match(Op("aten.add.Tensor", z, Op("aten.mul.Tensor", X, y)), g.value("a2").producer) is not None


def test_wildcards_are_never_bound_and_where_sees_the_operand() -> None:
    g = parse_graph(ARITH)
    mul = g.value("m").producer
    found = match(Op("aten.mul.Tensor", Var("_"), Var("_")), mul)  # two wildcards, two different values
    assert found is not None and "_" not in found.captures
    is_x = Var("v", where=lambda value: value is g.inputs[0])
    assert match(Op("aten.neg.default", is_x), g.value("n").producer)["v"] is g.inputs[0]
    assert match(Op("aten.mul.Tensor", Var("_"), Op("aten.neg.default", Var("v", where=lambda v: False))),
                 g.value("p").producer) is None  # fmt: skip


def test_a_name_bound_twice_must_bind_equal_literals() -> None:
    g = parse_graph(
        """
graph(%x: f32[2,3,4]) {
  %a = aten.permute.default(%x, [0, 2, 1]) : (f32[2,3,4]) -> f32[2,4,3]
  %b = aten.permute.default(%a, [0, 2, 1]) : (f32[2,4,3]) -> f32[2,3,4]
  %c = aten.permute.default(%b, [1, 0, 2]) : (f32[2,3,4]) -> f32[3,2,4]
  %d = aten.permute.default(%c, [2, 1, 0]) : (f32[3,2,4]) -> f32[4,2,3]
  return %d
}
"""
    )
    twice = Op("aten.permute.default", Op("aten.permute.default", X, Var("dims")), Var("dims"))
    found = match(twice, g.value("b").producer)  # two lists read from the file: equal, not the same object
    assert found is not None and found["dims"] == [0, 2, 1] and found["x"] is g.inputs[0]
    assert match(twice, g.value("d").producer) is None


def test_list_operands_match_item_by_item_and_only_at_their_length() -> None:
    g = parse_graph(
        """
graph(%x: f32[2,4], %y: f32[2,4]) {
  %n = aten.neg.default(%x) : (f32[2,4]) -> f32[2,4]
  %c = aten.cat.default([%n, %y], 1) : (f32[2,4], f32[2,4]) -> f32[2,8]
  %n2 = aten.neg.default(%x) : (f32[2,4]) -> f32[2,4]
  %c3 = aten.cat.default([%n2, %y, %y], 1) : (f32[2,4], f32[2,4], f32[2,4]) -> f32[2,12]
  return %c, %c3
}
"""
    )
    pattern = Op("aten.cat.default", [Op("aten.neg.default", X), Var("y")], Var("dim"))
    found = match(pattern, g.value("c").producer)
    assert found is not None and (found["x"], found["y"], found["dim"]) == (*g.inputs, 1)
    assert found.nodes == [g.value("c").producer, g.value("n").producer]
    assert match(pattern, g.value("c3").producer) is None


def test_a_pattern_pass_reports_what_it_rewrote_and_a_missing_fixed_point(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="torch_ir.passes")
    ctx = PassContext(verbosity=1)
    result = FoldDoubleNeg()(parse_graph(NEGS), ctx)
    assert result.modified and len(result.graph) == 1
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "test-fold-double-neg: double-neg x2 in 2 sweep(s) (function forward)")
    ]
    caplog.clear()
    untouched = FoldDoubleNeg()(parse_graph(NEGS.replace("neg", "abs")), PassContext())
    assert not untouched.modified
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("DEBUG", "test-fold-double-neg: no match in 1 sweep(s) (function forward)")
    ]
    caplog.clear()
    assert FoldDoubleNeg(max_iterations=1)(parse_graph(NEGS), PassContext()).modified
    assert ("INFO", "test-fold-double-neg: no fixed point after 1 sweeps (function forward)") in [
        (r.levelname, r.getMessage()) for r in caplog.records
    ]


def test_a_pattern_pass_leaves_the_init_graph_alone_when_told_to() -> None:
    g, init = parse_graph(NEGS), parse_graph(NEGS)
    g.init = init
    assert FoldDoubleNegOutsideInit()(g).modified
    assert len(g) == 1 and len(init) == 5
    untouched = parse_graph(NEGS.replace("neg", "abs"))
    untouched.init = parse_graph(NEGS)
    assert not FoldDoubleNegOutsideInit()(untouched).modified


@dataclass(frozen=True)
class FoldDoubleNegOutsideInit(FoldDoubleNeg):
    """neg(neg(x)) -> x, not in the init graph."""

    name: ClassVar[str] = "test-fold-double-neg-outside-init"
    rewrite_init: ClassVar[bool] = False


class ScaleByTwo(RewritePattern):
    """add(x, y) with alpha 1 -> add(x, y) with alpha 2, once (marked in the node's meta)."""

    op_types: ClassVar[tuple[str, ...]] = ("aten.add.Tensor",)

    def match_and_rewrite(self, node: Node, rewriter: PatternRewriter) -> None:
        if node.meta.get("scaled"):
            return
        rewriter.set_operand(node, "alpha", 2)
        node.meta["scaled"] = True
        rewriter.modified(node)


class NegThenRelu(RewritePattern):
    """relu(x) -> relu(neg(neg(x))), the negs built with explicit types (create_node), once."""

    op_types: ClassVar[tuple[str, ...]] = ("aten.relu.default",)

    def match_and_rewrite(self, node: Node, rewriter: PatternRewriter) -> None:
        source = node.operand("self")
        if source.producer is not None and source.producer.op_type == "aten.neg.default":
            return
        first = rewriter.create_node("aten.neg.default", [source], None, [source.type])
        second = rewriter.create_node("aten.neg.default", [first.output], {}, [source.type], name="back")
        rewriter.set_operand(node, "self", second.output)


def test_in_place_changes_through_the_rewriter_count_as_rewrites() -> None:
    g = parse_graph("""graph(%x: f32[2,4], %y: f32[2,4]) {
  %a = aten.add.Tensor(%x, %y) {alpha=1} : (f32[2,4], f32[2,4]) -> f32[2,4]
  %r = aten.relu.default(%a) : (f32[2,4]) -> f32[2,4]
  return %r
}""")
    g.value("r").producer.meta["stack_trace"] = "model.py:7"
    x, y = torch.randn(2, 4), torch.randn(2, 4)
    result = apply_patterns(g, [ScaleByTwo(), NegThenRelu()])
    assert result.modified and result.converged and result.counts == {"ScaleByTwo": 1, "NegThenRelu": 1}
    assert [n.name for n in g.nodes] == ["a", "neg", "back", "r"]
    assert g.value("a").producer.operand("alpha") == 2
    # created nodes go before the matched node and carry its meta
    assert [g.value(n).producer.meta.get("stack_trace") for n in ("neg", "back")] == ["model.py:7"] * 2
    assert g.value("r").producer.operand("self") is g.value("back")  # an operand called self, set by name
    torch.testing.assert_close(run_ir(g, {}, x, y), torch.relu(x + 2 * y))
    g.verify()
