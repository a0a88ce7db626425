"""The text form: printer, parser, round trips and parse errors."""

from __future__ import annotations

import pytest

from torch_ir import TextParseError
from torch_ir.ir import ScalarType, TensorType, parse_graph, print_graph

FULL = """graph(%x: f32[s0,16], %ids: i64[s0,8]) {
  symbol s0 : 1..64
  weight @fc.weight : f32[32,16] parameter aliases(@head.weight)
  weight @fc.bias : f32[32] buffer non-persistent
  weight @"odd name" : f32[2] constant data=[1.5, -2.0]
  init
  graph() {
    weight @fc.weight : f32[32,16] parameter
    %fc.weight.t = aten.t.default(@fc.weight) : (f32[32,16]) -> f32[16,32]
    return %fc.weight.t
  }
  %n = aten.sym_size.int(%x) {dim=0} : (f32[s0,16]) -> int
  %linear = aten.linear.default(%x, @fc.weight, @fc.bias) : (f32[s0,16], f32[32,16], f32[32]) -> f32[s0,32]
  %a, %b = aten.split.Tensor(%linear) {split_size=16, dim=1} : (f32[s0,32]) -> (f32[s0,16], f32[s0,16]) loc(split)
  %v = aten.view.default(%a, [%n, 4, -1]) : (f32[s0,16], int) -> f32[s0,4,4]
  %cat = aten.cat.default([%a, %b]) {dim=-1} : (f32[s0,16], f32[s0,16]) -> f32[s0,32]
  %fill = aten.masked_fill.Scalar(%cat, %cat) {value=-Infinity} : (f32[s0,32], f32[s0,32]) -> f32[s0,32]
  aten._assert_tensor_metadata.default(%x) {dtype="float32", device=null} : (f32[s0,16]) -> () loc(assert_0)
  return %fill, %v, @"odd name"
}"""


def test_print_parse_print_is_stable() -> None:
    graph = parse_graph(FULL)
    assert print_graph(graph) == FULL
    assert parse_graph(print_graph(graph)) == graph


def test_parsed_graph_has_the_declared_structure() -> None:
    g = parse_graph(FULL)
    assert g.symbols["s0"].min == 1 and g.symbols["s0"].max == 64
    assert g.weight("fc.weight").aliases == ("head.weight",)
    assert g.weight("fc.bias").persistent is False
    assert g.weight("odd name").data == [1.5, -2.0]
    assert g.value("n").type == ScalarType("int")
    assert g.value("v").type == TensorType(("s0", 4, 4), "float32")
    view = g.value("v").producer
    assert view.args[1][0] is g.value("n") and view.args[1][1:] == [4, -1]
    split = g.value("a").producer
    assert split.name == "split" and split.attrs == {"split_size": 16, "dim": 1}
    assert g.value("fill").producer.attrs["value"] == float("-inf")
    assert g.init is not None and [v.name for v in g.init.outputs] == ["fc.weight.t"]
    assert [n.name for n in g.nodes][-1] == "assert_0"
    g.verify()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("graph(%x: f32[2]) {\n  return %y\n}", "used before it is defined"),
        ("graph(%x: f32[2]) {\n  %y = aten.relu.default(%x : (f32[2]) -> f32[2]\n  return %y\n}", "expected"),
        ("graph(%x: q32[2]) {\n  return %x\n}", "unknown dtype"),
        ("graph(%x: f32[2]) {\n  %y = aten.relu.default(@w) : (f32[2]) -> f32[2]\n  return %y\n}", "not a declared"),
        ("graph(%x: f32[2]) {\n  %y = aten.relu.default(%x) : (f32[3]) -> f32[2]\n  return %y\n}", "has type"),
        ("graph(%x: f32[2]) {\n  %x = aten.relu.default(%x) : (f32[2]) -> f32[2]\n  return %x\n}", "defined twice"),
        ("graph(%x: f32[2]) {\n  return %x\n", "missing '}'"),
        ("graph(%x: f32[2]) {\n  %y = relu(%x) : (f32[2]) -> f32[2]\n  return %y\n}", "malformed op type"),
    ],
)
def test_parse_errors_name_line_and_problem(text: str, message: str) -> None:
    with pytest.raises(TextParseError, match=message) as info:
        parse_graph(text)
    assert "line " in str(info.value)
