"""The Graph mutation API: names, uses, edges, erase, replace, insertion order."""

from __future__ import annotations

import pytest

from torch_ir import IRError, TensorType, VerificationError
from torch_ir.ir import Graph, parse_graph

F16 = TensorType((1, 16), "float32")

SMALL = """
graph(%x: f32[1,16]) {
  weight @w : f32[16,16] parameter
  %a = aten.linear.default(%x, @w) : (f32[1,16], f32[16,16]) -> f32[1,16]
  %b = aten.relu.default(%a) : (f32[1,16]) -> f32[1,16]
  %c = aten.add.Tensor(%a, %b) : (f32[1,16], f32[1,16]) -> f32[1,16]
  return %c
}
"""


def test_nodes_are_a_live_topological_view() -> None:
    g = parse_graph(SMALL)
    nodes = g.nodes
    assert [n.name for n in nodes] == ["a", "b", "c"]
    g.create_node("aten.neg.default", [g.value("c")], {}, [F16], name="d")
    assert [n.name for n in nodes] == ["a", "b", "c", "d"]  # the same view sees the new node
    assert len(nodes) == 4 and nodes[-1].name == "d" and nodes.index(g.value("b").producer) == 1


def test_walking_nodes_tolerates_erasing_and_inserting() -> None:
    g = parse_graph(SMALL)
    seen = []
    for node in g.nodes:
        seen.append(node.name)
        if node.name == "a":  # insert after the current node: the walk reaches it
            g.create_node("aten.neg.default", [g.value("a")], {}, [F16], name="n", after=node)
        if node.name == "n":  # erase the current node: the walk goes on with its successor
            g.erase(node)
    assert seen == ["a", "n", "b", "c"]
    assert [n.name for n in g.nodes] == ["a", "b", "c"]
    seen = []
    for node in reversed(g.nodes):
        seen.append(node.name)
        if node.name == "c":
            g.set_outputs([g.value("b")])
            g.erase(node)
    assert seen == ["c", "b", "a"]


def test_users_and_edges_follow_uses() -> None:
    g = parse_graph(SMALL)
    a = g.value("a")
    assert [n.name for n in g.users(a)] == ["b", "c"]
    assert g.num_uses(a) == 2
    assert g.nx.number_of_edges() == 3  # a->b, a->c, b->c
    edge = next(iter(g.nx.get_edge_data(a.producer, g.value("c").producer).values()))
    assert edge == {"value": "a", "slot": 0}
    assert [n.name for n in g.users(g.weight("w"))] == ["a"]


def test_replace_all_uses_and_erase() -> None:
    g = parse_graph(SMALL)
    b, c = g.value("b"), g.value("c")
    with pytest.raises(IRError, match="still used by c"):
        g.erase(b.producer)
    assert g.replace_all_uses_with(c, b) == 1  # the graph output
    g.erase(c.producer)
    assert g.outputs == [b]
    assert [n.name for n in g.nodes] == ["a", "b"]
    assert not g.has_value("c")
    g.verify()


def test_insert_before_and_after_keep_order() -> None:
    g = parse_graph(SMALL)
    a = g.value("a")
    first = g.create_node("aten.neg.default", [g.inputs[0]], {}, [F16], name="n0", before=a.producer)
    after = g.create_node("aten.neg.default", [a], {}, [F16], name="n1", after=a.producer)
    assert [n.name for n in g.nodes] == ["n0", "a", "n1", "b", "c"]
    assert first.graph is g and after.graph is g
    g.verify()


def test_duplicate_names_are_rejected() -> None:
    g = parse_graph(SMALL)
    with pytest.raises(IRError, match="defined twice"):
        g.create_node("aten.neg.default", [g.value("a")], {}, [F16], output_names=["b"], name="bb")
    with pytest.raises(IRError, match="defined twice"):
        g.add_weight("w", F16)
    assert g.fresh_name("a") not in {"a", "b", "c"}


def test_multi_result_names_are_unique() -> None:
    g = Graph()
    x = g.add_input("x", F16)
    node = g.create_node("aten.split.Tensor", [x], {"split_size": 8, "dim": 1}, [None, None])
    assert [v.name for v in node.outputs] == ["split#0", "split#1"]
    assert [v.index for v in node.outputs] == [0, 1]


def test_remove_and_rename_weight() -> None:
    g = parse_graph(SMALL)
    w = g.weight("w")
    with pytest.raises(IRError, match="still used"):
        g.remove_weight(w)
    g.rename_weight(w, "fc.weight")
    assert list(g.weights) == ["fc.weight"]
    assert "@fc.weight" in str(g)


def test_verify_catches_use_before_definition() -> None:
    g = parse_graph(SMALL)
    c = g.value("c").producer
    a = g.value("a").producer
    g.move_before(a, c)  # c now reads a and b before they exist
    with pytest.raises(VerificationError, match="node c .* reads %a"):
        g.verify()


def test_verify_requires_types() -> None:
    g = Graph()
    x = g.add_input("x", None)
    g.set_outputs([x])
    with pytest.raises(VerificationError, match="has no type"):
        g.verify()


def test_verify_requires_outputs_defined() -> None:
    g = parse_graph(SMALL)
    other = Graph().add_input("ghost", F16)
    g.set_outputs([other])
    with pytest.raises(VerificationError, match="output 0"):
        g.verify()


def test_equality_sees_attrs_and_types() -> None:
    g1, g2 = parse_graph(SMALL), parse_graph(SMALL)
    assert g1 == g2
    g2.value("b").producer.attrs["inplace"] = False
    assert g1 != g2
