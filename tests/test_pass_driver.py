"""The pass driver walks the module for each pass by its scope: every function, every region nested in
them, the init graph; built-in passes, example passes and ``apply_patterns`` reach all of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import torch

import torch_ir
from torch_ir.ir import Graph, Module, parse_module
from torch_ir.passes import Pass, PassContext, PassManager, PassResult
from torch_ir.passes.driver import sites
from torch_ir.passes.rewrite import Op, RewriteRule, Var, apply_patterns
from torch_ir.serde import dumps, loads

SCAN = """\
  %h, %ys = higher_order.scan([%h0], [%xs], [@w]) : (f32[2,4], f32[3,2,4], f32[4,4]) -> (f32[2,4], f32[3,2,4]) regions {
    combine: graph(%c: f32[2,4], %x: f32[2,4], %wc: f32[4,4]) {
      %m = aten.matmul.default(%c, %wc) : (f32[2,4], f32[4,4]) -> f32[2,4]
      %a = aten.alias.default(%m) : (f32[2,4]) -> f32[2,4]
      %n1 = aten.neg.default(%x) : (f32[2,4]) -> f32[2,4]
      %n2 = aten.neg.default(%n1) : (f32[2,4]) -> f32[2,4]
      %d1 = aten.sin.default(%x) : (f32[2,4]) -> f32[2,4]
      %d2 = aten.sin.default(%x) : (f32[2,4]) -> f32[2,4]
      %dead = aten.cos.default(%x) : (f32[2,4]) -> f32[2,4]
      %s = aten.add.Tensor(%a, %n2) {alpha=1} : (f32[2,4], f32[2,4]) -> f32[2,4]
      %t = aten.add.Tensor(%d1, %d2) {alpha=1} : (f32[2,4], f32[2,4]) -> f32[2,4]
      %u = aten.add.Tensor(%s, %t) {alpha=1} : (f32[2,4], f32[2,4]) -> f32[2,4]
      return %u, %u
    }
  }
"""

MODULE = f"""\
module {{
  weight @w : f32[4,4] parameter
  weight @unused : f32[4] parameter
  func prefill graph(%xs: f32[3,2,4], %h0: f32[2,4]) {{
{SCAN}    %wt = aten.t.default(@w) : (f32[4,4]) -> f32[4,4]
    %o = aten.matmul.default(%h, %wt) : (f32[2,4], f32[4,4]) -> f32[2,4]
    return %o, %ys
  }}
  func decode graph(%xs: f32[3,2,4], %h0: f32[2,4]) {{
{SCAN}    %wt = aten.t.default(@w) : (f32[4,4]) -> f32[4,4]
    %p = aten.neg.default(%h) : (f32[2,4]) -> f32[2,4]
    %q = aten.neg.default(%p) : (f32[2,4]) -> f32[2,4]
    %o = aten.matmul.default(%q, %wt) : (f32[2,4], f32[4,4]) -> f32[2,4]
    return %o, %ys
  }}
}}
"""


def _module() -> Module:
    module = parse_module(MODULE)
    module.verify()
    return module


def _combine(module: Module, entry: str) -> Graph:
    return next(n for n in module.entry(entry).nodes if n.regions).regions[0]


def _reference(module: Module, entry: str, w: torch.Tensor, xs: torch.Tensor, h0: torch.Tensor) -> Any:
    return torch_ir.Runner(module, {"w": w, "unused": torch.zeros(4)}, strict=False).call(entry, xs, h0)


@dataclass(frozen=True)
class Recorder(Pass):
    """Records where the driver sent it."""

    name: ClassVar[str] = "test-recorder"
    seen: list = None  # type: ignore[assignment]

    def run(self, graph: Any, ctx: PassContext) -> PassResult:
        self.seen.append((ctx.function, ctx.region, ctx.in_init, type(graph).__name__))
        return PassResult(graph, False)


@pytest.mark.parametrize("scope", ["graph", "function", "module"])
def test_the_driver_visits_what_the_scope_names_in_order(scope: str) -> None:
    module = _module()
    torch_ir.extract_ir  # noqa: B018  (the package wires its providers on import)
    PassManager("hoist-weights").run(module)  # gives the module an init graph
    assert module.init is not None
    seen: list = []
    recorder = type("R", (Recorder,), {"scope": scope})(seen=seen)
    PassManager([recorder]).run(module)
    expected = {
        "graph": [
            ("prefill", "h/combine/", False, "Graph"),
            ("prefill", "", False, "Graph"),
            ("decode", "h/combine/", False, "Graph"),
            ("decode", "", False, "Graph"),
            ("", "", True, "Graph"),
        ],
        "function": [("prefill", "", False, "Graph"), ("decode", "", False, "Graph")],
        "module": [("", "", False, "Module")],
    }[scope]
    assert seen == expected
    assert [s.function for s in sites(module, "function")] == ["prefill", "decode"]


def test_builtin_passes_reach_every_function_region_and_the_init_graph() -> None:
    module = _module()
    w, xs, h0 = torch.randn(4, 4), torch.randn(3, 2, 4), torch.randn(2, 4)
    before = {e: _reference(module, e, w, xs, h0) for e in ("prefill", "decode")}
    PassManager("canonicalize,cse,eliminate-dead-nodes").run(module)
    for entry in ("prefill", "decode"):
        ops = [n.op_type for n in _combine(module, entry).nodes]
        assert "aten.alias.default" not in ops  # canonicalize, inside the scan body of both entries
        assert ops.count("aten.sin.default") == 1  # cse merged the two sins
        assert "aten.cos.default" not in ops  # dce removed the dead cos
    assert "unused" not in module.weights  # dce: no function reads it
    PassManager("hoist-weights").run(module)
    assert [v.name for v in module.init.outputs] == ["w.t"]  # one derived weight for both entries
    assert all(not any(n.op_type == "aten.t.default" for n in g.nodes) for g in module.entries.values())
    assert module.weights["w.t"].kind == "derived"
    PassManager("annotate-shapes,dedup-weights").run(module)
    module.verify()
    for entry in ("prefill", "decode"):
        after = _reference(module, entry, w, xs, h0)
        for a, b in zip(after, before[entry]):
            torch.testing.assert_close(a, b)


def test_apply_patterns_rewrites_inside_a_scan_body_and_in_every_program_entry() -> None:
    module = _module()
    x = Var("x")
    double_neg = RewriteRule(Op("aten.neg.default", Op("aten.neg.default", x)), x)
    result = apply_patterns(module, [double_neg])
    assert result.counts == {double_neg.label: 3}  # once in each scan body, once in decode's own graph
    for entry in ("prefill", "decode"):
        assert "aten.neg.default" not in [n.op_type for n in _combine(module, entry).nodes]
    assert "aten.neg.default" not in [n.op_type for n in module.entry("decode").nodes]
    module.verify()
    only_top = apply_patterns(_module().entry("decode"), [double_neg], regions=False)
    assert only_top.counts == {double_neg.label: 1}


@dataclass(frozen=True)
class Copying(Pass):
    """A functional pass: returns a copy of every graph it is given, with one node renamed."""

    name: ClassVar[str] = "test-copying"
    in_place: ClassVar[bool] = False

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        return PassResult(graph.clone(), True)


def test_a_functional_pass_result_takes_the_place_of_each_graph() -> None:
    module = _module()
    old_regions = [_combine(module, e) for e in ("prefill", "decode")]
    old_entries = [module.entry(e) for e in ("prefill", "decode")]
    PassManager([Copying()]).run(module)
    module.verify()
    for entry, old_graph, old_region in zip(("prefill", "decode"), old_entries, old_regions):
        assert module.entry(entry) is not old_graph and module.entry(entry) == old_graph
        region = _combine(module, entry)
        assert region is not old_region and region.owner is next(n for n in module.entry(entry).nodes if n.regions)
    assert all(g.table is module.table for g in module.entries.values())


def test_a_failure_in_a_region_names_the_function_and_the_region() -> None:
    @dataclass(frozen=True)
    class Fails(Pass):
        name: ClassVar[str] = "test-fails-in-regions"

        def run(self, graph: Graph, ctx: PassContext) -> PassResult:
            if ctx.region:
                raise ValueError("no regions please")
            return PassResult(graph, False)

    with pytest.raises(torch_ir.PassError, match=r"in function prefill, region h/combine: ValueError: no regions"):
        PassManager([Fails()]).run(_module())


CALLS = """\
module {
  weight @a.w : f32[4,4] parameter
  weight @b.w : f32[4,4] parameter
  weight @shared : f32[4] parameter
  func forward graph(%x: f32[2,4]) {
    %c = func.call(%x, @a.w, @shared) {callee="block"} : (f32[2,4], f32[4,4], f32[4]) -> f32[2,4]
    return %c
  }
  func other graph(%x: f32[2,4]) {
    %m = aten.matmul.default(%x, @b.w) : (f32[2,4], f32[4,4]) -> f32[2,4]
    %s = aten.add.Tensor(%m, @shared) {alpha=1} : (f32[2,4], f32[4]) -> f32[2,4]
    return %s
  }
  func private block graph(%h: f32[2,4], %w: f32[4,4], %v: f32[4]) {
    %m = aten.matmul.default(%h, %w) : (f32[2,4], f32[4,4]) -> f32[2,4]
    %a = aten.alias.default(%m) : (f32[2,4]) -> f32[2,4]
    %dead = aten.cos.default(%h) : (f32[2,4]) -> f32[2,4]
    %r = aten.add.Tensor(%a, %v) {alpha=1} : (f32[2,4], f32[4]) -> f32[2,4]
    return %r
  }
}
"""
"""A public function that reads its weights only through a call, a second public function with weights of
its own, and one weight both read: what a pass sees of each, and what must stay in the one table."""


def test_graph_passes_reach_the_bodies_of_private_functions() -> None:
    module = parse_module(CALLS)
    module.verify()
    seen: list = []
    PassManager([Recorder(seen=seen)]).run(module)
    assert [s[0] for s in seen] == ["forward", "other", "block"]  # the callee body too, as a function
    weights = {"a.w": torch.randn(4, 4), "b.w": torch.randn(4, 4), "shared": torch.randn(4)}
    x = torch.randn(2, 4)
    before = torch_ir.Runner(module, weights).call("forward", x)
    PassManager("canonicalize,eliminate-dead-nodes").run(module)
    body = [n.op_type for n in module.functions["block"].graph.nodes]
    assert body == ["aten.matmul.default", "aten.add.Tensor"]  # the alias and the dead cos are gone
    torch.testing.assert_close(torch_ir.Runner(module, weights).call("forward", x), before)


def test_no_weight_another_function_reads_is_lost() -> None:
    """Dead-code elimination in one function removes only weights that no function reads: each of these
    is read by one public function (directly, or as a call operand) and not by the other."""
    module = parse_module(CALLS)
    PassManager("eliminate-dead-nodes,dedup-weights,hoist-weights").run(module)
    module.verify()
    assert list(module.weights) == ["a.w", "b.w", "shared"]
    assert all(g.table is module.table for g in (f.graph for f in module.functions.values()))
    again = loads(dumps(module))
    again.verify()
    assert list(again.weights) == ["a.w", "b.w", "shared"] and list(again.functions) == ["forward", "other", "block"]
    weights = {"a.w": torch.randn(4, 4), "b.w": torch.randn(4, 4), "shared": torch.randn(4)}
    x = torch.randn(2, 4)
    runner = torch_ir.Runner(again, weights)
    torch.testing.assert_close(runner.call("forward", x), x @ weights["a.w"] + weights["shared"])
    torch.testing.assert_close(runner.call("other", x), x @ weights["b.w"] + weights["shared"])


NESTED = """\
module {
  weight @w : f32[3] parameter
  func forward graph(%x: f32[3]) {
    %s = aten.sum.default(%x) {dtype=null} : (f32[3]) -> f32[]
    %gt = aten.gt.Scalar(%s) {other=0} : (f32[]) -> i1[]
    %c = higher_order.cond(%gt, [%x]) : (i1[], f32[3]) -> f32[3] regions {
      true: graph(%x: f32[3]) {
        %s = aten.sum.default(%x) {dtype=null} : (f32[3]) -> f32[]
        %gt = aten.gt.Scalar(%s) {other=1} : (f32[]) -> i1[]
        %d = higher_order.cond(%gt, [%x]) : (i1[], f32[3]) -> f32[3] regions {
          true: graph(%x: f32[3]) {
            %cos = aten.cos.default(%x) : (f32[3]) -> f32[3]
            return %cos
          }
          false: graph(%x: f32[3]) {
            %sin = aten.sin.default(%x) : (f32[3]) -> f32[3]
            return %sin
          }
        }
        return %d
      }
      false: graph(%x: f32[3]) {
        %mul = aten.mul.Tensor(%x) {other=2} : (f32[3]) -> f32[3]
        return %mul
      }
    }
    return %c
  }
  func other graph(%x: f32[3]) {
    %wt = aten.neg.default(@w) : (f32[3]) -> f32[3]
    %y = aten.add.Tensor(%x, %wt) {alpha=1} : (f32[3], f32[3]) -> f32[3]
    return %y
  }
}
"""
"""A cond nested in a branch of a cond, and a second function with a weight to hoist into an init graph."""


def _nested() -> Module:
    module = parse_module(NESTED)
    module.verify()
    return module


def _outputs(module: Module) -> list[torch.Tensor]:
    runner = torch_ir.Runner(module, {"w": torch.tensor([1.0, 2.0, 3.0])})
    inputs = [torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.25, 0.25, 0.25]), torch.tensor([-1.0, -2.0, 0.5])]
    return [runner.call(name, x) for name in ("forward", "other") for x in inputs]  # each branch taken once


def test_nested_regions_are_visited_innermost_first_and_named_by_their_path() -> None:
    module = _nested()
    PassManager("hoist-weights").run(module)
    seen: list = []
    manager = PassManager([Recorder(seen=seen)])
    manager.run(module)
    assert manager.log[-1]["modified"] is False
    assert seen == [
        ("forward", "c/true/d/true/", False, "Graph"),
        ("forward", "c/true/d/false/", False, "Graph"),
        ("forward", "c/true/", False, "Graph"),
        ("forward", "c/false/", False, "Graph"),
        ("forward", "", False, "Graph"),
        ("other", "", False, "Graph"),
        ("", "", True, "Graph"),
    ]


def test_a_functional_pass_result_takes_the_place_of_each_branch_and_of_the_init_graph() -> None:
    module = _nested()
    PassManager("hoist-weights").run(module)
    before, old_init = _outputs(module), module.init
    outer = next(n for n in module.entry("forward").nodes if n.regions)
    old = [*outer.regions, *next(n for n in outer.regions[0].nodes if n.regions).regions]
    PassManager([Copying()]).run(module)
    module.verify()
    assert module.init is not None and module.init is not old_init and module.init == old_init
    outer = next(n for n in module.entry("forward").nodes if n.regions)
    inner = next(n for n in outer.regions[0].nodes if n.regions)
    new = [*outer.regions, *inner.regions]
    assert all(a is not b and a == b for a, b in zip(new, old))  # each copy in the slot of its original
    assert [r.owner for r in new] == [outer, outer, inner, inner]
    for got, want in zip(_outputs(module), before):
        torch.testing.assert_close(got, want)


@dataclass(frozen=True)
class ModifiesAt(Pass):
    """Says it modified the graph at one site only, and records what its pre- and postconditions saw."""

    name: ClassVar[str] = "test-modifies-at"
    where: str = ""
    checked: list = None  # type: ignore[assignment]

    def requires(self, graph: Any) -> None:
        self.checked.append(("requires", type(graph).__name__))

    def run(self, graph: Any, ctx: PassContext) -> PassResult:
        return PassResult(graph, f"{ctx.function}:{ctx.region}" == self.where)

    def ensures(self, graph: Any) -> None:
        self.checked.append(("ensures", type(graph).__name__))


@pytest.mark.parametrize("where", ["forward:c/true/d/true/", "forward:", "other:"])
def test_a_pass_modified_the_module_when_it_modified_any_one_graph(where: str) -> None:
    checked: list = []
    manager = PassManager([ModifiesAt(where=where, checked=checked), ModifiesAt(where="nowhere:", checked=[])])
    manager.run(_nested())
    assert [row["modified"] for row in manager.log] == [True, False]
    assert checked == [("requires", "Graph"), ("ensures", "Graph")] * 6  # four branches, two functions


def test_errors_name_where_they_happened_and_keep_a_torch_ir_error_s_own_words() -> None:
    @dataclass(frozen=True)
    class Fails(Pass):
        name: ClassVar[str] = "test-fails-in-other"

        def run(self, graph: Graph, ctx: PassContext) -> PassResult:
            if ctx.function == "other":
                raise torch_ir.IRError("no weights please")
            return PassResult(graph, False)

    with pytest.raises(torch_ir.PassError, match=r"failed: in function other: no weights please\n"):
        PassManager([Fails()]).run(_nested())

    @dataclass(frozen=True)
    class Replaces(Pass):
        name: ClassVar[str] = "test-replaces-module"
        scope: ClassVar[str] = "module"
        in_place: ClassVar[bool] = False

        def run(self, module: Module, ctx: PassContext) -> PassResult:
            assert ctx.module is module and (ctx.function, ctx.region, ctx.in_init) == ("", "", False)
            return PassResult(_nested(), True)

    with pytest.raises(torch_ir.PassError, match=r"test-replaces-module: a module-scope pass changes the module"):
        PassManager([Replaces()]).run(_nested())
    with pytest.raises(torch_ir.PassError, match=r"unknown pass scope 'all'; expected one of graph, function, module"):
        list(sites(_nested(), "all"))
