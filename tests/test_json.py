"""The JSON backend: schema, determinism, round trips, atomic writes and malformed files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.models import MODELS, get_model
from torch_ir import IR, SerializationError, extract_ir, load_ir
from torch_ir.serde import SCHEMA_VERSION, dumps, load_schema, schema_path


def _ir(name: str, pipeline: str = "none") -> IR:
    case = get_model(name)
    args, kwargs = case.inputs("meta")
    return extract_ir(
        case.build_meta(), args, example_kwargs=kwargs, dynamic_shapes=case.dynamic_shapes, pipeline=pipeline
    )


@pytest.mark.parametrize("case", MODELS, ids=lambda c: f"{c.category}-{c.name}")
def test_every_model_round_trips_and_validates(case, tmp_path: Path) -> None:
    import jsonschema

    args, kwargs = case.inputs("meta")
    ir = extract_ir(case.build_meta(), args, example_kwargs=kwargs, dynamic_shapes=case.dynamic_shapes)
    path = tmp_path / "ir.json"
    ir.save(path)
    jsonschema.validate(json.loads(path.read_text()), load_schema())
    loaded = load_ir(path)
    assert loaded == ir
    loaded.verify()
    assert dumps(loaded) == path.read_text()


def test_dims_with_max_and_min_round_trip_and_validate(tmp_path: Path) -> None:
    """A slice by a length read from data gives ``Min(6,u0+u1)``: the writer writes it, so the reader and the
    JSON schema must take the comma."""
    import jsonschema

    from torch_ir import parse_graph

    dim = "Max(1,u0)+Min(6,u1)"
    graph = parse_graph(
        f"graph(%x: f32[{dim},4]) {{\n  %y = aten.neg.default(%x) : (f32[{dim},4]) -> f32[{dim},4]\n  return %y\n}}"
    )
    path = tmp_path / "minmax.json"
    IR(graph).save(path)
    jsonschema.validate(json.loads(path.read_text()), load_schema())
    assert str(load_ir(path).graph.outputs[0].type) == f"f32[{dim},4]"


def test_same_model_gives_identical_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    _ir("sdpa_attention", "default").save(a)
    _ir("sdpa_attention", "default").save(b)
    assert a.read_bytes() == b.read_bytes()
    assert '"stages"' not in a.read_text() and '"seconds"' not in a.read_text()


def test_header_names_version_producer_and_torch(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "ir.json"
    _ir("two_tower").save(path)
    doc = json.loads(path.read_text())
    assert doc["schema_version"] == SCHEMA_VERSION and doc["format"] == "torch-ir"
    assert doc["producer"]["name"] == "torch-ir" and doc["torch_version"] == torch.__version__
    assert doc["model"] == "TwoTower"


def test_tied_aliases_and_non_finite_floats_survive(tmp_path: Path) -> None:
    path = tmp_path / "ir.json"
    _ir("tied_embedding_lm").save(path)
    assert load_ir(path).weights["embed.weight"].aliases == ("lm_head.weight",)
    _ir("manual_attention").save(path)
    assert '{"float": "-inf"}' in path.read_text().replace("\n", "").replace(" ", "").replace(":", ": ")
    fill = next(n for n in load_ir(path).nodes if n.op_type.startswith("aten.masked_fill"))
    assert fill.attrs["value"] == float("-inf")


def test_file_validates_without_importing_torch(tmp_path: Path) -> None:
    path = tmp_path / "ir.json"
    _ir("small_cnn").save(path)
    script = (
        "import json, sys, jsonschema\n"
        f"schema = json.load(open({schema_path()!r}))\n"
        f"jsonschema.validate(json.load(open({str(path)!r})), schema)\n"
        "assert 'torch' not in sys.modules\n"
        "print('valid')\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "valid"


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ir.json"
    ir = _ir("two_tower")
    ir.save(path)
    before = path.read_bytes()

    import torch_ir.serde as backend

    def broken(_ir: IR, **_options: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(backend.writer, "dumps", broken)
    with pytest.raises(KeyboardInterrupt):
        ir.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ir.json"]


# ------------------------------------------------------------------ bad input


def test_unwritable_output_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SerializationError, match="cannot write"):
        _ir("two_tower").save(blocker / "ir.json")
    with pytest.raises(SerializationError, match="is a directory"):
        _ir("two_tower").save(tmp_path)


def test_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "ir.json"
    _ir("two_tower").save(path)
    path.write_text(path.read_text()[:300])
    with pytest.raises(SerializationError, match="not valid JSON at line .*truncated"):
        load_ir(path)


def test_future_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "ir.json"
    _ir("two_tower").save(path)
    doc = json.loads(path.read_text())
    doc["schema_version"] = SCHEMA_VERSION + 1
    path.write_text(json.dumps(doc))
    newer = SCHEMA_VERSION + 1
    with pytest.raises(SerializationError, match=rf"\$.schema_version: file has schema version {newer}.*upgrade"):
        load_ir(path)
    doc["schema_version"] = "1"
    path.write_text(json.dumps(doc))
    with pytest.raises(SerializationError, match="expected an integer"):
        load_ir(path)


def test_undefined_value_is_named_with_its_json_path(tmp_path: Path) -> None:
    path = tmp_path / "ir.json"
    _ir("two_tower").save(path)
    doc = json.loads(path.read_text())
    _graph(doc)["nodes"][1]["args"][0] = "%nowhere"
    path.write_text(json.dumps(doc))
    with pytest.raises(
        SerializationError,
        match=r"\$\.module\.functions\[0\]\.graph\.nodes\[1\]\.args\[0\]: reference to undefined value %nowhere",
    ):
        load_ir(path)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("module"), r"\$: missing key 'module'"),
        (lambda d: _graph(d)["nodes"][0].pop("op"), r"nodes\[0\]: missing key 'op'"),
        (lambda d: _graph(d)["inputs"][0]["type"].update(dtype="float7"), r"inputs\[0\]\.type\.dtype: unknown dtype"),
        (lambda d: d["module"]["weights"][0].update(kind="magic"), r"\$\.module\.weights\[0\]\.kind: unknown kind"),
        (lambda d: _graph(d)["nodes"][0]["outputs"][0].update(name="a"), r"nodes\[0\]: .*defined twice"),
        (lambda d: _graph(d).update(outputs=["%missing"]), r"outputs\[0\]: reference to undefined value"),
        (lambda d: _graph(d)["inputs"][0]["type"]["shape"].append(-3), r"shape\[2\]: expected `int` >= 0"),
        (lambda d: _graph(d).update(nodes="x"), r"\$\.module\.functions\[0\]\.graph\.nodes: expected a list"),
        (lambda d: _graph(d)["output_structure"]["items"][0].update(index=9), r"output index 9 out of range"),
        (lambda d: _graph(d).update(weights=d["module"]["weights"]), r"graph\.weights: a function reads the module"),
        (lambda d: _graph(d).update(colour="red"), r"graph: unknown key 'colour'"),
    ],
)
def test_malformed_documents(tmp_path: Path, mutate, message: str) -> None:
    path = tmp_path / "ir.json"
    _ir("two_tower").save(path)
    doc = json.loads(path.read_text())
    mutate(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(SerializationError, match=message):
        load_ir(path)


def _graph(doc: dict) -> dict:
    """The graph of the one function of a saved single-graph IR."""
    return doc["module"]["functions"][0]["graph"]


def test_not_json_at_all_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "ir.json"
    path.write_bytes(b"\x80\x81 not text")
    with pytest.raises(SerializationError, match="cannot read"):
        load_ir(path)
    with pytest.raises(SerializationError, match="no such file"):
        load_ir(tmp_path / "absent.json")
    path.write_text('{"schema_version": 1, "graph": {"inputs": [], "weights": [], "nodes": [], "outputs": [NaN]}}')
    with pytest.raises(SerializationError, match="NaN is not valid JSON"):
        load_ir(path)


def test_written_files_get_ordinary_permissions(tmp_path: Path) -> None:
    import os
    import stat

    path = tmp_path / "ir.json"
    _ir("two_tower").save(path)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    path.chmod(0o640)
    _ir("two_tower").save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # an existing file keeps its mode
