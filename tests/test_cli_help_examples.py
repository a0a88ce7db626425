"""The examples in each subcommand's ``--help`` run as written (in-process; pipes are emulated).

Examples that need the network, a model package of your own, or a large model are left out by the rules
in ``NOT_RUN``; every other line under ``examples:`` runs, in order, in one folder, so an example may use
the file an earlier one wrote.
"""

from __future__ import annotations

import io
import shlex
import sys
from pathlib import Path

import pytest

from torch_ir.cli import build_parser, main

NOT_RUN = {
    "hf:": "builds a transformers model (minutes for the real shapes; tests/test_transformers_* cover hf:)",
    "my_pkg": "needs a model package of your own",
    "| head": "a closed pipe, covered by tests/test_cli_conventions.py",
}

MY_MODEL = """\
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv(x)).mean(dim=(2, 3))
"""


def _examples(command: str) -> list[str]:
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    epilog = sub.epilog or ""
    if "examples:" not in epilog:
        return []
    lines = epilog.split("examples:", 1)[1].splitlines()
    return [line.strip() for line in lines if line.strip().startswith("torch-ir ")]


def _run_pipeline(line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run ``torch-ir A | torch-ir B`` through ``main``, stdout of each into stdin of the next."""
    data = ""
    for stage in line.split(" | "):
        argv = shlex.split(stage)
        assert argv[0] == "torch-ir", line
        out = io.StringIO()
        monkeypatch.setattr(sys, "stdin", io.StringIO(data))
        monkeypatch.setattr(sys, "stdout", out)
        code = main(argv[1:])
        monkeypatch.undo()
        assert code == 0, f"`{line}`: `{stage}` exited with {code}"
        data = out.getvalue()


@pytest.mark.parametrize("command", ["extract", "opt", "report", "verify"])
def test_help_examples_run(command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    examples = _examples(command)
    assert examples, f"torch-ir {command} --help shows no examples"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_model.py").write_text(MY_MODEL)
    assert main(["extract", "zoo:gpt", "-o", "gpt.json", "-q"]) == 0  # what the other examples read
    ran = 0
    for line in examples:
        if any(marker in line for marker in NOT_RUN):
            continue
        with monkeypatch.context() as patch:
            _run_pipeline(line, patch)
        ran += 1
    assert ran, f"no example of torch-ir {command} --help ran"
