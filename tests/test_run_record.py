"""The stage figures and pass log saved in the IR file (schema 5), and what reads it without torch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.models import get_model
from torch_ir import SerializationError, extract_ir, load_ir
from torch_ir.cli import main
from torch_ir.serde import SCHEMA_VERSION, dumps, load_schema

REPO = Path(__file__).resolve().parents[1]


def _saved(tmp_path: Path, pipeline: str = "default") -> Path:
    case = get_model("two_tower")
    args, kwargs = case.inputs("meta")
    ir = extract_ir(case.build_meta(), args, example_kwargs=kwargs, pipeline=pipeline)
    path = tmp_path / "ir.json"
    ir.save(path, run_record=True)
    return path


def test_stages_and_pass_log_round_trip(tmp_path: Path) -> None:
    import jsonschema

    path = _saved(tmp_path)
    doc = json.loads(path.read_text())
    jsonschema.validate(doc, load_schema())
    assert doc["schema_version"] == SCHEMA_VERSION == 6
    names = [s["stage"] for s in doc["stages"]]
    assert names[0] == "export" and "convert" in names
    assert [e["pass"] for e in doc["pass_log"]][:2] == ["annotate-shapes", "canonicalize"]
    loaded = load_ir(path)
    assert [s.name for s in loaded.stages.stages] == [s["stage"] for s in doc["stages"]]
    assert loaded.stages.stages[0].seconds == doc["stages"][0]["seconds"] > 0
    assert loaded.pass_log == doc["pass_log"]
    assert dumps(loaded, run_record=True) == path.read_text()


def test_version_4_files_still_load(tmp_path: Path) -> None:
    doc = json.loads((Path(__file__).parent / "fixtures" / "formats" / "v5_gpt.json").read_text())
    doc["schema_version"] = 4
    del doc["pass_log"]
    path = tmp_path / "v4.json"
    path.write_text(json.dumps(doc))
    loaded = load_ir(path)
    assert loaded.pass_log == [] and loaded.stages.stages == []
    assert len(loaded.nodes) == len(doc["graph"]["nodes"])


@pytest.mark.parametrize(
    ("key", "value", "where"),
    [
        ("stages", [{"stage": "export", "seconds": -1}], r"\$.stages\[0\].seconds"),
        ("stages", [{"seconds": 1.0}], r"\$.stages\[0\]: missing key 'stage'"),
        ("pass_log", [{"pass": "cse", "modified": "yes"}], r"\$.pass_log\[0\].modified"),
        ("pass_log", [{"pass": "cse", "nodes_after": -3}], r"\$.pass_log\[0\].nodes_after"),
        ("pass_log", {"pass": "cse"}, r"\$.pass_log: expected a list"),
    ],
)
def test_malformed_run_record_names_its_path(tmp_path: Path, key: str, value: object, where: str) -> None:
    path = _saved(tmp_path, "none")
    doc = json.loads(path.read_text())
    doc[key] = value
    path.write_text(json.dumps(doc))
    with pytest.raises(SerializationError, match=where):
        load_ir(path)


def test_report_of_a_saved_ir_shows_passes_and_stage_times(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = _saved(tmp_path)
    assert main(["report", str(path)]) == 0
    text = capsys.readouterr().out
    assert "| passes run | 6 (annotate-shapes, canonicalize" in text
    assert "| extraction time | 0.000 s |" not in text
    assert "| export |" in text and "| `cse` |" in text


def test_opt_appends_to_the_saved_pass_log(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    out = tmp_path / "opt.json"
    assert main(["opt", str(path), "-p", "canonicalize", "-o", str(out)]) == 0
    passes = [e["pass"] for e in json.loads(out.read_text())["pass_log"]]
    assert len(passes) == 7 and passes[-1] == "canonicalize"


_BLOCK_TORCH = textwrap.dedent(
    """
    import sys

    class BlockTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"torch is blocked in this test ({name})")

    sys.meta_path.insert(0, BlockTorch())
    """
)


def _without_torch(code: str) -> subprocess.CompletedProcess[str]:
    script = _BLOCK_TORCH + textwrap.dedent(code)
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO)


def test_load_verify_report_and_torch_free_passes_run_without_torch(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    out = tmp_path / "out.json"
    result = _without_torch(
        f"""
        import torch_ir
        from torch_ir import load_ir
        from torch_ir.cli import main
        ir = load_ir({str(path)!r})
        ir.verify()
        assert main(["--help"] if False else ["report", {str(path)!r}, "-o", {str(tmp_path / "r.md")!r}]) == 0
        assert main(["report", {str(path)!r}, "--stats"]) == 0
        assert main(["report", {str(path)!r}, "--format", "mermaid", "-o", {str(tmp_path / "r.mmd")!r}]) == 0
        assert main(["opt", {str(path)!r}, "-p", "canonicalize,hoist-weights,eliminate-dead-nodes",
                     "-o", {str(out)!r}]) == 0
        assert main(["passes"]) == 0
        assert "torch" not in sys.modules
        print("torch-free ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert "torch-free ok" in result.stdout


def test_help_does_not_import_torch() -> None:
    result = _without_torch(
        """
        import runpy
        sys.argv = ["torch-ir", "--help"]
        try:
            runpy.run_module("torch_ir", run_name="__main__")
        except SystemExit as exc:
            assert exc.code == 0, exc.code
        assert "torch" not in sys.modules
        """
    )
    assert result.returncode == 0, result.stderr
    assert "usage: torch-ir" in result.stdout


def test_program_pass_log_keeps_each_rows_entry(tmp_path: Path) -> None:
    from torch_ir import IR

    path = _saved(tmp_path, "none")
    ir = load_ir(path)
    ir.pass_log = [{"pass": "cse", "entry": "prefill", "seconds": 0.5, "modified": True}]
    ir.save(path, run_record=True)
    assert load_ir(path).pass_log == ir.pass_log
    assert isinstance(ir, IR)
