"""Model Explorer: the converter, the overlays and the adapter, checked against Model Explorer's own classes.

Every collection the converter writes is rebuilt with ``model_explorer.graph_builder`` (strictly: an unknown
or mistyped field fails) and checked for dangling edges and links; the overlays with
``model_explorer.node_data_builder``. The server itself is exercised in ``test_view_cli.py``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tests.models import get_model
from tests.testing.perturbed import verify_gpt_with_perturbed, verify_with_perturbed
from tests.transformers_models import build_causal_lm, causal_lm_inputs
from torch_ir import PassManager, extract_ir, load_ir, verify_ir_with_state_dict
from torch_ir.analysis.statistics import compute_statistics, node_cost
from torch_ir.backends.model_explorer.bundle import GRAPHS_FILE, load_command, write_bundle
from torch_ir.backends.model_explorer.convert import BODY_MODULE, bodies, ir_to_graphs, namespace_of
from torch_ir.backends.model_explorer.overlays import (
    BEYOND_TOLERANCE,
    FIRST_DIVERGENCE,
    WITHIN_TOLERANCE,
    cost_overlays,
    verify_overlays,
)
from torch_ir.backends.model_explorer.schema import node_data_to_dict
from torch_ir.cli import main
from torch_ir.errors import SerializationError, VerificationError
from torch_ir.ir.calls import CALL_OP
from torch_ir.ir.module import IR

dacite = pytest.importorskip("dacite", reason="Model Explorer's classes are checked with dacite, which it installs")
me = pytest.importorskip("model_explorer", reason="needs the [viz] extra (ai-edge-model-explorer)")
from model_explorer import graph_builder, node_data_builder  # noqa: E402

CONTROL_FLOW = ["cond_router", "while_double", "scan_rnn", "map_rows", "cond_in_scan", "diagonal_ssm"]


def validated(collection: dict[str, Any]) -> graph_builder.GraphCollection:
    """``collection`` as Model Explorer's own classes (strict: no unknown fields, right types), after checking
    that every edge, input tag and subgraph link points at something that exists."""
    built = dacite.from_dict(graph_builder.GraphCollection, collection, config=dacite.Config(strict=True))
    graph_ids = [g.id for g in built.graphs]
    assert len(set(graph_ids)) == len(graph_ids), "graph ids must be unique"
    for graph in built.graphs:
        by_id = {n.id: n for n in graph.nodes}
        assert len(by_id) == len(graph.nodes), f"{graph.id}: node ids must be unique"
        for node in graph.nodes:
            for sub in node.subgraphIds:
                assert sub in graph_ids, f"{graph.id}/{node.id} links to missing graph {sub}"
            assert [m.id for m in node.inputsMetadata] == [e.targetNodeInputId for e in node.incomingEdges]
            for edge in node.incomingEdges:
                source = by_id.get(edge.sourceNodeId)
                assert source is not None, f"{graph.id}/{node.id}: edge from missing node {edge.sourceNodeId}"
                outputs = {m.id: m for m in source.outputsMetadata}
                assert edge.sourceNodeOutputId in outputs, f"{graph.id}: {source.id} has no output {edge}"
                keys = {a.key for a in outputs[edge.sourceNodeOutputId].attrs}
                assert "tensor_shape" in keys, "an edge must carry the type of its value"
    return built


def validated_node_data(data: dict[str, Any], collection: graph_builder.GraphCollection) -> None:
    """Every graph's node data builds as Model Explorer's ``GraphNodeData`` and keys only nodes of that graph."""
    graphs = {g.id: {n.id for n in g.nodes} for g in collection.graphs}
    for graph_id, graph_data in data.items():
        assert graph_id in graphs, f"node data for missing graph {graph_id}"
        built = dacite.from_dict(node_data_builder.GraphNodeData, graph_data, config=dacite.Config(strict=True))
        assert set(built.results) <= graphs[graph_id], set(built.results) - graphs[graph_id]
        json.dumps(graph_data, allow_nan=False)


def _attrs(node: graph_builder.GraphNode) -> dict[str, Any]:
    return {a.key: a.value for a in node.attrs}


def _node(collection: graph_builder.GraphCollection, graph_id: str, node_id: str) -> graph_builder.GraphNode:
    graph = next(g for g in collection.graphs if g.id == graph_id)
    return next(n for n in graph.nodes if n.id == node_id)


def _extract_case(name: str) -> IR:
    case = get_model(name)
    args, kwargs = case.inputs("meta")
    return extract_ir(case.build_meta(), args, example_kwargs=kwargs)


@pytest.fixture(scope="module")
def llama_ir() -> IR:
    args, kwargs = causal_lm_inputs("meta")
    return extract_ir(build_causal_lm("llama", "meta"), args, example_kwargs=kwargs)


@pytest.fixture(scope="module")
def gpt2_ir() -> IR:
    args, kwargs = causal_lm_inputs("meta")
    return extract_ir(build_causal_lm("gpt2", "meta"), args, example_kwargs=kwargs)


def _read(graph: Any) -> list[str]:
    return [
        name
        for name, w in graph.weights.items()
        if graph.num_uses(w) or graph.is_live(w) or graph.is_state_target(name)
    ]


def _covers_every_node(ir: IR, built: graph_builder.GraphCollection) -> None:
    """Each graph holds exactly the IR's operations, plus its inputs, the weights it reads, outputs and state
    updates; a weight no function reads is drawn in the first entry, so every weight is drawn somewhere."""
    graphs = {g.id: g for g in built.graphs}
    assert list(graphs) == [graph_id for graph_id, _ in bodies(ir)]
    read_somewhere = {name for f in ir.functions.values() for name in _read(f.graph)}
    unread = [name for name in ir.weights if name not in read_somewhere]
    for graph_id, graph in bodies(ir):
        ids = [n.id for n in graphs[graph_id].nodes]
        weights = _read(graph) + (unread if graph_id == next(iter(ir.entries)) else [])
        expected = (
            [f"%{v.name}" for v in graph.inputs]
            + [f"@{w}" for w in weights]
            + [n.name for n in graph.nodes]
            + [f"output:{i}" for i in range(len(graph.outputs))]
            + [f"state:{u.target_ref}" for u in graph.state_updates]
        )
        assert ids == expected, graph_id
    drawn = {n.id for g in built.graphs for n in g.nodes if n.id.startswith("@")}
    assert {f"@{name}" for name in ir.weights} <= drawn


def test_llama_layers_follow_module_paths(llama_ir: IR) -> None:
    built = validated(ir_to_graphs(llama_ir).to_dict())
    _covers_every_node(llama_ir, built)
    graph = llama_ir.graph
    weight = graph.weight("model.layers.1.self_attn.q_proj.weight")
    (q_proj,) = graph.users(weight)
    node = _node(built, "forward", q_proj.name)
    assert node.label == "linear"
    assert node.namespace == "model/layers/1/self_attn/q_proj"
    attrs = _attrs(node)
    assert attrs["op"] == "aten.linear.default"
    assert attrs["weight"] == f"@model.layers.1.self_attn.q_proj.weight: {weight.type}"
    assert attrs["module"] == "model.layers.1.self_attn.q_proj"
    assert attrs["module_type"].endswith("Linear")
    assert attrs["source_location"].split(":")[0].endswith(".py") and attrs["source_code"]
    assert attrs["results"] == f"%{q_proj.output.name}: {q_proj.output.type}"
    # the weight sits in the layer of the module that owns it, by name, shape and dtype
    weight_node = _node(built, "forward", "@model.layers.1.self_attn.q_proj.weight")
    assert weight_node.namespace == "model/layers/1/self_attn/q_proj"
    assert weight_node.label == "weight"
    wattrs = _attrs(weight_node)
    assert (wattrs["kind"], wattrs["dtype"], json.loads(wattrs["shape"])) == ("parameter", "float32", [32, 32])
    # the edge from the weight goes into the operand slot named "weight" and carries the weight's type
    slot = next(i for i, e in enumerate(node.incomingEdges) if e.sourceNodeId == weight_node.id)
    assert _attrs(node.inputsMetadata[slot])["__tensor_tag"] == "weight"
    assert _attrs(weight_node.outputsMetadata[0])["tensor_shape"] == str(weight.type)
    # a decoder layer is a collapsible layer that says what module it is
    layer = next(g for g in built.graphs if g.id == "forward").groupNodeAttributes["model/layers/1"]
    assert layer == {
        "module": "model.layers.1",
        "module_type": "transformers.models.llama.modeling_llama.LlamaDecoderLayer",
    }


def test_gpt2_tied_weight_and_input_nodes(gpt2_ir: IR) -> None:
    built = validated(ir_to_graphs(gpt2_ir).to_dict())
    _covers_every_node(gpt2_ir, built)
    tied = next(w for w in gpt2_ir.graph.weights.values() if "lm_head.weight" in w.names)
    attrs = _attrs(_node(built, "forward", f"@{tied.name}"))
    assert "lm_head.weight" in attrs["aliases"] + attrs["weight"]
    (ids,) = gpt2_ir.graph.inputs
    node = _node(built, "forward", f"%{ids.name}")
    assert _attrs(node)["input"] == f"%{ids.name}: {ids.type}"
    output = _node(built, "forward", "output:0")
    assert output.incomingEdges[0].sourceNodeId == gpt2_ir.graph.outputs[0].producer.name


@pytest.mark.parametrize("name", CONTROL_FLOW)
def test_regions_become_linked_subgraphs(name: str) -> None:
    ir = _extract_case(name)
    built = validated(ir_to_graphs(ir).to_dict())
    _covers_every_node(ir, built)
    region_paths = [path for path, _ in ir.graph.walk_regions()]
    assert region_paths, f"{name} has no regions"
    graph_ids = {g.id for g in built.graphs}
    for path, _ in ir.graph.walk_regions():
        graph_id = "forward/" + path.rstrip("/")
        assert graph_id in graph_ids
        owner_path, _, _ = path.rstrip("/").rpartition("/")
        owner_graph = "forward/" + owner_path.rpartition("/")[0] if owner_path.count("/") else "forward"
        owner = _node(built, owner_graph, owner_path.rpartition("/")[2])
        assert graph_id in owner.subgraphIds, (graph_id, owner.subgraphIds)
        assert _attrs(owner)["regions"]


def test_nested_region_ids_and_program_entries() -> None:
    ir = _extract_case("cond_in_scan")
    ids = [graph_id for graph_id, _ in bodies(ir)]
    nested = [i for i in ids if i.count("/") >= 4]
    assert nested and all(i.startswith("forward/") for i in nested), ids


def test_program_has_one_graph_per_entry_with_state(tmp_path: Path) -> None:
    from torch_ir import extract_llm

    ir = extract_llm(build_causal_lm("llama", "meta"), max_cache_len=16)
    built = validated(ir_to_graphs(ir).to_dict())
    _covers_every_node(ir, built)
    assert [g.id for g in built.graphs if "/" not in g.id] == ["prefill", "decode"]
    state = next(iter(ir.state))
    for entry in ("prefill", "decode"):
        attrs = _attrs(_node(built, entry, f"@{state}"))
        assert attrs["state"].startswith("declared state")
        updates = [n for n in next(g for g in built.graphs if g.id == entry).nodes if n.id.startswith("state:")]
        assert updates and all(n.label == "state update" and n.incomingEdges for n in updates)
    prefill_input = _node(built, "prefill", "%input_ids")
    assert "seq in 2..16" in _attrs(prefill_input)["symbols"]
    # cost overlays: the symbolic prefill is costed only where --bind gives seq a value
    unbound = cost_overlays(ir)["flops"]["prefill"].results
    bound = cost_overlays(ir, {"seq": 8})["flops"]["prefill"].results
    assert len(bound) > len(unbound)
    assert sum(r.value for r in bound.values()) > 0
    # report --entry keeps the entry's name and its state
    path, out = tmp_path / "llm.json", tmp_path / "decode"
    ir.save(path)
    assert main(["report", str(path), "--format", "model-explorer", "-o", str(out), "--entry", "decode"]) == 0
    decode = validated(json.loads((out / GRAPHS_FILE).read_text()))
    assert [g.id for g in decode.graphs] == ["decode"]
    assert "state" in _attrs(_node(decode, "decode", f"@{state}"))
    # a report of verify --generate marks its divergence in the entry of the failing step
    decode_node = ir.entries["decode"].nodes[-1].name
    report = {
        "passed": False,
        "steps": [{"step": 0, "entry": "prefill"}, {"step": 1, "entry": "decode"}],
        "first_failure": 1,
        "divergence": {"node": decode_node, "op_type": "x", "value": decode_node},
    }
    marked = verify_overlays(ir, report)["max_abs_error"]
    assert list(marked) == ["decode"] and marked["decode"].results[decode_node].bgColor == FIRST_DIVERGENCE


def test_adapter_returns_model_explorers_graphs(tmp_path: Path, llama_ir: IR) -> None:
    from model_explorer.utils import convert_adapter_response

    from torch_ir.backends.model_explorer.main import TorchIRAdapter

    path = tmp_path / "llama.json"
    llama_ir.save(path)
    answer = TorchIRAdapter().convert(str(path), {})
    assert all(isinstance(g, graph_builder.Graph) for g in answer["graphs"])
    # what the server sends is what the converter writes, field for field
    sent = json.loads(json.dumps(convert_adapter_response(answer)))
    ours = validated(ir_to_graphs(load_ir(path)).to_dict())
    assert [dacite.from_dict(graph_builder.Graph, g) for g in sent["graphs"]] == ours.graphs


def test_cost_overlays_agree_with_the_statistics(llama_ir: IR) -> None:
    built = validated(ir_to_graphs(llama_ir).to_dict())
    overlays = cost_overlays(llama_ir)
    for data in overlays.values():
        validated_node_data(node_data_to_dict(data), built)
    stats = compute_statistics(llama_ir)
    flops = overlays["flops"]["forward"].results
    assert sum(r.value for r in flops.values()) == stats.flops
    assert max(r.value for r in overlays["live_bytes"]["forward"].results.values()) == stats.peak_activation_bytes
    linear = next(n for n in llama_ir.nodes if n.op_type == "aten.linear.default")
    assert flops[linear.name].value == node_cost(linear)[0] > 0
    expected = sum(v.type.nbytes for v in dict.fromkeys(linear.inputs)) + linear.output.type.nbytes
    assert overlays["bytes"]["forward"].results[linear.name].value == expected
    assert overlays["output_bytes"]["forward"].results[linear.name].value == linear.output.type.nbytes


def test_cost_overlays_cover_regions() -> None:
    ir = _extract_case("cond_router")
    overlays = cost_overlays(ir)
    built = validated(ir_to_graphs(ir).to_dict())
    for data in overlays.values():
        validated_node_data(node_data_to_dict(data), built)
    true_branch = overlays["flops"]["forward/cond/true"].results
    assert true_branch["linear"].value == node_cost(ir.graph.nodes[2].regions[0].nodes[0])[0] > 0
    assert overlays["flops"]["forward"].results["cond"].value >= true_branch["linear"].value


def _gpt_with_perturbed(weight: str) -> tuple[IR, dict[str, Any]]:
    """The zoo GPT's IR and the JSON of its verify report with ``weight`` perturbed on the IR's side."""
    ir, report = verify_gpt_with_perturbed(weight)
    return ir, json.loads(json.dumps(report.to_dict(), default=str))


def test_perturbed_weight_marks_the_node_that_reads_it() -> None:
    ir, report = _gpt_with_perturbed("blocks.2.ln2.weight")
    (reader,) = ir.graph.users(ir.graph.weight("blocks.2.ln2.weight"))
    assert report["divergence"]["node"] == reader.name
    errors = {e["node"]: e for e in report["node_errors"]}
    assert not errors[reader.name]["passed"] and errors[reader.name]["max_abs"] > 0.1
    order = [n.name for n in ir.nodes]
    before = [name for name in errors if order.index(name) < order.index(reader.name)]
    assert len(before) > 10 and all(errors[name]["passed"] for name in before)

    overlays = verify_overlays(ir, report)
    built = validated(ir_to_graphs(ir).to_dict())
    for data in overlays.values():
        validated_node_data(node_data_to_dict(data), built)
    results = overlays["max_abs_error"]["forward"].results
    marked = [node for node, r in results.items() if r.bgColor == FIRST_DIVERGENCE]
    assert marked == [reader.name]
    assert results[reader.name].value == pytest.approx(errors[reader.name]["max_abs"])
    assert all(results[name].bgColor == WITHIN_TOLERANCE for name in before)
    rel = overlays["max_rel_error"]["forward"].results[reader.name]
    assert rel.value == pytest.approx(errors[reader.name]["max_rel"]) and rel.bgColor == FIRST_DIVERGENCE


def test_divergence_inside_a_region_is_marked_in_its_subgraph() -> None:
    case = get_model("cond_router")
    args, _ = case.inputs("cpu")
    ir = _extract_case("cond_router")
    (relu,) = [n for n in ir.graph.nodes[2].regions[0].nodes if n.op_type == "aten.relu.default"]
    relu.op_type = "aten.sigmoid.default"  # a wrong op inside the branch the input takes
    model = case.build_real()
    ok, report = verify_ir_with_state_dict(ir, model.state_dict(), model, args)
    data = json.loads(json.dumps(report.to_dict(), default=str))
    assert not ok and (data["divergence"]["region"], data["divergence"]["node"]) == ("cond/true/", "cond/true/relu")
    inner = {e["node"]: e["passed"] for e in data["node_errors"] if e["region"] == "cond/true/"}
    assert inner == {"cond/true/linear": True, "cond/true/relu": False}
    results = verify_overlays(ir, data)["max_abs_error"]
    assert results["forward/cond/true"].results["relu"].bgColor == FIRST_DIVERGENCE
    assert results["forward/cond/true"].results["linear"].bgColor == WITHIN_TOLERANCE
    assert results["forward"].results["cond"].bgColor == BEYOND_TOLERANCE
    validated_node_data(node_data_to_dict(results), validated(ir_to_graphs(ir).to_dict()))


def test_infinite_errors_stay_valid_json() -> None:
    ir, report = _gpt_with_perturbed("blocks.0.ln1.weight")
    name = report["divergence"]["node"]
    for error in report["node_errors"]:
        if error["node"] == name:
            error["max_abs"] = math.inf
            error["max_rel"] = math.nan
    overlays = verify_overlays(ir, report)
    text = json.dumps(node_data_to_dict(overlays["max_abs_error"]), allow_nan=False)
    assert json.loads(text)["forward"]["results"][name]["value"] > 1e300


def test_a_report_of_another_ir_is_refused() -> None:
    ir, report = _gpt_with_perturbed("blocks.0.ln1.weight")
    other = _extract_case("cond_router")
    with pytest.raises(VerificationError, match="another IR"):
        verify_overlays(other, report, "verify.json")
    with pytest.raises(SerializationError, match="not a torch-ir verify report"):
        verify_overlays(ir, {"nodes": []}, "verify.json")
    broken = dict(report, node_errors=[{"node": report["divergence"]["node"], "max_abs": "big"}])
    with pytest.raises(SerializationError, match=r"node_errors\[0\]: max_abs must be a number"):
        verify_overlays(ir, broken, "verify.json")


def test_report_writes_files_model_explorer_loads(tmp_path: Path) -> None:
    ir, report = _gpt_with_perturbed("blocks.1.fc.weight")
    ir_path, verify_path = tmp_path / "gpt.json", tmp_path / "verify.json"
    ir.save(ir_path)
    verify_path.write_text(json.dumps(report))
    out = tmp_path / "me"
    assert (
        main(["report", str(ir_path), "--format", "model-explorer", "-o", str(out), "--overlay", str(verify_path)]) == 0
    )
    names = sorted(p.name for p in out.iterdir())
    overlays = ["flops", "bytes", "output_bytes", "live_bytes", "max_abs_error", "max_rel_error"]
    assert names == sorted([GRAPHS_FILE, *(f"{stem}.json" for stem in overlays)])
    built = validated(json.loads((out / GRAPHS_FILE).read_text()))
    for name in names:
        if name != GRAPHS_FILE:
            validated_node_data(json.loads((out / name).read_text()), built)
    marked = json.loads((out / "max_abs_error.json").read_text())["forward"]["results"]
    assert [k for k, v in marked.items() if v.get("bgColor") == FIRST_DIVERGENCE] == [report["divergence"]["node"]]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "model-explorer"], "give a folder with -o DIR"),
        (["--format", "model-explorer", "-o", "-"], "give a folder with -o DIR"),
        (["--format", "model-explorer", "-o", "d", "--depth", "2"], "--depth shape the Markdown report"),
        (["--format", "model-explorer", "-o", "d", "--stats"], "--stats prints statistics"),
        (["--format", "model-explorer", "-o", "d", "--mermaid-only"], "contradicts --format model-explorer"),
        (["--overlay", "v.json"], "--overlay applies to --format model-explorer only"),
    ],
)
def test_report_model_explorer_usage_errors(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cond.json"
    _extract_case("cond_router").save(path)
    assert main(["report", str(path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_report_into_a_file_is_an_error_and_leaves_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cond.json"
    _extract_case("cond_router").save(path)
    blocker = tmp_path / "taken"
    blocker.write_text("keep me")
    assert main(["report", str(path), "--format", "model-explorer", "-o", str(blocker)]) == 2
    assert "it is a file, not a folder" in capsys.readouterr().err
    assert blocker.read_text() == "keep me"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    out = tmp_path / "out"
    assert main(["report", str(path), "--format", "model-explorer", "-o", str(out), "--overlay", str(bad)]) == 2
    assert "not JSON" in capsys.readouterr().err
    assert not out.exists()


def test_report_reads_the_text_form_and_refuses_a_folder_in_a_files_place_before_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ir = _extract_case("cond_router")
    json_path, text_path = tmp_path / "cond.json", tmp_path / "cond.tir"
    ir.save(json_path)
    text_path.write_text(ir.to_text(metadata=True) + "\n")
    for source, out in ((json_path, tmp_path / "from-json"), (text_path, tmp_path / "from-text")):
        assert main(["report", str(source), "--format", "model-explorer", "-o", str(out)]) == 0
    assert (tmp_path / "from-text" / GRAPHS_FILE).read_text() == (tmp_path / "from-json" / GRAPHS_FILE).read_text()
    # an existing folder is written into; a folder where one of the files goes stops it before any file
    out = tmp_path / "blocked"
    (out / "bytes.json").mkdir(parents=True)
    capsys.readouterr()
    assert main(["report", str(json_path), "--format", "model-explorer", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "bytes.json: it is a directory" in err and "Traceback" not in err
    assert [p.name for p in out.iterdir()] == ["bytes.json"]


def test_namespaces_escape_slashes_and_load_command_lists_every_file(tmp_path: Path) -> None:
    assert namespace_of("") == ""
    assert namespace_of("a.b/c.d") == "a/b\\/c/d"
    paths = write_bundle(_extract_case("map_rows"), tmp_path / "out")
    command = load_command(paths)
    assert command.startswith(f"model-explorer {tmp_path / 'out' / GRAPHS_FILE} --node_data_paths=")
    assert command.count(".json") == len(paths)


# ----------------------------------------------------------------------------------------------- functions

LAYERS = 3
"""Decoder layers of the outlined Llama: three calls of one body."""


def _llama(pipeline: str) -> IR:
    args, kwargs = causal_lm_inputs("meta")
    ir = extract_ir(
        build_causal_lm("llama", "meta", num_hidden_layers=LAYERS), args, example_kwargs=kwargs, pipeline="none"
    )
    PassManager(pipeline).run(ir)
    return ir


@pytest.fixture(scope="module")
def flat_llama() -> IR:
    return _llama("annotate-shapes,canonicalize")


@pytest.fixture(scope="module")
def outlined_llama() -> IR:
    ir = _llama("annotate-shapes,canonicalize,outline-repeated-blocks")
    assert [f.public for f in ir.functions.values()] == [True, False], "the decoder layers were not outlined"
    return ir


def _body_name(ir: IR) -> str:
    return next(name for name, f in ir.functions.items() if not f.public)


def test_a_function_body_is_one_subgraph_linked_from_every_call(outlined_llama: IR, tmp_path: Path) -> None:
    ir = outlined_llama
    name = _body_name(ir)
    built = validated(ir_to_graphs(ir).to_dict())
    _covers_every_node(ir, built)
    assert [g.id for g in built.graphs] == ["forward", name]  # drawn once, however many calls run it
    body = ir.function(name).graph
    calls = [n for n in ir.graph.nodes if n.op_type == CALL_OP]
    assert len(calls) == LAYERS
    for index, call in enumerate(calls):
        node = _node(built, "forward", call.name)
        assert node.subgraphIds == [name] and node.label == name
        assert node.namespace == f"model/layers/{index}"
        attrs = _attrs(node)
        assert (attrs["op"], attrs["callee"], attrs["module"]) == (CALL_OP, name, f"model.layers.{index}")
        assert attrs["module_type"].endswith("LlamaDecoderLayer")
        # the weights bound at this call, each named by the body's input it binds, with an edge from it
        weight = ir.graph.weight(f"model.layers.{index}.self_attn.q_proj.weight")
        assert attrs["self_attn.q_proj.weight"] == f"@{weight.name}: {weight.type}"
        assert attrs["weights"] == "9 bound at this call"
        slot = next(i for i, e in enumerate(node.incomingEdges) if e.sourceNodeId == f"@{weight.name}")
        assert _attrs(node.inputsMetadata[slot])["__tensor_tag"] == "self_attn.q_proj.weight"
        assert body.inputs[slot].name == "self_attn.q_proj.weight"
        weight_node = _node(built, "forward", f"@{weight.name}")
        assert weight_node.namespace == f"model/layers/{index}/self_attn/q_proj"
    # inside the body, layers are relative to the module each call stands for; weights are its parameters
    graph = next(g for g in built.graphs if g.id == name)
    assert not [n.id for n in graph.nodes if n.id.startswith("@")]
    param = _node(built, name, "%self_attn.q_proj.weight")
    assert (param.label, param.namespace) == ("weight", "self_attn/q_proj")
    (q_proj,) = body.users(body.value("self_attn.q_proj.weight"))
    node = _node(built, name, q_proj.name)
    assert (node.label, node.namespace, _attrs(node)["module"]) == ("linear", "self_attn/q_proj", "self_attn.q_proj")
    assert graph.groupNodeAttributes["self_attn"]["module_type"].endswith("LlamaAttention")
    assert not any(key.startswith("model") for key in graph.groupNodeAttributes)
    root = next(n for n in body.nodes if n.module_path == "model.layers.0")
    assert _attrs(_node(built, name, root.name))["module"] == BODY_MODULE
    # the files report --format model-explorer writes hold the same graphs
    ir.save(tmp_path / "outlined.json")
    assert (
        main(["report", str(tmp_path / "outlined.json"), "--format", "model-explorer", "-o", str(tmp_path / "me")]) == 0
    )
    assert validated(json.loads((tmp_path / "me" / GRAPHS_FILE).read_text())).graphs == built.graphs


def test_cost_overlays_count_a_body_once_per_call(outlined_llama: IR, flat_llama: IR) -> None:
    ir, name = outlined_llama, _body_name(outlined_llama)
    overlays = cost_overlays(ir)
    built = validated(ir_to_graphs(ir).to_dict())
    for data in overlays.values():
        validated_node_data(node_data_to_dict(data), built)
    flat, outlined = compute_statistics(flat_llama), compute_statistics(ir)
    assert outlined.flops == flat.flops and outlined.macs == flat.macs
    assert outlined.flops_by_op == flat.flops_by_op and outlined.activation_bytes == flat.activation_bytes
    assert outlined.peak_activation_bytes >= flat.peak_activation_bytes  # an upper bound around each call
    calls = [n.name for n in ir.graph.nodes if n.op_type == CALL_OP]
    for stem in ("flops", "bytes"):
        body = overlays[stem][name].results
        forward = overlays[stem]["forward"].results
        per_call = sum(r.value for r in body.values())
        assert per_call > 0 and all(forward[call].value == per_call for call in calls)  # the body, per call
    flops = overlays["flops"]["forward"].results
    assert sum(r.value for r in flops.values()) == flat.flops  # the body counted once per call
    flat_overlays = cost_overlays(flat_llama)["flops"]["forward"].results
    assert sum(r.value for r in overlays["flops"][name].results.values()) * LAYERS == sum(
        flat_overlays[n.name].value for n in flat_llama.nodes if n.module_path.startswith("model.layers.")
    )
    live = overlays["live_bytes"]
    peak_in_body = max(r.value for r in live[name].results.values())
    assert all(live["forward"].results[call].value >= peak_in_body for call in calls)
    assert max(r.value for r in live["forward"].results.values()) == outlined.peak_activation_bytes


def test_a_perturbed_layer_marks_its_call_and_the_body_node() -> None:
    ir = _llama("annotate-shapes,canonicalize,outline-repeated-blocks")
    name = _body_name(ir)
    args, kwargs = causal_lm_inputs("cpu")
    model = build_causal_lm("llama", "cpu", num_hidden_layers=LAYERS)
    ok, _ = verify_ir_with_state_dict(ir, model.state_dict(), model, args, kwargs)
    assert ok, "an outlined IR verifies with the model's own weights"
    report = verify_with_perturbed(ir, model, args, "model.layers.1.mlp.down_proj.weight", kwargs)
    body = ir.function(name).graph
    (down_proj,) = body.users(body.value("mlp.down_proj.weight"))
    site = report.divergence.site
    assert (site.call, site.function, site.node) == ("model.layers.1", name, down_proj.name)
    assert report.divergence.module_path == "model.layers.1.mlp.down_proj"
    assert "in call model.layers.1 of function" in str(report)
    data = json.loads(json.dumps(report.to_dict(), default=str))
    assert (data["divergence"]["call"], data["divergence"]["function_node"]) == ("model.layers.1", down_proj.name)
    by_call = {}
    for error in data["node_errors"]:
        by_call.setdefault(error.get("call", ""), []).append(error)
    assert all(e["passed"] for e in by_call["model.layers.0"]) and len(by_call["model.layers.0"]) == len(body.nodes)

    overlays = verify_overlays(ir, data)
    validated_node_data(node_data_to_dict(overlays["max_abs_error"]), validated(ir_to_graphs(ir).to_dict()))
    forward = overlays["max_abs_error"]["forward"].results
    inside = overlays["max_abs_error"][name].results
    assert forward["model.layers.1"].bgColor == FIRST_DIVERGENCE  # the call the divergence is in
    assert forward["model.layers.0"].bgColor == WITHIN_TOLERANCE
    assert [n for n, r in inside.items() if r.bgColor == FIRST_DIVERGENCE] == [down_proj.name]
    assert inside[down_proj.name].value == pytest.approx(data["divergence"]["max_abs"])
    before = [n.name for n in body.nodes][: [n.name for n in body.nodes].index(down_proj.name)]
    assert before and all(inside[n].bgColor == WITHIN_TOLERANCE for n in before)  # every site within tolerance
    # a site naming a node the body does not have is a report of another IR
    broken = json.loads(json.dumps(data))
    broken["divergence"]["function_node"] = "no_such_node"
    with pytest.raises(VerificationError, match=f"graph {name} of this IR does not have"):
        verify_overlays(ir, broken, "verify.json")


def test_the_init_graph_is_linked_from_its_derived_weights() -> None:
    import torch

    class Transposing(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.randn(8, 4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x @ self.w.t()

    with torch.device("meta"):
        ir = extract_ir(Transposing(), (torch.randn(2, 4, device="meta"),))
    assert ir.init is not None
    built = validated(ir_to_graphs(ir).to_dict())
    _covers_every_node(ir, built)
    assert [g.id for g in built.graphs] == ["forward", "init"]
    derived = next(w for w in ir.weights.values() if w.kind == "derived")
    assert _node(built, "forward", f"@{derived.name}").subgraphIds == ["init"]
    assert _attrs(_node(built, "init", "@w"))["kind"] == "parameter"


TWO_ENTRIES = """\
module {
  weight @a.0.w : f32[4,4] parameter
  weight @a.1.w : f32[4,4] parameter
  weight @b.w : f32[4,4] parameter
  func first graph(%x: f32[2,4]) {
    %c0 = func.call(%x, @a.0.w) {callee="block"} : (f32[2,4], f32[4,4]) -> f32[2,4]
    return %c0
  }
  func second graph(%x: f32[2,4]) {
    %m = aten.matmul.default(%x, @b.w) : (f32[2,4], f32[4,4]) -> f32[2,4]
    return %m
  }
  func private block graph(%h: f32[2,4], %w: f32[4,4]) {
    %m = aten.matmul.default(%h, %w) : (f32[2,4], f32[4,4]) -> f32[2,4]
    return %m
  }
}"""


@pytest.mark.parametrize(
    ("entry", "graphs", "weights"),
    [
        (None, ["first", "second", "block"], ["@a.0.w", "@a.1.w", "@b.w"]),
        ("first", ["first", "block"], ["@a.0.w"]),
        ("second", ["second"], ["@b.w"]),
    ],
)
def test_report_entry_keeps_its_callees_and_only_its_weights(
    entry: str | None, graphs: list[str], weights: list[str], tmp_path: Path
) -> None:
    from torch_ir.ir import parse_module

    ir = parse_module(TWO_ENTRIES)
    ir.verify()
    path, out = tmp_path / "two.json", tmp_path / "me"
    ir.save(path)
    argv = ["report", str(path), "--format", "model-explorer", "-o", str(out)]
    assert main(argv + (["--entry", entry] if entry else [])) == 0
    built = validated(json.loads((out / GRAPHS_FILE).read_text()))
    assert [g.id for g in built.graphs] == graphs
    assert sorted(n.id for g in built.graphs for n in g.nodes if n.id.startswith("@")) == weights
    if entry != "second":
        assert _node(built, "first", "c0").subgraphIds == ["block"]
    # @a.1.w: read by no function, drawn in the first entry, so no weight of the module is hidden
    assert (entry is None) == any(n.id == "@a.1.w" for n in built.graphs[0].nodes)
