"""Safety, atomic writes and determinism, as users and attackers meet them."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch

from tests.models import get_model
from torch_ir import TorchIRError, extract_ir, load_ir

ROOT = Path(__file__).resolve().parents[1]


def _saved(tmp_path: Path, name: str = "two_tower") -> Path:
    case = get_model(name)
    args, kwargs = case.inputs("meta")
    path = tmp_path / f"{name}.json"
    extract_ir(case.build_meta(), args, example_kwargs=kwargs, pipeline="none").save(path)
    return path


def test_crafted_ir_file_cannot_run_code(tmp_path: Path, monkeypatch) -> None:
    marker = tmp_path / "pwned"
    (tmp_path / "evil_mod.py").write_text(f"open({str(marker)!r}, 'w').write('x')\nclass Evil: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = _saved(tmp_path)
    doc = json.loads(path.read_text())
    graph = doc["module"]["functions"][0]["graph"]
    graph["output_structure"] = {
        "kind": "custom",
        "class": "evil_mod.Evil",
        "keys": ["a", "b"],
        "items": graph["output_structure"]["items"],
    }
    graph["nodes"][0]["op"] = "evil_mod.run.default"
    graph["nodes"][0]["meta"]["__reduce__"] = ["os.system", "touch " + str(marker)]
    doc["module"]["weights"][0]["data"] = {"py/object": "evil_mod.Evil"}
    path.write_text(json.dumps(doc))
    try:
        ir = load_ir(path)
        ir.verify()
        ir.save(tmp_path / "again.json")
    except TorchIRError:
        pass
    assert not marker.exists()
    assert "evil_mod" not in sys.modules


def test_killed_write_leaves_the_old_file_intact(tmp_path: Path) -> None:
    """A writer killed halfway through a save (data written, not yet renamed) leaves the old file as it was."""
    path = _saved(tmp_path)
    original = path.read_bytes()
    script = (
        "import os, sys, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from torch_ir.frontends.model_specs import resolve_model\n"
        "from torch_ir import extract_ir\n"
        "b = resolve_model('zoo:gpt')\n"
        "ir = extract_ir(b.model, b.args, pipeline='none')\n"
        "def stalled_fsync(fd):\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
        "os.fsync = stalled_fsync\n"
        f"ir.save({str(path)!r})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert path.read_bytes() == original
    assert load_ir(path).name == "TwoTower"
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers and leftovers[0].stat().st_size > 10_000  # the half-done write went to a temp file


def _extract_in_fresh_process(out: Path, seed: str) -> str:
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from torch_ir.frontends.model_specs import resolve_model\n"
        "from torch_ir import extract_ir\n"
        "b = resolve_model('zoo:gpt')\n"
        f"extract_ir(b.model, b.args).save({str(out)!r})\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": seed}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, capture_output=True)
    return hashlib.sha256(out.read_bytes()).hexdigest()


def test_same_model_and_pipeline_give_identical_bytes_across_processes(tmp_path: Path) -> None:
    first = _extract_in_fresh_process(tmp_path / "a.json", "1")
    second = _extract_in_fresh_process(tmp_path / "b.json", "12345")
    assert first == second


def test_ops_naming_dangerous_python_functions_are_never_called(tmp_path: Path) -> None:
    import pytest

    from torch_ir import InterpreterError
    from torch_ir.ir import IR, parse_graph
    from torch_ir.passes.manager import run_pipeline
    from torch_ir.runtime.interpreter import Interpreter

    marker = tmp_path / "pwned"
    for op in ("builtins.exec", "builtins.eval", "builtins.open", "builtins.__import__", "operator.attrgetter"):
        text = (
            "graph(%x: f32[2]) {\n"
            f"  %y = {op}(\"open({str(marker)!r}, 'w')\") : () -> int\n"
            "  %z = aten.add.Tensor(%x, %x) : (f32[2], f32[2]) -> f32[2]\n"
            "  return %z, %y\n}"
        )
        ir = IR(parse_graph(text))
        with pytest.raises(InterpreterError, match=f"no kernel for op {op}"):
            Interpreter(ir).run(torch.ones(2))
        with pytest.raises(TorchIRError):
            run_pipeline(ir, "annotate-shapes{fallback=false}")
    assert not marker.exists()


def test_crafted_pipeline_file_cannot_run_code(tmp_path: Path) -> None:
    import pytest

    from torch_ir import PipelineSpecError
    from torch_ir.passes.pipeline import load_pipeline_file

    marker = tmp_path / "pwned"
    path = tmp_path / "pipeline.yaml"
    path.write_text(f"passes: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(PipelineSpecError, match="pipeline.yaml: not valid YAML"):
        load_pipeline_file(path)
    path.write_text("passes: [cse]\nplugins_note: 'evil_mod is not imported unless listed under plugins'\n")
    with pytest.raises(PipelineSpecError):
        load_pipeline_file(path)  # unknown keys are refused, not interpreted
    assert not marker.exists()
