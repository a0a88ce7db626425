"""Every failure leaves the CLI one way: a short message and exit 2 (1 only for a verify mismatch), a
traceback only with -v, and then torch's own error first; values out of range are refused; a reader
that closes stdout early gets the documented 141."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from torch_ir.cli import COMMANDS, EXIT_PIPE, EXIT_USAGE, build_parser, main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpt_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("gpt")
    files = {"static": folder / "gpt.json", "dynamic": folder / "gpt-b.json"}
    assert main(["extract", "zoo:gpt", "-o", str(files["static"]), "-q"]) == 0
    dynamic = ["--input", "2x32:int64", "--dynamic", "0=batch:1..16"]
    assert main(["extract", "zoo:gpt", *dynamic, "-o", str(files["dynamic"]), "-q"]) == 0
    return files


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["extract", "zoo:gpt", "--device", "bogus", "-o", "{tmp}/x.json"], "--device 'bogus': not a device torch"),
        (["extract", "zoo:gpt", "--input", "0x32:int64", "-o", "{tmp}/x.json"], "a dimension of 0"),
        (["extract", "hf:llama", "--config", "num_hidden_layers=-1"], "num_hidden_layers is a count or size"),
        (["extract", "hf:llama", "--config", "hidden_size=0"], "hidden_size is a size"),
        (["extract", "zoo:gpt", "-p", ""], "an empty pipeline"),
        (["extract", "zoo:gpt", "--kv-cache", "static", "--max-cache-len", "1"], "a length of at least 2"),
        (["extract", "zoo:gpt", "--kv-cache", "static", "--batch-size", "0"], "expected an integer of at least 1"),
        (["report", "{dynamic}", "--stats", "--bind", "batch=100000"], "batch is declared as 1..16"),
        (["report", "{dynamic}", "--stats", "--bind", "batch=0"], "batch is declared as 1..16"),
        (["verify", "{static}", "--model", "zoo:gpt", "--atol", "inf"], "a tolerance must be a finite number"),
        (["verify", "{static}", "--model", "zoo:gpt", "--rtol", "nan"], "a tolerance must be a finite number"),
        (["verify", "{static}", "--model", "zoo:gpt", "--generate", "0"], "expected an integer of at least 1"),
        (["opt", "{static}", "-p", ""], "an empty pipeline"),
        (["opt", "{static}", "-p", "  "], "an empty pipeline"),
        (["opt", "{static}", "-p", "cse", "--print-ir-after", "csee"], "print-ir-after: unknown pass 'csee'"),
        (["opt", "{static}", "-p", "cse", "--print-ir-before", "canonicalise"], "did you mean 'canonicalize'"),
        (["opt", "{static}", "-p", "cse", "--print-ir-after", "all", "--print-ir-after", "typo"], "'typo'"),
    ],
)
def test_out_of_range_values_and_unknown_names_are_exit_2(
    gpt_files: dict[str, Path], tmp_path: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    filled = [
        a.replace("{static}", str(gpt_files["static"]))
        .replace("{dynamic}", str(gpt_files["dynamic"]))
        .replace("{tmp}", str(tmp_path))
        for a in argv
    ]
    assert main(filled) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x.json").exists()


def test_extract_on_a_device_this_torch_lacks_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if _has_cuda():
        pytest.skip("this machine has CUDA")
    assert main(["extract", "zoo:gpt", "--device", "cuda", "-o", str(tmp_path / "x.json")]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--device cuda: not available here" in err and "Traceback" not in err


@pytest.mark.parametrize("spec", ["1x32:float32", "1x16:int64"], ids=["dtype", "shape"])
def test_verify_with_inputs_the_ir_cannot_take_is_exit_2_not_a_mismatch(
    gpt_files: dict[str, Path], spec: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", str(gpt_files["static"]), "--model", "zoo:gpt", "--input", spec]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "input ids: expected" in err and "Traceback" not in err


def test_every_command_takes_verbose() -> None:
    parser = build_parser()
    subcommands = next(a for a in parser._actions if a.dest == "command").choices
    assert set(subcommands) == set(COMMANDS)
    for name, sub in subcommands.items():
        flags = {flag for action in sub._actions for flag in action.option_strings}
        assert {"-v", "--verbose"} <= flags, name


_FAILING_PASS = """
from dataclasses import dataclass
from typing import ClassVar

from torch_ir import Pass, register_pass


@register_pass
@dataclass(frozen=True)
class Explode(Pass):
    \"\"\"Fails the way a buggy pass does.\"\"\"

    name: ClassVar[str] = "explode"

    def run(self, graph, ctx):
        raise RuntimeError("the original failure inside the pass")
"""


def test_a_failing_pass_under_opt_shows_its_traceback_with_verbose_only(
    tower_ir_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "exploding_pass.py").write_text(_FAILING_PASS)
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = ["opt", str(tower_ir_file), "-p", "explode", "--plugin", "exploding_pass"]
    assert main(argv) == EXIT_USAGE
    quiet = capsys.readouterr().err
    assert "explode" in quiet and "Traceback" not in quiet
    assert main([*argv, "-v"]) == EXIT_USAGE
    loud = capsys.readouterr().err
    assert "Traceback" in loud
    # the cause first: the pass's own exception, then the PassError, then the one-line message
    original = loud.index("RuntimeError: the original failure inside the pass")
    assert original < loud.index("torch_ir.errors.PassError") < loud.index("torch-ir opt: error:")


def test_an_unexpected_exception_is_one_line_and_exit_2(
    tower_ir_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object, **kwargs: object) -> str:
        raise ValueError("a bug somewhere")

    monkeypatch.setattr("torch_ir.backends.markdown.render_markdown", broken)
    assert main(["report", str(tower_ir_file)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "torch-ir report: error: unexpected ValueError: a bug somewhere; rerun with -v" in err
    assert "Traceback" not in err
    assert main(["report", str(tower_ir_file), "-v"]) == EXIT_USAGE
    assert "Traceback" in capsys.readouterr().err


_ALIASING_MODEL = """
import torch


class Net(torch.nn.Module):
    def forward(self, x):
        return torch.cond(x.sum() > 0, lambda x: x, lambda x: x.sin(), (x,))
"""


def test_export_failure_message_has_torchs_reason_and_verbose_shows_torchs_error_first(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "aliasing.py"
    model.write_text(_ALIASING_MODEL)
    argv = ["extract", f"{model}:Net", "--input", "2x3:float32", "-o", str(tmp_path / "x.json")]
    assert main(argv) == EXIT_USAGE
    err = capfd.readouterr().err
    assert "Encountered aliasing" in err and "return input.clone()" in err  # torch's words, in the message
    assert "Cause (unsupported): a construct torch.export cannot trace: a branch or body" in err
    assert "Traceback" not in err
    assert err.index("Encountered aliasing") < err.index("aliasing.py:7 (") < err.index("Cause (")
    assert main([*argv, "-v"]) == EXIT_USAGE
    loud = capfd.readouterr().err
    assert loud.index("UncapturedHigherOrderOpError") < loud.index("torch_ir.errors.ExportError")


def test_stdout_closed_before_the_output_is_141_and_quiet(tower_ir_file: Path) -> None:
    """What docs/errors.md says: a reader that is gone before torch-ir writes (``| head -c 10`` on an output
    larger than the pipe holds) gets 141, silently."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the command starts writing
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "torch_ir", "opt", str(tower_ir_file), "-p", "none", "-o", "-"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == EXIT_PIPE
    assert proc.stderr == ""


def test_head_on_a_large_output_is_141(tmp_path: Path) -> None:
    ir = tmp_path / "big.json"
    code = textwrap.dedent(
        """
        import sys, torch
        from torch_ir import extract_ir
        layers = torch.nn.Sequential(*[torch.nn.Linear(8, 8) for _ in range(600)])
        extract_ir(layers, (torch.randn(2, 8),), pipeline="none").save(sys.argv[1])
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", code, str(ir)], check=True, env=env)
    assert ir.stat().st_size > 4 * 65536  # more than a pipe holds: the writer is still writing when head exits
    script = f'{sys.executable} -m torch_ir opt {ir} -p none -o - | head -c 10; echo "${{PIPESTATUS[0]}}" >&2'
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env)
    assert proc.stderr.strip().splitlines()[-1] == str(EXIT_PIPE), proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stdout) == 10
