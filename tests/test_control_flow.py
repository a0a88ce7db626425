"""Control flow as regions: cond, while_loop, scan and map through every layer of torch-ir."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import torch

from tests.models import get_model
from tests.models.control_flow import DoubleUntil, cond_inputs, while_inputs
from torch_ir import (
    ExportError,
    InterpreterError,
    SerializationError,
    TextParseError,
    VerificationError,
    extract_ir,
    load_ir,
    parse_graph,
    print_graph,
    verify_ir_with_state_dict,
)
from torch_ir.ir.regions import REGION_OPS, check_region_op
from torch_ir.passes.manager import PassManager
from torch_ir.runtime.interpreter import Interpreter
from torch_ir.serde import dumps, load_schema, loads

CASES = ["cond_router", "while_double", "scan_rnn", "map_rows", "cond_in_scan", "diagonal_ssm"]


def _extract(name: str, pipeline: str = "default"):
    case = get_model(name)
    args, kwargs = case.inputs("meta")
    return extract_ir(case.build_meta(), args, example_kwargs=kwargs, pipeline=pipeline, name=name)


def _verify(ir, name: str, args: tuple | None = None) -> None:
    case = get_model(name)
    real = case.build_real()
    if args is None:
        args = case.inputs("cpu")[0]
    ok, report = verify_ir_with_state_dict(ir, real.state_dict(), real, args, rtol=case.rtol, atol=case.atol)
    assert ok, str(report)


@pytest.mark.parametrize("name", CASES)
def test_extract_on_meta_save_load_verify(name: str, tmp_path: Path) -> None:
    ir = _extract(name)
    region_ops = [node for _, node in ir.graph.walk() if node.op_type in REGION_OPS]
    assert region_ops and all(node.regions for node in region_ops)
    path = tmp_path / f"{name}.json"
    ir.save(path)
    loaded = load_ir(path)
    assert loaded.graph == ir.graph
    _verify(loaded, name)


def test_cond_takes_both_branches_on_data() -> None:
    ir = load_ir_roundtrip(_extract("cond_router"))
    real = get_model("cond_router").build_real()
    interp = Interpreter(ir, real)
    (pos,), _ = cond_inputs(True)
    (neg,), _ = cond_inputs(False)
    with torch.no_grad():
        heavy = real.down(torch.relu(real.up(pos))) + pos
        light = neg * real.scale - 1.0 + neg
        torch.testing.assert_close(interp(pos), heavy)
        torch.testing.assert_close(interp(neg), light)
    for x in (pos, neg):
        _verify(ir, "cond_router", (x,))


def load_ir_roundtrip(ir):
    return loads(dumps(ir))


def test_while_loop_trip_count_follows_the_data() -> None:
    ir = load_ir_roundtrip(_extract("while_double"))
    real = get_model("while_double").build_real()
    interp = Interpreter(ir, real)
    steps = []
    for scale in (0.5, 3.0, 100.0):
        args = while_inputs(scale)[0]
        got_steps, got = interp(*args)
        want_steps, want = DoubleUntil.forward(real, *args)
        assert int(got_steps) == int(want_steps)
        torch.testing.assert_close(got, want)
        steps.append(int(got_steps))
        _verify(ir, "while_double", args)
    assert steps[0] > steps[1] > steps[2] == 0


@pytest.mark.parametrize("name", CASES)
def test_text_form_round_trips(name: str) -> None:
    ir = _extract(name)
    text = print_graph(ir.graph)
    assert "regions {" in text
    parsed = parse_graph(text)
    assert print_graph(parsed) == text
    parsed.verify()
    parsed.input_structure, parsed.output_structure = ir.graph.input_structure, ir.graph.output_structure
    _verify(parsed, name)


def test_text_form_names_regions_and_scopes_values() -> None:
    text = print_graph(_extract("cond_router", pipeline="none").graph)
    assert "higher_order.cond(" in text
    assert "    true: graph(%x: f32[2,8]" in text and "    false: graph(%x: f32[2,8]" in text
    with pytest.raises(Exception, match="called 'true', not 'yes'"):
        parse_graph(text.replace("true: graph", "yes: graph"))


def test_json_matches_the_shipped_schema_and_is_deterministic() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    for name in ("cond_in_scan", "while_double"):
        text = dumps(_extract(name))
        jsonschema.validate(json.loads(text), load_schema())
        assert dumps(_extract(name)) == text
        assert '"regions": [' in text


def test_json_region_signature_mismatch_names_node_and_region() -> None:
    doc = json.loads(dumps(_extract("cond_router", pipeline="none")))
    node = next(n for n in doc["module"]["functions"][0]["graph"]["nodes"] if n["op"] == "higher_order.cond")
    node["regions"][1]["inputs"].append({"name": "extra", "type": {"shape": [2], "dtype": "float32"}})
    with pytest.raises(
        SerializationError, match=rf"node {node['name']} \(higher_order.cond\): region false: has \d+ inputs"
    ):
        loads(json.dumps(doc))
    del node["regions"][1]
    with pytest.raises(SerializationError, match=r"regions: node .*needs 2 region\(s\) \(true, false\), has 1"):
        loads(json.dumps(doc))


def test_json_region_refuses_weights() -> None:
    doc = json.loads(dumps(_extract("map_rows", pipeline="none")))
    node = next(n for n in doc["module"]["functions"][0]["graph"]["nodes"] if n["op"] == "higher_order.map_impl")
    node["regions"][0]["weights"] = [{"name": "w", "kind": "parameter", "type": {"shape": [2], "dtype": "float32"}}]
    with pytest.raises(SerializationError, match=r"regions\[0\]\.weights: a region holds no weights"):
        loads(json.dumps(doc))


def test_structural_verifier_checks_the_region_contract() -> None:
    ir = _extract("while_double", pipeline="none")
    node = next(n for n in ir.graph.nodes if n.regions)
    ir.graph.verify()
    cond_region = node.regions[0]
    node.regions.reverse()
    with pytest.raises(VerificationError, match=rf"node {node.name} \(higher_order.while_loop\): region cond"):
        ir.graph.verify()
    node.regions[:] = [cond_region]
    assert check_region_op(node) == "needs 2 region(s) (cond, body), has 1"


def test_walk_reaches_nested_nodes_with_their_path() -> None:
    graph = _extract("cond_in_scan", pipeline="none").graph
    scan = next(n for n in graph.nodes if n.op_type == "higher_order.scan")
    paths = {(path, node.op_type) for path, node in graph.walk()}
    cond = next(n for _, n in graph.walk() if n.op_type == "higher_order.cond")
    assert ("", "higher_order.scan") in paths
    assert (f"{scan.name}/combine/", "higher_order.cond") in paths
    assert (f"{scan.name}/combine/{cond.name}/true/", "aten.tanh.default") in paths
    assert [p for p, _ in graph.walk_regions()] == [
        f"{scan.name}/combine/",
        f"{scan.name}/combine/{cond.name}/true/",
        f"{scan.name}/combine/{cond.name}/false/",
    ]


def test_passes_recurse_into_regions() -> None:
    ir = _extract("scan_rnn", pipeline="none")
    region = next(n for n in ir.graph.nodes if n.regions).regions[0]
    assert any(n.op_type == "aten.clone.default" for n in region.nodes)
    PassManager("canonicalize").run(ir)
    assert not any(n.op_type == "aten.clone.default" for n in region.nodes)
    _verify(ir, "scan_rnn")


_DEAD_AND_DUPLICATE = """graph(%p: i1[], %x: f32[4]) {
  %r = higher_order.cond(%p, [%x]) : (i1[], f32[4]) -> f32[4] regions {
    true: graph(%x: f32[4]) {
      %a = aten.sin.default(%x) : (f32[4]) -> f32[4]
      %b = aten.sin.default(%x) : (f32[4]) -> f32[4]
      %dead = aten.cos.default(%x) : (f32[4]) -> f32[4]
      %c = aten.add.Tensor(%a, %b) {alpha=1} : (f32[4], f32[4]) -> f32[4]
      return %c
    }
    false: graph(%x: f32[4]) {
      %n = aten.neg.default(%x) : (f32[4]) -> f32[4]
      return %n
    }
  }
  %unused = higher_order.cond(%p, [%x]) : (i1[], f32[4]) -> f32[4] regions {
    true: graph(%x: f32[4]) {
      return %x
    }
    false: graph(%x: f32[4]) {
      %n = aten.neg.default(%x) : (f32[4]) -> f32[4]
      return %n
    }
  }
  return %r
}"""


def test_dce_and_cse_work_within_regions() -> None:
    graph = parse_graph(_DEAD_AND_DUPLICATE)
    x = torch.randn(4)
    expected = [Interpreter(graph).run_flat([torch.tensor(b), x])[0] for b in (True, False)]
    from torch_ir import IR

    ir = IR(graph)
    PassManager("cse,eliminate-dead-nodes").run(ir)
    true_region = graph.nodes[0].regions[0]
    assert [n.op_type for n in true_region.nodes] == ["aten.sin.default", "aten.add.Tensor"]
    assert len(graph.nodes) == 1, "the unused cond with pure regions goes"
    got = [Interpreter(graph).run_flat([torch.tensor(b), x])[0] for b in (True, False)]
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e)


def test_dce_keeps_a_region_op_with_side_effects() -> None:
    text = _DEAD_AND_DUPLICATE.replace("%n = aten.neg.default(%x)", "%n = aten.relu_.default(%x)")
    graph = parse_graph(text)
    from torch_ir import IR

    PassManager("eliminate-dead-nodes").run(IR(graph))
    assert len(graph.nodes) == 2


def test_annotate_shapes_types_region_ops_from_their_regions() -> None:
    for name in ("cond_router", "scan_rnn", "map_rows", "while_double"):
        ir = _extract(name, pipeline="none")
        for _, node in ir.graph.walk():
            if node.regions:
                for value in node.outputs:
                    value.type = None
        PassManager("annotate-shapes{fallback=false}").run(ir)
        ir.graph.verify()
        assert all(v.type is not None for _, n in ir.graph.walk() for v in n.outputs)


def test_hoist_weights_leaves_region_work_in_place() -> None:
    ir = _extract("diagonal_ssm", pipeline="none")
    before = [(p, n.op_type) for p, n in ir.graph.walk() if p]
    PassManager("hoist-weights").run(ir)
    assert [(p, n.op_type) for p, n in ir.graph.walk() if p] == before
    assert ir.graph.init is not None  # the weight-only work outside the scan (exp of log_dt ...) moved
    _verify(ir, "diagonal_ssm")


def test_interpreter_error_inside_a_region_names_it() -> None:
    ir = _extract("map_rows", pipeline="none")
    node = next(n for n in ir.graph.nodes if n.regions)
    inner = next(n for n in node.regions[0].nodes if n.op_type == "aten.linear.default")
    inner.op_type = "mylib.missing.default"
    with pytest.raises(InterpreterError, match=rf"region body of node {node.name} \(higher_order.map_impl\)"):
        Interpreter(ir, get_model("map_rows").build_real())(torch.randn(3, 5))


def test_export_rejection_of_a_region_op_gives_torchs_reason() -> None:
    class Mismatch(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cond(x.sum() > 0, lambda x: x.sum(dim=0), lambda x: x * 2, (x,))

    with pytest.raises(
        ExportError, match=r"(?s)torch.export could not trace Mismatch: .*merging two branches' output in torch.cond"
    ):
        extract_ir(Mismatch(), (torch.randn(2, 3, device="meta"),))


@pytest.mark.parametrize(
    ("name", "op", "bad"),
    [
        ("cond_in_scan", "aten.tanh.default", "aten.sigmoid.default"),
        ("while_double", "aten.mul.Tensor", "aten.add.Tensor"),
        ("map_rows", "aten.sigmoid.default", "aten.tanh.default"),
    ],
)
def test_first_divergence_inside_a_region_has_its_path(name: str, op: str, bad: str) -> None:
    ir = _extract(name, pipeline="none")
    path, node = next((p, n) for p, n in ir.graph.walk() if p and n.op_type == op)
    node.op_type = bad
    case = get_model(name)
    real = case.build_real()
    args = case.inputs("cpu")[0]
    ok, report = verify_ir_with_state_dict(ir, real.state_dict(), real, args)
    assert not ok
    divergence = report.divergence
    assert divergence is not None, str(report)
    assert (divergence.node, divergence.region, divergence.op_type) == (path + node.name, path, bad)
    assert f"node {path}{node.name} ({bad})" in str(report)
    assert report.to_dict()["divergence"]["region"] == path


def test_mermaid_draws_regions_as_nested_subgraphs() -> None:
    from tests.testing.mermaid import check_mermaid
    from torch_ir.backends.mermaid import render_mermaid

    text = render_mermaid(_extract("cond_router"))
    check_mermaid(text)
    cond = next(n for n in _extract("cond_router").graph.nodes if n.regions)
    assert f'subgraph r1s["{cond.name}: true"]' in text and f'subgraph r2s["{cond.name}: false"]' in text
    nested = render_mermaid(_extract("cond_in_scan", pipeline="none"))
    check_mermaid(nested)
    assert re.search(r'subgraph r1s\["scan\w*: combine"\]\n(.*\n)*?\s+subgraph r2s\["cond\w*: true"\]', nested)


def test_statistics_cost_control_flow_from_regions() -> None:
    from torch_ir.analysis.statistics import compute_statistics, node_cost

    def region_flops(name: str):
        graph = _extract(name, pipeline="none").graph
        node = next(n for n in graph.nodes if n.regions)
        costs = [sum(node_cost(n)[0] or 0 for n in region.nodes) for region in node.regions]
        return graph, node, costs

    graph, node, (true_cost, false_cost) = region_flops("cond_router")
    assert true_cost > false_cost > 0
    assert node_cost(node)[0] == true_cost
    graph, node, (step,) = region_flops("scan_rnn")
    stats = compute_statistics(graph)
    assert node_cost(node)[0] == 5 * step and stats.flops is not None and stats.flops >= 5 * step
    assert stats.region_ops == [
        {
            "node": node.name,
            "op": "higher_order.scan",
            "flops_per_iteration": step,
            "macs_per_iteration": node_cost(node)[1] // 5,
            "trip_count": 5,
            "flops": 5 * step,
        }
    ]
    graph, node, (cond_cost, body_cost) = region_flops("while_double")
    stats = compute_statistics(graph)
    assert stats.flops is None and stats.region_ops[0]["trip_count"] is None
    assert stats.region_ops[0]["flops_per_iteration"] == cond_cost + body_cost > 0
    nested = compute_statistics(_extract("cond_in_scan", pipeline="none").graph)
    assert [e["op"] for e in nested.region_ops] == ["higher_order.scan", "higher_order.cond"]
    assert nested.region_ops[1]["node"].endswith("/combine/" + nested.region_ops[1]["node"].rsplit("/", 1)[-1])


def test_every_built_in_pass_says_how_it_treats_regions() -> None:
    from torch_ir.cli.passes import describe_passes
    from torch_ir.passes.registry import BUILTIN_MODULES, get_pass

    listing = describe_passes()
    for module in BUILTIN_MODULES:
        cls = get_pass(module.replace("_", "-"))
        assert cls.regions, cls.name
        assert f"    regions: {cls.regions}" in listing


def test_text_parser_checks_the_region_contract() -> None:
    text = _DEAD_AND_DUPLICATE.replace(
        "    false: graph(%x: f32[4]) {\n      %n", "    false: graph(%x: f32[4], %y: f32[4]) {\n      %n", 1
    )
    with pytest.raises(TextParseError, match=r"node r \(higher_order.cond\): region false: has 2 inputs"):
        parse_graph(text)


class _CountingCond(torch.nn.Module):
    """Mutates a buffer, runs a no_grad block, then a cond that reads the updated buffer and a hoisted weight."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("count", torch.zeros(4))
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.count.add_(1)
        with torch.no_grad():
            y = x * 2
        w = self.lin.weight.t() * 0.5  # weight-only: hoisted into the init graph
        return torch.cond(x.sum() > 0, lambda x, c, w: x @ w + c, lambda x, c, w: x - c, (y, self.count, w))


@pytest.mark.parametrize("decompose", [None, "core_aten"])
def test_regions_after_functionalization_with_the_init_graph(decompose: str | None) -> None:
    with torch.device("meta"):
        model = _CountingCond()
    ir = loads(dumps(extract_ir(model, (torch.randn(2, 4, device="meta"),), decompose=decompose)))
    assert ir.graph.init is not None and [u.target for u in ir.graph.state_updates] == ["count"]
    assert "count" not in ir.graph.init.weights  # a buffer written every call is never hoisted
    assert any(n.regions for n in ir.graph.nodes)
    torch.manual_seed(0)
    real = _CountingCond()
    for sign in (1.0, -1.0):
        x = sign * (torch.rand(2, 4) + 0.1)
        ok, report = verify_ir_with_state_dict(ir, real.state_dict(), copy.deepcopy(real), (x,))
        assert ok, str(report)


def test_scan_with_a_dynamic_sequence_length() -> None:
    from torch.export import Dim

    from torch_ir.analysis.statistics import compute_statistics

    case = get_model("scan_rnn")
    ir = extract_ir(case.build_meta(), case.inputs("meta")[0], dynamic_shapes=({0: Dim("seq")}, None))
    ir = loads(dumps(ir))
    assert "f32[seq,2,6]" in print_graph(ir.graph)
    for length in (1, 9):
        _verify(ir, "scan_rnn", (torch.randn(length, 2, 6), torch.zeros(2, 8)))
    stats = compute_statistics(ir, bindings={"seq": 4})
    assert stats.region_ops[0]["trip_count"] == 4
    assert compute_statistics(ir).region_ops[0]["trip_count"] is None


def test_divergence_search_leaves_grad_mode_as_it_was() -> None:
    ir = _extract("cond_router", pipeline="none")
    next(n for _, n in ir.graph.walk() if n.op_type == "aten.relu.default").op_type = "aten.sigmoid.default"
    case = get_model("cond_router")
    real = case.build_real()
    assert torch.is_grad_enabled()
    ok, report = verify_ir_with_state_dict(ir, real.state_dict(), real, case.inputs("cpu")[0])
    assert not ok and report.divergence is not None and report.divergence.region
    assert torch.is_grad_enabled()


def test_markdown_report_lists_control_flow() -> None:
    from torch_ir.backends.markdown import render_markdown

    text = render_markdown(_extract("while_double"), include_mermaid=False)
    assert "## Control flow" in text and "| `higher_order.while_loop` |" in text and "data-dependent" in text
    text = render_markdown(_extract("scan_rnn"), include_mermaid=False)
    assert re.search(r"\| `higher_order.scan` \| [\d.]+ \| 5 \| [\d.]+", text)
    assert "## Control flow" not in render_markdown(_extract_plain(), include_mermaid=False)


def _extract_plain():
    case = get_model("two_tower")
    return extract_ir(case.build_meta(), case.inputs("meta")[0])


def test_a_region_op_without_regions_is_refused_by_both_readers() -> None:
    text = (
        "graph(%p: i1[], %x: f32[4]) {\n  %r = higher_order.cond(%p, [%x]) : (i1[], f32[4]) -> f32[4]\n  return %r\n}"
    )
    with pytest.raises(TextParseError, match=r"node r \(higher_order.cond\): needs 2 region\(s\) \(true, false\)"):
        parse_graph(text)
    doc = json.loads(dumps(_extract("cond_router", pipeline="none")))
    node = next(n for n in doc["module"]["functions"][0]["graph"]["nodes"] if n["op"] == "higher_order.cond")
    del node["regions"]
    with pytest.raises(SerializationError, match=r"regions: node .* needs 2 region\(s\) \(true, false\), has 0"):
        loads(json.dumps(doc))
    node["op"], node["regions"] = "aten.add.Tensor", []
    with pytest.raises(SerializationError, match=r"aten.add.Tensor is not a known region op"):
        node["regions"] = [{"inputs": [], "nodes": [], "outputs": []}]
        loads(json.dumps(doc))


def test_mermaid_draws_a_large_region_as_one_box(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.testing.mermaid import check_mermaid
    from torch_ir.backends import mermaid_regions
    from torch_ir.backends.mermaid import render_mermaid

    monkeypatch.setattr(mermaid_regions, "MAX_REGION_NODES", 2)
    text = render_mermaid(_extract("scan_rnn", pipeline="none"))
    check_mermaid(text)
    assert re.search(r'r1m1\[\["\d+ ops"\]\]', text) and "r1m1" in text.split("end\n", 1)[1]


def test_cond_with_a_dynamic_batch_annotates_and_verifies() -> None:
    from torch.export import Dim

    case = get_model("cond_router")
    ir = extract_ir(case.build_meta(), case.inputs("meta")[0], dynamic_shapes=({0: Dim("batch")},), pipeline="none")
    PassManager("annotate-shapes{fallback=false}").run(ir)
    PassManager("default").run(ir)
    assert "true: graph(%x: f32[batch,8]" in print_graph(ir.graph)
    for batch in (1, 5):
        (x,), _ = cond_inputs(batch % 2 == 1)
        _verify(ir, "cond_router", (x.repeat(batch, 1)[:batch],))


def test_statistics_text_lists_control_flow() -> None:
    from torch_ir.analysis.statistics import compute_statistics, format_statistics

    text = format_statistics(compute_statistics(_extract("scan_rnn")))
    assert "control flow (FLOPs per iteration x trip count):" in text
    assert re.search(r"  scan \(higher_order.scan\): \S+ x 5 = \S+", text)


def test_a_loop_that_never_ends_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    case = get_model("while_double")
    ir = extract_ir(case.build_meta(), case.inputs("meta")[0])
    interp = Interpreter(ir, {"bias": torch.zeros(4)})
    monkeypatch.setenv("TORCH_IR_MAX_LOOP_ITERATIONS", "200")
    # zeros doubled plus a zero bias never reach the loop's bound: it would run forever
    with pytest.raises(InterpreterError, match=r"node while_loop .* would pass the limit of 200 loop iterations"):
        interp(torch.zeros(4))
    count, _ = interp(torch.full((4,), 3.0))  # a loop that ends within the bound runs as before
    assert int(count) == 3  # |x| sums 12, 24, 48, then 96 >= 50
