"""The CLI's conventions (after mlir-opt): '-' for stdin/stdout, quiet on a closed pipe, exit codes
0/1/2, meaningless flags are usage errors, short errors with torch's log hidden, ``python -m torch_ir``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from torch_ir import extract_ir
from torch_ir.cli import EXIT_PIPE, EXIT_USAGE, main

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "torch_ir", *args], input=stdin, capture_output=True, text=True, env=env, cwd=cwd
    )


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_extract_to_stdout_piped_into_opt_from_stdin(tmp_path: Path) -> None:
    extracted = _cli("extract", "zoo:gpt", "-o", "-", "--format", "json", cwd=tmp_path)
    assert extracted.returncode == 0, extracted.stderr
    assert json.loads(extracted.stdout)["model"] == "gpt"
    assert "nodes" in extracted.stderr  # the summary goes to stderr when stdout holds the IR
    assert not (tmp_path / "-").exists()
    out = tmp_path / "out.json"
    optimized = _cli("opt", "-", "-p", "canonicalize", "-o", str(out), stdin=extracted.stdout)
    assert optimized.returncode == 0, optimized.stderr
    assert json.loads(out.read_text())["pass_log"][-1]["pass"] == "canonicalize"


def test_every_ir_reader_takes_stdin_and_writer_stdout(
    tower_ir_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tower_ir_file.read_text()
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    assert main(["report", "-", "--stats", "-o", "-"]) == 0
    assert "nodes" in capsys.readouterr().out
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    assert main(["opt", "-", "-p", "dce", "-o", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "tower"
    monkeypatch.setattr(sys, "stdin", io.StringIO("{not json"))
    assert main(["opt", "-", "-p", "dce"]) == EXIT_USAGE
    assert "<stdin>: not valid JSON" in capsys.readouterr().err


def test_closed_pipe_is_quiet(
    tower_ir_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert main(["opt", str(tower_ir_file), "-p", "dce"]) == EXIT_PIPE
    assert main(["report", str(tower_ir_file)]) == EXIT_PIPE
    assert capsys.readouterr().err == ""


def test_opt_into_head_prints_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ir = tmp_path / "gpt.json"
    assert main(["extract", "zoo:gpt", "-o", str(ir), "-q"]) == 0
    cmd = f"{sys.executable} -m torch_ir opt {ir} -p dce --print-ir-after all 2>&1 | head -1"
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=env)
    assert proc.stdout.startswith("graph(") or proc.stdout.startswith("//"), proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr and "BrokenPipe" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "{ir}", "--json"], "--json applies to --stats only"),
        (["report", "{ir}", "--max-nodes", "0"], "--max-nodes 0: expected at least 1"),
        (["report", "{ir}", "--stats", "--bind", "nope=3"], "no symbolic dim 'nope'"),
        (["report", "{ir}", "--stats", "--depth", "2"], "--depth shape the diagram"),
        (["report", "{ir}", "--format", "mermaid", "--bind", "s=1"], "--bind feeds the statistics"),
        (["report", "{ir}", "--no-fold", "--expand-folded"], "--expand-folded draws folded runs"),
        (["opt", "{ir}", "--steps", "-1"], "--steps -1: expected a count of at least 1"),
        (["opt", "{ir}", "--replay", "{ir}"], "not both"),
        (["opt", "{ir}", "--dump-dir", "{ir}"], "exists and is not a folder"),
        (["opt"], "give an IR file"),
        (["extract", "zoo:gpt", "-o", "-", "--format", "json,mermaid"], "need a file name"),
        (["extract", "zoo:gpt", "--list-zoo"], "drop the model spec"),
        (["extract", "zoo:gpt", "--format", "svg"], "unknown format svg"),
        (["verify", "{ir}", "--model", "zoo:gpt", "--rtol", "-1"], "a tolerance must be a finite number of 0 or more"),
    ],
)
def test_meaningless_flags_are_usage_errors(
    tower_ir_file: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([a.replace("{ir}", str(tower_ir_file)) for a in argv]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and "usage: torch-ir" in err and "Traceback" not in err


def test_bad_input_is_exit_2_without_traceback(
    tower_ir_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["extract", "zoo:gpt", "--input", "1000000x1000000x1000000x1000000:int64", "-o", "-"]) == 2
    assert "more than any tensor can hold" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing.json")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_wrong_input_is_a_few_lines_and_exit_2(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["extract", "zoo:gpt", "--input", "1x3x224x224:float32", "-o", "-"]) == 2
    out, err = capfd.readouterr()  # file descriptors: torch's own handlers write to the real stderr
    assert out == ""
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 5 and lines[0].startswith("torch-ir extract: error: torch.export could not trace")
    assert "Traceback" not in err


def test_torch_log_is_summarized_and_shown_whole_with_verbose(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "branchy.py"
    model.write_text(
        "import torch\n\n"
        "class Net(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        if x.sum() > 0:\n"
        "            return x * 2\n"
        "        return x - 1\n"
    )
    assert main(["extract", f"{model}:Net", "--input", "2x3:float32", "-o", "-"]) == 2
    quiet = capfd.readouterr().err
    assert "Traceback" not in quiet and len(quiet.strip().splitlines()) <= 8, quiet
    assert "data-dependent" in quiet and "run with -v to see them" in quiet
    assert "def forward" not in quiet  # no FX graph dump
    assert main(["extract", f"{model}:Net", "--input", "2x3:float32", "-o", "-", "-v"]) == 2
    assert "--- torch log ---" in capfd.readouterr().err


def test_export_error_keeps_the_torch_log() -> None:
    import torch

    from torch_ir import ExportError

    class Branchy(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2 if x.sum() > 0 else x - 1

    with pytest.raises(ExportError) as info:
        extract_ir(Branchy(), (torch.randn(2, 3),))
    assert info.value.torch_log and "torch log hidden" in str(info.value)


def test_python_dash_m_and_help_exit_codes() -> None:
    proc = _cli("--help")
    assert proc.returncode == 0 and "usage: torch-ir" in proc.stdout
    bare = _cli()
    assert bare.returncode == 2 and "usage: torch-ir" in bare.stderr
    assert _cli("report", "--bogus").returncode == 2


def test_dump_dir_on_a_file_is_an_error_in_the_library_too(tower_ir_file: Path) -> None:
    from torch_ir import PassManager, SerializationError, load_ir

    with pytest.raises(SerializationError, match="dump-dir .*cannot create it"):
        PassManager("dce", dump_dir=str(tower_ir_file)).run(load_ir(tower_ir_file))


def test_pipeline_file_with_options_that_are_not_a_table(tmp_path: Path) -> None:
    from torch_ir import PipelineSpecError
    from torch_ir.passes.pipeline import load_pipeline_file

    path = tmp_path / "p.yaml"
    path.write_text('[{"name": "dce", "options": true}]')
    with pytest.raises(PipelineSpecError, match="'options' must be a table of options"):
        load_pipeline_file(path)
