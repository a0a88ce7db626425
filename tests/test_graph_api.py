"""The pass-writing Graph API: operands by name, uses with slots, atomic mutation, clone, create_op, analyses."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torch_ir import IRError, TensorType
from torch_ir.analysis.dataflow import (
    ancestors,
    descendants,
    dominates,
    dominators,
    reaches,
    repeated_blocks,
    structural_hashes,
    topological_generations,
)
from torch_ir.errors import VerificationError
from torch_ir.ir import Graph, parse_graph
from torch_ir.ops.registry import register_op, unregister_op

CONV_LINE = (
    "%c = aten.conv2d.default(%x, @w) {bias=null, stride=[1, 1], padding=[0, 0], dilation=[1, 1], groups=1}"
    " : (f32[1,3,8,8], f32[4,3,3,3]) -> f32[1,4,6,6]"
)
CONV = f"""
graph(%x: f32[1,3,8,8]) {{
  weight @w : f32[4,3,3,3] parameter
  weight @b : f32[4] parameter
  {CONV_LINE}
  %r = aten.relu.default(%c) : (f32[1,4,6,6]) -> f32[1,4,6,6]
  %s = aten.add.Tensor(%c, %r) {{alpha=1}} : (f32[1,4,6,6], f32[1,4,6,6]) -> f32[1,4,6,6]
  return %s
}}
"""


def _edges(g: Graph) -> list[tuple[str, str, int, str]]:
    return sorted((u.name, v.name, k, d["value"]) for u, v, k, d in g.nx.edges(keys=True, data=True))


def _expected_edges(g: Graph) -> list[tuple[str, str, int, str]]:
    return sorted(
        (v.producer.name, n.name, slot, v.name)
        for n in g.nodes
        for slot, v in enumerate(n.inputs)
        if v.producer is not None
    )


# ------------------------------------------------------------------ operands by name


def test_operand_reads_values_and_literals_by_schema_name() -> None:
    g = parse_graph(CONV)
    conv = g.value("c").producer
    assert conv.operand("input") is g.value("x")
    assert conv.operand("weight") is g.weight("w")
    assert conv.operand("bias") is None  # a literal: stored in attrs
    assert conv.operand("stride") == [1, 1]
    assert list(conv.operands) == ["input", "weight", "bias", "stride", "padding", "dilation", "groups"]
    add = g.value("s").producer
    assert add.operand("other") is g.value("r")
    assert add.operand("alpha") == 1


def test_operand_default_and_unknown_name() -> None:
    g = parse_graph(CONV)
    relu = g.value("r").producer
    assert relu.operand("missing", default=7) == 7
    with pytest.raises(IRError, match=r"node r \(aten.relu.default\) has no operand 'nope'; its operands: self"):
        relu.operand("nope")


def test_set_operand_moves_between_attrs_and_args_and_keeps_uses() -> None:
    g = parse_graph(CONV)
    conv = g.value("c").producer
    conv.set_operand("bias", g.weight("b"))
    assert conv.args == [g.value("x"), g.weight("w"), g.weight("b")]
    assert "bias" not in conv.attrs
    assert conv.operand("bias") is g.weight("b")
    assert conv.operand("stride") == [1, 1]  # positions of the others did not shift
    assert g.users(g.weight("b")) == [conv]
    conv.set_operand("bias", None)
    assert conv.attrs["bias"] is None and len(conv.args) == 2
    assert g.users(g.weight("b")) == []
    g.verify()


def test_set_operand_of_unknown_name_changes_nothing() -> None:
    g = parse_graph(CONV)
    conv = g.value("c").producer
    before = g.signature()
    with pytest.raises(IRError, match="has no operand 'bais'"):
        conv.set_operands(bais=g.weight("b"))
    assert g.signature() == before


# ------------------------------------------------------------------ uses


def test_uses_give_node_slot_and_operand_name() -> None:
    g = parse_graph(CONV)
    c = g.value("c")
    uses = g.uses(c)
    assert [(u.node.name, u.index, u.operand_name) for u in uses] == [("r", 0, "self"), ("s", 0, "self")]
    s_uses = g.uses(g.value("r"))
    assert [(u.node.name, u.index, u.operand_name) for u in s_uses] == [("s", 1, "other")]


# ------------------------------------------------------------------ atomic mutation


def test_replace_all_uses_with_keeps_edges_right() -> None:
    g = parse_graph(CONV)
    c, r = g.value("c"), g.value("r")
    neg = g.create_op("aten.neg.default", c, after=c.producer)
    assert g.replace_all_uses_with(r, neg.output) == 1
    assert g.users(r) == [] and g.users(neg.output) == [g.value("s").producer]
    assert _edges(g) == _expected_edges(g)
    g.verify()


def test_replace_all_uses_with_is_atomic() -> None:
    g = parse_graph(CONV)
    other = parse_graph(CONV)
    before = g.signature()
    with pytest.raises(IRError, match="not defined in this graph"):
        g.replace_all_uses_with(g.value("c"), other.value("r"))
    with pytest.raises(IRError, match="cycle"):
        g.replace_all_uses_with(g.value("c"), g.value("r"))  # r is computed from c
    assert g.signature() == before
    assert _edges(g) == _expected_edges(g)
    g.verify()


def test_set_args_is_atomic() -> None:
    g = parse_graph(CONV)
    other = parse_graph(CONV)
    s = g.value("s").producer
    before = g.signature()
    with pytest.raises(IRError, match="not defined in this graph"):
        g.set_args(s, [g.value("c"), other.value("r")])
    with pytest.raises(IRError, match="its own result"):
        g.set_args(s, [g.value("c"), g.value("s")])
    assert g.signature() == before
    assert g.users(g.value("r")) == [s]
    g.verify()


def test_move_before_and_after_refuse_foreign_nodes() -> None:
    g = parse_graph(CONV)
    other = parse_graph(CONV)
    r, s = g.value("r").producer, g.value("s").producer
    with pytest.raises(IRError, match="not in this graph"):
        g.move_before(other.value("r").producer, r)
    with pytest.raises(IRError, match="not in this graph"):
        g.move_after(r, other.value("s").producer)
    assert [n.name for n in g.nodes] == ["c", "r", "s"]
    d = g.create_op("aten.neg.default", g.value("c"), name="d")
    g.move_after(g.value("c").producer, d)
    assert [n.name for n in g.nodes] == ["c", "d", "r", "s"]
    g.move_after(s, d)
    assert [n.name for n in g.nodes] == ["c", "r", "s", "d"]
    g.verify()


# ------------------------------------------------------------------ clone


def _chain(n: int) -> Graph:
    g = Graph()
    t = TensorType((2, 2), "float32")
    v = g.add_input("x", t)
    g.add_weight("w", t)
    for _ in range(n):
        v = g.create_node("aten.neg.default", [v], {}, [t]).output
    g.set_outputs([v])
    return g


def test_clone_is_equal_and_independent() -> None:
    g = parse_graph(CONV)
    g.value("c").producer.meta["module_stack"] = [["conv", "Conv2d"]]
    copy = g.clone()
    assert copy == g
    assert copy.value("c") is not g.value("c")
    copy.value("c").producer.attrs["stride"].append(9)
    copy.value("c").producer.meta["extra"] = 1
    assert g.value("c").producer.attrs["stride"] == [1, 1]
    assert "extra" not in g.value("c").producer.meta
    copy.create_op("aten.neg.default", copy.value("s"))
    assert len(copy) == 4 and len(g) == 3
    copy.verify()


def test_clone_of_a_deep_graph_does_not_recurse() -> None:
    g = _chain(20_000)
    copy = g.clone()
    assert len(copy) == 20_000
    assert copy.outputs[0].name == g.outputs[0].name
    copy.verify()


# ------------------------------------------------------------------ create_op


def test_create_op_infers_types_and_fills_defaults() -> None:
    g = parse_graph(CONV)
    r = g.value("r")
    mul = g.create_op("aten.mul.Tensor", r, 2.0)
    assert mul.output.type == TensorType((1, 4, 6, 6), "float32")
    assert mul.attrs == {"other": 2.0}
    summed = g.create_op("aten.sum.dim_IntList", mul.output, [1], keepdim=True)
    assert summed.output.type == TensorType((1, 1, 6, 6), "float32")
    assert summed.attrs == {"dim": [1], "keepdim": True, "dtype": None}
    conv = g.create_op("aten.conv2d.default", g.value("x"), g.weight("w"), g.weight("b"), padding=[1, 1])
    assert conv.output.shape == (1, 4, 8, 8)
    assert conv.operand("bias") is g.weight("b") and conv.operand("groups") == 1
    g.verify()


def test_create_op_uses_a_registered_shape_function() -> None:
    def shape_fn(types: list[TensorType], attrs: dict) -> TensorType:
        return TensorType((2 * types[0].shape[0], *types[0].shape[1:]), types[0].dtype)

    register_op("torch_ir_test::double_rows", shape_fn=shape_fn)
    try:
        g = parse_graph(CONV)
        node = g.create_op("torch_ir_test.double_rows.default", g.value("r"))
        assert node.output.type == TensorType((2, 4, 6, 6), "float32")
    finally:
        unregister_op("torch_ir_test::double_rows")


def test_create_op_errors_name_the_op() -> None:
    g = parse_graph(CONV)
    with pytest.raises(IRError, match=r"create_op\(nolib.nothing.default\): cannot infer the result types"):
        g.create_op("nolib.nothing.default", g.value("r"))
    with pytest.raises(IRError, match="needs operand 'other'"):
        g.create_op("aten.mul.Tensor", g.value("r"))
    with pytest.raises(IRError, match="has no operand 'bogus'"):
        g.create_op("aten.relu.default", g.value("r"), bogus=1)
    with pytest.raises(IRError, match="not defined in this graph"):
        g.create_op("aten.relu.default", parse_graph(CONV).value("r"))
    assert len(g) == 3


# ------------------------------------------------------------------ analyses


DIAMOND = """
graph(%x: f32[4]) {
  %a = aten.neg.default(%x) : (f32[4]) -> f32[4]
  %b = aten.relu.default(%a) : (f32[4]) -> f32[4]
  %c = aten.sigmoid.default(%a) : (f32[4]) -> f32[4]
  %d = aten.add.Tensor(%b, %c) {alpha=1} : (f32[4], f32[4]) -> f32[4]
  %e = aten.neg.default(%x) : (f32[4]) -> f32[4]
  return %d, %e
}
"""


def test_dominators_reachability_generations() -> None:
    g = parse_graph(DIAMOND)
    a, b, c, d, e = (g.value(n).producer for n in "abcde")
    idom = dominators(g)
    assert idom[a] is None and idom[b] is a and idom[c] is a and idom[d] is a
    assert dominates(g, a, d) and not dominates(g, b, d)
    assert reaches(g, a, d) and not reaches(g, d, a) and not reaches(g, e, d)
    assert descendants(g, a) == {b, c, d} and ancestors(g, d) == {a, b, c}
    assert [[n.name for n in gen] for gen in topological_generations(g)] == [["a", "e"], ["b", "c"], ["d"]]


def test_structural_hashes_find_repeated_layers() -> None:
    layer = """
  %{p}a = aten.linear.default(%{i}, @w{p}) : (f32[1,8], f32[8,8]) -> f32[1,8]
  %{p}b = aten.relu.default(%{p}a) : (f32[1,8]) -> f32[1,8]"""
    body = layer.format(p="l0", i="x") + layer.format(p="l1", i="l0b") + layer.format(p="l2", i="l1b")
    weights = "".join(f"\n  weight @wl{i} : f32[8,8] parameter" for i in range(3))
    g = parse_graph(f"graph(%x: f32[1,8]) {{{weights}{body}\n  return %l2b\n}}")
    hashes = structural_hashes(g, depth=1)
    assert hashes[g.value("l1a").producer] == hashes[g.value("l2a").producer]
    assert hashes[g.value("l0a").producer] != hashes[g.value("l1a").producer]  # reads an input, not an op
    blocks = repeated_blocks(g, depth=1)
    assert sorted(sorted(n.name for n in b) for b in blocks) == [["l1a", "l2a"], ["l1b", "l2b"]]
    with pytest.raises(IRError, match="depth"):
        structural_hashes(g, depth=-1)


def test_create_op_writes_torch_literals_by_name() -> None:
    import torch

    g = parse_graph(CONV)
    cast = g.create_op("aten._to_copy.default", g.value("r"), dtype=torch.float16)
    assert cast.attrs["dtype"] == "float16" and cast.output.type == TensorType((1, 4, 6, 6), "float16")
    g.set_outputs([cast.output])
    from torch_ir.ir.module import IR
    from torch_ir.serde import from_dict, to_dict

    assert from_dict(to_dict(IR(g))).graph == g


# ------------------------------------------------------------------ random mutation sequences


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10_000), st.integers(0, 10_000)), max_size=40))
def test_random_mutations_keep_uses_and_edges_consistent(steps: list[tuple[int, int, int]]) -> None:
    """create / replace_all_uses_with / set_operand / erase in any order: verify() and the edges always agree."""
    g = Graph()
    t = TensorType((2,), "float32")
    g.add_input("x", t)
    g.add_input("y", t)
    for kind, i, j in steps:
        values = [*g.inputs, *(n.output for n in g.nodes)]
        a, b = values[i % len(values)], values[j % len(values)]
        try:
            if kind == 0:
                g.create_node("aten.add.Tensor", [a, b], {"alpha": 1}, [t])
            elif kind == 1:
                g.replace_all_uses_with(a, b)
            elif kind == 2 and g.nodes:
                g.nodes[i % len(g)].set_operand("other", b)
            elif kind == 3 and g.nodes:
                g.erase(g.nodes[i % len(g)])
        except IRError:
            pass  # refused (a cycle, a use before definition, a node still read): nothing changed
        assert _edges(g) == _expected_edges(g)
        assert all(g.num_uses(v) == len(g.uses(v)) for v in values if g.defines(v))
    g.set_outputs([])


def test_a_value_held_in_an_attribute_is_refused_by_the_verifier() -> None:
    graph = Graph()
    f32 = TensorType((2, 4), "float32")
    x, w = graph.add_input("x", f32), graph.add_input("w", TensorType((4,), "float32"))
    # a value as an attribute, alone or in a list: uses, liveness and the file formats would not see it
    norm = graph.create_node("aten.layer_norm.default", [x, [4]], {"weight": w, "eps": 1e-5}, [f32])
    graph.set_outputs(norm.outputs)
    with pytest.raises(VerificationError, match=r"node layer_norm \(aten.layer_norm.default\) holds %w in its attr"):
        graph.verify()
    graph.set_outputs([graph.create_op("aten.layer_norm.default", x, [4], weight=w).output])  # by name: an operand
    graph.erase(norm)
    graph.verify()
    other = Graph()
    a, b = other.add_input("a", f32), other.add_input("b", f32)
    cat = other.create_node("aten.cat.default", [], {"tensors": [a, b], "dim": 0}, [TensorType((4, 4), "float32")])
    other.set_outputs(cat.outputs)
    with pytest.raises(VerificationError, match="holds %a in its attribute 'tensors': a value is an operand"):
        other.verify()
