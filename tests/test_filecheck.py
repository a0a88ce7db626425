"""The FileCheck suite: ``tests/filecheck/**/*.tir`` run by lit, their ``RUN:`` lines through ``torch-ir opt``
and ``filecheck``, as MLIR and xDSL test their passes. Each file is one test here; a failure shows what
``filecheck`` expected against what ``torch-ir opt`` printed (``- expected`` / ``+ found``), then lit's report
(the commands and their output).

``test_a_broken_pass_fails_its_filecheck_test`` plants a bug in a copy of ``canonicalize`` (it removes
training-mode dropout, an op the model needs) and shows that the suite catches it with such a diff.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "tests" / "filecheck"
FILES = sorted(p.relative_to(SUITE).as_posix() for p in SUITE.rglob("*.tir") if "Inputs" not in p.parts)
LIT = Path(sys.executable).with_name("lit")

pytestmark = pytest.mark.slow

_MISMATCH = re.compile(
    r"(?P<where>\S+:\d+): error: (?P<what>.*?)\n(?:# \| )?Current position at <stdin>:\d+:\d+\n"
    r"(?:# \| )?(?P<found>.*)\n"
)


def run_lit(paths: list[Path], work: Path, env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Run lit on ``paths`` (files or folders of the suite) with its temporary files under ``work``; each
    test's result (``code``, ``output``) by its path in the suite."""
    report = work / "lit.json"
    command = [str(LIT), "-v", *map(str, paths), f"--param=exec_root={work / 'exec'}", "-o", str(report)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=1800, env=env, cwd=work)
    if not report.exists():
        raise AssertionError(f"lit wrote no report (exit {run.returncode}):\n{run.stdout}\n{run.stderr}")
    tests = json.loads(report.read_text())["tests"]
    return {t["name"].split(" :: ", 1)[1]: t for t in tests}


def explain(output: str) -> str:
    """filecheck's mismatches in lit's output as a diff (what the CHECK line wants, what opt printed there),
    then lit's whole report."""
    lines = []
    for found in _MISMATCH.finditer(output):
        lines.append(f"{found['where']}: {found['what']}")
        expected = re.search(r'"(.*)"', found["what"])
        if expected:
            lines.append(f"- expected: {expected.group(1)}")
            lines.append(f"+ found:    {found['found'].strip()}")
    return "\n".join([*lines, "", output]) if lines else output


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return run_lit([SUITE], tmp_path_factory.mktemp("lit"))


def test_the_suite_covers_every_pass(results: dict[str, dict[str, Any]]) -> None:
    """Every built-in pass and every example pass has a FileCheck file (in its pipeline text)."""
    import importlib

    from torch_ir.passes.registry import all_passes, load_builtins

    texts = "\n".join((SUITE / name).read_text() for name in FILES)
    examples = sorted(p.stem for p in (REPO / "examples" / "passes").glob("*.py") if p.stem != "__init__")
    for module in examples:
        importlib.import_module(f"examples.passes.{module}")
        assert f"--plugin examples.passes.{module}" in texts, f"no FileCheck test loads examples.passes.{module}"
    load_builtins()
    ours = [n for n, cls in all_passes().items() if cls.__module__.startswith(("torch_ir.", "examples."))]
    assert len(ours) >= 13
    for name in ours:
        assert re.search(rf"-p \"?{re.escape(name)}\b", texts), f"no FileCheck test runs pass {name}"
    assert set(results) == set(FILES)


@pytest.mark.parametrize("name", FILES)
def test_filecheck(name: str, results: dict[str, dict[str, Any]]) -> None:
    result = results[name]
    assert result["code"] == "PASS", explain(result["output"])


def test_a_broken_pass_fails_its_filecheck_test(tmp_path: Path) -> None:
    """A copy of torch_ir whose canonicalize also removes training-mode dropout (a bug: the model needs it),
    first on PYTHONPATH: canonicalize.tir fails, and the failure shows the line expected and the line found."""
    planted = tmp_path / "planted"
    shutil.copytree(REPO / "torch_ir", planted / "torch_ir", ignore=shutil.ignore_patterns("__pycache__"))
    source = planted / "torch_ir" / "passes" / "canonicalize.py"
    correct = 'if node.operand("train", None) is not False and p not in (0, 0.0):'
    text = source.read_text()
    assert correct in text
    source.write_text(text.replace(correct, "if False:"))
    env = {**os.environ, "PYTHONPATH": str(planted)}
    probe = [sys.executable, "-c", "import torch_ir.passes.canonicalize as c; print(c.__file__)"]
    used = subprocess.run(probe, capture_output=True, text=True, env=env, cwd=tmp_path, check=True).stdout
    assert used.strip() == str(source)  # the planted copy is what torch-ir opt imports
    work = tmp_path / "work"
    work.mkdir()
    result = run_lit([SUITE / "passes" / "canonicalize.tir"], work, env)["passes/canonicalize.tir"]
    assert result["code"] == "FAIL"
    report = explain(result["output"])
    assert "- expected: %d = aten.dropout.default(%t) {p=0.1, train=true}" in report, report
    assert '+ found:    %k = aten.clone.default(%t) {memory_format="channels_last"}' in report, report


def test_the_docs_show_the_lit_config_as_it_is() -> None:
    """docs/extending.md tells pass authors to copy tests/filecheck/lit.cfg.py: the page shows that file."""
    page = (REPO / "docs" / "extending.md").read_text()
    shown = re.search(r"cat > my-passes/tests/filecheck/lit.cfg.py <<'EOF'\n(.*?)\nEOF\n", page, re.S)
    assert shown is not None
    assert shown.group(1) + "\n" == (SUITE / "lit.cfg.py").read_text()


def test_one_file_runs_with_the_documented_command(tmp_path: Path) -> None:
    """docs/extending.md: `lit -v tests/filecheck/passes/cse.tir` from the repository root runs that file
    alone, `make filecheck TESTS=...` runs the same command, and lit's `Output/` folder is ignored by git."""
    page = (REPO / "docs" / "extending.md").read_text()
    assert "`lit -v tests/filecheck/passes/cse.tir`" in page
    assert "`make filecheck TESTS=tests/filecheck/passes/cse.tir`" in page
    make = ["make", "-n", "filecheck", "TESTS=tests/filecheck/passes/cse.tir", "STAMP="]
    planned = subprocess.run(make, capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert "/bin/lit -v tests/filecheck/passes/cse.tir" in planned
    command = [str(LIT), "-v", "tests/filecheck/passes/cse.tir", f"--param=exec_root={tmp_path}"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASS: torch-ir :: passes/cse.tir (1 of 1)" in run.stdout
    ignored = subprocess.run(["git", "check-ignore", "-q", "tests/filecheck/Output/x.tmp"], cwd=REPO)
    assert ignored.returncode == 0


def test_a_check_that_does_not_match_names_its_line_and_the_output(tmp_path: Path) -> None:
    """A CHECK line that matches nothing fails the test with the file and line of the CHECK and the line of
    opt's output where the search stood, as docs/extending.md shows."""
    suite = tmp_path / "tests" / "filecheck"
    suite.mkdir(parents=True)
    shutil.copy(SUITE / "lit.cfg.py", suite / "lit.cfg.py")
    (suite / "cse.tir").write_text(
        "// RUN: torch-ir opt %s -p cse | filecheck %s\n"
        "// CHECK: %b = aten.neg.default(%x)\n"
        "graph(%x: f32[2,8]) {\n"
        "  %a = aten.neg.default(%x) : (f32[2,8]) -> f32[2,8]\n"
        "  %b = aten.neg.default(%x) : (f32[2,8]) -> f32[2,8]\n"
        "  %c = aten.add.Tensor(%a, %b) : (f32[2,8], f32[2,8]) -> f32[2,8]\n"
        "  return %c\n"
        "}\n"
    )
    result = run_lit([suite / "cse.tir"], tmp_path)["cse.tir"]
    assert result["code"] == "FAIL"
    assert f'{suite / "cse.tir"}:2: error: Couldn\'t match "%b = aten.neg.default(%x)".' in result["output"]
    assert "Current position at <stdin>:0:0\n# | graph(%x: f32[2,8]) {" in result["output"]
    page = (REPO / "docs" / "extending.md").read_text()
    assert 'tests/filecheck/passes/cse.tir:2: error: Couldn\'t match "%b = aten.neg.default(%x)".' in page
