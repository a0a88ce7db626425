"""Every older file version loads: files written by the release before the module format (schema version 5),
and documents of versions 1 to 4 derived from them, come back as modules equal to what they hold."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch

import torch_ir
from torch_ir import SerializationError
from torch_ir.serde import SCHEMA_VERSION, dumps, from_dict, json_schema, loads
from torch_ir.serde.json_schema import field_tables, schema_text

FIXTURES = Path(__file__).parent / "fixtures" / "formats"
ROOT = Path(__file__).parent.parent


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def _older(doc: dict[str, Any], version: int) -> dict[str, Any]:
    """A version-5 document as an older release wrote it (what each version added, taken away)."""
    doc = copy.deepcopy(doc)
    doc["schema_version"] = version
    if version < 5:
        doc.pop("stages", None)
        doc.pop("pass_log", None)
    if version < 2:
        graph = doc["graph"]
        outputs = list(graph["outputs"])
        mutations = []
        for update in graph.pop("state_updates"):
            kind = "user_input_mutation" if update["kind"] == "input" else "buffer_mutation"
            mutations.append({"kind": kind, "target": update["target"], "output": len(outputs)})
            outputs.append(update["value"])
        graph["outputs"] = outputs
        graph["meta"]["mutations"] = mutations
    return doc


@pytest.mark.parametrize("version", [1, 2, 3, 4, 5])
def test_single_graph_files_of_every_version_load(version: int) -> None:
    old = _fixture("v5_buffer_counter.json")
    module = from_dict(_older(old, version), f"v{version}")
    module.verify()
    graph = module.graph
    assert [u.target for u in graph.state_updates] == [u["target"] for u in old["graph"]["state_updates"]]
    assert len(graph.outputs) == len(old["graph"]["outputs"])
    assert [w.name for w in module.weights.values()] == [w["name"] for w in old["graph"]["weights"]]
    again = loads(dumps(module))
    assert again == module and json.loads(dumps(again))["schema_version"] == SCHEMA_VERSION


def test_version_5_files_load_with_the_same_graph() -> None:
    old = _fixture("v5_gpt.json")
    module = from_dict(old, "v5_gpt.json")
    assert [n.name for n in module.nodes] == [n["name"] for n in old["graph"]["nodes"]]
    assert [n.op_type for n in module.nodes] == [n["op"] for n in old["graph"]["nodes"]]
    assert module.weights["tok.weight"].aliases == ("head.weight",)
    regions = from_dict(_older(_fixture("v5_cond_router.json"), 4), "v4_cond_router.json")
    cond = next(n for n in regions.nodes if n.op_type == "higher_order.cond")
    assert len(cond.regions) == 2 and all(r.owner is cond for r in cond.regions)


def test_version_5_programs_load_as_one_module() -> None:
    old = _fixture("v5_program.json")
    module = from_dict(old, "v5_program.json")
    module.verify()
    assert list(module.entries) == ["prefill", "decode"]
    assert set(module.state) == {s["name"] for s in old["state"]}
    assert [w.name for w in module.weights.values()][: len(old["weights"])] == [w["name"] for w in old["weights"]]
    assert all(g.table is module.table for g in module.entries.values())  # one weight table, shared


def test_version_5_programs_with_an_init_graph_per_entry_merge_them() -> None:
    """Each entry of a version 5 program hoisted into its own init graph; the module has one, computing
    ``w.t`` once for both entries, and runs as each entry did."""
    module = from_dict(_fixture("v5_program_init.json"), "v5_program_init.json")
    module.verify()
    assert module.init is not None
    assert sorted(v.name for v in module.init.outputs) == ["v.mul.t", "w.t"]
    assert sum(1 for n in module.init.nodes if n.op_type == "aten.t.default" and n.inputs[0].name == "w") == 1
    derived = [w.name for w in module.weights.values() if w.kind == "derived"]
    assert sorted(derived) == ["v.mul.t", "w.t"]
    w, v, x = torch.randn(4, 4), torch.randn(4, 4), torch.randn(2, 4)
    runner = torch_ir.Runner(module, {"w": w, "v": v})
    torch.testing.assert_close(runner.call("left", x), x @ w.T)
    torch.testing.assert_close(runner.call("right", x), (x @ w.T) * 2 + x @ (v * 3).T)


def _canonical(doc: Any) -> Any:
    """``doc`` without what the current version leaves out as a default: null, empty lists and objects,
    ``persistent: true``, a state's ``init: "zeros"``."""
    if isinstance(doc, list):
        return [_canonical(item) for item in doc]
    if not isinstance(doc, dict):
        return doc
    out = {key: _canonical(value) for key, value in doc.items()}
    defaults = {"persistent": True, "init": "zeros"}
    return {k: v for k, v in out.items() if v not in (None, [], {}) and not (k in defaults and v == defaults[k])}


@pytest.mark.parametrize("version", [1, 2, 5])
@pytest.mark.parametrize("name", ["v5_buffer_counter.json", "v5_gpt.json", "v5_cond_router.json"])
def test_an_upgrade_keeps_every_field_of_a_single_graph_file(name: str, version: int) -> None:
    """Every key of the old file (nodes, their attributes and metadata, regions, weights and their aliases,
    state updates, structures, the header) is in what the upgraded module writes, unchanged; a version 1
    file's mutated outputs come back as the state updates of the version 5 file it was made from."""
    old = _older(_fixture(name), version)
    new = json.loads(dumps(from_dict(old, name)))
    graph, module = _canonical(_fixture(name)["graph"]), _canonical(new["module"])
    assert module.pop("weights", []) == graph.pop("weights", [])
    assert module.pop("init", None) == graph.pop("init", None)
    assert module == {"functions": [{"name": "forward", "graph": graph}]}
    for key in ("producer", "model", "pass_log"):
        assert new.get(key) == old.get(key), key


def test_an_upgrade_keeps_every_field_of_a_program() -> None:
    """A version 5 program: each entry becomes a public function holding all it held, over the program's
    weight table and state."""
    old = _fixture("v5_program.json")
    new = json.loads(dumps(from_dict(old, "v5_program.json")))
    module = _canonical(new["module"])
    assert [f["name"] for f in module["functions"]] == list(old["entries"])
    for function in module["functions"]:
        entry = _canonical(old["entries"][function["name"]])
        assert {k: v for k, v in entry.items() if k not in ("weights", "init")} == function["graph"]
    assert module["weights"] == _canonical(old["weights"])
    assert module["state"] == _canonical(old["state"])
    assert (new["model"], new["pass_log"]) == (old["model"], old["pass_log"])


def test_errors_in_old_files_name_the_path_the_file_has() -> None:
    old = _fixture("v5_gpt.json")
    old["graph"]["nodes"][2]["args"][0] = "%nowhere"
    with pytest.raises(SerializationError, match=r"v5: \$\.graph\.nodes\[2\]\.args\[0\]: reference to undefined"):
        from_dict(old, "v5")
    program = _fixture("v5_program.json")
    program["entries"]["decode"]["weights"][0] = "no.such.weight"
    with pytest.raises(
        SerializationError, match=r"\$\.entries\.decode\.weights\[0\]: weight 'no\.such\.weight' is not"
    ):
        from_dict(program, "p")
    program = _fixture("v5_program.json")
    program["entries"]["decode"]["nodes"][0]["outputs"] = "x"
    with pytest.raises(SerializationError, match=r"\$\.entries\.decode\.nodes\[0\]\.outputs: expected a list"):
        from_dict(program, "p")


def test_the_shipped_schema_and_the_docs_tables_are_generated_from_the_structs() -> None:
    shipped = (ROOT / "torch_ir" / "serde" / "schema" / "ir.schema.json").read_text()
    assert shipped == schema_text(), "run python scripts/gen_format_docs.py"
    docs = (ROOT / "docs" / "ir-format.md").read_text()
    start, end = "<!-- generated by scripts/gen_format_docs.py: begin -->\n", "<!-- generated: end -->"
    assert start in docs and end in docs, "docs/ir-format.md lost its generated section"
    assert docs.split(start)[1].split(end)[0] == field_tables(), "run python scripts/gen_format_docs.py"


def test_the_schema_accepts_what_the_writer_writes_and_refuses_an_unknown_field(tmp_path: Path) -> None:
    import jsonschema

    module = from_dict(_fixture("v5_cond_router.json"), "v5")
    doc = json.loads(dumps(module))
    jsonschema.validate(doc, json_schema())
    doc["module"]["functions"][0]["graph"]["nodes"][0]["colour"] = "red"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, json_schema())
    with pytest.raises(SerializationError, match=r"nodes\[0\]: unknown key 'colour'"):
        from_dict(doc, "d")
