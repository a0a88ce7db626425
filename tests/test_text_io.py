"""The text form is an input and an output of ``opt``, ``verify`` and ``report``, read by content (as
mlir-opt reads .mlir): every test model, regions and programs included, round-trips through it."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from tests.models import MODELS, ModelCase, get_model
from tests.transformers_models import build_causal_lm, causal_lm_inputs
from torch_ir import IR, SerializationError, TextParseError, extract_ir, load_ir
from torch_ir.cli import EXIT_USAGE, main
from torch_ir.cli.streams import ir_from_text, parse_text_form
from torch_ir.serde import to_dict


def _extract(case: ModelCase) -> IR:
    args, kwargs = case.inputs("meta")
    return extract_ir(case.build_meta(), args, example_kwargs=kwargs, dynamic_shapes=case.dynamic_shapes)


def _without_run(doc: dict) -> dict:
    """The document less its pass log: the text form holds the IR, not the history of the passes."""
    return {k: v for k, v in doc.items() if k != "pass_log"}


@pytest.mark.parametrize("case", MODELS, ids=lambda c: f"{c.category}-{c.name}")
def test_every_model_round_trips_through_the_text_form(case: ModelCase, tmp_path: Path) -> None:
    path = tmp_path / "ir.json"
    _extract(case).save(path)
    ir = load_ir(path)
    text = ir.to_text(metadata=True)
    back = parse_text_form(text, "ir.tir")
    assert back == ir  # every graph, weight, node with its metadata, structure and region
    assert back.to_text(metadata=True) == text
    tir, again = tmp_path / "ir.tir", tmp_path / "again.json"
    assert main(["opt", str(path), "-p", "none", "-o", str(tir)]) == 0
    assert tir.read_text() == text + "\n"
    assert main(["opt", str(tir), "-p", "none", "-o", str(again)]) == 0
    assert _without_run(json.loads(again.read_text())) == _without_run(json.loads(path.read_text()))


def test_a_program_round_trips_through_the_text_form(tmp_path: Path) -> None:
    from torch_ir import extract_llm

    path, tir, again = tmp_path / "llm.json", tmp_path / "llm.tir", tmp_path / "again.json"
    extract_llm(build_causal_lm("llama", "meta"), max_cache_len=16).save(path)
    assert main(["opt", str(path), "-p", "none", "-o", str(tir)]) == 0
    text = tir.read_text()
    assert text.startswith("module {\n  weight @") and "\n  state @key_cache_0" in text
    assert "\n  func prefill graph(" in text and "\n  func decode graph(" in text
    assert parse_text_form(text, "llm.tir") == load_ir(path)
    assert main(["opt", str(tir), "-p", "none", "-o", str(again)]) == 0
    assert _without_run(json.loads(again.read_text())) == _without_run(json.loads(path.read_text()))
    assert main(["opt", str(tir), "-p", "cse", "-o", str(again)]) == 0
    doc = json.loads(again.read_text())
    assert [f["name"] for f in doc["module"]["functions"]] == ["prefill", "decode"]
    assert doc["module"]["state"][0]["name"] == "key_cache_0"


def test_a_module_with_private_functions_round_trips_through_the_text_form(tmp_path: Path) -> None:
    """Outlined decoder layers: ``func private`` bodies called by ``func.call`` nodes, metadata included."""
    from torch_ir.ir.calls import CALL_OP
    from torch_ir.passes import PassManager

    args, kwargs = causal_lm_inputs("meta")
    ir = extract_ir(build_causal_lm("llama", "meta"), args, example_kwargs=kwargs, pipeline="annotate-shapes")
    PassManager("outline-repeated-blocks").run(ir)
    private = [name for name, f in ir.functions.items() if not f.public]
    assert private and any(n.op_type == CALL_OP for n in ir.graph.nodes)
    path, tir, again = tmp_path / "outlined.json", tmp_path / "outlined.tir", tmp_path / "again.json"
    ir.save(path)
    assert main(["opt", str(path), "-p", "none", "-o", str(tir)]) == 0
    text = tir.read_text()
    assert text.startswith("module {") and f"\n  func private {private[0]} graph(" in text
    assert '"callee": ' not in text and f'callee="{private[0]}"' in text  # attributes, not metadata
    back = parse_text_form(text, "outlined.tir")
    assert back == load_ir(path)
    assert [(n, f.public) for n, f in back.functions.items()] == [(n, f.public) for n, f in ir.functions.items()]
    assert back.to_text(metadata=True) + "\n" == text
    assert main(["opt", str(tir), "-p", "none", "-o", str(again)]) == 0
    assert _without_run(json.loads(again.read_text())) == _without_run(json.loads(path.read_text()))
    assert main(["opt", str(tir), "-p", "inline", "-o", str(tmp_path / "flat.tir")]) == 0
    assert (tmp_path / "flat.tir").read_text().startswith("graph(")  # one function again: the plain graph form


def test_the_text_opt_prints_reads_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``torch-ir opt gpt.json -p none > gpt.tir; torch-ir opt gpt.tir`` (the plain form on stdout)."""
    gpt = tmp_path / "gpt.json"
    assert main(["extract", "zoo:gpt", "-o", str(gpt), "-q"]) == 0
    capsys.readouterr()
    assert main(["opt", str(gpt), "-p", "none"]) == 0
    plain = capsys.readouterr().out
    assert plain.startswith("graph(%ids: i64[1,32]) {") and " meta {" not in plain
    (tmp_path / "gpt.tir").write_text(plain)
    assert main(["opt", str(tmp_path / "gpt.tir"), "-p", "cse"]) == 0
    assert capsys.readouterr().out == plain  # the plain form reads back into the same computation
    assert main(["opt", str(gpt), "-p", "none", "--emit", "text"]) == 0
    with_meta = capsys.readouterr().out
    assert '  meta {"device": "cpu", "model": "gpt"}\n' in with_meta and "module_stack" in with_meta
    assert main(["opt", str(gpt), "-p", "none", "-o", str(tmp_path / "gpt.txt")]) == 0
    assert (tmp_path / "gpt.txt").read_text() == with_meta
    assert main(["opt", str(gpt), "-p", "none", "-o", str(tmp_path / "forced.json"), "--emit", "text"]) == 0
    assert (tmp_path / "forced.json").read_text() == with_meta


def test_report_and_verify_read_the_text_form(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gpt, tir = tmp_path / "gpt.json", tmp_path / "gpt.tir"
    assert main(["extract", "zoo:gpt", "-o", str(gpt), "-q"]) == 0
    assert main(["opt", str(gpt), "-p", "none", "-o", str(tir)]) == 0
    capsys.readouterr()
    assert main(["verify", str(tir), "--model", "zoo:gpt"]) == 0
    assert "verification of gpt: PASSED" in capsys.readouterr().out
    assert main(["report", str(tir), "--stats", "--json"]) == 0
    from_text = json.loads(capsys.readouterr().out)
    assert main(["report", str(gpt), "--stats", "--json"]) == 0
    assert from_text == json.loads(capsys.readouterr().out)
    assert main(["report", str(tir), "--format", "mermaid"]) == 0
    assert "blocks.0" in capsys.readouterr().out  # module paths came through the node metadata


def test_text_from_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    ir = _extract(get_model("two_tower"))
    monkeypatch.setattr(sys, "stdin", io.StringIO(ir.to_text(metadata=True)))
    assert main(["opt", "-", "-p", "none", "-o", "-"]) == 0
    assert _without_run(json.loads(capsys.readouterr().out)) == _without_run(to_dict(ir))


def test_json_with_a_byte_order_mark_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ir = _extract(get_model("two_tower"))
    path = tmp_path / "bom.json"
    ir.save(path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_ir(path) == ir
    assert main(["opt", str(path), "-p", "none", "-o", str(tmp_path / "out.json")]) == 0
    assert main(["report", str(path), "--stats"]) == 0
    text_path = tmp_path / "bom.tir"
    text_path.write_bytes(b"\xef\xbb\xbf" + ir.to_text(metadata=True).encode())
    assert main(["report", str(text_path), "--stats"]) == 0


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("hello", SerializationError, "not an IR: expected JSON"),
        ("", SerializationError, "empty"),
        ("graph(%x: f32[2]) {\n  return %y\n}\n", TextParseError, "x.tir: line 2, column 12: %y is used before"),
        ("// a comment\n{not json", SerializationError, "x.tir: not valid JSON"),
        ("graph(%x: f32[2]) {\n  meta [1]\n  return %x\n}\n", TextParseError, "line 2"),
    ],
    ids=["prose", "empty", "undefined-value", "broken-json", "meta-not-an-object"],
)
def test_bad_text_input_names_file_line_and_column(text: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        ir_from_text(text, "x.tir")


def test_bad_text_input_on_the_command_line_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.tir"
    path.write_text("graph(%x: f32[2]) {\n  %y = aten.relu.default(%z) : (f32[2]) -> f32[2]\n  return %y\n}\n")
    for command in (["opt", str(path)], ["report", str(path)], ["verify", str(path), "--model", "zoo:gpt"]):
        assert main(command) == EXIT_USAGE
        err = capsys.readouterr().err
        assert f"{path}: line 2" in err and "%z is used before it is defined" in err and "Traceback" not in err
